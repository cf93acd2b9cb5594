import json
import os

import requests

from shared.greeting import greet


def handler(event, context):
    return {
        "statusCode": 200,
        "body": json.dumps(
            {
                "message": greet(os.environ.get("GREETING", "Hello"), "python"),
                "stage": os.environ.get("STAGE"),
                "requests": requests.__version__,
            }
        ),
    }
