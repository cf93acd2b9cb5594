//! Sample events for `lamb local generate-event SERVICE EVENT [--key value ...]`: the ones SAM
//! ships (`sam local generate-event`) for the services lamb users invoke most, each with the
//! keys SAM lets one override and SAM's defaults, plus `eventbridge event`, a generic EventBridge
//! event (SAM has none by that name; it is shaped like `cloudwatch scheduled-event`, with the
//! `version` real events carry and `detail-type`, `source` and `detail` to fill in).
//!
//! Events are built as JSON values, never by pasting text into a template, so any value
//! (quotes, newlines) gives valid JSON. SAM's quirks that lamb leaves out: an SNS subscription
//! ARN without the account id, a `--path` given with its leading slash turning into `//path`,
//! and an S3 key escaped with `%20` where S3 itself sends `+` for a space (S3 notifications
//! form-encode keys; `unquote_plus` reads both).

use std::collections::BTreeMap;

use base64::Engine as _;
use md5::Digest as _;
use serde_json::{Value, json};

use crate::project::closest;

/// One key an event takes (`--bucket`), its default, and what it sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// One sample event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSpec {
    pub service: &'static str,
    pub event: &'static str,
    pub help: &'static str,
    pub keys: &'static [Key],
    build: fn(&Vars) -> Result<Value, EventError>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum EventError {
    #[error("no sample events for service `{service}`{hint}; services: {known}")]
    UnknownService { service: String, hint: String, known: String },
    #[error("service `{service}` has no sample event `{event}`{hint}; its events: {known}")]
    UnknownEvent { service: String, event: String, hint: String, known: String },
    #[error("`{service} {event}` takes no --{key}{hint}; it takes {known}")]
    UnknownKey { service: String, event: String, key: String, hint: String, known: String },
    #[error("--{key} `{value}` {problem}")]
    BadValue { key: String, value: String, problem: String },
}

const ACCOUNT: Key = Key { name: "account-id", default: "123456789012", help: "the AWS account id" };
const REGION: Key = Key { name: "region", default: "us-east-1", help: "the AWS region" };
const PARTITION: Key = Key { name: "partition", default: "aws", help: "the AWS partition (aws, aws-cn, aws-us-gov)" };
const DNS_SUFFIX: Key = Key { name: "dns-suffix", default: "us-east-1.amazonaws.com", help: "the API's domain suffix" };
const API_BODY: Key =
    Key { name: "body", default: r#"{"test":"body"}"#, help: "the request body (sent base64-encoded, as SAM does)" };
const METHOD: Key = Key { name: "method", default: "POST", help: "the HTTP method" };
const PATH: Key = Key { name: "path", default: "path/to/resource", help: "the request path" };
const BUCKET: Key = Key { name: "bucket", default: "example-bucket", help: "the bucket name" };
const OBJECT_KEY: Key = Key { name: "key", default: "test/key", help: "the object key (form-encoded in the event)" };

const EVENTS: &[EventSpec] = &[
    EventSpec {
        service: "apigateway",
        event: "aws-proxy",
        help: "a REST API proxy request (payload 1.0)",
        keys: &[
            API_BODY,
            Key { name: "stage", default: "prod", help: "the stage" },
            METHOD,
            Key { name: "resource", default: "/{proxy+}", help: "the resource path template" },
            PATH,
            ACCOUNT,
            DNS_SUFFIX,
        ],
        build: aws_proxy,
    },
    EventSpec {
        service: "apigateway",
        event: "http-api-proxy",
        help: "an HTTP API proxy request (payload 2.0)",
        keys: &[
            API_BODY,
            Key { name: "stage", default: "$default", help: "the stage" },
            METHOD,
            PATH,
            ACCOUNT,
            DNS_SUFFIX,
        ],
        build: http_api_proxy,
    },
    EventSpec {
        service: "s3",
        event: "put",
        help: "an object created by a PUT",
        keys: &[REGION, PARTITION, BUCKET, OBJECT_KEY],
        build: s3_put,
    },
    EventSpec {
        service: "s3",
        event: "delete",
        help: "an object deleted",
        keys: &[REGION, PARTITION, BUCKET, OBJECT_KEY],
        build: s3_delete,
    },
    EventSpec {
        service: "sqs",
        event: "receive-message",
        help: "one message received from a queue",
        keys: &[
            PARTITION,
            REGION,
            ACCOUNT,
            Key { name: "queue-name", default: "MyQueue", help: "the queue name" },
            Key { name: "body", default: "Hello from SQS!", help: "the message body (md5OfBody follows it)" },
        ],
        build: sqs,
    },
    EventSpec {
        service: "sns",
        event: "notification",
        help: "a message published to a topic",
        keys: &[
            ACCOUNT,
            PARTITION,
            REGION,
            Key { name: "topic", default: "ExampleTopic", help: "the topic name" },
            Key { name: "subject", default: "example subject", help: "the message subject" },
            Key { name: "message", default: "example message", help: "the message" },
        ],
        build: sns,
    },
    EventSpec {
        service: "dynamodb",
        event: "update",
        help: "a stream batch: an insert, a modify and a remove",
        keys: &[
            ACCOUNT,
            PARTITION,
            REGION,
            Key { name: "table", default: "ExampleTableWithStream", help: "the table name" },
        ],
        build: dynamodb_update,
    },
    EventSpec {
        service: "cloudwatch",
        event: "scheduled-event",
        help: "a scheduled rule firing",
        keys: &[ACCOUNT, PARTITION, REGION, Key { name: "rule", default: "ExampleRule", help: "the rule name" }],
        build: scheduled_event,
    },
    EventSpec {
        service: "eventbridge",
        event: "event",
        help: "an event delivered by an EventBridge rule",
        keys: &[
            ACCOUNT,
            REGION,
            Key { name: "source", default: "com.example.app", help: "the event's source" },
            Key { name: "detail-type", default: "Example Event", help: "the event's detail-type" },
            Key { name: "detail", default: "{}", help: "the event's detail, as JSON" },
        ],
        build: eventbridge_event,
    },
];

/// Every sample event, grouped by service in a stable order (for help and errors).
pub(crate) fn catalog() -> &'static [EventSpec] {
    EVENTS
}

