import json


def lambda_handler(event, context):
    """Runs on the schedule in template.yaml; `event` is EventBridge's Scheduled Event."""
    print(json.dumps({"scheduled_at": event.get("time"), "rule": event.get("resources")}))
    return {"ok": True, "time": event.get("time")}
