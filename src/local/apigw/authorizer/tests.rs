use serde_json::json;

use super::*;
use crate::local::apigw::testing::{params, request, route, stamp};

fn token_auth(validation: Option<&str>) -> Authorizer {
    Authorizer {
        name: "TokenAuth".into(),
        function: "AuthFn".into(),
        kind: AuthorizerKind::Token { header: "Authorization".into(), validation: validation.map(str::to_string) },
        identity: vec![IdentitySource::Header("Authorization".into())],
        payload: PayloadVersion::V1,
        simple_responses: false,
    }
}

fn request_auth(payload: PayloadVersion, identity: Vec<IdentitySource>) -> Authorizer {
    Authorizer {
        name: "ReqAuth".into(),
        function: "AuthFn".into(),
        kind: AuthorizerKind::Request,
        identity,
        payload,
        simple_responses: false,
    }
}

fn body(resp: &HttpResponse) -> String {
    String::from_utf8(resp.body.clone()).unwrap()
}

const ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:1234567890/Prod/GET/users/42";

#[test]
fn token_event_carries_the_header_and_the_method_arn() {
    let r = route(RouteKind::Rest, "GET", "/users/{id}");
    let req = request("GET", "/users/42", "", &[("authorization", "Bearer abc")], b"");
    let event = request_event(&token_auth(None), &r, &req).unwrap();
    assert_eq!(event, json!({"type": "TOKEN", "authorizationToken": "Bearer abc", "methodArn": ARN}));
}

fn request_event(auth: &Authorizer, r: &Route, req: &HttpRequest) -> Result<Value, HttpResponse> {
    super::request(auth, r, &params(&[("id", "42")]), req, &stamp())
}

#[test]
fn a_missing_or_empty_identity_is_401_before_any_call() {
    let r = route(RouteKind::Rest, "GET", "/users/{id}");
    for headers in [vec![], vec![("Authorization", "  ")]] {
        let resp = request_event(&token_auth(None), &r, &request("GET", "/users/42", "", &headers, b"")).unwrap_err();
        assert_eq!((resp.status, body(&resp)), (401, r#"{"message":"Unauthorized"}"#.to_string()));
    }
}

#[test]
fn the_validation_expression_must_match_the_whole_token() {
    let r = route(RouteKind::Rest, "GET", "/users/{id}");
    let auth = token_auth(Some("Bearer [a-z]+"));
    let ok = request("GET", "/users/42", "", &[("Authorization", "Bearer abc")], b"");
    assert!(request_event(&auth, &r, &ok).is_ok());
    for bad in ["Basic abc", "Bearer abc1", "xBearer abc"] {
        let req = request("GET", "/users/42", "", &[("Authorization", bad)], b"");
        assert_eq!(request_event(&auth, &r, &req).unwrap_err().status, 401, "{bad}");
    }
}

#[test]
fn rest_request_event_is_the_route_event_with_type_and_method_arn() {
    let r = route(RouteKind::Rest, "GET", "/users/{id}");
    let auth = request_auth(
        PayloadVersion::V1,
        vec![IdentitySource::Header("X-Key".into()), IdentitySource::QueryString("tenant".into())],
    );
    let req = request("GET", "/users/42", "tenant=t1", &[("X-Key", "k")], b"body");
    let event = request_event(&auth, &r, &req).unwrap();
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["methodArn"], ARN);
    assert_eq!(event["resource"], "/users/{id}");
    assert_eq!(event["headers"]["X-Key"], "k");
    assert_eq!(event["queryStringParameters"], json!({"tenant": "t1"}));
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event.get("body"), None);
    assert_eq!(event.get("identitySource"), None);
    let missing = request("GET", "/users/42", "", &[("X-Key", "k")], b"");
    assert_eq!(request_event(&auth, &r, &missing).unwrap_err().status, 401);
}

