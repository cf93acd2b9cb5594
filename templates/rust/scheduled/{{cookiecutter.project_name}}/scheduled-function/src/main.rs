use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Runs on the schedule in template.yaml; the event is EventBridge's Scheduled Event.
async fn function_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let time = event.payload["time"].clone();
    println!("{}", json!({ "scheduledAt": time, "rule": event.payload["resources"] }));
    Ok(json!({ "ok": true, "time": time }))
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
    async fn the_scheduled_run_reports_its_time() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/event.json");
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        let time = event["time"].clone();
        let out = function_handler(LambdaEvent::new(event, Context::default())).await.unwrap();
        assert_eq!(out, json!({ "ok": true, "time": time }));
    }
}
