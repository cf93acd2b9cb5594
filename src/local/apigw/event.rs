//! The event a function behind API Gateway receives: payload 1.0 (REST APIs, HTTP APIs with
//! `PayloadFormatVersion: "1.0"`) and 2.0 (HTTP APIs, function URLs), shaped as SAM builds them
//! except where SAM differs from API Gateway itself. There lamb follows API Gateway:
//!
//! - `requestTimeEpoch` / `timeEpoch` in milliseconds and a request id per request (SAM fixes
//!   both once per process in places, and used seconds);
//! - the caller's real User-Agent in `identity.userAgent` and `http.userAgent` (SAM: "Custom
//!   User Agent String");
//! - REST's `requestContext.path` is `/{stage}/path/as/requested` (SAM: the resource template);
//! - 1.0's `headers` and `queryStringParameters` hold the last of repeated values, 2.0's
//!   `headers` join them with commas, with lower-case names and without `cookie` (it is in
//!   `cookies`);
//! - 2.0 leaves out `cookies`, `queryStringParameters`, `pathParameters`, `stageVariables` and
//!   `body` when there are none (SAM sends `[]`, `{}` and `""`);
//! - a path parameter may hold an escaped slash (`a%2Fb` → `a/b`) without splitting the path.
//!
//! A body is base64-encoded (`isBase64Encoded: true`) when its media type is one of the API's
//! BinaryMediaTypes (or `*/*` is), and, in either payload, when it is not UTF-8 (as SAM's
//! newest versions do; a text field cannot carry it otherwise).

use base64::Engine as _;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::request::{HttpRequest, media_type_matches, percent_decode};
use super::routes::{PayloadVersion, Route, RouteKind};

/// The `apiId` of every local API (SAM's).
pub(crate) const API_ID: &str = "1234567890";
/// SAM's `resourceId` for REST events.
const RESOURCE_ID: &str = "123456";

/// What the server knows of one invocation besides the request: the time, a fresh request id,
/// and the account and region the emulated API lives in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    pub request_id: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
}

/// The event for `route` and `req`, with the path parameters the matcher found.
pub(crate) fn build_event(route: &Route, params: &IndexMap<String, String>, req: &HttpRequest, stamp: &Stamp) -> Value {
    match route.kind.payload() {
        PayloadVersion::V1 => v1(route, params, req, stamp),
        PayloadVersion::V2 => v2(route, params, req, stamp),
    }
}

fn v1(route: &Route, params: &IndexMap<String, String>, req: &HttpRequest, stamp: &Stamp) -> Value {
    let (headers, multi_headers) = v1_headers(req);
    let (query, multi_query) = v1_query(req);
    let (body, is_base64) = body(route, req);
    let method = req.method.to_ascii_uppercase();
    let path = req.decoded_path();
    let context_path = match route.kind {
        RouteKind::Rest => format!("/{}{}", route.stage, path),
        _ => path.clone(),
    };
    let identity = json!({
        "apiKey": null,
        "userArn": null,
        "cognitoAuthenticationType": null,
        "caller": null,
        "userAgent": req.header("user-agent"),
        "user": null,
        "cognitoIdentityPoolId": null,
        "cognitoAuthenticationProvider": null,
        "sourceIp": req.source_ip,
        "accountId": null,
    });
    let context = json!({
        "resourceId": RESOURCE_ID,
        "apiId": API_ID,
        "resourcePath": route.path,
        "httpMethod": method,
        "requestId": stamp.request_id,
        "extendedRequestId": stamp.request_id,
        "accountId": stamp.account_id,
        "stage": route.stage,
        "identity": identity,
        "path": context_path,
        "protocol": req.protocol,
        "domainName": req.host,
        "domainPrefix": domain_prefix(req.hostname()),
        "requestTimeEpoch": stamp.now_ms,
        "requestTime": clf_time(stamp.now_ms),
    });
    json!({
        "version": "1.0",
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": non_empty(headers),
        "multiValueHeaders": non_empty(multi_headers),
        "queryStringParameters": non_empty(query),
        "multiValueQueryStringParameters": non_empty(multi_query),
        "requestContext": context,
        "pathParameters": non_empty(string_map(params)),
        "stageVariables": non_empty(string_map(&route.stage_variables)),
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

fn v2(route: &Route, params: &IndexMap<String, String>, req: &HttpRequest, stamp: &Stamp) -> Value {
    let url = route.kind == RouteKind::FunctionUrl;
    // A function URL sees the path under its local prefix, as it would at its own domain.
    let raw_path = match route.url_prefix() {
        Some(prefix) => match req.path.strip_prefix(&prefix) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => req.path.clone(),
        },
        None => req.path.clone(),
    };
    let (api_id, account_id) = if url {
        (url_id(&route.function), "anonymous".to_string())
    } else {
        (API_ID.to_string(), stamp.account_id.to_string())
    };
    let context = json!({
        "accountId": account_id,
        "apiId": api_id,
        "domainName": req.host,
        "domainPrefix": domain_prefix(req.hostname()),
        "http": {
            "method": req.method.to_ascii_uppercase(),
            "path": percent_decode(&raw_path),
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": req.header("user-agent").unwrap_or_default(),
        },
        "requestId": stamp.request_id,
        "routeKey": route.route_key(),
        "stage": route.stage,
        "time": clf_time(stamp.now_ms),
        "timeEpoch": stamp.now_ms,
    });
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), route.route_key().into());
    event.insert("rawPath".into(), raw_path.into());
    event.insert("rawQueryString".into(), req.query.clone().into());
    let cookies = req.cookies();
    if !cookies.is_empty() {
        event.insert("cookies".into(), cookies.into());
    }
    event.insert("headers".into(), Value::Object(v2_headers(req)));
    let query = v2_query(req);
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), Value::Object(query));
    }
    event.insert("requestContext".into(), context);
    let (body, is_base64) = body(route, req);
    if let Some(body) = body {
        event.insert("body".into(), body.into());
    }
    if !params.is_empty() && !url {
        event.insert("pathParameters".into(), Value::Object(string_map(params)));
    }
    if !route.stage_variables.is_empty() {
        event.insert("stageVariables".into(), Value::Object(string_map(&route.stage_variables)));
    }
    event.insert("isBase64Encoded".into(), is_base64.into());
    Value::Object(event)
}

