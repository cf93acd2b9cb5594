import { randomUUID } from 'node:crypto';

/**
 * The state machine's step when the price is low: a buy order (made up, in this sample).
 */
export const lambdaHandler = async (event, context) => {
  return {
    id: randomUUID(),
    price: event.stock_price ?? 0,
    type: 'buy',
    qty: 1 + Math.floor(Math.random() * 10),
    timestamp: new Date().toISOString(),
  };
};
