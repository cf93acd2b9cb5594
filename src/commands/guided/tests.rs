use std::collections::VecDeque;

use super::*;

/// Answers typed in order, and everything asked and said.
struct Script {
    answers: VecDeque<&'static str>,
    prompts: Vec<String>,
    secret_prompts: Vec<String>,
    said: Vec<String>,
}

impl Script {
    fn new(answers: &[&'static str]) -> Script {
        Script { answers: answers.iter().copied().collect(), prompts: vec![], secret_prompts: vec![], said: vec![] }
    }
}

impl Ask for Script {
    fn line(&mut self, prompt: &str, secret: bool) -> Result<Option<String>, GuidedError> {
        self.prompts.push(prompt.to_string());
        if secret {
            self.secret_prompts.push(prompt.to_string());
        }
        Ok(self.answers.pop_front().map(str::to_string))
    }

    fn say(&mut self, text: &str) {
        self.said.push(text.to_string());
    }
}

fn param(name: &str, default: Option<&str>, allowed: &[&str], no_echo: bool) -> Parameter {
    Parameter {
        name: name.into(),
        kind: "String".into(),
        default: default.map(str::to_string),
        allowed_values: allowed.iter().map(|s| s.to_string()).collect(),
        no_echo,
        description: None,
    }
}

fn questions() -> Questions {
    Questions {
        stack_name: "hello-app".into(),
        region: "us-east-1".into(),
        parameters: vec![
            (param("Stage", Some("dev"), &["dev", "prod"], false), None),
            (param("Greeting", None, &[], false), Some("hi".into())),
        ],
        confirm_changeset: false,
        capabilities: vec!["CAPABILITY_IAM".into(), "CAPABILITY_AUTO_EXPAND".into()],
        disable_rollback: false,
        unauthenticated: vec![],
        s3_bucket: None,
        config_file: "samconfig.toml".into(),
        config_env: "default".into(),
    }
}

#[test]
fn enter_everywhere_keeps_every_current_value_and_saves_to_the_current_file() {
    let mut s = Script::new(&[""; 10]);
    let a = interview(&mut s, &questions()).unwrap();
    assert_eq!(
        s.prompts,
        [
            "Stack Name [hello-app]: ",
            "AWS Region [us-east-1]: ",
            "Parameter Stage [dev]: ",
            "Parameter Greeting [hi]: ",
            "Confirm changes before deploy [y/N]: ",
            "Allow IAM role creation [Y/n]: ",
            "Disable rollback [y/N]: ",
            "Save arguments to configuration file [Y/n]: ",
            "Configuration file [samconfig.toml]: ",
            "Configuration environment [default]: ",
        ]
    );
    let d = &a.deploy;
    assert_eq!(
        (d.stack_name.as_str(), d.region.as_deref(), d.s3_prefix.as_str()),
        ("hello-app", Some("us-east-1"), "hello-app")
    );
    assert_eq!(d.parameter_overrides, [("Stage".into(), "dev".into()), ("Greeting".into(), "hi".into())]);
    assert!(!d.confirm_changeset && !d.disable_rollback);
    assert_eq!(d.capabilities, ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]);
    assert_eq!(a.save, Some(("samconfig.toml".into(), "default".into())));
}

#[test]
fn an_answer_that_is_not_valid_is_asked_again_with_the_reason() {
    let mut s = Script::new(&[
        "9lives",
        "my-app", // stack name
        "mars-1",
        "eu-west-2", // region
        "staging",
        "prod", // AllowedValues
        "",
        "maybe",
        "y", // confirm: gibberish, then yes
        "",
        "Y",
        "", // IAM, rollback... then save
        "config.yaml",
        "prod.toml",
        "bad env!",
        "prod",
    ]);
    let a = interview(&mut s, &questions()).unwrap();
    let said = s.said.join("\n");
    for why in [
        "`9lives` is not a stack name",
        "`mars-1` is not an AWS region",
        "`staging` is not one of the AllowedValues of Stage (dev, prod)",
        "`maybe` is not an answer to a yes/no question",
        "`config.yaml` is not a .toml file",
        "`bad env!` is not an environment name",
    ] {
        assert!(said.contains(why), "{why} in\n{said}");
    }
    assert_eq!(a.deploy.stack_name, "my-app");
    assert_eq!(a.deploy.region.as_deref(), Some("eu-west-2"));
    assert_eq!(a.deploy.parameter_overrides[0], ("Stage".into(), "prod".into()));
    assert!(a.deploy.confirm_changeset);
    assert_eq!(a.save, Some(("prod.toml".into(), "prod".into())));
}

