use super::*;
use crate::project::{LoadOptions, load};

/// Loads `template` (the body after the Transform line) as a project in a temp dir.
fn project(template: &str) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n{template}");
    std::fs::write(dir.path().join("template.yaml"), text).unwrap();
    std::fs::write(dir.path().join("api.yaml"), "openapi: '3.0.1'\n").unwrap();
    let root = dir.path().canonicalize().unwrap();
    let project = load(&LoadOptions { template: root.join("template.yaml"), root, ..LoadOptions::default() }).unwrap();
    (dir, project)
}

fn table(template: &str) -> RouteTable {
    let (_dir, p) = project(template);
    routes(&p).unwrap()
}

fn error(template: &str) -> String {
    let (_dir, p) = project(template);
    routes(&p).unwrap_err().to_string()
}

fn notes(t: &RouteTable) -> String {
    t.notes.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// `METHOD path -> function (api, stage)` per route.
fn summary(t: &RouteTable) -> Vec<String> {
    t.routes.iter().map(|r| format!("{} {} -> {} ({}, {})", r.method, r.path, r.function, r.api, r.stage)).collect()
}

const FN: &str = "    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: app.h\n      InlineCode: x\n";

#[test]
fn api_events_go_to_the_implicit_rest_api_with_stage_prod() {
    let t = table(&format!(
        "Resources:\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: '/users/{{id}}/', Method: get}}\n        Any:\n          Type: Api\n          Properties: {{Path: '/{{proxy+}}', Method: any}}\n        Sqs:\n          Type: SQS\n          Properties: {{Queue: arn:aws:sqs:us-east-1:1:q}}\n"
    ));
    assert_eq!(
        summary(&t),
        ["GET /users/{id} -> HelloFn (ServerlessRestApi, Prod)", "ANY /{proxy+} -> HelloFn (ServerlessRestApi, Prod)"]
    );
    let r = &t.routes[0];
    assert_eq!(r.kind, RouteKind::Rest);
    assert_eq!(r.segments, [Segment::Exact("users".into()), Segment::Param("id".into())]);
    assert_eq!((r.cors.as_ref(), r.authorizer.as_ref()), (None, None));
    assert!(t.notes.is_empty(), "{}", notes(&t));
}

#[test]
fn http_api_events_default_to_payload_2_and_the_default_stage() {
    let t = table(&format!(
        "Resources:\n  HelloFn:\n{FN}      Events:\n        V2:\n          Type: HttpApi\n          Properties: {{Path: /a, Method: POST}}\n        V1:\n          Type: HttpApi\n          Properties: {{Path: /b, Method: get, PayloadFormatVersion: '1.0'}}\n        Catch:\n          Type: HttpApi\n"
    ));
    assert_eq!(
        summary(&t),
        [
            "POST /a -> HelloFn (ServerlessHttpApi, $default)",
            "GET /b -> HelloFn (ServerlessHttpApi, $default)",
            "ANY $default -> HelloFn (ServerlessHttpApi, $default)",
        ]
    );
    let kinds: Vec<RouteKind> = t.routes.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [RouteKind::Http(PayloadVersion::V2), RouteKind::Http(PayloadVersion::V1), RouteKind::Http(PayloadVersion::V2)]
    );
    assert!(t.routes[2].is_default());
}

#[test]
fn a_bad_payload_format_version_is_an_error() {
    let e = error(&format!(
        "Resources:\n  HelloFn:\n{FN}      Events:\n        E:\n          Type: HttpApi\n          Properties: {{Path: /a, Method: GET, PayloadFormatVersion: '3.0'}}\n"
    ));
    assert!(e.contains("template.yaml: resource `HelloFn`: event `E`: PayloadFormatVersion `3.0`"), "{e}");
    assert!(e.contains("use \"1.0\" or \"2.0\""), "{e}");
}

