//! Builders for the unit tests of this folder: a route and a request with what a test names,
//! plausible values for the rest.

use indexmap::IndexMap;

use super::event::Stamp;
use super::request::HttpRequest;
use super::routes::{DEFAULT_ROUTE, Route, RouteKind, parse_path};

pub(crate) fn route(kind: RouteKind, method: &str, path: &str) -> Route {
    Route {
        api: "MyApi".into(),
        kind,
        method: method.into(),
        path: path.into(),
        segments: if path == DEFAULT_ROUTE { Vec::new() } else { parse_path(path).unwrap() },
        function: "HelloFn".into(),
        stage: if kind == RouteKind::Rest { "Prod".into() } else { "$default".into() },
        stage_variables: IndexMap::new(),
        binary_media_types: Vec::new(),
        cors: None,
        authorizer: None,
        preflight_authorizer: None,
    }
}

pub(crate) fn request(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.to_vec(),
        source_ip: "10.1.2.3".into(),
        host: "localhost:3000".into(),
        protocol: "HTTP/1.1".into(),
    }
}

pub(crate) fn params(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// 2023-11-14T22:13:20.123Z.
pub(crate) const NOW_MS: u64 = 1_700_000_000_123;

pub(crate) fn stamp() -> Stamp<'static> {
    Stamp { now_ms: NOW_MS, request_id: "req-1", account_id: "123456789012", region: "eu-west-1" }
}
