//! `lamb local start-lambda`: Lambda's `Invoke` API on loopback, so the AWS CLI
//! (`aws lambda invoke --endpoint-url`) and an SDK client in a test suite call local functions
//! by logical id, `FunctionName` or ARN: `RequestResponse`, `Event` (202, run in the
//! background), `DryRun` (204), `X-Amz-Function-Error` on failure, and the log tail with
//! `X-Amz-Log-Type: Tail`.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::functions::Functions;
use super::http::{Body, json, response};
use super::pool::Caller;
use super::reload::Report;

/// Lambda's limit on a synchronous invocation's payload.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// How much of the log `Tail` returns (Lambda: the last 4 KB).
const TAIL_BYTES: usize = 4096;

/// An AWS error in the shape the SDKs read: the code in `x-amzn-errortype`, the text in
/// `message`.
fn aws_error(status: u16, code: &str, message: &str) -> Response<Body> {
    let kind = if status < 500 { "User" } else { "Service" };
    json(
        status,
        &[("x-amzn-errortype".into(), code.into())],
        &serde_json::json!({"Type": kind, "message": message, "Message": message}),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one request to the Invoke API.
pub async fn handle(
    req: Request<Incoming>,
    functions: Arc<Functions>,
    region: String,
    report: Report,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let name = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(percent_decode);
    let Some(name) = name.filter(|_| req.method() == Method::POST) else {
        return aws_error(
            404,
            "ResourceNotFoundException",
            &format!("no such API: {} {path}; lamb serves POST /2015-03-31/functions/NAME/invocations", req.method()),
        );
    };
    let header = |k: &str| req.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let invocation_type = header("x-amz-invocation-type").unwrap_or_else(|| "RequestResponse".into());
    let tail = header("x-amz-log-type").is_some_and(|t| t.eq_ignore_ascii_case("Tail"));
    let client_context = match header("x-amz-client-context") {
        Some(c) => match base64::engine::general_purpose::STANDARD.decode(c.trim()) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => {
                return aws_error(
                    400,
                    "InvalidRequestContentException",
                    "X-Amz-Client-Context must be base64-encoded JSON",
                );
            }
        },
        None => None,
    };
    let Some(id) = functions.find(&name) else {
        let known: Vec<String> = functions.project().functions.iter().map(|f| f.res.logical_id.clone()).collect();
        return aws_error(
            404,
            "ResourceNotFoundException",
            &format!(
                "Function not found: arn:aws:lambda:{region}:123456789012:function:{name} (this project has {})",
                known.join(", ")
            ),
        );
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return aws_error(
                400,
                "InvalidRequestContentException",
                &format!("the request body could not be read: {e}"),
            );
        }
    };
    if body.len() > MAX_PAYLOAD {
        return aws_error(
            413,
            "RequestTooLargeException",
            &format!("Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"),
        );
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { body };
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
        return aws_error(
            400,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {e}"),
        );
    }
    let pool = match functions.pool(&id) {
        Ok(p) => p,
        Err(why) => return aws_error(500, "ServiceException", &format!("function {id} cannot run locally: {why}")),
    };
    let caller = Caller { client_context, ..Default::default() };
    match invocation_type.as_str() {
        "DryRun" => return response(204, &[], Bytes::new()),
        "Event" => {
            tokio::spawn(async move {
                let start = |rid: &str| report(&format!("START RequestId: {rid} Version: $LATEST"));
                if let Ok(invoked) = pool.invoke(body, &caller, start).await {
                    report(&invoked.report(pool.launch().memory_mb));
                }
            });
            return response(202, &[], Bytes::new());
        }
        "RequestResponse" => {}
        other => {
            return aws_error(
                400,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type `{other}` is not RequestResponse, Event or DryRun"),
            );
        }
    }
    let started_line = std::sync::Mutex::new(String::new());
    let start = |rid: &str| {
        let line = format!("START RequestId: {rid} Version: $LATEST");
        report(&line);
        *started_line.lock().expect("start line poisoned") = line;
    };
    let invoked = match pool.invoke(body, &caller, start).await {
        Ok(i) => i,
        Err(e) => return aws_error(500, "ServiceException", &format!("function {id} could not start: {e}")),
    };
    let report_lines = invoked.report(pool.launch().memory_mb);
    report(&report_lines);
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Amz-Executed-Version".into(), "$LATEST".into()),
        ("x-amzn-RequestId".into(), invoked.request_id.clone()),
    ];
    if invoked.outcome.is_error() {
        headers.push(("X-Amz-Function-Error".into(), "Unhandled".into()));
    }
    if tail {
        let log = format!("{}\n{}{}\n", started_line.lock().expect("start line poisoned"), invoked.log, report_lines);
        let cut = log.len().saturating_sub(TAIL_BYTES);
        let cut = (cut..log.len()).find(|i| log.is_char_boundary(*i)).unwrap_or(log.len());
        headers.push(("X-Amz-Log-Result".into(), base64::engine::general_purpose::STANDARD.encode(&log[cut..])));
    }
    response(200, &headers, invoked.outcome.body().clone())
}

/// Serves the Invoke API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, functions: Arc<Functions>, region: String, report: Report) {
    let handler = Arc::new(move |req: Request<Incoming>, _peer: SocketAddr| {
        let (functions, region, report) = (functions.clone(), region.clone(), report.clone());
        async move { handle(req, functions, region, report).await }
    });
    super::http::serve(listener, handler).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_of_names_and_arns() {
        assert_eq!(super::percent_decode("Child%2FFn"), "Child/Fn");
        assert_eq!(super::percent_decode("arn%3Aaws%3Alambda"), "arn:aws:lambda");
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::percent_decode("a%zzb"), "a%zzb");
    }
}