#[test]
fn explicit_rest_api_settings() {
    let t = table(&format!(
        r#"Parameters:
  Env: {{Type: String, Default: dev}}
Resources:
  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Env
      Variables: {{table: !Sub "users-${{Env}}", n: 3, arn: !GetAtt HelloFn.Arn}}
      BinaryMediaTypes: [image~1png, "*~1*"]
      Cors:
        AllowOrigin: "'https://app.example.com'"
        AllowHeaders: "'Content-Type'"
        AllowCredentials: true
        MaxAge: "'600'"
  HelloFn:
{FN}      Events:
        Get:
          Type: Api
          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}
"#
    ));
    let r = &t.routes[0];
    assert_eq!((r.api.as_str(), r.stage.as_str()), ("MyApi", "dev"));
    assert_eq!(
        r.stage_variables.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        ["table=users-dev", "n=3"]
    );
    assert_eq!(r.binary_media_types, ["image/png", "*/*"]);
    assert_eq!(
        r.cors,
        Some(Cors::Rest(RestCors {
            allow_origin: "https://app.example.com".into(),
            allow_methods: None,
            allow_headers: Some("Content-Type".into()),
            allow_credentials: Some("true".into()),
            max_age: Some("600".into()),
        }))
    );
    assert!(
        notes(&t).contains("MyApi: Variables.arn is `!GetAtt [\"HelloFn\",\"Arn\"]`; it is left out locally"),
        "{}",
        notes(&t)
    );
}

#[test]
fn globals_api_applies_to_the_implicit_api() {
    let t = table(&format!(
        "Globals:\n  Api:\n    Cors: \"'*'\"\n    BinaryMediaTypes: [application~1pdf]\nResources:\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET}}\n"
    ));
    let r = &t.routes[0];
    assert_eq!(r.stage, "Prod");
    assert_eq!(r.binary_media_types, ["application/pdf"]);
    let Some(Cors::Rest(c)) = &r.cors else { panic!("{:?}", r.cors) };
    assert_eq!((c.allow_origin.as_str(), c.allow_methods.as_ref()), ("*", None));
}

#[test]
fn an_unquoted_cors_value_is_an_error_with_the_fix() {
    let e = error(&format!(
        "Globals:\n  Api:\n    Cors:\n      AllowOrigin: '*'\nResources:\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET}}\n"
    ));
    assert!(e.contains("resource `ServerlessRestApi`: Cors.AllowOrigin is `*`"), "{e}");
    assert!(e.contains("e.g. \"'*'\""), "{e}");
}

