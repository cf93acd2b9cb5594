use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Logs the body of each message of an SQS batch (see events/event.json). A message whose body
/// is `fail` is reported as failed, so SQS delivers it again (the event source mapping has
/// ReportBatchItemFailures); the others are deleted.
async fn function_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let mut failures = Vec::new();
    let records = event.payload["Records"].as_array().cloned().unwrap_or_default();
    for record in &records {
        let id = record["messageId"].as_str().unwrap_or_default();
        let body = record["body"].as_str().unwrap_or_default();
        if body == "fail" {
            failures.push(json!({ "itemIdentifier": id }));
            continue;
        }
        println!("{}", json!({ "messageId": id, "body": body }));
    }
    Ok(json!({ "batchItemFailures": failures }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(function_handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn sample() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/event.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_batch_of_good_messages_has_no_failures() {
        let out = function_handler(LambdaEvent::new(sample(), Context::default())).await.unwrap();
        assert_eq!(out, json!({ "batchItemFailures": [] }));
    }

    #[tokio::test]
    async fn a_message_that_fails_is_reported_for_redelivery() {
        let mut event = sample();
        event["Records"][0]["body"] = json!("fail");
        let id = event["Records"][0]["messageId"].clone();
        let out = function_handler(LambdaEvent::new(event, Context::default())).await.unwrap();
        assert_eq!(out, json!({ "batchItemFailures": [{ "itemIdentifier": id }] }));
    }
}
