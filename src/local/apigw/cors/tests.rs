use super::*;
use crate::local::apigw::routes::{AuthorizerKind, PayloadVersion, RouteKind};
use crate::local::apigw::testing::{request, route};

fn rest_cors(origin: &str) -> Cors {
    Cors::Rest(RestCors {
        allow_origin: origin.into(),
        allow_methods: None,
        allow_headers: Some("Content-Type,Authorization".into()),
        allow_credentials: None,
        max_age: Some("600".into()),
    })
}

fn http_cors() -> Cors {
    Cors::Http(HttpCors {
        allow_origins: vec!["https://app.example.com".into(), "http://localhost:5173".into()],
        allow_methods: vec!["get".into(), "POST".into()],
        allow_headers: vec!["content-type".into()],
        expose_headers: vec!["x-request-id".into()],
        allow_credentials: true,
        max_age: Some(300),
    })
}

fn with_cors(kind: RouteKind, method: &str, path: &str, cors: &Cors) -> Route {
    let mut r = route(kind, method, path);
    r.cors = Some(cors.clone());
    r
}

fn headers(resp: &HttpResponse) -> Vec<(&str, &str)> {
    resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn rest_preflight_lists_the_methods_of_the_path() {
    let cors = rest_cors("*");
    let m = Matcher::new(vec![
        with_cors(RouteKind::Rest, "GET", "/items", &cors),
        with_cors(RouteKind::Rest, "POST", "/items", &cors),
        with_cors(RouteKind::Rest, "DELETE", "/items/{id}", &cors),
    ]);
    let p = preflight(&m, &request("OPTIONS", "/items", "", &[], b"")).unwrap();
    assert_eq!(p.response.status, 200);
    assert!(p.response.body.is_empty());
    assert_eq!(
        headers(&p.response),
        [
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET,OPTIONS,POST"),
            ("Access-Control-Allow-Headers", "Content-Type,Authorization"),
            ("Access-Control-Max-Age", "600"),
        ]
    );
    assert!(p.authorizer.is_none());
}

#[test]
fn rest_preflight_any_means_every_method_and_configured_methods_win() {
    let cors = rest_cors("https://a.example");
    let m = Matcher::new(vec![with_cors(RouteKind::Rest, "ANY", "/{proxy+}", &cors)]);
    let p = preflight(&m, &request("OPTIONS", "/x/y", "", &[], b"")).unwrap();
    assert_eq!(p.response.header("Access-Control-Allow-Methods"), Some("DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"));
    assert_eq!(p.response.header("Access-Control-Allow-Origin"), Some("https://a.example"));
    let Cors::Rest(mut own) = cors else { unreachable!() };
    own.allow_methods = Some("GET,POST".into());
    let m = Matcher::new(vec![with_cors(RouteKind::Rest, "ANY", "/{proxy+}", &Cors::Rest(own))]);
    let p = preflight(&m, &request("OPTIONS", "/x", "", &[], b"")).unwrap();
    assert_eq!(p.response.header("Access-Control-Allow-Methods"), Some("GET,POST"));
}

#[test]
fn rest_preflight_ignores_the_origin() {
    let m = Matcher::new(vec![with_cors(RouteKind::Rest, "GET", "/a", &rest_cors("https://only.example"))]);
    let p = preflight(&m, &request("OPTIONS", "/a", "", &[("Origin", "https://other.example")], b"")).unwrap();
    assert_eq!(p.response.header("Access-Control-Allow-Origin"), Some("https://only.example"));
}

#[test]
fn an_own_options_route_on_a_rest_path_is_called_instead() {
    let cors = rest_cors("*");
    let m = Matcher::new(vec![
        with_cors(RouteKind::Rest, "OPTIONS", "/a", &cors),
        with_cors(RouteKind::Rest, "GET", "/a", &cors),
    ]);
    assert!(preflight(&m, &request("OPTIONS", "/a", "", &[], b"")).is_none());
}

#[test]
fn no_preflight_without_cors_or_for_other_methods_or_unknown_paths() {
    let m = Matcher::new(vec![route(RouteKind::Rest, "GET", "/a")]);
    assert!(preflight(&m, &request("OPTIONS", "/a", "", &[], b"")).is_none());
    let m = Matcher::new(vec![with_cors(RouteKind::Rest, "GET", "/a", &rest_cors("*"))]);
    assert!(preflight(&m, &request("GET", "/a", "", &[], b"")).is_none());
    assert!(preflight(&m, &request("OPTIONS", "/b", "", &[], b"")).is_none());
}

#[test]
fn rest_preflight_goes_through_the_default_authorizer() {
    let mut r = with_cors(RouteKind::Rest, "GET", "/a", &rest_cors("*"));
    r.preflight_authorizer = Some(Authorizer {
        name: "Tok".into(),
        function: "AuthFn".into(),
        kind: AuthorizerKind::Token { header: "Authorization".into(), validation: None },
        identity: Vec::new(),
        payload: PayloadVersion::V1,
        simple_responses: false,
    });
    let m = Matcher::new(vec![r]);
    let p = preflight(&m, &request("OPTIONS", "/a", "", &[], b"")).unwrap();
    assert_eq!(p.authorizer.map(|a| a.name.as_str()), Some("Tok"));
}

#[test]
fn rest_responses_are_left_as_the_function_wrote_them() {
    let r = with_cors(RouteKind::Rest, "GET", "/a", &rest_cors("*"));
    let mut resp = HttpResponse { status: 200, headers: vec![("X".into(), "1".into())], body: Vec::new() };
    apply(&r, &request("GET", "/a", "", &[("Origin", "https://x")], b""), &mut resp);
    assert_eq!(headers(&resp), [("X", "1")]);
}

#[test]
fn http_preflight_for_an_allowed_origin() {
    let m = Matcher::new(vec![with_cors(RouteKind::Http(PayloadVersion::V2), "GET", "/a", &http_cors())]);
    let req = request(
        "OPTIONS",
        "/a",
        "",
        &[("Origin", "http://localhost:5173"), ("Access-Control-Request-Method", "POST")],
        b"",
    );
    let p = preflight(&m, &req).unwrap();
    assert_eq!(p.response.status, 204);
    assert_eq!(
        headers(&p.response),
        [
            ("access-control-allow-origin", "http://localhost:5173"),
            ("access-control-allow-methods", "GET,POST,OPTIONS"),
            ("access-control-allow-headers", "content-type"),
            ("access-control-allow-credentials", "true"),
            ("access-control-max-age", "300"),
        ]
    );
}

#[test]
fn http_preflight_for_another_origin_or_none_has_no_cors_headers() {
    let m = Matcher::new(vec![with_cors(RouteKind::Http(PayloadVersion::V2), "GET", "/a", &http_cors())]);
    for headers in [vec![("Origin", "https://evil.example")], vec![]] {
        let p = preflight(&m, &request("OPTIONS", "/a", "", &headers, b"")).unwrap();
        assert_eq!((p.response.status, p.response.headers.len()), (204, 0));
    }
}

#[test]
fn http_star_origin_and_star_methods() {
    let cors = Cors::Http(HttpCors {
        allow_origins: vec!["*".into()],
        allow_methods: vec!["*".into()],
        ..HttpCors::default()
    });
    let m = Matcher::new(vec![with_cors(RouteKind::Http(PayloadVersion::V2), "ANY", "$default", &cors)]);
    let p = preflight(&m, &request("OPTIONS", "/anything", "", &[("Origin", "https://x.example")], b"")).unwrap();
    assert_eq!(
        headers(&p.response),
        [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"),
        ]
    );
}

#[test]
fn http_responses_get_the_api_cors_headers_instead_of_the_functions() {
    let r = with_cors(RouteKind::Http(PayloadVersion::V2), "GET", "/a", &http_cors());
    let mut resp = HttpResponse {
        status: 200,
        headers: vec![("Access-Control-Allow-Origin".into(), "*".into()), ("X".into(), "1".into())],
        body: Vec::new(),
    };
    apply(&r, &request("GET", "/a", "", &[("Origin", "https://app.example.com")], b""), &mut resp);
    assert_eq!(
        headers(&resp),
        [
            ("X", "1"),
            ("access-control-allow-origin", "https://app.example.com"),
            ("access-control-expose-headers", "x-request-id"),
            ("access-control-allow-credentials", "true"),
        ]
    );
    let mut resp = HttpResponse {
        status: 200,
        headers: vec![("access-control-allow-origin".into(), "*".into())],
        body: Vec::new(),
    };
    apply(&r, &request("GET", "/a", "", &[("Origin", "https://evil.example")], b""), &mut resp);
    assert!(resp.headers.is_empty());
}

#[test]
fn function_url_cors_works_like_http_api_cors() {
    let mut r = with_cors(RouteKind::FunctionUrl, "ANY", "/Fn/{proxy+}", &http_cors());
    r.api = "Fn".into();
    let m = Matcher::new(vec![r.clone()]);
    let p = preflight(&m, &request("OPTIONS", "/Fn/x", "", &[("Origin", "https://app.example.com")], b"")).unwrap();
    assert_eq!(p.response.status, 204);
    assert_eq!(p.response.header("access-control-allow-origin"), Some("https://app.example.com"));
    let mut resp = HttpResponse::default();
    apply(&r, &request("GET", "/Fn/x", "", &[("Origin", "https://app.example.com")], b""), &mut resp);
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://app.example.com"));
}