#[test]
fn explicit_http_api_settings() {
    let t = table(&format!(
        r#"Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: v1
      StageVariables: {{mode: test}}
      CorsConfiguration:
        AllowOrigins: [https://a.example]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-id]
        AllowCredentials: true
        MaxAge: 60
  Open:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration: true
  HelloFn:
{FN}      Events:
        A:
          Type: HttpApi
          Properties: {{Path: /a, Method: GET, ApiId: !Ref Http}}
        B:
          Type: HttpApi
          Properties: {{Path: /b, Method: GET, ApiId: Open}}
"#
    ));
    let a = &t.routes[0];
    assert_eq!((a.api.as_str(), a.stage.as_str()), ("Http", "v1"));
    assert_eq!(a.stage_variables.get("mode").map(String::as_str), Some("test"));
    assert_eq!(
        a.cors,
        Some(Cors::Http(HttpCors {
            allow_origins: vec!["https://a.example".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into()],
            expose_headers: vec!["x-id".into()],
            allow_credentials: true,
            max_age: Some(60),
        }))
    );
    let b = &t.routes[1];
    assert_eq!((b.api.as_str(), b.stage.as_str()), ("Open", "$default"));
    assert_eq!(b.cors, Some(Cors::Http(HttpCors { allow_origins: vec!["*".into()], ..HttpCors::default() })));
}

#[test]
fn a_rest_api_id_naming_nothing_is_an_error_with_the_fix() {
    let e = error(&format!(
        "Resources:\n  MyApi:\n    Type: AWS::Serverless::Api\n    Properties: {{StageName: Prod}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: MyAPi}}\n"
    ));
    assert!(e.contains("template.yaml: function `HelloFn` event `Get` has RestApiId `MyAPi`"), "{e}");
    assert!(e.contains("not a resource in the template (did you mean `MyApi`?)"), "{e}");
    assert!(
        e.contains("declare an AWS::Serverless::Api named `MyAPi`, or remove RestApiId to use the implicit API"),
        "{e}"
    );
}

#[test]
fn an_api_id_of_the_wrong_kind_is_an_error() {
    let e = error(&format!(
        "Resources:\n  Http:\n    Type: AWS::Serverless::HttpApi\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref Http}}\n"
    ));
    assert!(e.contains("has RestApiId `Http`, which is an AWS::Serverless::HttpApi"), "{e}");
    assert!(e.contains("an event of type Api needs an AWS::Serverless::Api"), "{e}");
}

#[test]
fn a_rest_api_without_a_stage_name_is_an_error() {
    let e = error(&format!(
        "Resources:\n  MyApi:\n    Type: AWS::Serverless::Api\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert!(e.contains("resource `MyApi`: an AWS::Serverless::Api needs a StageName"), "{e}");
}

#[test]
fn paths_known_only_after_deploy_are_skipped_with_a_note_and_parameters_resolve() {
    let t = table(&format!(
        "Parameters:\n  Prefix: {{Type: String, Default: v1}}\nResources:\n  HelloFn:\n{FN}      Events:\n        Dyn:\n          Type: Api\n          Properties: {{Path: !GetAtt Thing.Path, Method: GET}}\n        Param:\n          Type: Api\n          Properties: {{Path: !Sub '/${{Prefix}}/items', Method: GET}}\n        Bad:\n          Type: Api\n          Properties: {{Path: '/files/{{name}}.json', Method: GET}}\n  Thing:\n    Type: AWS::SSM::Parameter\n    Properties: {{Type: String, Value: x}}\n"
    ));
    assert_eq!(summary(&t), ["GET /v1/items -> HelloFn (ServerlessRestApi, Prod)"]);
    let n = notes(&t);
    assert!(n.contains("HelloFn: event `Dyn`: Path is `!GetAtt [\"Thing\",\"Path\"]`, known only after deploy; the route is not served"), "{n}");
    assert!(n.contains("event `Bad`: path `/files/{name}.json`: `{name}.json` mixes text and a parameter"), "{n}");
}

#[test]
fn a_missing_path_on_an_api_event_is_an_error() {
    let e = error(&format!(
        "Resources:\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Method: GET}}\n"
    ));
    assert!(e.contains("resource `HelloFn`: event `Get` of type Api has no Path; add one"), "{e}");
}

const AUTH_FN: &str = "  AuthFn:\n    Type: AWS::Serverless::Function\n    Properties: {Runtime: python3.12, Handler: a.h, InlineCode: x}\n";

#[test]
fn rest_lambda_authorizers_default_and_per_event() {
    let t = table(&format!(
        r#"Resources:
{AUTH_FN}  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      Auth:
        DefaultAuthorizer: Tok
        Authorizers:
          Tok:
            FunctionArn: !GetAtt AuthFn.Arn
            Identity: {{Header: X-Token, ValidationExpression: 'Bearer .*'}}
          Req:
            FunctionPayloadType: REQUEST
            FunctionArn: !Sub ${{AuthFn.Arn}}
            Identity: {{Headers: [X-Key], QueryStrings: [tenant], StageVariables: [env], Context: [identity.sourceIp]}}
          Pool:
            UserPoolArn: arn:aws:cognito-idp:us-east-1:1:userpool/x
  HelloFn:
{FN}      Events:
        Default:
          Type: Api
          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}
        Own:
          Type: Api
          Properties: {{Path: /b, Method: GET, RestApiId: !Ref MyApi, Auth: {{Authorizer: Req}}}}
        Open:
          Type: Api
          Properties: {{Path: /c, Method: GET, RestApiId: !Ref MyApi, Auth: {{Authorizer: NONE}}}}
        Cognito:
          Type: Api
          Properties: {{Path: /d, Method: GET, RestApiId: !Ref MyApi, Auth: {{Authorizer: Pool}}}}
"#
    ));
    let tok = t.routes[0].authorizer.as_ref().unwrap();
    assert_eq!((tok.name.as_str(), tok.function.as_str()), ("Tok", "AuthFn"));
    assert_eq!(tok.kind, AuthorizerKind::Token { header: "X-Token".into(), validation: Some("Bearer .*".into()) });
    assert_eq!(tok.identity, [IdentitySource::Header("X-Token".into())]);
    assert_eq!(tok.payload, PayloadVersion::V1);
    assert_eq!(t.routes[0].preflight_authorizer.as_ref().map(|a| a.name.as_str()), Some("Tok"));
    let req = t.routes[1].authorizer.as_ref().unwrap();
    assert_eq!(req.kind, AuthorizerKind::Request);
    assert_eq!(
        req.identity,
        [
            IdentitySource::Header("X-Key".into()),
            IdentitySource::QueryString("tenant".into()),
            IdentitySource::StageVariable("env".into()),
            IdentitySource::Context("identity.sourceIp".into()),
        ]
    );
    assert_eq!(t.routes[2].authorizer, None);
    assert_eq!(t.routes[3].authorizer, None);
    assert!(
        notes(&t)
            .contains("MyApi: authorizer `Pool` is a Cognito user pool authorizer, which lamb does not run locally"),
        "{}",
        notes(&t)
    );
}

#[test]
fn preflight_skips_the_authorizer_when_asked() {
    let t = table(&format!(
        "Resources:\n{AUTH_FN}  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        DefaultAuthorizer: Tok\n        AddDefaultAuthorizerToCorsPreflight: false\n        Authorizers:\n          Tok: {{FunctionArn: !GetAtt AuthFn.Arn}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert!(t.routes[0].authorizer.is_some());
    assert_eq!(t.routes[0].preflight_authorizer, None);
}

#[test]
fn http_api_lambda_authorizer() {
    let t = table(&format!(
        r#"Resources:
{AUTH_FN}  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Lam
        Authorizers:
          Lam:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: 2.0
            EnableSimpleResponses: true
            Identity: {{Headers: [Authorization]}}
          Jwt:
            JwtConfiguration: {{issuer: https://x, audience: [a]}}
            IdentitySource: $request.header.Authorization
  HelloFn:
{FN}      Events:
        A:
          Type: HttpApi
          Properties: {{Path: /a, Method: GET, ApiId: !Ref Http}}
        B:
          Type: HttpApi
          Properties: {{Path: /b, Method: GET, ApiId: !Ref Http, Auth: {{Authorizer: Jwt}}}}
"#
    ));
    let a = t.routes[0].authorizer.as_ref().unwrap();
    assert_eq!((a.payload, a.simple_responses), (PayloadVersion::V2, true));
    assert_eq!(a.identity, [IdentitySource::Header("Authorization".into())]);
    assert_eq!(t.routes[0].preflight_authorizer, None, "HTTP APIs answer preflights themselves");
    assert_eq!(t.routes[1].authorizer, None);
    assert!(notes(&t).contains("Http: authorizer `Jwt` is a JWT authorizer"), "{}", notes(&t));
}

#[test]
fn an_http_authorizer_without_payload_version_is_an_error() {
    let e = error(&format!(
        "Resources:\n{AUTH_FN}  Http:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n      Auth:\n        Authorizers:\n          Lam: {{FunctionArn: !GetAtt AuthFn.Arn}}\n  HelloFn:\n{FN}      Events:\n        A:\n          Type: HttpApi\n          Properties: {{Path: /a, Method: GET, ApiId: !Ref Http}}\n"
    ));
    assert!(e.contains("resource `Http`: authorizer `Lam` needs AuthorizerPayloadFormatVersion"), "{e}");
}

#[test]
fn an_unknown_authorizer_name_is_an_error_with_a_suggestion() {
    let e = error(&format!(
        "Resources:\n{AUTH_FN}  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        Authorizers:\n          TokenAuth: {{FunctionArn: !GetAtt AuthFn.Arn}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi, Auth: {{Authorizer: TokenAuht}}}}\n"
    ));
    assert!(e.contains("function `HelloFn` event `Get` uses authorizer `TokenAuht`"), "{e}");
    assert!(e.contains("API `MyApi` does not define in Auth.Authorizers (did you mean `TokenAuth`?)"), "{e}");
    let e = error(&format!(
        "Resources:\n{AUTH_FN}  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        DefaultAuthorizer: Nope\n        Authorizers:\n          TokenAuth: {{FunctionArn: !GetAtt AuthFn.Arn}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert!(e.contains("API `MyApi` Auth.DefaultAuthorizer uses authorizer `Nope`"), "{e}");
}

#[test]
fn an_authorizer_function_outside_the_template_is_noted() {
    let t = table(&format!(
        "Resources:\n  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        DefaultAuthorizer: Ext\n        Authorizers:\n          Ext: {{FunctionArn: 'arn:aws:lambda:us-east-1:1:function:elsewhere'}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert_eq!(t.routes[0].authorizer, None);
    assert!(notes(&t).contains("authorizer `Ext` has FunctionArn `arn:aws:lambda:us-east-1:1:function:elsewhere`, which is not a function of this template"), "{}", notes(&t));
}

#[test]
fn an_authorizer_arn_naming_a_function_by_its_function_name_resolves() {
    let t = table(&format!(
        "Resources:\n  AuthFn:\n    Type: AWS::Serverless::Function\n    Properties: {{FunctionName: my-auth, Runtime: python3.12, Handler: a.h, InlineCode: x}}\n  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        DefaultAuthorizer: A\n        Authorizers:\n          A: {{FunctionArn: 'arn:aws:lambda:us-east-1:1:function:my-auth'}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert_eq!(t.routes[0].authorizer.as_ref().map(|a| a.function.as_str()), Some("AuthFn"));
}

#[test]
fn function_urls_are_served_under_the_function_prefix() {
    let t = table(&format!(
        "Resources:\n  HelloFn:\n{FN}      FunctionUrlConfig:\n        AuthType: AWS_IAM\n        Cors: {{AllowOrigins: ['*']}}\n  PlainFn:\n    Type: AWS::Lambda::Function\n    Properties: {{Runtime: python3.12, Handler: a.h, Role: arn:aws:iam::1:role/r, Code: {{ZipFile: x}}}}\n  PlainUrl:\n    Type: AWS::Lambda::Url\n    Properties: {{AuthType: NONE, TargetFunctionArn: !GetAtt PlainFn.Arn}}\n"
    ));
    assert_eq!(
        summary(&t),
        [
            "ANY /HelloFn -> HelloFn (HelloFn, $default)",
            "ANY /HelloFn/{proxy+} -> HelloFn (HelloFn, $default)",
            "ANY /PlainFn -> PlainFn (PlainFn, $default)",
            "ANY /PlainFn/{proxy+} -> PlainFn (PlainFn, $default)",
        ]
    );
    assert!(t.routes.iter().all(|r| r.kind == RouteKind::FunctionUrl));
    assert_eq!(t.routes[0].url_prefix().as_deref(), Some("/HelloFn"));
    assert_eq!(t.routes[0].cors, Some(Cors::Http(HttpCors { allow_origins: vec!["*".into()], ..HttpCors::default() })));
    assert!(notes(&t).contains("HelloFn: the function URL's AuthType AWS_IAM is not checked locally"), "{}", notes(&t));
}

#[test]
fn a_false_condition_leaves_an_api_out() {
    let t = table(&format!(
        "Conditions:\n  Never: !Equals [a, b]\nResources:\n  MyApi:\n    Type: AWS::Serverless::Api\n    Condition: Never\n    Properties: {{StageName: Prod}}\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert!(t.routes.is_empty());
    assert!(notes(&t).contains("MyApi: its Condition is false"), "{}", notes(&t));
}

#[test]
fn the_same_method_and_path_twice_is_noted() {
    let t = table(&format!(
        "Resources:\n  HelloFn:\n{FN}      Events:\n        A:\n          Type: Api\n          Properties: {{Path: /a, Method: GET}}\n  OtherFn:\n{FN}      Events:\n        B:\n          Type: HttpApi\n          Properties: {{Path: /a/, Method: get}}\n"
    ));
    assert_eq!(t.routes.len(), 2);
    assert!(
        notes(&t).contains("OtherFn: `GET /a` of function `OtherFn` (ServerlessHttpApi) is also declared for function `HelloFn` (ServerlessRestApi); locally the first is served"),
        "{}",
        notes(&t)
    );
}

#[test]
fn definition_uri_routes_are_noted() {
    let t = table(&format!(
        "Resources:\n  MyApi:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      DefinitionUri: api.yaml\n  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: /a, Method: GET, RestApiId: !Ref MyApi}}\n"
    ));
    assert_eq!(t.routes.len(), 1);
    assert!(
        notes(&t).contains("MyApi: routes declared only in its DefinitionUri file are not served locally"),
        "{}",
        notes(&t)
    );
}

const OPENAPI_REST: &str = r#"
  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      Auth:
        DefaultAuthorizer: Tok
        Authorizers:
          Tok: {FunctionArn: !GetAtt AuthFn.Arn}
          Other: {FunctionArn: !GetAtt AuthFn.Arn, FunctionPayloadType: REQUEST, Identity: {Headers: [X]}}
      DefinitionBody:
        openapi: '3.0.1'
        paths:
          /users/{id}:
            parameters: [{name: id, in: path}]
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${HelloFn.Arn}/invocations
            delete:
              security: [{Other: []}]
              x-amazon-apigateway-integration:
                type: AWS_PROXY
                uri: 'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:hello-fn/invocations'
            put:
              security: []
              x-amazon-apigateway-integration:
                type: aws_proxy
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${HelloFn.Arn}/invocations
            options:
              x-amazon-apigateway-integration: {type: mock}
          /mocked:
            get:
              x-amazon-apigateway-integration: {type: mock}
          /elsewhere:
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration:
                type: aws_proxy
                uri: 'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:elsewhere/invocations'
"#;

#[test]
fn rest_definition_body_routes() {
    let t = table(&format!(
        "Resources:\n{AUTH_FN}{OPENAPI_REST}  HelloFn:\n    Type: AWS::Serverless::Function\n    Properties: {{FunctionName: hello-fn, Runtime: python3.12, Handler: a.h, InlineCode: x}}\n"
    ));
    assert_eq!(
        summary(&t),
        [
            "GET /users/{id} -> HelloFn (MyApi, Prod)",
            "DELETE /users/{id} -> HelloFn (MyApi, Prod)",
            "PUT /users/{id} -> HelloFn (MyApi, Prod)",
        ]
    );
    let auth: Vec<Option<&str>> = t.routes.iter().map(|r| r.authorizer.as_ref().map(|a| a.name.as_str())).collect();
    assert_eq!(auth, [Some("Tok"), Some("Other"), None]);
    let n = notes(&t);
    assert!(n.contains("MyApi: DefinitionBody `GET /mocked`: integration type `mock` is not a Lambda proxy"), "{n}");
    assert!(n.contains("DefinitionBody `ANY /elsewhere`: integration uri"), "{n}");
    assert!(!n.contains("OPTIONS"), "{n}");
}

#[test]
fn an_event_and_the_definition_body_declaring_the_same_route_serve_it_once() {
    let t = table(&format!(
        "Resources:\n{AUTH_FN}{OPENAPI_REST}  HelloFn:\n{FN}      Events:\n        Get:\n          Type: Api\n          Properties: {{Path: '/users/{{id}}', Method: get, RestApiId: !Ref MyApi}}\n"
    ));
    let gets = t.routes.iter().filter(|r| r.method == "GET" && r.path == "/users/{id}").count();
    assert_eq!(gets, 1);
    assert!(!notes(&t).contains("also declared"), "{}", notes(&t));
}

#[test]
fn http_definition_body_routes_with_payload_versions() {
    let t = table(&format!(
        r#"Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: '3.0.1'
        paths:
          /v1:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                payloadFormatVersion: '1.0'
                uri: !GetAtt HelloFn.Arn
          $default:
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration:
                type: aws_proxy
                uri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{HelloFn.Arn}}/invocations
  HelloFn:
{FN}"#
    ));
    assert_eq!(summary(&t), ["GET /v1 -> HelloFn (Http, $default)", "ANY $default -> HelloFn (Http, $default)"]);
    assert_eq!(t.routes[0].kind, RouteKind::Http(PayloadVersion::V1));
    assert_eq!(t.routes[1].kind, RouteKind::Http(PayloadVersion::V2));
    assert!(t.routes[1].is_default());
}

#[test]
fn path_templates() {
    assert_eq!(parse_path("/"), Ok(vec![]));
    assert_eq!(
        parse_path("/a/{b}/{c+}"),
        Ok(vec![Segment::Exact("a".into()), Segment::Param("b".into()), Segment::Greedy("c".into())])
    );
    assert_eq!(parse_path("/a/"), Ok(vec![Segment::Exact("a".into())]));
    for (bad, why) in [
        ("a", "does not start with `/`"),
        ("/a//b", "empty segment"),
        ("/{p+}/x", "must be the last segment"),
        ("/{}", "malformed parameter"),
        ("/x{y}", "mixes text and a parameter"),
    ] {
        let e = parse_path(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
