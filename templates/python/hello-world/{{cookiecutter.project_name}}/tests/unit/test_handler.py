import json
from pathlib import Path

from hello_world import app

EVENT = json.loads((Path(__file__).parents[2] / "events" / "event.json").read_text())


def test_get_hello_answers_hello_world():
    ret = app.lambda_handler(EVENT, None)

    assert ret["statusCode"] == 200
    assert json.loads(ret["body"]) == {"message": "hello world"}
