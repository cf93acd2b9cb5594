use serde_json::json;

use super::*;

fn make(service: &str, event: &str, overrides: &[(&str, &str)]) -> Value {
    let o: BTreeMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    generate(service, event, &o).unwrap()
}

#[test]
fn aws_proxy_defaults_match_sam() {
    let e = make("apigateway", "aws-proxy", &[]);
    assert_eq!(e["body"], "eyJ0ZXN0IjoiYm9keSJ9");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["resource"], "/{proxy+}");
    assert_eq!(e["path"], "/path/to/resource");
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["queryStringParameters"], json!({"foo": "bar"}));
    assert_eq!(e["multiValueQueryStringParameters"], json!({"foo": ["bar"]}));
    assert_eq!(e["pathParameters"], json!({"proxy": "/path/to/resource"}));
    assert_eq!(e["stageVariables"], json!({"baz": "qux"}));
    assert_eq!(e["headers"]["Host"], "1234567890.execute-api.us-east-1.amazonaws.com");
    assert_eq!(e["multiValueHeaders"]["X-Forwarded-Port"], json!(["443"]));
    assert_eq!(e["headers"].as_object().unwrap().len(), 18);
    let ctx = &e["requestContext"];
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["stage"], "prod");
    assert_eq!(ctx["path"], "/prod/path/to/resource");
    assert_eq!(ctx["resourcePath"], "/{proxy+}");
    assert_eq!(ctx["httpMethod"], "POST");
    assert_eq!(ctx["requestTimeEpoch"], 1_428_582_896_000_u64);
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
}

#[test]
fn aws_proxy_overrides() {
    let e = make(
        "apigateway",
        "aws-proxy",
        &[("--path", "/users/1"), ("method", "GET"), ("stage", "dev"), ("body", "\"quoted\"\n"), ("account_id", "999")],
    );
    assert_eq!(e["path"], "/users/1", "a leading slash is not doubled");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["requestContext"]["path"], "/dev/users/1");
    assert_eq!(e["requestContext"]["accountId"], "999");
    assert_eq!(e["body"], base64("\"quoted\"\n"));
}

#[test]
fn http_api_proxy_defaults_and_overrides() {
    let e = make("apigateway", "http-api-proxy", &[]);
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["rawPath"], "/path/to/resource");
    assert_eq!(e["cookies"], json!(["cookie1", "cookie2"]));
    assert_eq!(e["queryStringParameters"], json!({"parameter1": "value1,value2", "parameter2": "value"}));
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert_eq!(e["requestContext"]["http"]["method"], "POST");
    assert_eq!(e["requestContext"]["domainName"], "id.execute-api.us-east-1.amazonaws.com");
    assert_eq!(e["requestContext"]["timeEpoch"], 1_583_348_638_390_u64);
    assert_eq!(e["body"], "eyJ0ZXN0IjoiYm9keSJ9");
    assert_eq!(e["isBase64Encoded"], true);
    let e = make("apigateway", "http-api-proxy", &[("path", "a/b"), ("dns-suffix", "eu-west-1.amazonaws.com")]);
    assert_eq!(e["rawPath"], "/a/b");
    assert_eq!(e["requestContext"]["http"]["path"], "/a/b");
    assert_eq!(e["requestContext"]["domainName"], "id.execute-api.eu-west-1.amazonaws.com");
}

