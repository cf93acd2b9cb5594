//! CORS the way a deployed API does it, which is not quite how SAM's local server does it.
//!
//! REST API (`Cors`): the SAM translator adds an `OPTIONS` method to every path, a mock that
//! answers 200 with the configured headers, whatever the Origin; the function is not called.
//! Other responses come from the function as it wrote them: with a proxy integration, API
//! Gateway adds no CORS header to them (SAM's docs tell functions to return
//! `Access-Control-Allow-Origin` themselves). SAM's newest local server adds the headers to every
//! response, which hides a missing header until deploy; lamb does not. A path that has its own
//! `OPTIONS` route keeps it (the translator does not add a mock there). With a DefaultAuthorizer
//! the preflight goes through it unless `AddDefaultAuthorizerToCorsPreflight: false`, as
//! deployed ([`Preflight::authorizer`]).
//!
//! HTTP API (`CorsConfiguration`) and function URL (`Cors`): API Gateway answers every OPTIONS
//! preflight itself (204), and on other responses replaces whatever CORS headers the function
//! sent with its own: the allowed origin (the request's, when listed, or `*`), exposed headers
//! and credentials. A request without an allowed Origin gets no CORS headers.

use super::matcher::Matcher;
use super::request::HttpRequest;
use super::response::HttpResponse;
use super::routes::{Authorizer, Cors, HttpCors, RestCors, Route};

/// The methods `ANY` stands for, as the SAM translator lists them for CORS.
const ALL_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// API Gateway's answer to a CORS preflight, without calling the function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Preflight<'a> {
    pub response: HttpResponse,
    /// The route whose API answers.
    pub route: &'a Route,
    /// An authorizer the preflight must pass first (REST APIs with a DefaultAuthorizer).
    pub authorizer: Option<&'a Authorizer>,
}

/// The preflight answer when `req` is an `OPTIONS` request to a path of an API with CORS.
pub(crate) fn preflight<'a>(matcher: &'a Matcher, req: &HttpRequest) -> Option<Preflight<'a>> {
    if !req.method.eq_ignore_ascii_case("OPTIONS") {
        return None;
    }
    let on_path = matcher.routes_for_path(&req.path);
    let route = *on_path.iter().find(|r| r.cors.is_some())?;
    let same_api: Vec<&Route> = on_path.iter().copied().filter(|r| r.api == route.api).collect();
    match route.cors.as_ref()? {
        Cors::Rest(cors) => {
            if same_api.iter().any(|r| r.method == "OPTIONS") {
                return None;
            }
            let response = rest_preflight(cors, &same_api);
            Some(Preflight { response, route, authorizer: route.preflight_authorizer.as_ref() })
        }
        Cors::Http(cors) => Some(Preflight { response: http_preflight(cors, req), route, authorizer: None }),
    }
}

/// Adds (or, for HTTP APIs and function URLs, replaces) the CORS headers of a function's answer.
pub(crate) fn apply(route: &Route, req: &HttpRequest, response: &mut HttpResponse) {
    let Some(Cors::Http(cors)) = &route.cors else { return };
    response.headers.retain(|(k, _)| !k.to_ascii_lowercase().starts_with("access-control-"));
    let Some(origin) = allowed_origin(cors, req) else { return };
    response.headers.push(("access-control-allow-origin".into(), origin));
    if !cors.expose_headers.is_empty() {
        response.headers.push(("access-control-expose-headers".into(), cors.expose_headers.join(",")));
    }
    if cors.allow_credentials {
        response.headers.push(("access-control-allow-credentials".into(), "true".into()));
    }
}

fn rest_preflight(cors: &RestCors, routes: &[&Route]) -> HttpResponse {
    let methods = cors.allow_methods.clone().unwrap_or_else(|| path_methods(routes));
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Access-Control-Allow-Origin".to_string(), cors.allow_origin.clone()),
        ("Access-Control-Allow-Methods".to_string(), methods),
    ];
    let optional = [
        ("Access-Control-Allow-Headers", &cors.allow_headers),
        ("Access-Control-Allow-Credentials", &cors.allow_credentials),
        ("Access-Control-Max-Age", &cors.max_age),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            headers.push((name.to_string(), v.clone()));
        }
    }
    HttpResponse { status: 200, headers, body: Vec::new() }
}

/// The methods of a path plus OPTIONS, sorted; `ANY` stands for all of them.
fn path_methods(routes: &[&Route]) -> String {
    let mut methods: Vec<&str> = vec!["OPTIONS"];
    for r in routes {
        if r.method == "ANY" {
            methods.extend_from_slice(ALL_METHODS);
        } else {
            methods.push(&r.method);
        }
    }
    methods.sort_unstable();
    methods.dedup();
    methods.join(",")
}

fn http_preflight(cors: &HttpCors, req: &HttpRequest) -> HttpResponse {
    let mut response = HttpResponse { status: 204, headers: Vec::new(), body: Vec::new() };
    let Some(origin) = allowed_origin(cors, req) else { return response };
    let h = &mut response.headers;
    h.push(("access-control-allow-origin".into(), origin));
    if !cors.allow_methods.is_empty() {
        let mut methods: Vec<String> = if cors.allow_methods.iter().any(|m| m.trim() == "*") {
            ALL_METHODS.iter().map(|m| m.to_string()).collect()
        } else {
            cors.allow_methods.iter().map(|m| m.trim().to_ascii_uppercase()).collect()
        };
        if !methods.iter().any(|m| m == "OPTIONS") {
            methods.push("OPTIONS".into());
        }
        h.push(("access-control-allow-methods".into(), methods.join(",")));
    }
    if !cors.allow_headers.is_empty() {
        h.push(("access-control-allow-headers".into(), cors.allow_headers.join(",")));
    }
    if cors.allow_credentials {
        h.push(("access-control-allow-credentials".into(), "true".into()));
    }
    if let Some(age) = cors.max_age {
        h.push(("access-control-max-age".into(), age.to_string()));
    }
    response
}

/// `*` when any origin is allowed, the request's Origin when it is listed, else none.
fn allowed_origin(cors: &HttpCors, req: &HttpRequest) -> Option<String> {
    let origin = req.header("origin")?;
    let listed: Vec<&str> = cors.allow_origins.iter().flat_map(|o| o.split(',')).map(str::trim).collect();
    if listed.contains(&"*") {
        Some("*".into())
    } else if listed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        Some(origin.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
