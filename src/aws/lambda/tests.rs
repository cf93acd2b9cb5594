//! Replay tests: exact HTTP exchanges for states the emulator cannot produce (InProgress,
//! Failed, throttling, conflicts).

use std::time::Duration;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;

use super::*;

fn req(method: &str, path: &str) -> http::Request<SdkBody> {
    http::Request::builder()
        .method(method)
        .uri(format!("https://lambda.us-east-1.amazonaws.com{path}"))
        .body(SdkBody::empty())
        .unwrap()
}

fn resp(status: u16, body: &str) -> http::Response<SdkBody> {
    http::Response::builder().status(status).body(SdkBody::from(body)).unwrap()
}

fn error(status: u16, kind: &str, message: &str) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("x-amzn-errortype", kind)
        .body(SdkBody::from(format!(r#"{{"Type":"User","message":"{message}"}}"#)))
        .unwrap()
}

fn config(status: &str, sha: &str) -> String {
    format!(
        r#"{{"FunctionName":"f","FunctionArn":"arn:aws:lambda:us-east-1:1:function:f","CodeSha256":"{sha}","State":"Active","LastUpdateStatus":"{status}","Layers":[{{"Arn":"arn:aws:lambda:us-east-1:1:layer:l:3"}}]}}"#
    )
}

const CONFIG: &str = "/2015-03-31/functions/f/configuration";
const CODE: &str = "/2015-03-31/functions/f/code";

fn api(events: Vec<ReplayEvent>) -> (LambdaApi, StaticReplayClient) {
    let http = StaticReplayClient::new(events);
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(crate::aws::retry_config())
        .http_client(http.clone())
        .build();
    let mut api = LambdaApi::new(aws_sdk_lambda::Client::from_conf(conf), None);
    api.poll = (Duration::from_millis(1), Duration::from_millis(2));
    (api, http)
}

fn paths(http: &StaticReplayClient) -> Vec<String> {
    http.actual_requests().map(|r| format!("{} {}", r.method(), r.uri().split(".com").nth(1).unwrap_or(""))).collect()
}

#[tokio::test]
async fn waits_through_in_progress_until_successful() {
    let (api, http) = api(vec![
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("InProgress", "old"))),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("InProgress", "old"))),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("Successful", "new"))),
    ]);
    let f = api.wait_updated("f", Duration::from_secs(5)).await.unwrap();
    assert_eq!(f.code_sha256, "new");
    assert_eq!(f.layers, ["arn:aws:lambda:us-east-1:1:layer:l:3"]);
    assert_eq!(paths(&http).len(), 3);
}

#[tokio::test]
async fn failed_update_reports_lambdas_reason() {
    let body = r#"{"FunctionName":"f","CodeSha256":"x","State":"Active","LastUpdateStatus":"Failed","LastUpdateStatusReason":"Unzipped size must be smaller than 262144000 bytes","LastUpdateStatusReasonCode":"InvalidCodeSize"}"#;
    let (api, _) = api(vec![ReplayEvent::new(req("GET", CONFIG), resp(200, body))]);
    let err = api.wait_updated("f", Duration::from_secs(5)).await.unwrap_err().to_string();
    assert!(err.contains("the update of function f failed in Lambda: Unzipped size must be smaller"), "{err}");
    assert!(err.contains("InvalidCodeSize"), "{err}");
}

#[tokio::test]
async fn waiting_is_bounded() {
    let events =
        (0..200).map(|_| ReplayEvent::new(req("GET", CONFIG), resp(200, &config("InProgress", "x")))).collect();
    let (api, _) = api(events);
    let err = api.wait_updated("f", Duration::from_millis(30)).await.unwrap_err();
    assert!(matches!(err, AwsError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("did not finish within"), "{err}");
}

#[tokio::test]
async fn throttling_is_retried_by_the_client() {
    let (api, http) = api(vec![
        ReplayEvent::new(req("GET", CONFIG), error(429, "TooManyRequestsException", "Rate exceeded")),
        ReplayEvent::new(req("GET", CONFIG), error(429, "TooManyRequestsException", "Rate exceeded")),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("Successful", "abc"))),
    ]);
    let f = api.get("f").await.unwrap().unwrap();
    assert_eq!(f.code_sha256, "abc");
    assert_eq!(paths(&http).len(), 3);
}

