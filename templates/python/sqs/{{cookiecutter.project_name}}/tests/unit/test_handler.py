import copy
import json
from pathlib import Path

from sqs_handler import app

EVENT = json.loads((Path(__file__).parents[2] / "events" / "event.json").read_text())


def test_a_batch_of_good_messages_has_no_failures(capsys):
    assert app.lambda_handler(EVENT, None) == {"batchItemFailures": []}
    assert EVENT["Records"][0]["body"] in capsys.readouterr().out


def test_a_message_that_fails_is_reported_for_redelivery():
    event = copy.deepcopy(EVENT)
    event["Records"][0]["body"] = "fail"
    message_id = event["Records"][0]["messageId"]
    assert app.lambda_handler(event, None) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
