import { randomUUID } from 'node:crypto';

export interface Order {
  id: string;
  price: number;
  type: 'buy';
  qty: number;
  timestamp: string;
}

/**
 * The state machine's step when the price is low: a buy order (made up, in this sample).
 */
export const lambdaHandler = async (event: { stock_price?: number }): Promise<Order> => {
  return {
    id: randomUUID(),
    price: event.stock_price ?? 0,
    type: 'buy',
    qty: 1 + Math.floor(Math.random() * 10),
    timestamp: new Date().toISOString(),
  };
};
