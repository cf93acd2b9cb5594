use std::hash::{BuildHasher, RandomState};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// A number from 0 to 100, from the standard library's per-process random hash keys.
fn random_price() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now()) % 101
}

/// The first step of the state machine: a stock's price (a random one, in this sample).
async fn function_handler(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "stock_price": random_price() }))
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
    async fn the_checker_returns_a_price_between_0_and_100() {
        for _ in 0..20 {
            let out = function_handler(LambdaEvent::new(json!({}), Context::default())).await.unwrap();
            let price = out["stock_price"].as_u64().unwrap();
            assert!(price <= 100, "{price}");
        }
    }
}
