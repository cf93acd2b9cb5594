import json


def lambda_handler(event, context):
    """Logs the body of each message of an SQS batch.

    A message whose body is the text `fail` is reported as failed, so SQS delivers it again
    (the event source mapping has ReportBatchItemFailures); the others are deleted.
    """
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(json.dumps({"messageId": record["messageId"], "body": body}))
    return {"batchItemFailures": failures}
