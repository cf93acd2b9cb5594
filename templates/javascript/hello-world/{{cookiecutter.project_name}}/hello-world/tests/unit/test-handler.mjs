import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { lambdaHandler } from '../../app.mjs';

const event = JSON.parse(readFileSync(new URL('../../../events/event.json', import.meta.url), 'utf8'));

test('GET /hello answers hello world', async () => {
  const result = await lambdaHandler(event, {});

  assert.equal(result.statusCode, 200);
  assert.deepEqual(JSON.parse(result.body), { message: 'hello world' });
});
