import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SQSEvent } from 'aws-lambda';

import { lambdaHandler } from '../../app';
import sample from '../../../events/event.json';

const event = (): SQSEvent => structuredClone(sample) as unknown as SQSEvent;

test('a batch of good messages has no failures', async () => {
  assert.deepEqual(await lambdaHandler(event()), { batchItemFailures: [] });
});

test('a message that fails is reported for redelivery', async () => {
  const e = event();
  e.Records[0].body = 'fail';
  assert.deepEqual(await lambdaHandler(e), { batchItemFailures: [{ itemIdentifier: e.Records[0].messageId }] });
});
