use std::hash::{BuildHasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// The state machine's step when the price is low: a buy order (made up, in this sample).
async fn function_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let random = RandomState::new().hash_one(SystemTime::now());
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    Ok(json!({
        "id": format!("{random:016x}"),
        "price": event.payload["stock_price"].as_i64().unwrap_or(0),
        "type": "buy",
        "qty": 1 + random % 10,
        "timestamp": now.as_millis() as u64,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(function_handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[tokio::test]
    async fn the_buyer_buys_at_the_checked_price() {
        let order = function_handler(LambdaEvent::new(json!({ "stock_price": 42 }), Context::default()))
            .await
            .unwrap();
        assert_eq!(order["type"], "buy");
        assert_eq!(order["price"], 42);
        let qty = order["qty"].as_u64().unwrap();
        assert!((1..=10).contains(&qty), "{qty}");
    }
}