#[test]
fn s3_put_and_delete() {
    let put = make("s3", "put", &[]);
    let r = &put["Records"][0];
    assert_eq!(r["eventName"], "ObjectCreated:Put");
    assert_eq!(r["eventSource"], "aws:s3");
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["s3"]["bucket"]["name"], "example-bucket");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::example-bucket");
    assert_eq!(
        r["s3"]["object"],
        json!({"key": "test/key", "size": 1024, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"})
    );
    let del = make(
        "s3",
        "delete",
        &[("bucket", "b"), ("key", "my photos/été 1.jpg"), ("partition", "aws-cn"), ("region", "cn-north-1")],
    );
    let r = &del["Records"][0];
    assert_eq!(r["eventName"], "ObjectRemoved:Delete");
    assert_eq!(r["awsRegion"], "cn-north-1");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws-cn:s3:::b");
    assert_eq!(r["s3"]["object"], json!({"key": "my+photos/%C3%A9t%C3%A9+1.jpg", "sequencer": "0A1B2C3D4E5F678901"}));
}

#[test]
fn sqs_md5_follows_the_body() {
    let e = make("sqs", "receive-message", &[]);
    let r = &e["Records"][0];
    assert_eq!(r["body"], "Hello from SQS!");
    assert_eq!(r["md5OfBody"], "7b270e59b47ff90a553787216d55d91d");
    assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:MyQueue");
    assert_eq!(r["attributes"]["SenderId"], "123456789012");
    let e = make("sqs", "receive-message", &[("body", r#"{"id": "a\"b"}"#), ("queue-name", "Orders")]);
    let r = &e["Records"][0];
    assert_eq!(r["body"], r#"{"id": "a\"b"}"#);
    assert_eq!(r["md5OfBody"], "a89fd584ac95baf8876389e4cb443cb2");
    assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:Orders");
}

#[test]
fn sns_notification_fills_the_account_in_both_arns() {
    let e = make("sns", "notification", &[("topic", "Alerts"), ("subject", "s"), ("message", "line1\nline2")]);
    let r = &e["Records"][0];
    assert_eq!(r["EventSubscriptionArn"], "arn:aws:sns:us-east-1:123456789012:Alerts");
    assert_eq!(r["Sns"]["TopicArn"], "arn:aws:sns:us-east-1:123456789012:Alerts");
    assert_eq!(r["Sns"]["Subject"], "s");
    assert_eq!(r["Sns"]["Message"], "line1\nline2");
    assert_eq!(r["Sns"]["Type"], "Notification");
}

#[test]
fn dynamodb_update_has_insert_modify_remove() {
    let e = make("dynamodb", "update", &[("table", "Orders")]);
    let records = e["Records"].as_array().unwrap();
    let names: Vec<&str> = records.iter().map(|r| r["eventName"].as_str().unwrap()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(records[0]["dynamodb"]["NewImage"]["Message"]["S"], "New item!");
    assert_eq!(records[0]["dynamodb"].get("OldImage"), None);
    assert_eq!(records[1]["dynamodb"]["OldImage"]["Message"]["S"], "New item!");
    assert_eq!(records[1]["dynamodb"]["SizeBytes"], 59);
    assert_eq!(records[2]["dynamodb"].get("NewImage"), None);
    assert_eq!(records[2]["dynamodb"]["SequenceNumber"], "4421584500000000017450439093");
    assert_eq!(
        records[2]["eventSourceARN"],
        "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2015-06-27T00:48:05.899"
    );
}

#[test]
fn scheduled_event() {
    let e = make("cloudwatch", "scheduled-event", &[("rule", "Nightly"), ("region", "eu-west-1")]);
    assert_eq!(e["detail-type"], "Scheduled Event");
    assert_eq!(e["source"], "aws.events");
    assert_eq!(e["region"], "eu-west-1");
    assert_eq!(e["resources"], json!(["arn:aws:events:eu-west-1:123456789012:rule/Nightly"]));
    assert_eq!(e["detail"], json!({}));
}

#[test]
fn eventbridge_event_takes_its_detail_as_json() {
    let e = make("eventbridge", "event", &[]);
    assert_eq!(e["version"], "0");
    assert_eq!(e["source"], "com.example.app");
    assert_eq!(e["detail-type"], "Example Event");
    assert_eq!(e["detail"], json!({}));
    let e =
        make("eventbridge", "event", &[("source", "shop"), ("detail-type", "OrderPlaced"), ("detail", r#"{"id": 7}"#)]);
    assert_eq!((e["source"].as_str(), e["detail-type"].as_str()), (Some("shop"), Some("OrderPlaced")));
    assert_eq!(e["detail"], json!({"id": 7}));
}

fn err(service: &str, event: &str, overrides: &[(&str, &str)]) -> String {
    let o: BTreeMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    generate(service, event, &o).unwrap_err().to_string()
}

#[test]
fn a_bad_detail_says_why() {
    assert!(err("eventbridge", "event", &[("detail", "{oops")]).contains("--detail `{oops` is not JSON"));
    assert!(err("eventbridge", "event", &[("detail", "[1]")]).contains("is not a JSON object"));
}

#[test]
fn unknown_names_list_what_exists_with_a_suggestion() {
    let e = err("s4", "put", &[]);
    assert!(e.starts_with("no sample events for service `s4` (did you mean `s3`?)"), "{e}");
    assert!(e.contains("services: apigateway, s3, sqs, sns, dynamodb, cloudwatch, eventbridge"), "{e}");
    let e = err("s3", "putt", &[]);
    assert_eq!(e, "service `s3` has no sample event `putt` (did you mean `put`?); its events: put, delete");
    let e = err("sqs", "receive-message", &[("--queue-nme", "x")]);
    assert!(e.starts_with("`sqs receive-message` takes no --queue-nme (did you mean --queue-name?)"), "{e}");
    assert!(e.contains("--partition, --region, --account-id, --queue-name, --body"), "{e}");
}

#[test]
fn the_catalog_lists_every_event_with_distinct_keys() {
    let names: Vec<String> = catalog().iter().map(|e| format!("{} {}", e.service, e.event)).collect();
    assert_eq!(
        names,
        [
            "apigateway aws-proxy",
            "apigateway http-api-proxy",
            "s3 put",
            "s3 delete",
            "sqs receive-message",
            "sns notification",
            "dynamodb update",
            "cloudwatch scheduled-event",
            "eventbridge event",
        ]
    );
    for spec in catalog() {
        let mut keys: Vec<&str> = spec.keys.iter().map(|k| k.name).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "{} {}", spec.service, spec.event);
        assert!(generate(spec.service, spec.event, &BTreeMap::new()).is_ok());
    }
}
