use serde_json::json;

use super::*;
use crate::local::apigw::routes::DEFAULT_ROUTE;
use crate::local::apigw::testing::{NOW_MS, params, request, route, stamp};

fn rest_get_user() -> (Route, HttpRequest) {
    let mut r = route(RouteKind::Rest, "GET", "/users/{id}");
    r.stage_variables.insert("table".into(), "users-dev".into());
    let req = request(
        "GET",
        "/users/4%202",
        "a=1&a=2&b",
        &[("User-Agent", "curl/8.5"), ("X-Multi", "one"), ("x-multi", "two"), ("Accept", "*/*")],
        b"",
    );
    (r, req)
}

#[test]
fn v1_rest_event_has_every_field_api_gateway_sends() {
    let (r, req) = rest_get_user();
    let e = build_event(&r, &params(&[("id", "4 2")]), &req, &stamp());
    assert_eq!(e["version"], "1.0");
    assert_eq!(e["resource"], "/users/{id}");
    assert_eq!(e["path"], "/users/4 2");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["body"], Value::Null);
    assert_eq!(e["isBase64Encoded"], false);
    assert_eq!(e["pathParameters"], json!({"id": "4 2"}));
    assert_eq!(e["stageVariables"], json!({"table": "users-dev"}));
    assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": ""}));
    assert_eq!(e["multiValueQueryStringParameters"], json!({"a": ["1", "2"], "b": [""]}));
    let ctx = &e["requestContext"];
    assert_eq!(ctx["resourcePath"], "/users/{id}");
    assert_eq!(ctx["path"], "/Prod/users/4 2");
    assert_eq!(ctx["httpMethod"], "GET");
    assert_eq!(ctx["stage"], "Prod");
    assert_eq!(ctx["requestId"], "req-1");
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["apiId"], API_ID);
    assert_eq!(ctx["resourceId"], "123456");
    assert_eq!(ctx["protocol"], "HTTP/1.1");
    assert_eq!(ctx["domainName"], "localhost:3000");
    assert_eq!(ctx["domainPrefix"], "localhost");
    assert_eq!(ctx["requestTimeEpoch"], NOW_MS);
    assert_eq!(ctx["requestTime"], "14/Nov/2023:22:13:20 +0000");
    assert_eq!(ctx["identity"]["sourceIp"], "10.1.2.3");
    assert_eq!(ctx["identity"]["userAgent"], "curl/8.5");
    assert_eq!(ctx["identity"]["apiKey"], Value::Null);
}

#[test]
fn v1_headers_keep_the_last_value_and_all_values_and_add_forwarding_headers() {
    let (r, req) = rest_get_user();
    let e = build_event(&r, &IndexMap::new(), &req, &stamp());
    assert_eq!(e["headers"]["X-Multi"], "two");
    assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["one", "two"]));
    assert_eq!(e["headers"].get("x-multi"), None, "one entry per name, under the first spelling");
    assert_eq!(e["headers"]["User-Agent"], "curl/8.5");
    assert_eq!(e["headers"]["X-Forwarded-Proto"], "http");
    assert_eq!(e["headers"]["X-Forwarded-Port"], "3000");
    assert_eq!(e["headers"]["X-Forwarded-For"], "10.1.2.3");
    assert_eq!(e["multiValueHeaders"]["X-Forwarded-Port"], json!(["3000"]));
}

#[test]
fn a_forwarding_header_the_client_sent_is_kept() {
    let r = route(RouteKind::Rest, "GET", "/");
    let req = request("GET", "/", "", &[("x-forwarded-proto", "https")], b"");
    let e = build_event(&r, &IndexMap::new(), &req, &stamp());
    assert_eq!(e["headers"]["x-forwarded-proto"], "https");
    assert_eq!(e["headers"].get("X-Forwarded-Proto"), None);
}

#[test]
fn v1_empty_collections_are_null() {
    let r = route(RouteKind::Rest, "GET", "/");
    let e = build_event(&r, &IndexMap::new(), &request("GET", "/", "", &[], b""), &stamp());
    for key in ["queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "stageVariables", "body"]
    {
        assert_eq!(e[key], Value::Null, "{key}");
    }
    assert_eq!(e["requestContext"]["identity"]["userAgent"], Value::Null);
}

#[test]
fn http_api_payload_1_has_no_stage_in_the_context_path() {
    let r = route(RouteKind::Http(PayloadVersion::V1), "POST", "/items");
    let e = build_event(&r, &IndexMap::new(), &request("post", "/items", "", &[], b"{}"), &stamp());
    assert_eq!(e["version"], "1.0");
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["requestContext"]["path"], "/items");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert_eq!(e["body"], "{}");
}

