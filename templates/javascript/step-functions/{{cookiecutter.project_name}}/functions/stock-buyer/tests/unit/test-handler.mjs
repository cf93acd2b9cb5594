import { test } from 'node:test';
import assert from 'node:assert/strict';

import { lambdaHandler } from '../../app.mjs';

test('the buyer buys at the checked price', async () => {
  const order = await lambdaHandler({ stock_price: 42 }, {});
  assert.equal(order.type, 'buy');
  assert.equal(order.price, 42);
  assert.ok(order.qty >= 1 && order.qty <= 10);
});
