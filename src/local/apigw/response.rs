//! The HTTP answer API Gateway makes of a function's output, and API Gateway's own answers.
//!
//! Payload 1.0 (REST, HTTP API 1.0): an object with `statusCode`, `headers` and
//! `multiValueHeaders` (merged), a string `body` and `isBase64Encoded`. Payload 2.0 (HTTP API,
//! function URLs): the same with `cookies`, or any other JSON, which becomes a 200 whose body is
//! that JSON (a string as it is). A response that breaks these rules is an `Err` with the reason
//! for the log, and the client gets [`integration_error`].
//!
//! Where SAM and API Gateway differ, lamb follows API Gateway: a function *error* (the runtime
//! posted to `/invocation/{id}/error`) is [`integration_error`]: REST's 502
//! `{"message": "Internal server error"}` (AWS: "If the function runs but returns an error, or
//! returns a response in the wrong format, API Gateway returns a 502"), where SAM's newest
//! answers 500. An HTTP API answers both with 500 `{"message":"Internal Server Error"}`. A
//! non-string `body` is an error, not `str(body)`. REST decodes a base64 body only when the
//! request's first Accept type is among the BinaryMediaTypes (or `*/*` is listed), so `curl`'s
//! `Accept: */*` gets the base64 text, as it does once deployed.

use base64::Engine as _;
use serde_json::Value;

use super::request::{HttpRequest, media_type_matches};
use super::routes::{PayloadVersion, Route, RouteKind};

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HttpResponse {
    pub status: u16,
    /// In order; `Set-Cookie` (and any other) may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[cfg(test)]
impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Removes every header named `name` (any case).
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

/// `{"message": text}` with `status`, as API Gateway words its own answers.
pub(crate) fn message(status: u16, text: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::json!({ "message": text }).to_string().into_bytes(),
    }
}

/// REST: no route for this path and method.
pub(crate) fn missing_authentication_token() -> HttpResponse {
    message(403, "Missing Authentication Token")
}

/// HTTP API: no route for this path and method.
pub(crate) fn not_found() -> HttpResponse {
    message(404, "Not Found")
}

/// The function failed, or answered in a shape API Gateway cannot use: REST 502
/// `{"message":"Internal server error"}`; HTTP API 500 `{"message":"Internal Server Error"}`;
/// function URL 502 `{"message":"Internal Server Error"}`.
pub(crate) fn integration_error(kind: RouteKind) -> HttpResponse {
    match kind {
        RouteKind::Rest => message(502, "Internal server error"),
        RouteKind::Http(_) => message(500, "Internal Server Error"),
        RouteKind::FunctionUrl => message(502, "Internal Server Error"),
    }
}

/// The answer for a function's successful `output`, or why it cannot be one.
pub(crate) fn parse_response(route: &Route, req: &HttpRequest, output: &[u8]) -> Result<HttpResponse, String> {
    let value: Value = serde_json::from_slice(output).map_err(|e| {
        format!(
            "the function's response is not JSON ({e}): {}",
            String::from_utf8_lossy(&output[..output.len().min(200)])
        )
    })?;
    match route.kind.payload() {
        PayloadVersion::V1 => v1(route, req, value),
        PayloadVersion::V2 => v2(value),
    }
}

/// Keys a REST API accepts in a proxy response (SAM's list).
const REST_KEYS: &[&str] =
    &["statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded", "base64Encoded", "cookies"];

