//! The Lambda Runtime API (2018-06-01), served on loopback to one function process: the
//! process asks `GET /runtime/invocation/next` (which blocks until lamb hands it an event, as
//! Lambda's does — no busy polling), then posts the result to `/response` or `/error`, or
//! `/init/error` when it cannot start. Real Runtime API clients (a Rust or Go custom runtime,
//! AWS's own runtime interface clients) talk to it unchanged.
//!
//! Every accepted connection gets `TCP_NODELAY`: without it each warm invoke waits ~40 ms for
//! Nagle's algorithm and the client's delayed ACK.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// Lambda's limit on a synchronous invocation's response.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// One invocation handed to the function process.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub body: Bytes,
    /// How long the function has once it takes the invocation (`Lambda-Runtime-Deadline-Ms`
    /// counts from then).
    pub timeout: std::time::Duration,
    pub function_arn: String,
    pub trace_id: String,
    /// JSON text, as the runtime passes it on to `context.client_context`.
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// What the function process answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Response(Bytes),
    /// `/error`: the body is the error document; the type comes from
    /// `Lambda-Runtime-Function-Error-Type` when the runtime sent one.
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
}

/// Where the server reports on one invocation: when the process took it, and its answer.
pub struct Tickets {
    pub taken: oneshot::Receiver<std::time::Instant>,
    pub reply: oneshot::Receiver<Reply>,
}

/// An invocation waiting to be taken, with where to report.
type Queued = (Invocation, oneshot::Sender<std::time::Instant>, oneshot::Sender<Reply>);

/// What the server shares with its handlers.
struct Shared {
    /// Invocations waiting for the process to ask for them.
    queue: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    /// Invocations handed out and not answered yet, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    /// `/init/error`: the process could not start.
    init_error: watch::Sender<Option<Reply>>,
    /// Set once the process first asks for work: its init is done.
    polled: watch::Sender<bool>,
}

/// A Runtime API server for one function process.
pub struct RuntimeApi {
    addr: SocketAddr,
    submit: mpsc::Sender<Queued>,
    init_error: watch::Receiver<Option<Reply>>,
    polled: watch::Receiver<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (submit, queue) = mpsc::channel(1);
        let (init_tx, init_error) = watch::channel(None);
        let (polled_tx, polled) = watch::channel(false);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_error: init_tx,
            polled: polled_tx,
        });
        let server = tokio::spawn(serve(listener, shared));
        Ok(RuntimeApi { addr, submit, init_error, polled, server })
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `inv` for the process.
    pub async fn submit(&self, inv: Invocation) -> Tickets {
        let (taken_tx, taken) = oneshot::channel();
        let (reply_tx, reply) = oneshot::channel();
        // The server lives as long as `self`: a send fails only while it shuts down, and then
        // the dropped senders make the receivers report that no answer will come.
        let _ = self.submit.send((inv, taken_tx, reply_tx)).await;
        Tickets { taken, reply }
    }

    /// Resolves once the process has asked for work the first time (its init is done).
    pub async fn polled(&self) {
        let mut rx = self.polled.clone();
        if rx.wait_for(|p| *p).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves with the process's `/init/error` report.
    pub async fn init_failed(&self) -> Reply {
        let mut rx = self.init_error.clone();
        let reported = rx.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
        match reported {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let io = hyper_util::rt::TokioIo::new(stream);
            // Errors here are the process closing its connection (it exited): nothing to do.
            let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
        });
    }
}

const PREFIX: &str = "/2018-06-01/runtime/";

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

fn accepted() -> Response<Full<Bytes>> {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#.into())
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(api_error(StatusCode::NOT_FOUND, "NotFound", &format!("no such Runtime API path: {path}")));
    };
    let method = req.method().clone();
    if method == Method::GET && route == "invocation/next" {
        return Ok(next(&shared).await);
    }
    if method != Method::POST {
        return Ok(api_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "use POST"));
    }
    let error_type =
        req.headers().get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "the body could not be read")),
    };
    if route == "init/error" {
        shared.init_error.send_replace(Some(Reply::Error { error_type, body }));
        return Ok(accepted());
    }
    let Some(rest) = route.strip_prefix("invocation/") else {
        return Ok(api_error(StatusCode::NOT_FOUND, "NotFound", &format!("no such Runtime API path: {path}")));
    };
    let (id, kind) = match rest.rsplit_once('/') {
        Some((id, kind @ ("response" | "error"))) => (id, kind),
        _ => return Ok(api_error(StatusCode::NOT_FOUND, "NotFound", &format!("no such Runtime API path: {path}"))),
    };
    let Some(reply_to) = shared.pending.lock().expect("pending map poisoned").remove(id) else {
        return Ok(api_error(StatusCode::BAD_REQUEST, "InvalidRequestID", "Invalid request ID"));
    };
    if kind == "response" && body.len() > MAX_RESPONSE_BYTES {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            body.len()
        );
        let doc = serde_json::json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message});
        let _ = reply_to.send(Reply::Error {
            error_type: Some("Function.ResponseSizeTooLarge".into()),
            body: Bytes::from(doc.to_string()),
        });
        return Ok(api_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", &message));
    }
    let reply = if kind == "response" { Reply::Response(body) } else { Reply::Error { error_type, body } };
    let _ = reply_to.send(reply);
    Ok(accepted())
}

