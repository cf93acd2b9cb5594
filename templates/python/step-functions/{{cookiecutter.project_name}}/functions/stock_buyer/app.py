import random
import uuid
from datetime import datetime, timezone


def lambda_handler(event, context):
    """The state machine's step when the price is low: a buy order (made up, in this sample)."""
    return {
        "id": str(uuid.uuid4()),
        "price": event.get("stock_price", 0),
        "type": "buy",
        "qty": random.randint(1, 10),
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
