use super::*;
use crate::local::apigw::testing::{request, route};

fn rest() -> Route {
    route(RouteKind::Rest, "GET", "/")
}

fn http(v: PayloadVersion) -> Route {
    route(RouteKind::Http(v), "GET", "/")
}

fn get() -> HttpRequest {
    request("GET", "/", "", &[], b"")
}

fn parse(r: &Route, output: &str) -> Result<HttpResponse, String> {
    parse_response(r, &get(), output.as_bytes())
}

fn headers(resp: &HttpResponse) -> Vec<(&str, &str)> {
    resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn v1_status_headers_and_body() {
    let resp = parse(&rest(), r#"{"statusCode": 201, "headers": {"X-A": "1", "X-N": 5}, "body": "made"}"#).unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(headers(&resp), [("X-A", "1"), ("X-N", "5"), ("Content-Type", "application/json")]);
    assert_eq!(resp.body, b"made");
}

#[test]
fn v1_multi_value_headers_merge_without_repeating_a_value() {
    let out = r#"{"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
                  "headers": {"Set-Cookie": "b=2", "X-Other": "x", "Content-Type": "text/plain"}}"#;
    let resp = parse(&rest(), out).unwrap();
    assert_eq!(
        headers(&resp),
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Other", "x"), ("Content-Type", "text/plain")]
    );
    let resp = parse(&rest(), r#"{"multiValueHeaders": {"X": ["1"]}, "headers": {"x": "2"}}"#).unwrap();
    assert_eq!(headers(&resp)[..2], [("X", "1"), ("x", "2")]);
}

#[test]
fn rest_defaults_status_200_and_http_api_1_requires_it() {
    let resp = parse(&rest(), r#"{"body": "ok"}"#).unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, b"ok".as_slice()));
    let err = parse(&http(PayloadVersion::V1), r#"{"body": "ok"}"#).unwrap_err();
    assert!(err.contains("statusCode is missing"), "{err}");
}

#[test]
fn status_code_may_be_a_numeric_string_but_must_be_an_http_status() {
    assert_eq!(parse(&rest(), r#"{"statusCode": "404"}"#).unwrap().status, 404);
    assert_eq!(parse(&rest(), r#"{"statusCode": 302.0}"#).unwrap().status, 302);
    for bad in [r#"{"statusCode": 0}"#, r#"{"statusCode": 600}"#, r#"{"statusCode": "ok"}"#, r#"{"statusCode": -1}"#] {
        let err = parse(&rest(), bad).unwrap_err();
        assert!(err.contains("statusCode must be an HTTP status"), "{bad}: {err}");
    }
}

#[test]
fn rest_rejects_keys_it_does_not_know_and_http_api_ignores_them() {
    let out = r#"{"statusCode": 200, "body": "x", "data": 1, "errorMessage": "e"}"#;
    let err = parse(&rest(), out).unwrap_err();
    assert!(err.contains("data, errorMessage"), "{err}");
    assert_eq!(parse(&http(PayloadVersion::V1), out).unwrap().body, b"x");
}

#[test]
fn v1_output_must_be_a_json_object() {
    let err = parse(&rest(), "not json").unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
    let err = parse(&rest(), "[1, 2]").unwrap_err();
    assert!(err.contains("returned a list"), "{err}");
    let err = parse(&rest(), r#""hello""#).unwrap_err();
    assert!(err.contains("returned a string"), "{err}");
}

#[test]
fn body_must_be_a_string() {
    for r in [rest(), http(PayloadVersion::V1), http(PayloadVersion::V2)] {
        let err = parse(&r, r#"{"statusCode": 200, "body": {"a": 1}}"#).unwrap_err();
        assert!(err.contains("body must be a string, not an object"), "{:?}: {err}", r.kind);
    }
    assert!(parse(&rest(), r#"{"statusCode": 200, "body": null}"#).unwrap().body.is_empty());
}

#[test]
fn header_values_must_be_scalars() {
    let err = parse(&rest(), r#"{"headers": {"X": {"a": 1}}}"#).unwrap_err();
    assert!(err.contains("header `X` must be a string"), "{err}");
    let err = parse(&rest(), r#"{"multiValueHeaders": {"X": "1"}}"#).unwrap_err();
    assert!(err.contains("multiValueHeaders.X must be a list"), "{err}");
    let resp = parse(&rest(), r#"{"headers": {"X": null, "Y": true}}"#).unwrap();
    assert_eq!(headers(&resp)[..1], [("Y", "true")]);
}

#[test]
fn http_api_decodes_base64_bodies() {
    let out =
        r#"{"statusCode": 200, "isBase64Encoded": true, "body": "aGk=", "headers": {"Content-Type": "image/png"}}"#;
    for v in [PayloadVersion::V1, PayloadVersion::V2] {
        assert_eq!(parse(&http(v), out).unwrap().body, b"hi", "{v:?}");
    }
    let resp = parse(&http(PayloadVersion::V2), r#"{"statusCode": 200, "isBase64Encoded": "True", "body": "aGk="}"#);
    assert_eq!(resp.unwrap().body, b"hi");
}

#[test]
fn bad_base64_or_flag_is_an_error() {
    let err =
        parse(&http(PayloadVersion::V2), r#"{"statusCode": 200, "isBase64Encoded": true, "body": "@@"}"#).unwrap_err();
    assert!(err.contains("not base64"), "{err}");
    let err = parse(&rest(), r#"{"isBase64Encoded": "yes", "body": ""}"#).unwrap_err();
    assert!(err.contains("isBase64Encoded must be true or false"), "{err}");
}

#[test]
fn rest_decodes_base64_only_when_the_client_accepts_a_binary_type() {
    let mut r = rest();
    r.binary_media_types = vec!["image/png".into()];
    let out =
        br#"{"statusCode": 200, "isBase64Encoded": true, "body": "aGk=", "headers": {"Content-Type": "image/png"}}"#;
    let png = request("GET", "/", "", &[("Accept", "image/png, */*")], b"");
    assert_eq!(parse_response(&r, &png, out).unwrap().body, b"hi");
    let any = request("GET", "/", "", &[("Accept", "*/*")], b"");
    assert_eq!(parse_response(&r, &any, out).unwrap().body, b"aGk=");
    assert_eq!(parse_response(&r, &get(), out).unwrap().body, b"aGk=");
    r.binary_media_types = vec!["*/*".into()];
    assert_eq!(parse_response(&r, &get(), out).unwrap().body, b"hi");
}

#[test]
fn rest_reads_base64_encoded_before_is_base64_encoded() {
    let mut r = rest();
    r.binary_media_types = vec!["*/*".into()];
    let out = r#"{"base64Encoded": false, "isBase64Encoded": true, "body": "aGk="}"#;
    assert_eq!(parse(&r, out).unwrap().body, b"aGk=");
}

#[test]
fn v2_structured_response_with_cookies() {
    let out = r#"{"statusCode": 302, "headers": {"Location": "/x"}, "cookies": ["a=1; Path=/", "b=2"], "body": "", "extra": 1}"#;
    let resp = parse(&http(PayloadVersion::V2), out).unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(
        headers(&resp),
        [
            ("Location", "/x"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2"),
            ("Content-Type", "application/json")
        ]
    );
    let err = parse(&http(PayloadVersion::V2), r#"{"statusCode": 200, "cookies": "a=1"}"#).unwrap_err();
    assert!(err.contains("cookies must be a list"), "{err}");
}

#[test]
fn v2_object_without_status_code_is_the_body() {
    let resp = parse(&http(PayloadVersion::V2), r#"{"message": "hi", "n": 1}"#).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, br#"{"message":"hi","n":1}"#);
    assert_eq!(resp.header("content-type"), Some("application/json"));
}

#[test]
fn v2_other_json_is_the_body() {
    let cases = [(r#""Hello from Lambda!""#, "Hello from Lambda!"), ("[1,2]", "[1,2]"), ("42", "42"), ("true", "true")];
    for (out, body) in cases {
        let resp = parse(&http(PayloadVersion::V2), out).unwrap();
        assert_eq!((resp.status, String::from_utf8(resp.body).unwrap()), (200, body.to_string()), "{out}");
    }
    let url = route(RouteKind::FunctionUrl, "ANY", "/Fn");
    assert_eq!(parse(&url, r#""x""#).unwrap().body, b"x");
}

#[test]
fn a_content_type_from_the_function_is_kept() {
    let resp =
        parse(&http(PayloadVersion::V2), r#"{"statusCode": 200, "headers": {"content-type": "text/html"}}"#).unwrap();
    assert_eq!(headers(&resp), [("content-type", "text/html")]);
}

#[test]
fn api_gateway_answers() {
    let cases = [
        (missing_authentication_token(), 403, r#"{"message":"Missing Authentication Token"}"#),
        (not_found(), 404, r#"{"message":"Not Found"}"#),
        (integration_error(RouteKind::Rest), 502, r#"{"message":"Internal server error"}"#),
        (integration_error(RouteKind::Http(PayloadVersion::V2)), 500, r#"{"message":"Internal Server Error"}"#),
        (integration_error(RouteKind::FunctionUrl), 502, r#"{"message":"Internal Server Error"}"#),
    ];
    for (resp, status, body) in cases {
        assert_eq!((resp.status, String::from_utf8(resp.body.clone()).unwrap()), (status, body.to_string()));
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
    }
}

#[test]
fn remove_header_drops_every_spelling() {
    let mut resp = HttpResponse {
        status: 200,
        headers: vec![("A".into(), "1".into()), ("a".into(), "2".into()), ("B".into(), "3".into())],
        body: Vec::new(),
    };
    resp.remove_header("a");
    assert_eq!(headers(&resp), [("B", "3")]);
}