#[test]
fn http_api_v2_authorizer_event() {
    // The route's integration uses 1.0; the authorizer's own version decides its event's shape.
    let r = route(RouteKind::Http(PayloadVersion::V1), "GET", "/users/{id}");
    let auth = request_auth(
        PayloadVersion::V2,
        vec![IdentitySource::Header("Authorization".into()), IdentitySource::QueryString("k".into())],
    );
    let req = request("GET", "/users/42", "k=1&k=2", &[("Authorization", "t")], b"x");
    let event = request_event(&auth, &r, &req).unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["routeArn"], "arn:aws:execute-api:eu-west-1:123456789012:1234567890/$default/GET/users/42");
    assert_eq!(event["identitySource"], json!(["t", "1,2"]));
    assert_eq!(event["routeKey"], "GET /users/{id}");
    assert_eq!(event["rawPath"], "/users/42");
    assert_eq!(event.get("body"), None);
    assert_eq!(event.get("isBase64Encoded"), None);
}

#[test]
fn http_api_v1_authorizer_event_joins_the_identity() {
    let r = route(RouteKind::Http(PayloadVersion::V2), "GET", "/users/{id}");
    let auth = request_auth(
        PayloadVersion::V1,
        vec![IdentitySource::Header("Authorization".into()), IdentitySource::Header("X-Tenant".into())],
    );
    let req = request("GET", "/users/42", "", &[("Authorization", "t"), ("X-Tenant", "acme")], b"");
    let event = request_event(&auth, &r, &req).unwrap();
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["identitySource"], "t,acme");
    assert_eq!(event["authorizationToken"], "t,acme");
    assert!(event["methodArn"].as_str().unwrap().ends_with("/$default/GET/users/42"));
}

#[test]
fn stage_variables_and_context_as_identity_sources() {
    let mut r = route(RouteKind::Rest, "GET", "/users/{id}");
    let auth = request_auth(
        PayloadVersion::V1,
        vec![IdentitySource::StageVariable("env".into()), IdentitySource::Context("$context.identity.sourceIp".into())],
    );
    let req = request("GET", "/users/42", "", &[], b"");
    assert_eq!(request_event(&auth, &r, &req).unwrap_err().status, 401);
    r.stage_variables.insert("env".into(), "dev".into());
    assert!(request_event(&auth, &r, &req).is_ok());
    let auth = request_auth(PayloadVersion::V1, vec![IdentitySource::Context("nope.missing".into())]);
    assert_eq!(request_event(&auth, &r, &req).unwrap_err().status, 401);
}

fn policy(statements: Value) -> Vec<u8> {
    json!({"principalId": "user-1", "policyDocument": {"Version": "2012-10-17", "Statement": statements}, "context": {"tier": "gold", "n": 1}})
        .to_string()
        .into_bytes()
}

#[test]
fn an_allow_statement_covering_the_arn_allows_with_the_context() {
    let auth = token_auth(None);
    let out = policy(json!([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}]));
    let d = decide(&auth, &out, ARN).unwrap();
    let mut context = Map::new();
    context.insert("tier".into(), "gold".into());
    context.insert("n".into(), 1.into());
    assert_eq!(d, Decision::Allow { principal_id: Some("user-1".into()), context });
}

#[test]
fn wildcards_in_resources_and_actions() {
    let auth = token_auth(None);
    for (action, resource) in [
        ("execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:1234567890/*"),
        ("execute-api:*", "arn:aws:execute-api:*:*:*/Prod/GET/users/*"),
        ("*", "*"),
        ("execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:1234567890/Prod/???/users/42"),
    ] {
        let out = policy(json!({"Action": [action], "Effect": "Allow", "Resource": [resource]}));
        assert!(matches!(decide(&auth, &out, ARN).unwrap(), Decision::Allow { .. }), "{action} {resource}");
    }
}