/// The body as the event carries it, and whether that is base64.
fn body(route: &Route, req: &HttpRequest) -> (Option<String>, bool) {
    if req.body.is_empty() {
        return (None, false);
    }
    let types = &route.binary_media_types;
    let binary = types.iter().any(|t| t == "*/*")
        || req.media_type().is_some_and(|media| types.iter().any(|t| media_type_matches(t, &media)));
    match (binary, std::str::from_utf8(&req.body)) {
        (false, Ok(text)) => (Some(text.to_string()), false),
        _ => (Some(base64::engine::general_purpose::STANDARD.encode(&req.body)), true),
    }
}

/// The headers in order of first appearance, under the first spelling seen: the last value of
/// each, and all of them. API Gateway adds the X-Forwarded-* headers a client did not send.
fn v1_headers(req: &HttpRequest) -> (Map<String, Value>, Map<String, Value>) {
    let mut grouped: IndexMap<String, (String, Vec<String>)> = IndexMap::new();
    for (k, v) in &req.headers {
        grouped.entry(k.to_ascii_lowercase()).or_insert_with(|| (k.clone(), Vec::new())).1.push(v.clone());
    }
    for (name, value) in forwarded(req) {
        grouped.entry(name.to_ascii_lowercase()).or_insert_with(|| (name.to_string(), vec![value]));
    }
    let mut single = Map::new();
    let mut multi = Map::new();
    for (_, (name, values)) in grouped {
        single.insert(name.clone(), values.last().cloned().unwrap_or_default().into());
        multi.insert(name, values.into());
    }
    (single, multi)
}

/// Lower-case names, repeated values joined with commas, cookies left to `cookies`.
fn v2_headers(req: &HttpRequest) -> Map<String, Value> {
    let mut grouped: IndexMap<String, Vec<String>> = IndexMap::new();
    for (k, v) in &req.headers {
        let name = k.to_ascii_lowercase();
        if name != "cookie" {
            grouped.entry(name).or_default().push(v.clone());
        }
    }
    for (name, value) in forwarded(req) {
        grouped.entry(name.to_ascii_lowercase()).or_insert_with(|| vec![value]);
    }
    grouped.into_iter().map(|(k, v)| (k, Value::String(v.join(",")))).collect()
}

fn forwarded(req: &HttpRequest) -> [(&'static str, String); 3] {
    [
        ("X-Forwarded-For", req.source_ip.clone()),
        ("X-Forwarded-Port", req.port().to_string()),
        ("X-Forwarded-Proto", "http".to_string()),
    ]
}

/// Last value of each name, and all of them.
fn v1_query(req: &HttpRequest) -> (Map<String, Value>, Map<String, Value>) {
    let mut grouped: IndexMap<String, Vec<String>> = IndexMap::new();
    for (k, v) in req.query_pairs() {
        grouped.entry(k).or_default().push(v);
    }
    let mut single = Map::new();
    let mut multi = Map::new();
    for (k, values) in grouped {
        single.insert(k.clone(), values.last().cloned().unwrap_or_default().into());
        multi.insert(k, values.into());
    }
    (single, multi)
}

/// Repeated values joined with commas.
fn v2_query(req: &HttpRequest) -> Map<String, Value> {
    let mut grouped: IndexMap<String, Vec<String>> = IndexMap::new();
    for (k, v) in req.query_pairs() {
        grouped.entry(k).or_default().push(v);
    }
    grouped.into_iter().map(|(k, v)| (k, Value::String(v.join(",")))).collect()
}

fn string_map(m: &IndexMap<String, String>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// `null` for an empty map, as payload 1.0 has it.
fn non_empty(m: Map<String, Value>) -> Value {
    if m.is_empty() { Value::Null } else { Value::Object(m) }
}

/// The first label of the host name (`id` of `id.execute-api...`), or all of an IP address.
pub(crate) fn domain_prefix(hostname: &str) -> String {
    if hostname.starts_with('[') || hostname.parse::<std::net::IpAddr>().is_ok() {
        return hostname.to_string();
    }
    hostname.split('.').next().unwrap_or(hostname).to_string()
}

/// A function URL's id, stable per function: 32 lower-case hex characters, the length AWS uses.
pub(crate) fn url_id(function: &str) -> String {
    let digest = sha2::Sha256::digest(function.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// `14/Nov/2023:22:13:20 +0000`, API Gateway's requestTime.
pub(crate) fn clf_time(ms: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms / 1000;
    let (year, month, day) = crate::output::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
