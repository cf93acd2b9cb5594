import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { APIGatewayProxyEvent } from 'aws-lambda';

import { lambdaHandler } from '../../app';
import event from '../../../events/event.json';

test('GET /hello answers hello world', async () => {
  const result = await lambdaHandler(event as unknown as APIGatewayProxyEvent);

  assert.equal(result.statusCode, 200);
  assert.deepEqual(JSON.parse(result.body), { message: 'hello world' });
});
