//! `lamb local start-api`: the template's API Gateway routes and function URLs over HTTP on
//! loopback, each request driven through [`super::apigw`] (preflight, route, authorizer, event,
//! response, CORS) to a warm function process. Files of `--static-dir` answer what no route
//! takes. A template change swaps the routes in place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::apigw::authorizer::{self, Decision};
use super::apigw::cors;
use super::apigw::event::{Stamp, build_event};
use super::apigw::matcher::Matcher;
use super::apigw::request::HttpRequest;
use super::apigw::response::{self, HttpResponse, integration_error, parse_response};
use super::apigw::routes::{Authorizer, Route, RouteTable};
use super::env::LOCAL_ACCOUNT;
use super::functions::Functions;
use super::http::{Body, response as http_response};
use super::instance::Outcome;
use super::pool::Caller;
use super::reload::Report;

/// What the API server shares with its requests.
pub struct Api {
    matcher: RwLock<Arc<Matcher>>,
    functions: Arc<Functions>,
    static_dir: Option<PathBuf>,
    region: String,
    report: Report,
}

impl Api {
    pub fn new(
        table: RouteTable,
        functions: Arc<Functions>,
        static_dir: Option<PathBuf>,
        region: String,
        report: Report,
    ) -> Api {
        Api { matcher: RwLock::new(Arc::new(Matcher::new(table.routes))), functions, static_dir, region, report }
    }

    /// New routes (a template change).
    pub fn set_routes(&self, table: RouteTable) {
        *self.matcher.write().expect("routes poisoned") = Arc::new(Matcher::new(table.routes));
    }

    fn matcher(&self) -> Arc<Matcher> {
        self.matcher.read().expect("routes poisoned").clone()
    }
}

fn to_hyper(r: HttpResponse) -> Response<Body> {
    http_response(r.status, &r.headers, r.body)
}

/// Why a function call gave no response.
struct Failed {
    /// For the server's log.
    log: String,
    /// The function's own `errorMessage`, when it reported one.
    error_message: Option<String>,
}

/// Runs function `id` with `event`: its response, or why there is none.
async fn call(api: &Api, id: &str, event: &serde_json::Value, caller: &Caller) -> Result<Bytes, Failed> {
    let failed = |log: String| Failed { log, error_message: None };
    let pool = api.functions.pool(id).map_err(|why| failed(format!("{id} cannot run: {why}")))?;
    let report = api.report.clone();
    let start = |rid: &str| report(&format!("START RequestId: {rid} Version: $LATEST"));
    let invoked =
        pool.invoke(Bytes::from(event.to_string()), caller, start).await.map_err(|e| failed(e.to_string()))?;
    (api.report)(&invoked.report(pool.launch().memory_mb));
    match invoked.outcome {
        Outcome::Response(body) => Ok(body),
        Outcome::Error { error_type, body } => Err(Failed {
            log: format!("{id} failed ({error_type}): {}", String::from_utf8_lossy(&body)),
            error_message: serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errorMessage"].as_str().map(str::to_string)),
        }),
    }
}

/// Runs `auth` for a request to `route`: `Ok` with the decision to pass on, or the answer that
/// ends the request (401, 403, 500).
async fn authorize(
    api: &Api,
    auth: &Authorizer,
    route: &Route,
    params: &indexmap::IndexMap<String, String>,
    req: &HttpRequest,
    stamp: &Stamp<'_>,
) -> Result<Decision, HttpResponse> {
    let event = authorizer::request(auth, route, params, req, stamp)?;
    let arn = authorizer::method_arn(route, req, stamp);
    match call(api, &auth.function, &event, &Caller::default()).await {
        Ok(output) => match authorizer::decide(auth, &output, &arn) {
            Ok(Decision::Deny { explicit }) => Err(authorizer::denied(route.kind, explicit)),
            Ok(allow) => Ok(allow),
            Err(why) => {
                (api.report)(&format!("error: authorizer {}: {why}", auth.name));
                Err(authorizer::failed(route.kind, None))
            }
        },
        Err(failed) => {
            (api.report)(&format!("error: authorizer {}: {}", auth.name, failed.log));
            Err(authorizer::failed(route.kind, failed.error_message.as_deref()))
        }
    }
}

/// A file of the static directory for `path`, when one matches.
fn static_file(dir: &std::path::Path, path: &str) -> Option<HttpResponse> {
    let rel = super::apigw::request::percent_decode(path.trim_start_matches('/'));
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let mut file = dir.join(&rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    let body = std::fs::read(&file).ok()?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let content_type = match ext {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some(HttpResponse { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body })
}

/// Answers one HTTP request.
pub async fn handle(req: Request<Incoming>, peer: SocketAddr, api: Arc<Api>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let protocol = match req.version() {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let host = req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return to_hyper(response::message(400, &format!("the request body could not be read: {e}"))),
    };
    let http = HttpRequest {
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        body,
        source_ip: peer.ip().to_string(),
        host,
        protocol: protocol.into(),
    };
    let answer = answer(&api, &http).await;
    (api.report)(&format!(
        "{} {method} {path} → {} in {:.1} ms",
        peer.ip(),
        answer.status,
        started.elapsed().as_secs_f64() * 1000.0
    ));
    to_hyper(answer)
}

async fn answer(api: &Api, req: &HttpRequest) -> HttpResponse {
    let matcher = api.matcher();
    let request_id = super::request_id();
    let stamp =
        Stamp { now_ms: super::now_ms(), request_id: &request_id, account_id: LOCAL_ACCOUNT, region: &api.region };
    if let Some(pre) = cors::preflight(&matcher, req) {
        if let Some(auth) = pre.authorizer
            && let Err(denied) = authorize(api, auth, pre.route, &Default::default(), req, &stamp).await
        {
            return denied;
        }
        return pre.response;
    }
    let Some(found) = matcher.find(&req.method, &req.path) else {
        if let Some(dir) = &api.static_dir
            && matches!(req.method.as_str(), "GET" | "HEAD")
            && let Some(file) = static_file(dir, &req.path)
        {
            return file;
        }
        return matcher.no_match();
    };
    let route = found.route;
    let decision = match &route.authorizer {
        Some(auth) => match authorize(api, auth, route, &found.params, req, &stamp).await {
            Ok(d) => Some(d),
            Err(answer) => return answer,
        },
        None => None,
    };
    let mut event = build_event(route, &found.params, req, &stamp);
    if let Some(d) = &decision {
        authorizer::attach(&mut event, d);
    }
    let mut answer = match call(api, &route.function, &event, &Caller::default()).await {
        Ok(output) => match parse_response(route, req, &output) {
            Ok(r) => r,
            Err(why) => {
                (api.report)(&format!("error: {}: invalid response for {}: {why}", route.function, route.route_key()));
                integration_error(route.kind)
            }
        },
        Err(failed) => {
            (api.report)(&format!("error: {}", failed.log));
            integration_error(route.kind)
        }
    };
    cors::apply(route, req, &mut answer);
    answer
}

/// Serves `api` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) {
    let handler = Arc::new(move |req: Request<Incoming>, peer: SocketAddr| {
        let api = api.clone();
        async move { handle(req, peer, api).await }
    });
    super::http::serve(listener, handler).await;
}
