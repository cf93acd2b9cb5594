import random


def lambda_handler(event, context):
    """The first step of the state machine: a stock's price (a random one, in this sample)."""
    return {"stock_price": random.randint(0, 100)}
