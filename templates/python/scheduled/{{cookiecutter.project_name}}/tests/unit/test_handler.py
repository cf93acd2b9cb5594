import json
from pathlib import Path

from scheduled_function import app

EVENT = json.loads((Path(__file__).parents[2] / "events" / "event.json").read_text())


def test_the_scheduled_run_reports_its_time():
    assert EVENT["detail-type"] == "Scheduled Event"
    assert app.lambda_handler(EVENT, None) == {"ok": True, "time": EVENT["time"]}
