use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Answers GET /hello of the API; `event` is API Gateway's proxy request (see events/event.json).
async fn function_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let _request = event.payload;
    let body = json!({ "message": "hello world" }).to_string();
    Ok(json!({
        "statusCode": 200,
        "headers": { "Content-Type": "application/json" },
        "body": body,
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
    async fn get_hello_answers_hello_world() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/event.json");
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let response = function_handler(LambdaEvent::new(event, Context::default())).await.unwrap();
        assert_eq!(response["statusCode"], 200);
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({ "message": "hello world" }));
    }
}