#[tokio::test]
async fn throttling_that_never_clears_gives_up_after_the_bounded_attempts() {
    let events = (0..10)
        .map(|_| ReplayEvent::new(req("GET", CONFIG), error(429, "TooManyRequestsException", "Rate exceeded")))
        .collect();
    let (api, http) = api(events);
    let err = api.get("f").await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    assert!(err.to_string().contains("throttling"), "{err}");
    assert_eq!(paths(&http).len(), crate::aws::MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn conflict_waits_for_the_function_then_retries_the_update() {
    let (api, http) = api(vec![
        ReplayEvent::new(req("PUT", CODE), error(409, "ResourceConflictException", "An update is in progress")),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("InProgress", "other"))),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("Successful", "other"))),
        ReplayEvent::new(req("PUT", CODE), resp(200, &config("InProgress", "new"))),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("Successful", "new"))),
    ]);
    let sha = api.update_code("f", &CodeSource::Zip(b"PK".to_vec())).await.unwrap();
    assert_eq!(sha, "new");
    assert_eq!(
        paths(&http),
        [
            format!("PUT {CODE}"),
            format!("GET {CONFIG}"),
            format!("GET {CONFIG}"),
            format!("PUT {CODE}"),
            format!("GET {CONFIG}")
        ]
    );
}

#[tokio::test]
async fn an_update_lambda_answers_as_done_is_not_polled() {
    let (done, http) = api(vec![ReplayEvent::new(req("PUT", CODE), resp(200, &config("Successful", "new")))]);
    let sha = done.update_code("f", &CodeSource::Zip(b"PK".to_vec())).await.unwrap();
    assert_eq!(sha, "new");
    assert_eq!(paths(&http), [format!("PUT {CODE}")], "one round trip");
    // A function still Pending is polled even when its last update says Successful.
    let pending = config("Successful", "new").replace("\"State\":\"Active\"", "\"State\":\"Pending\"");
    let (starting, http) = api(vec![
        ReplayEvent::new(req("PUT", CODE), resp(200, &pending)),
        ReplayEvent::new(req("GET", CONFIG), resp(200, &config("Successful", "new"))),
    ]);
    assert_eq!(starting.update_code("f", &CodeSource::Zip(b"PK".to_vec())).await.unwrap(), "new");
    assert_eq!(paths(&http).len(), 2);
}

#[tokio::test]
async fn missing_function_is_none_not_an_error() {
    let (api, _) = api(vec![ReplayEvent::new(
        req("GET", CONFIG),
        error(404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:1:function:f"),
    )]);
    assert_eq!(api.get("f").await.unwrap(), None);
}

#[tokio::test]
async fn expired_credentials_are_one_clear_error() {
    let (api, http) = api(vec![ReplayEvent::new(
        req("GET", CONFIG),
        error(403, "ExpiredTokenException", "The security token included in the request is expired"),
    )]);
    let err = api.get("f").await.unwrap_err();
    assert!(matches!(err, AwsError::Credentials { .. }), "{err}");
    assert!(err.to_string().contains("aws sso login"), "{err}");
    assert_eq!(paths(&http).len(), 1, "no retry storm on bad credentials");
}

#[test]
fn layer_base_strips_the_version() {
    assert_eq!(layer_base("arn:aws:lambda:us-east-1:1:layer:shared:12"), "arn:aws:lambda:us-east-1:1:layer:shared");
    assert_eq!(layer_base("arn:aws:lambda:us-east-1:1:layer:shared"), "arn:aws:lambda:us-east-1:1:layer:shared");
}

const INVOKE: &str = "/2015-03-31/functions/f/invocations";

#[tokio::test]
async fn invoke_returns_the_answer_and_the_decoded_log_tail() {
    use base64::Engine as _;
    let tail = base64::engine::general_purpose::STANDARD.encode("START RequestId: 1\nboom\nEND RequestId: 1\n");
    let answer = http::Response::builder()
        .status(200)
        .header("X-Amz-Function-Error", "Unhandled")
        .header("X-Amz-Log-Result", tail)
        .body(SdkBody::from(r#"{"errorMessage":"boom"}"#))
        .unwrap();
    let (api, http) = api(vec![ReplayEvent::new(req("POST", INVOKE), answer)]);
    let out = api.invoke("f", b"{}".to_vec()).await.unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(out.payload, r#"{"errorMessage":"boom"}"#);
    assert_eq!(out.log_tail.as_deref(), Some("START RequestId: 1\nboom\nEND RequestId: 1\n"));
    let sent = http.actual_requests().next().unwrap();
    assert_eq!(sent.headers().get("x-amz-log-type"), Some("Tail"));
}

#[tokio::test]
async fn invoke_is_never_sent_twice() {
    // A 503 after the function may have run: sending it again would run it again.
    let (api, http) = api(vec![
        ReplayEvent::new(req("POST", INVOKE), error(503, "ServiceException", "try later")),
        ReplayEvent::new(req("POST", INVOKE), resp(200, "{}")),
    ]);
    let err = api.invoke("f", b"{}".to_vec()).await.unwrap_err();
    assert_eq!(err.code(), Some("ServiceException"), "{err}");
    assert_eq!(paths(&http), ["POST /2015-03-31/functions/f/invocations"]);
}