fn v1(route: &Route, req: &HttpRequest, value: Value) -> Result<HttpResponse, String> {
    let Value::Object(obj) = value else {
        return Err(format!(
            "the function returned {} instead of an object with statusCode and body",
            json_kind(&value)
        ));
    };
    let rest = route.kind == RouteKind::Rest;
    if rest {
        let extra: Vec<&str> = obj.keys().map(String::as_str).filter(|k| !REST_KEYS.contains(k)).collect();
        if !extra.is_empty() {
            return Err(format!(
                "the response has keys a REST API does not accept: {}; use only statusCode, headers, multiValueHeaders, body and isBase64Encoded",
                extra.join(", ")
            ));
        }
    }
    let status = match obj.get("statusCode") {
        None | Some(Value::Null) if rest => 200,
        None | Some(Value::Null) => return Err("statusCode is missing; payload 1.0 needs one".into()),
        Some(v) => status_code(v)?,
    };
    let mut headers = Vec::new();
    if let Some(multi) = obj.get("multiValueHeaders").filter(|v| !v.is_null()) {
        let Value::Object(multi) = multi else {
            return Err(format!("multiValueHeaders must be an object, not {}", json_kind(multi)));
        };
        for (k, values) in multi {
            let Value::Array(values) = values else {
                return Err(format!("multiValueHeaders.{k} must be a list, not {}", json_kind(values)));
            };
            for v in values {
                if let Some(v) = header_value(k, v)? {
                    headers.push((k.clone(), v));
                }
            }
        }
    }
    // A value in both maps is sent once.
    for (k, v) in single_headers(obj.get("headers"))? {
        if !headers.iter().any(|(hk, hv)| hk.eq_ignore_ascii_case(&k) && *hv == v) {
            headers.push((k, v));
        }
    }
    let flag = match (rest, obj.get("base64Encoded")) {
        (true, Some(v)) if !v.is_null() => base64_flag(v)?,
        _ => obj.get("isBase64Encoded").map(base64_flag).transpose()?.unwrap_or(false),
    };
    let text = body_text(obj.get("body"))?;
    let decode = flag && (!rest || rest_decodes_binary(route, req));
    let body = if decode { decode_base64(&text)? } else { text.into_bytes() };
    Ok(finish(status, headers, body))
}

fn v2(value: Value) -> Result<HttpResponse, String> {
    let obj = match value {
        Value::Object(obj) if obj.contains_key("statusCode") => obj,
        Value::String(s) => return Ok(finish(200, Vec::new(), s.into_bytes())),
        other => return Ok(finish(200, Vec::new(), other.to_string().into_bytes())),
    };
    let status = status_code(&obj["statusCode"])?;
    let mut headers = single_headers(obj.get("headers"))?;
    match obj.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for c in cookies {
                match c {
                    Value::String(s) => headers.push(("Set-Cookie".into(), s.clone())),
                    other => return Err(format!("cookies must be strings, not {}", json_kind(other))),
                }
            }
        }
        Some(other) => return Err(format!("cookies must be a list of strings, not {}", json_kind(other))),
    }
    let flag = obj.get("isBase64Encoded").map(base64_flag).transpose()?.unwrap_or(false);
    let text = body_text(obj.get("body"))?;
    let body = if flag { decode_base64(&text)? } else { text.into_bytes() };
    Ok(finish(status, headers, body))
}

/// Adds the Content-Type API Gateway defaults to.
fn finish(status: u16, mut headers: Vec<(String, String)>, body: Vec<u8>) -> HttpResponse {
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    HttpResponse { status, headers, body }
}

fn status_code(v: &Value) -> Result<u16, String> {
    let n = match v {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n @ 100..=599) => Ok(n as u16),
        _ => Err(format!("statusCode must be an HTTP status between 100 and 599, not {v}")),
    }
}

fn single_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, v) in m {
                if let Some(v) = header_value(k, v)? {
                    out.push((k.clone(), v));
                }
            }
            Ok(out)
        }
        Some(other) => Err(format!("headers must be an object, not {}", json_kind(other))),
    }
}

fn header_value(name: &str, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(format!("header `{name}` must be a string, not {}", json_kind(other))),
    }
}

fn body_text(v: Option<&Value>) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "body must be a string, not {}; serialize it first (JSON.stringify, json.dumps)",
            json_kind(other)
        )),
    }
}

fn base64_flag(v: &Value) -> Result<bool, String> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("isBase64Encoded must be true or false, not {other}")),
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("isBase64Encoded is true but the body is not base64 ({e})"))
}

/// A REST API turns a base64 body into bytes when the client asked for a binary media type.
fn rest_decodes_binary(route: &Route, req: &HttpRequest) -> bool {
    let types = &route.binary_media_types;
    if types.iter().any(|t| t == "*/*") {
        return true;
    }
    let first_accept = req
        .header("accept")
        .and_then(|a| a.split(',').next())
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    first_accept.is_some_and(|accept| types.iter().any(|t| media_type_matches(t, &accept)))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
