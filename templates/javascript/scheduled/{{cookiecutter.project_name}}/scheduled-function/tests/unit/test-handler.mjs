import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { lambdaHandler } from '../../app.mjs';

const event = JSON.parse(readFileSync(new URL('../../../events/event.json', import.meta.url), 'utf8'));

test('the scheduled run reports its time', async () => {
  assert.equal(event['detail-type'], 'Scheduled Event');
  assert.deepEqual(await lambdaHandler(event, {}), { ok: true, time: event.time });
});
