import json


def lambda_handler(event, context):
    """Answers GET /hello of the API.

    event: the API Gateway proxy request (see events/event.json and
        https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html)
    context: the Lambda context object
    """
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "hello world"}),
    }
