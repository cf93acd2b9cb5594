import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduledEvent } from 'aws-lambda';

import { lambdaHandler } from '../../app';
import sample from '../../../events/event.json';

test('the scheduled run reports its time', async () => {
  const event = sample as unknown as ScheduledEvent;
  assert.equal(event['detail-type'], 'Scheduled Event');
  assert.deepEqual(await lambdaHandler(event), { ok: true, time: event.time });
});
