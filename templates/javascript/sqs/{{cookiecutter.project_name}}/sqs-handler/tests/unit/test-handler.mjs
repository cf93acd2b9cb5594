import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { lambdaHandler } from '../../app.mjs';

const event = () => JSON.parse(readFileSync(new URL('../../../events/event.json', import.meta.url), 'utf8'));

test('a batch of good messages has no failures', async () => {
  assert.deepEqual(await lambdaHandler(event(), {}), { batchItemFailures: [] });
});

test('a message that fails is reported for redelivery', async () => {
  const e = event();
  e.Records[0].body = 'fail';
  assert.deepEqual(await lambdaHandler(e, {}), { batchItemFailures: [{ itemIdentifier: e.Records[0].messageId }] });
});