/// The `event` of `service` with `overrides` (keys as in `--account-id` or `account_id`, with or
/// without the dashes) over the defaults.
pub(crate) fn generate(service: &str, event: &str, overrides: &BTreeMap<String, String>) -> Result<Value, EventError> {
    let spec = find(service, event)?;
    let mut values: BTreeMap<&'static str, String> =
        spec.keys.iter().map(|k| (k.name, k.default.to_string())).collect();
    for (raw, value) in overrides {
        let key = raw.trim_start_matches('-').replace('_', "-").to_ascii_lowercase();
        match spec.keys.iter().find(|k| k.name == key) {
            Some(k) => {
                values.insert(k.name, value.clone());
            }
            None => {
                let names = spec.keys.iter().map(|k| k.name);
                let hint = closest(&key, names).map(|c| format!(" (did you mean --{c}?)")).unwrap_or_default();
                let known: Vec<String> = spec.keys.iter().map(|k| format!("--{}", k.name)).collect();
                return Err(EventError::UnknownKey {
                    service: spec.service.into(),
                    event: spec.event.into(),
                    key,
                    hint,
                    known: known.join(", "),
                });
            }
        }
    }
    (spec.build)(&Vars(values))
}

fn find(service: &str, event: &str) -> Result<&'static EventSpec, EventError> {
    let mut services: Vec<&str> = EVENTS.iter().map(|e| e.service).collect();
    services.dedup();
    if !services.contains(&service) {
        let hint =
            closest(service, services.iter().copied()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        return Err(EventError::UnknownService { service: service.into(), hint, known: services.join(", ") });
    }
    let events: Vec<&EventSpec> = EVENTS.iter().filter(|e| e.service == service).collect();
    if let Some(found) = events.iter().find(|e| e.event == event) {
        return Ok(found);
    }
    let names: Vec<&str> = events.iter().map(|e| e.event).collect();
    let hint = closest(event, names.iter().copied()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
    Err(EventError::UnknownEvent { service: service.into(), event: event.into(), hint, known: names.join(", ") })
}

/// The values of one event's keys, defaults filled in.
struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
}

fn base64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `/path` from a path given with or without its leading slash.
fn slash_path(p: &str) -> String {
    format!("/{}", p.trim_start_matches('/'))
}