#[test]
fn no_covering_allow_is_an_implicit_deny() {
    let auth = token_auth(None);
    for statements in [
        json!([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/Prod/POST/*"}]),
        json!([{"Action": "s3:GetObject", "Effect": "Allow", "Resource": "*"}]),
        json!([]),
    ] {
        assert_eq!(
            decide(&auth, &policy(statements.clone()), ARN).unwrap(),
            Decision::Deny { explicit: false },
            "{statements}"
        );
    }
}

#[test]
fn a_covering_deny_wins_over_an_allow() {
    let auth = token_auth(None);
    let out = policy(json!([
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN}
    ]));
    assert_eq!(decide(&auth, &out, ARN).unwrap(), Decision::Deny { explicit: true });
}

#[test]
fn simple_responses() {
    let mut auth = request_auth(PayloadVersion::V2, Vec::new());
    auth.simple_responses = true;
    let allow = decide(&auth, br#"{"isAuthorized": true, "context": {"a": "b"}}"#, ARN).unwrap();
    let Decision::Allow { context, principal_id } = allow else { panic!("{allow:?}") };
    assert_eq!((context["a"].as_str(), principal_id), (Some("b"), None));
    assert_eq!(decide(&auth, br#"{"isAuthorized": false}"#, ARN).unwrap(), Decision::Deny { explicit: false });
    let err = decide(&auth, br#"{"isAuthorized": "yes"}"#, ARN).unwrap_err();
    assert!(err.contains("no boolean isAuthorized"), "{err}");
}

#[test]
fn unreadable_answers_are_errors() {
    let auth = token_auth(None);
    for (out, expected) in [
        ("not json", "not JSON"),
        ("[1]", "instead of an object"),
        (r#"{"principalId": "x"}"#, "without a policyDocument"),
        (r#"{"policyDocument": {}}"#, "has no Statement"),
        (r#"{"policyDocument": {"Statement": []}, "context": 1}"#, "context must be an object"),
    ] {
        let err = decide(&auth, out.as_bytes(), ARN).unwrap_err();
        assert!(err.contains(expected), "{out}: {err}");
    }
}

#[test]
fn wildcard_matching() {
    assert!(wildcard_match("a*c", "abbbc"));
    assert!(wildcard_match("a*", "a/b/c"));
    assert!(wildcard_match("*", ""));
    assert!(wildcard_match("a?c", "abc"));
    assert!(!wildcard_match("a?c", "ac"));
    assert!(!wildcard_match("a*c", "abd"));
    assert!(!wildcard_match("abc", "abcd"));
}

#[test]
fn attach_puts_the_context_where_each_payload_has_it() {
    let mut context = Map::new();
    context.insert("tier".into(), "gold".into());
    let allow = Decision::Allow { principal_id: Some("u".into()), context };
    let mut v1 = json!({"version": "1.0", "requestContext": {}});
    attach(&mut v1, &allow);
    assert_eq!(v1["requestContext"]["authorizer"], json!({"tier": "gold", "principalId": "u"}));
    let mut v2 = json!({"version": "2.0", "requestContext": {}});
    attach(&mut v2, &allow);
    assert_eq!(v2["requestContext"]["authorizer"], json!({"lambda": {"tier": "gold"}}));
    let mut untouched = json!({"version": "1.0", "requestContext": {}});
    attach(&mut untouched, &Decision::Deny { explicit: false });
    assert_eq!(untouched["requestContext"].get("authorizer"), None);
}

#[test]
fn api_gateway_answers_for_deny_and_failure() {
    let cases = [
        (denied(RouteKind::Rest, false), 403, r#"{"message":"User is not authorized to access this resource"}"#),
        (
            denied(RouteKind::Rest, true),
            403,
            r#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#,
        ),
        (denied(RouteKind::Http(PayloadVersion::V2), true), 403, r#"{"message":"Forbidden"}"#),
        (failed(RouteKind::Rest, Some("Unauthorized")), 401, r#"{"message":"Unauthorized"}"#),
        (failed(RouteKind::Http(PayloadVersion::V2), Some("Unauthorized")), 401, r#"{"message":"Unauthorized"}"#),
        (failed(RouteKind::Rest, Some("boom")), 500, r#"{"message":null}"#),
        (failed(RouteKind::Rest, None), 500, r#"{"message":null}"#),
        (failed(RouteKind::Http(PayloadVersion::V1), None), 500, r#"{"message":"Internal Server Error"}"#),
    ];
    for (resp, status, text) in cases {
        assert_eq!((resp.status, body(&resp)), (status, text.to_string()));
    }
}

#[test]
fn method_arn_uses_the_partition_of_the_region() {
    let r = route(RouteKind::Rest, "GET", "/");
    let s = Stamp { region: "cn-north-1", ..stamp() };
    assert_eq!(
        method_arn(&r, &request("get", "/", "", &[], b""), &s),
        "arn:aws-cn:execute-api:cn-north-1:123456789012:1234567890/Prod/GET/"
    );
}