/// `GET /invocation/next`: waits for an invocation, remembers where its answer goes, and hands
/// it out with Lambda's headers.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    shared.polled.send_replace(true);
    let (inv, taken, reply_to) = {
        let mut queue = shared.queue.lock().await;
        match queue.recv().await {
            Some(x) => x,
            // lamb is shutting this instance down.
            None => return api_error(StatusCode::GONE, "Shutdown", "the function instance is shutting down"),
        }
    };
    shared.pending.lock().expect("pending map poisoned").insert(inv.request_id.clone(), reply_to);
    let _ = taken.send(std::time::Instant::now());
    let deadline_ms = super::now_ms() + inv.timeout.as_millis() as u64;
    let mut r = Response::new(Full::new(inv.body));
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("Lambda-Runtime-Aws-Request-Id", &inv.request_id);
    set("Lambda-Runtime-Deadline-Ms", &deadline_ms.to_string());
    set("Lambda-Runtime-Invoked-Function-Arn", &inv.function_arn);
    set("Lambda-Runtime-Trace-Id", &inv.trace_id);
    if let Some(c) = &inv.client_context {
        set("Lambda-Runtime-Client-Context", c);
    }
    if let Some(c) = &inv.cognito_identity {
        set("Lambda-Runtime-Cognito-Identity", c);
    }
    set("Content-Type", "application/json");
    r
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// A blocking HTTP/1.1 exchange over one kept-alive connection, as a runtime client does.
    fn exchange(conn: &mut TcpStream, request: &str) -> (u16, HashMap<String, String>, String) {
        conn.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let code: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
        let len: usize = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        (code, headers, String::from_utf8(body).unwrap())
    }

    fn invocation(id: &str, body: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            body: Bytes::from(body.to_string()),
            timeout: std::time::Duration::from_secs(3),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:Fn".into(),
            trace_id: "Root=1-5e1b4151-5ac6c58f5b5daa6532e4f0ad;Parent=0;Sampled=0".into(),
            client_context: None,
            cognito_identity: Some(r#"{"cognitoIdentityId":"id"}"#.into()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn next_blocks_until_work_and_answers_reach_the_invoker() {
        let api = RuntimeApi::start().await.unwrap();
        let addr = api.address();
        let client = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(&addr).unwrap();
            let next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
            let (code, headers, body) = exchange(&mut conn, next);
            assert_eq!(code, 200);
            assert_eq!(headers["lambda-runtime-aws-request-id"], "r1");
            let deadline: u64 = headers["lambda-runtime-deadline-ms"].parse().unwrap();
            let now = crate::local::now_ms();
            assert!(deadline > now && deadline <= now + 3000, "3 s from now: {deadline} vs {now}");
            assert!(headers["lambda-runtime-invoked-function-arn"].ends_with(":function:Fn"));
            assert!(headers["lambda-runtime-trace-id"].starts_with("Root="));
            assert_eq!(headers["lambda-runtime-cognito-identity"], r#"{"cognitoIdentityId":"id"}"#);
            assert!(!headers.contains_key("lambda-runtime-client-context"));
            assert_eq!(body, r#"{"a":1}"#);
            let answer = "POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n\"done\"";
            let (code, _, body) = exchange(&mut conn, answer);
            assert_eq!((code, body.as_str()), (202, r#"{"status":"OK"}"#));
            // The same id again is refused.
            let (code, _, body) = exchange(&mut conn, answer);
            assert_eq!(code, 400, "{body}");
            assert!(body.contains("InvalidRequestID"));
            // An error for the second invocation, with its type.
            let (_, headers, _) = exchange(&mut conn, next);
            let id = headers["lambda-runtime-aws-request-id"].clone();
            let error = format!(
                "POST /2018-06-01/runtime/invocation/{id}/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Unhandled\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            assert_eq!(exchange(&mut conn, &error).0, 202);
        });
        // The client blocks in /next until this submit (which may hand the work out, on the
        // server's thread, before it returns: the clock is read before it).
        let asked = std::time::Instant::now();
        let tickets = api.submit(invocation("r1", r#"{"a":1}"#)).await;
        assert!(tickets.taken.await.unwrap() >= asked, "taken when handed out, not before");
        assert_eq!(tickets.reply.await.unwrap(), Reply::Response(Bytes::from_static(b"\"done\"")));
        let tickets = api.submit(invocation("r2", "{}")).await;
        assert_eq!(
            tickets.reply.await.unwrap(),
            Reply::Error { error_type: Some("Unhandled".into()), body: Bytes::from_static(b"{}") }
        );
        tokio::task::spawn_blocking(move || client.join().unwrap()).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn init_errors_and_oversized_responses_are_reported() {
        let api = RuntimeApi::start().await.unwrap();
        let addr = api.address();
        let client = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(&addr).unwrap();
            let (_, headers, _) =
                exchange(&mut conn, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n");
            let id = &headers["lambda-runtime-aws-request-id"];
            let big = "x".repeat(MAX_RESPONSE_BYTES + 1);
            let post = format!(
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{big}",
                big.len()
            );
            assert_eq!(exchange(&mut conn, &post).0, 413);
            let init = "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\nContent-Length: 2\r\n\r\n{}";
            assert_eq!(exchange(&mut conn, init).0, 202);
        });
        let reply = api.submit(invocation("big", "{}")).await.reply.await.unwrap();
        let Reply::Error { error_type, body } = reply else { panic!("{reply:?}") };
        assert_eq!(error_type.as_deref(), Some("Function.ResponseSizeTooLarge"));
        assert!(String::from_utf8_lossy(&body).contains("exceeded maximum allowed payload size"));
        let init = api.init_failed().await;
        assert_eq!(
            init,
            Reply::Error { error_type: Some("Runtime.ImportModuleError".into()), body: Bytes::from_static(b"{}") }
        );
        tokio::task::spawn_blocking(move || client.join().unwrap()).await.unwrap();
    }
}