fn aws_proxy(v: &Vars) -> Result<Value, EventError> {
    let path = slash_path(v.get("path"));
    let headers = [
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8".to_string()),
        ("Accept-Encoding", "gzip, deflate, sdch".into()),
        ("Accept-Language", "en-US,en;q=0.8".into()),
        ("Cache-Control", "max-age=0".into()),
        ("CloudFront-Forwarded-Proto", "https".into()),
        ("CloudFront-Is-Desktop-Viewer", "true".into()),
        ("CloudFront-Is-Mobile-Viewer", "false".into()),
        ("CloudFront-Is-SmartTV-Viewer", "false".into()),
        ("CloudFront-Is-Tablet-Viewer", "false".into()),
        ("CloudFront-Viewer-Country", "US".into()),
        ("Host", format!("1234567890.execute-api.{}", v.get("dns-suffix"))),
        ("Upgrade-Insecure-Requests", "1".into()),
        ("User-Agent", "Custom User Agent String".into()),
        ("Via", "1.1 08f323deadbeefa7af34d5feb414ce27.cloudfront.net (CloudFront)".into()),
        ("X-Amz-Cf-Id", "cDehVQoZnx43VYQb9j2-nvCh-9z396Uhbp027Y2JvkCPNLmGJHqlaA==".into()),
        ("X-Forwarded-For", "127.0.0.1, 127.0.0.2".into()),
        ("X-Forwarded-Port", "443".into()),
        ("X-Forwarded-Proto", "https".into()),
    ];
    let single: serde_json::Map<String, Value> = headers.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let multi: serde_json::Map<String, Value> = headers.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
    Ok(json!({
        "body": base64(v.get("body")),
        "resource": v.get("resource"),
        "path": path,
        "httpMethod": v.get("method"),
        "isBase64Encoded": true,
        "queryStringParameters": {"foo": "bar"},
        "multiValueQueryStringParameters": {"foo": ["bar"]},
        "pathParameters": {"proxy": path},
        "stageVariables": {"baz": "qux"},
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": {
            "accountId": v.get("account-id"),
            "resourceId": "123456",
            "stage": v.get("stage"),
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "09/Apr/2015:12:34:56 +0000",
            "requestTimeEpoch": 1_428_582_896_000_u64,
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "accessKey": null,
                "sourceIp": "127.0.0.1",
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": "Custom User Agent String",
                "user": null
            },
            "path": format!("/{}{}", v.get("stage"), path),
            "resourcePath": v.get("resource"),
            "httpMethod": v.get("method"),
            "apiId": "1234567890",
            "protocol": "HTTP/1.1"
        }
    }))
}

fn http_api_proxy(v: &Vars) -> Result<Value, EventError> {
    let path = slash_path(v.get("path"));
    Ok(json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
        "cookies": ["cookie1", "cookie2"],
        "headers": {"Header1": "value1", "Header2": "value1,value2"},
        "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
        "requestContext": {
            "accountId": v.get("account-id"),
            "apiId": "api-id",
            "authentication": {
                "clientCert": {
                    "clientCertPem": "CERT_CONTENT",
                    "subjectDN": "www.example.com",
                    "issuerDN": "Example issuer",
                    "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
                    "validity": {"notBefore": "May 28 12:30:02 2019 GMT", "notAfter": "Aug  5 09:36:04 2021 GMT"}
                }
            },
            "authorizer": {
                "jwt": {"claims": {"claim1": "value1", "claim2": "value2"}, "scopes": ["scope1", "scope2"]}
            },
            "domainName": format!("id.execute-api.{}", v.get("dns-suffix")),
            "domainPrefix": "id",
            "http": {
                "method": v.get("method"),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.168.0.1/32",
                "userAgent": "agent"
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": v.get("stage"),
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1_583_348_638_390_u64
        },
        "body": base64(v.get("body")),
        "pathParameters": {"parameter1": "value1"},
        "isBase64Encoded": true,
        "stageVariables": {"stageVariable1": "value1", "stageVariable2": "value2"}
    }))
}

/// An S3 notification record; `object` is what the event says of the object.
fn s3_record(v: &Vars, event_name: &str, object: Value) -> Value {
    json!({"Records": [{
        "eventVersion": "2.0",
        "eventSource": "aws:s3",
        "awsRegion": v.get("region"),
        "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "EXAMPLE123456789",
            "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": v.get("bucket"),
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": format!("arn:{}:s3:::{}", v.get("partition"), v.get("bucket"))
            },
            "object": object
        }
    }]})
}

fn s3_put(v: &Vars) -> Result<Value, EventError> {
    let object = json!({
        "key": form_encode(v.get("key")),
        "size": 1024,
        "eTag": "0123456789abcdef0123456789abcdef",
        "sequencer": "0A1B2C3D4E5F678901"
    });
    Ok(s3_record(v, "ObjectCreated:Put", object))
}

fn s3_delete(v: &Vars) -> Result<Value, EventError> {
    let object = json!({"key": form_encode(v.get("key")), "sequencer": "0A1B2C3D4E5F678901"});
    Ok(s3_record(v, "ObjectRemoved:Delete", object))
}

