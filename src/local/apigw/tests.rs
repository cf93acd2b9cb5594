//! The pieces together, from a template to the answer, the way the server will drive them.

use serde_json::json;

use super::authorizer::{self, Decision};
use super::event::build_event;
use super::matcher::Matcher;
use super::response::{integration_error, parse_response};
use super::routes::routes;
use super::testing::{request, stamp};
use super::{cors, response};
use crate::project::{LoadOptions, load};

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.12, Handler: app.h, InlineCode: x}
Resources:
  AuthFn:
    Type: AWS::Serverless::Function
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration: {AllowOrigins: ['https://app.example'], AllowMethods: [GET]}
      Auth:
        Authorizers:
          Simple:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: '2.0'
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization]}
  UsersFn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: '/users/{id}', Method: GET, ApiId: !Ref Http, Auth: {Authorizer: Simple}}
        Legacy:
          Type: Api
          Properties: {Path: '/legacy/{proxy+}', Method: ANY}
"#;

fn matcher() -> (tempfile::TempDir, Matcher) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.yaml"), TEMPLATE).unwrap();
    let root = dir.path().canonicalize().unwrap();
    let project = load(&LoadOptions { template: root.join("template.yaml"), root, ..LoadOptions::default() }).unwrap();
    let table = routes(&project).unwrap();
    assert!(table.notes.is_empty(), "{:?}", table.notes);
    (dir, Matcher::new(table.routes))
}

#[test]
fn an_authorized_http_api_request_from_template_to_answer() {
    let (_dir, m) = matcher();
    let req = request("GET", "/users/7", "", &[("Authorization", "t"), ("Origin", "https://app.example")], b"");
    assert!(cors::preflight(&m, &req).is_none());
    let found = m.find(&req.method, &req.path).unwrap();
    assert_eq!(found.route.function, "UsersFn");
    let auth = found.route.authorizer.as_ref().unwrap();
    assert_eq!(auth.function, "AuthFn");
    let auth_event = authorizer::request(auth, found.route, &found.params, &req, &stamp()).unwrap();
    assert_eq!(auth_event["identitySource"], json!(["t"]));
    let decision = authorizer::decide(auth, br#"{"isAuthorized": true, "context": {"user": "u7"}}"#, "").unwrap();
    let mut event = build_event(found.route, &found.params, &req, &stamp());
    authorizer::attach(&mut event, &decision);
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["requestContext"]["authorizer"], json!({"lambda": {"user": "u7"}}));
    let mut answer = parse_response(found.route, &req, br#"{"id": "7"}"#).unwrap();
    cors::apply(found.route, &req, &mut answer);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"{"id":"7"}"#);
    assert_eq!(answer.header("access-control-allow-origin"), Some("https://app.example"));
}

#[test]
fn the_ways_a_request_is_refused() {
    let (_dir, m) = matcher();
    let preflight = cors::preflight(&m, &request("OPTIONS", "/users/7", "", &[("Origin", "https://app.example")], b""));
    assert_eq!(preflight.unwrap().response.status, 204);
    assert_eq!(m.find("POST", "/nowhere"), None);
    assert_eq!(m.no_match().status, 403, "the template has a REST API");
    let req = request("GET", "/users/7", "", &[], b"");
    let found = m.find(&req.method, &req.path).unwrap();
    let auth = found.route.authorizer.as_ref().unwrap();
    assert_eq!(authorizer::request(auth, found.route, &found.params, &req, &stamp()).unwrap_err().status, 401);
    let no = authorizer::decide(auth, br#"{"isAuthorized": false}"#, "").unwrap();
    assert_eq!(no, Decision::Deny { explicit: false });
    assert_eq!(authorizer::denied(found.route.kind, false).status, 403);
    let legacy = m.find("DELETE", "/legacy/a/b").unwrap();
    assert_eq!(legacy.route.stage, "Prod");
    let err = parse_response(legacy.route, &req, br#"{"statusCode": 200, "oops": 1}"#).unwrap_err();
    assert!(err.contains("oops"), "{err}");
    assert_eq!(integration_error(legacy.route.kind), response::message(502, "Internal server error"));
}
