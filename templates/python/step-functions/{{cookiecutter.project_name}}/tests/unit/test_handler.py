from functions.stock_buyer import app as buyer
from functions.stock_checker import app as checker


def test_the_checker_returns_a_price_between_0_and_100():
    for _ in range(20):
        price = checker.lambda_handler({}, None)["stock_price"]
        assert 0 <= price <= 100


def test_the_buyer_buys_at_the_checked_price():
    order = buyer.lambda_handler({"stock_price": 42}, None)
    assert order["type"] == "buy"
    assert order["price"] == 42
    assert 1 <= order["qty"] <= 10