#[test]
fn v2_event_has_every_field_api_gateway_sends() {
    let mut r = route(RouteKind::Http(PayloadVersion::V2), "GET", "/users/{id}");
    r.stage_variables.insert("v".into(), "1".into());
    let req = request(
        "GET",
        "/users/4%202",
        "a=1&a=2&b=x%20y",
        &[
            ("User-Agent", "curl/8.5"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "s=1; t=2"),
            ("Content-Type", "text/plain"),
        ],
        b"hi",
    );
    let e = build_event(&r, &params(&[("id", "4 2")]), &req, &stamp());
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "GET /users/{id}");
    assert_eq!(e["rawPath"], "/users/4%202");
    assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
    assert_eq!(e["pathParameters"], json!({"id": "4 2"}));
    assert_eq!(e["stageVariables"], json!({"v": "1"}));
    assert_eq!(e["body"], "hi");
    assert_eq!(e["isBase64Encoded"], false);
    let h = &e["headers"];
    assert_eq!(h["x-multi"], "one,two");
    assert_eq!(h["user-agent"], "curl/8.5");
    assert_eq!(h["x-forwarded-port"], "3000");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h.get("cookie"), None, "cookies travel in `cookies`");
    assert_eq!(h.get("X-Multi"), None, "names are lower-case");
    let ctx = &e["requestContext"];
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["apiId"], API_ID);
    assert_eq!(ctx["domainName"], "localhost:3000");
    assert_eq!(ctx["domainPrefix"], "localhost");
    assert_eq!(
        ctx["http"],
        json!({"method": "GET", "path": "/users/4 2", "protocol": "HTTP/1.1", "sourceIp": "10.1.2.3", "userAgent": "curl/8.5"})
    );
    assert_eq!(ctx["requestId"], "req-1");
    assert_eq!(ctx["routeKey"], "GET /users/{id}");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["time"], "14/Nov/2023:22:13:20 +0000");
    assert_eq!(ctx["timeEpoch"], NOW_MS);
}

#[test]
fn v2_leaves_out_what_the_request_does_not_have() {
    let r = route(RouteKind::Http(PayloadVersion::V2), "GET", "/");
    let e = build_event(&r, &IndexMap::new(), &request("GET", "/", "", &[], b""), &stamp());
    for key in ["cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"] {
        assert_eq!(e.get(key), None, "{key}");
    }
    assert_eq!(e["rawQueryString"], "");
    assert_eq!(e["requestContext"]["http"]["userAgent"], "");
}

#[test]
fn default_route_key() {
    let r = route(RouteKind::Http(PayloadVersion::V2), "ANY", DEFAULT_ROUTE);
    let e = build_event(&r, &IndexMap::new(), &request("GET", "/anything", "", &[], b""), &stamp());
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["requestContext"]["routeKey"], "$default");
}

#[test]
fn binary_media_types_base64_the_body() {
    let mut r = route(RouteKind::Rest, "POST", "/up");
    r.binary_media_types = vec!["image/png".into(), "audio/*".into()];
    let png = request("POST", "/up", "", &[("Content-Type", "image/png")], b"PNG");
    let e = build_event(&r, &IndexMap::new(), &png, &stamp());
    assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("UE5H"), Some(true)));
    let vendor = request("POST", "/up", "", &[("Content-Type", "audio/ogg")], b"{}");
    assert_eq!(build_event(&r, &IndexMap::new(), &vendor, &stamp())["isBase64Encoded"], true);
    let text = request("POST", "/up", "", &[("Content-Type", "text/plain")], b"hello");
    let e = build_event(&r, &IndexMap::new(), &text, &stamp());
    assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("hello"), Some(false)));
}

#[test]
fn any_media_type_is_binary_under_star_slash_star() {
    let mut r = route(RouteKind::Rest, "POST", "/up");
    r.binary_media_types = vec!["*/*".into()];
    let e = build_event(&r, &IndexMap::new(), &request("POST", "/up", "", &[], b"hello"), &stamp());
    assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("aGVsbG8="), Some(true)));
}

#[test]
fn a_body_that_is_not_utf8_is_base64_in_both_payloads() {
    let req = request("POST", "/up", "", &[("Content-Type", "text/plain")], &[0xff, 0xfe]);
    for kind in [RouteKind::Rest, RouteKind::Http(PayloadVersion::V2)] {
        let e = build_event(&route(kind, "POST", "/up"), &IndexMap::new(), &req, &stamp());
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("//4="), Some(true)), "{kind:?}");
    }
}

#[test]
fn function_url_event_sees_the_path_under_its_prefix() {
    let mut r = route(RouteKind::FunctionUrl, "ANY", "/HelloFn/{proxy+}");
    r.api = "HelloFn".into();
    let e = build_event(&r, &params(&[("proxy", "a/b")]), &request("PUT", "/HelloFn/a/b", "x=1", &[], b""), &stamp());
    assert_eq!(e["rawPath"], "/a/b");
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["queryStringParameters"], json!({"x": "1"}));
    assert_eq!(e.get("pathParameters"), None);
    let ctx = &e["requestContext"];
    assert_eq!(ctx["http"]["path"], "/a/b");
    assert_eq!(ctx["http"]["method"], "PUT");
    assert_eq!(ctx["accountId"], "anonymous");
    assert_eq!(ctx["apiId"], url_id("HelloFn"));
    assert_eq!(ctx["stage"], "$default");
    let root = build_event(&r, &IndexMap::new(), &request("GET", "/HelloFn", "", &[], b""), &stamp());
    assert_eq!(root["rawPath"], "/");
}

#[test]
fn url_ids_look_like_aws_ones_and_are_stable() {
    let id = url_id("HelloFn");
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(id, url_id("HelloFn"));
    assert_ne!(id, url_id("OtherFn"));
}

#[test]
fn request_time_is_in_api_gateway_format() {
    assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(clf_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    assert_eq!(clf_time(1_709_251_199_999), "29/Feb/2024:23:59:59 +0000");
    assert_eq!(clf_time(4_102_444_800_000), "01/Jan/2100:00:00:00 +0000");
}

#[test]
fn domain_prefix_is_the_first_label_or_the_whole_address() {
    assert_eq!(domain_prefix("abc.execute-api.us-east-1.amazonaws.com"), "abc");
    assert_eq!(domain_prefix("localhost"), "localhost");
    assert_eq!(domain_prefix("127.0.0.1"), "127.0.0.1");
    assert_eq!(domain_prefix("[::1]"), "[::1]");
}
