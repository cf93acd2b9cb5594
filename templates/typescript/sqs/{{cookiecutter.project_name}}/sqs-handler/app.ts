import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';

/**
 * Logs the body of each message of an SQS batch.
 *
 * A message whose body is the text `fail` is reported as failed, so SQS delivers it again (the
 * event source mapping has ReportBatchItemFailures); the others are deleted.
 */
export const lambdaHandler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const batchItemFailures: SQSBatchItemFailure[] = [];
  for (const record of event.Records) {
    if (record.body === 'fail') {
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    console.log(JSON.stringify({ messageId: record.messageId, body: record.body }));
  }
  return { batchItemFailures };
};