#[test]
fn secrets_are_read_without_echo_and_never_saved() {
    let mut q = questions();
    q.parameters = vec![(param("DbPassword", None, &[], true), Some("old-secret".into()))];
    let mut s = Script::new(&["", "", "s3cret", "", "", "", "", "", ""]);
    let a = interview(&mut s, &q).unwrap();
    assert_eq!(s.secret_prompts, ["Parameter DbPassword [*****]: "]);
    assert_eq!(a.deploy.parameter_overrides, [("DbPassword".into(), "s3cret".into())]);
    assert_eq!(a.secret_parameters, ["DbPassword"]);
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("samconfig.toml");
    save(&file, "default", &a).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("s3cret") && !text.contains("DbPassword"), "{text}");
    assert!(text.contains("stack_name = \"hello-app\""), "{text}");
    // Enter keeps the current secret.
    let mut s = Script::new(&["", "", "", "", "", "", "n"]);
    let a = interview(&mut s, &q).unwrap();
    assert_eq!(a.deploy.parameter_overrides, [("DbPassword".into(), "old-secret".into())]);
}

#[test]
fn without_iam_role_creation_the_capabilities_are_asked() {
    let mut s = Script::new(&[
        "",
        "",
        "",
        "",
        "",
        "n",
        "CAPABILITY_FOO",
        "CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND",
        "",
        "n",
    ]);
    let a = interview(&mut s, &questions()).unwrap();
    assert!(s.prompts.contains(&"Capabilities [CAPABILITY_AUTO_EXPAND]: ".to_string()), "{:?}", s.prompts);
    assert!(s.said.iter().any(|l| l.contains("`CAPABILITY_FOO` is not a capability")), "{:?}", s.said);
    assert_eq!(a.deploy.capabilities, ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]);
    assert_eq!(a.save, None);
}

#[test]
fn a_function_without_authorization_must_be_accepted() {
    let mut q = questions();
    q.unauthenticated = vec!["HelloFunction".into()];
    let mut s = Script::new(&["", "", "", "", "", "", "", ""]);
    let e = interview(&mut s, &q).unwrap_err();
    assert!(matches!(&e, GuidedError::Unauthorized { function } if function == "HelloFunction"), "{e}");
    assert!(s.prompts.contains(&"HelloFunction may not have authorization defined, Is this okay? [y/N]: ".to_string()));
    let mut s = Script::new(&["", "", "", "", "", "", "", "y", "n"]);
    assert!(interview(&mut s, &q).is_ok());
}

#[test]
fn input_that_ends_early_saves_nothing() {
    let mut s = Script::new(&["", ""]);
    assert!(matches!(interview(&mut s, &questions()), Err(GuidedError::Eof)));
}

#[test]
fn default_stack_names_come_from_the_directory() {
    assert_eq!(default_stack_name("my_app"), "my-app");
    assert_eq!(default_stack_name("hello"), "hello");
    assert_eq!(default_stack_name("42"), "lamb-app");
}

#[test]
fn functions_without_authorization_as_sam_finds_them() {
    let doc: Value = serde_norway::from_str(
        r#"
Globals:
  HttpApi: {Auth: {DefaultAuthorizer: Jwt}}
Resources:
  Open:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {Path: /, Method: get}}
  EventAuth:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {Path: /a, Method: get, Auth: {Authorizer: MyAuth}}}
  ExplicitNone:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {Path: /b, Method: get, RestApiId: !Ref Secured, Auth: {Authorizer: NONE}}}
  OnSecuredApi:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {Path: /c, Method: get, RestApiId: !Ref Secured}}
  OnPlainApi:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {Path: /d, Method: get, RestApiId: !Ref Plain}}
  HttpWithGlobalAuth:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: HttpApi}
  OpenUrl:
    Type: AWS::Serverless::Function
    Properties: {FunctionUrlConfig: {AuthType: NONE}}
  IamUrl:
    Type: AWS::Serverless::Function
    Properties: {FunctionUrlConfig: {AuthType: AWS_IAM}, Events: {Q: {Type: SQS, Properties: {Queue: q}}}}
  Secured:
    Type: AWS::Serverless::Api
    Properties: {StageName: Prod, Auth: {DefaultAuthorizer: MyAuth}}
  Plain:
    Type: AWS::Serverless::Api
    Properties: {StageName: Prod}
"#,
    )
    .unwrap();
    assert_eq!(unauthenticated(&doc), ["ExplicitNone", "OnPlainApi", "Open", "OpenUrl"]);
}
