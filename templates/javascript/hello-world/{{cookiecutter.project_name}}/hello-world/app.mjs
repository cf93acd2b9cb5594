/**
 * Answers GET /hello of the API.
 *
 * @param {object} event - the API Gateway proxy request (see events/event.json and
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html)
 * @param {object} context - the Lambda context object
 * @returns {Promise<object>} the API Gateway proxy response
 */
export const lambdaHandler = async (event, context) => {
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: 'hello world' }),
  };
};