/// An object key as S3 notifications carry it: form-encoded (space as `+`), slashes kept.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn sqs(v: &Vars) -> Result<Value, EventError> {
    let body = v.get("body");
    let md5: String = md5::Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    Ok(json!({"Records": [{
        "messageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
        "receiptHandle": "MessageReceiptHandle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1523232000000",
            "SenderId": v.get("account-id"),
            "ApproximateFirstReceiveTimestamp": "1523232000001"
        },
        "messageAttributes": {},
        "md5OfBody": md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:{}:sqs:{}:{}:{}", v.get("partition"), v.get("region"), v.get("account-id"), v.get("queue-name")),
        "awsRegion": v.get("region")
    }]}))
}

fn sns(v: &Vars) -> Result<Value, EventError> {
    let topic_arn =
        format!("arn:{}:sns:{}:{}:{}", v.get("partition"), v.get("region"), v.get("account-id"), v.get("topic"));
    Ok(json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": topic_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": topic_arn,
            "Subject": v.get("subject"),
            "Message": v.get("message"),
            "Timestamp": "1970-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "EXAMPLE",
            "UnsubscribeUrl": "EXAMPLE",
            "MessageAttributes": {
                "Test": {"Type": "String", "Value": "TestString"},
                "TestBinary": {"Type": "Binary", "Value": "TestBinary"}
            }
        }
    }]}))
}

fn dynamodb_update(v: &Vars) -> Result<Value, EventError> {
    let arn = format!(
        "arn:{}:dynamodb:{}:{}:table/{}/stream/2015-06-27T00:48:05.899",
        v.get("partition"),
        v.get("region"),
        v.get("account-id"),
        v.get("table")
    );
    let item = |message: &str| json!({"Message": {"S": message}, "Id": {"N": "101"}});
    let record = |id: &str, name: &str, new: Option<Value>, old: Option<Value>, seq: &str, size: u32| {
        let mut stream = serde_json::Map::new();
        stream.insert("Keys".into(), json!({"Id": {"N": "101"}}));
        if let Some(new) = new {
            stream.insert("NewImage".into(), new);
        }
        if let Some(old) = old {
            stream.insert("OldImage".into(), old);
        }
        stream.insert("ApproximateCreationDateTime".into(), json!(1_428_537_600));
        stream.insert("SequenceNumber".into(), json!(seq));
        stream.insert("SizeBytes".into(), json!(size));
        stream.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
        json!({
            "eventID": id,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": v.get("region"),
            "dynamodb": stream,
            "eventSourceARN": arn
        })
    };
    Ok(json!({"Records": [
        record("c4ca4238a0b923820dcc509a6f75849b", "INSERT", Some(item("New item!")), None, "4421584500000000017450439091", 26),
        record(
            "c81e728d9d4c2f636f067f89cc14862c",
            "MODIFY",
            Some(item("This item has changed")),
            Some(item("New item!")),
            "4421584500000000017450439092",
            59
        ),
        record("eccbc87e4b5ce2fe28308fd9f2a7baf3", "REMOVE", None, Some(item("This item has changed")), "4421584500000000017450439093", 38),
    ]}))
}

fn scheduled_event(v: &Vars) -> Result<Value, EventError> {
    Ok(json!({
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": v.get("account-id"),
        "time": "1970-01-01T00:00:00Z",
        "region": v.get("region"),
        "resources": [format!("arn:{}:events:{}:{}:rule/{}", v.get("partition"), v.get("region"), v.get("account-id"), v.get("rule"))],
        "detail": {}
    }))
}

fn eventbridge_event(v: &Vars) -> Result<Value, EventError> {
    let raw = v.get("detail");
    let detail: Value = serde_json::from_str(raw).map_err(|e| EventError::BadValue {
        key: "detail".into(),
        value: raw.into(),
        problem: format!("is not JSON ({e}); pass an object such as '{{\"orderId\": 1}}'"),
    })?;
    if !detail.is_object() {
        return Err(EventError::BadValue {
            key: "detail".into(),
            value: raw.into(),
            problem: "is not a JSON object; EventBridge's detail is always one".into(),
        });
    }
    Ok(json!({
        "version": "0",
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "detail-type": v.get("detail-type"),
        "source": v.get("source"),
        "account": v.get("account-id"),
        "time": "1970-01-01T00:00:00Z",
        "region": v.get("region"),
        "resources": [],
        "detail": detail
    }))
}

#[cfg(test)]
mod tests;
