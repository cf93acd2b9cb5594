import { test } from 'node:test';
import assert from 'node:assert/strict';

import { lambdaHandler } from '../../app.mjs';

test('the checker returns a price between 0 and 100', async () => {
  for (let i = 0; i < 20; i++) {
    const { stock_price } = await lambdaHandler({}, {});
    assert.ok(Number.isInteger(stock_price) && stock_price >= 0 && stock_price <= 100, `${stock_price}`);
  }
});
