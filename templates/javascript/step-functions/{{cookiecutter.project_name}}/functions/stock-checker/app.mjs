/**
 * The first step of the state machine: a stock's price (a random one, in this sample).
 */
export const lambdaHandler = async (event, context) => {
  return { stock_price: Math.floor(Math.random() * 101) };
};
