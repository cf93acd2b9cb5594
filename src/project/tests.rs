use super::*;

/// A throwaway project: files written into a temp dir, loaded with `overrides`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn load_with(&self, template: &str, overrides: &[(&str, &str)]) -> Result<Project, ProjectError> {
        load(&LoadOptions {
            template: self.root().join(template),
            root: self.root(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            pseudo: Pseudo { region: Some("us-east-1".into()), ..Pseudo::default() },
        })
    }

    fn load(&self) -> Project {
        self.load_with("template.yaml", &[]).unwrap()
    }
}

const SAM: &str = r#"
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: sample
Parameters:
  Stage:
    Type: String
    Default: dev
  CodeDir:
    Type: String
    Default: src/py
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    Architectures: [arm64]
    Layers:
      - !Ref Common
    Environment:
      Variables:
        STAGE: !Ref Stage
        SHARED: global
Resources:
  PyFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: !Ref CodeDir
      Handler: app.handler
      Layers:
        - arn:aws:lambda:us-east-1:123456789012:layer:x:1
      Environment:
        Variables:
          SHARED: local
          TABLE: !GetAtt Table.Arn
  NodeFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/node/
      Handler: index.handler
      Runtime: nodejs20.x
      Architectures: [x86_64]
  GoFn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      CodeUri: !If [IsDev, src/go, src/missing]
      Handler: bootstrap
      Runtime: provided.al2023
  Common:
    Type: AWS::Serverless::LayerVersion
    Metadata:
      BuildMethod: python3.12
    Properties:
      ContentUri: layers/common
      CompatibleRuntimes: [python3.12]
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
  ImageFn:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      ImageUri: repo:latest
  S3Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/key.zip
      Handler: a.b
  InlineFn:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "def h(e, c): pass"
      Handler: index.h
Outputs:
  Arn:
    Value: !GetAtt PyFn.Arn
"#;

fn sam_fixture() -> Fixture {
    Fixture::new(&[
        ("template.yaml", SAM),
        ("src/py/app.py", "def handler(e, c): return 1\n"),
        ("src/node/index.js", "exports.handler = async () => 1;\n"),
        ("src/go/Makefile", "build-GoFn:\n\ttrue\n"),
        ("layers/common/util.py", "X = 1\n"),
    ])
}

#[test]
fn sam_template_with_globals_and_parameters() {
    let f = sam_fixture();
    let p = f.load();
    let ids: Vec<&str> = p.functions.iter().map(|f| f.res.id.as_str()).collect();
    assert_eq!(ids, ["PyFn", "NodeFn", "GoFn", "ImageFn", "S3Fn", "InlineFn"]);

    let py = p.function("PyFn").unwrap();
    assert_eq!(py.res.code, Code::Dir(f.root().join("src/py")));
    assert_eq!(py.runtime.as_deref(), Some("python3.12"));
    assert_eq!(py.handler.as_deref(), Some("app.handler"));
    assert_eq!(py.res.architecture, Arch::Arm64);
    assert_eq!(py.res.flavor, Flavor::Sam);
    // Globals lists come first, then the function's own.
    assert_eq!(
        py.layers,
        [LayerRef::Local("Common".into()), LayerRef::Arn("arn:aws:lambda:us-east-1:123456789012:layer:x:1".into())]
    );
    assert_eq!(py.environment.get("STAGE"), Some(&Value::from("dev")));
    assert_eq!(py.environment.get("SHARED"), Some(&Value::from("local")));
    assert!(py.environment.get("TABLE").unwrap().as_intrinsic().is_some());
    assert!(py.res.problem.is_none(), "{:?}", py.res.problem);
    assert_eq!(py.res.line, Some(26));

    // SAM adds Globals lists to the function's own: two architectures, which Lambda refuses.
    let node = p.function("NodeFn").unwrap();
    let problem = node.res.problem.as_deref().unwrap_or_default();
    assert!(problem.contains("Architectures has 2 entries (arm64, x86_64)"), "{problem}");
    assert_eq!(node.runtime.as_deref(), Some("nodejs20.x"));

    let go = p.function("GoFn").unwrap();
    assert_eq!(go.res.code, Code::Dir(f.root().join("src/go")));
    assert_eq!(go.res.build.method.as_deref(), Some("makefile"));

    assert_eq!(p.function("ImageFn").unwrap().res.code, Code::Image);
    assert_eq!(p.function("S3Fn").unwrap().res.code, Code::S3("s3://bucket/key.zip".into()));
    assert_eq!(p.function("InlineFn").unwrap().res.code, Code::Inline);

    let layer = p.layer("Common").unwrap();
    assert_eq!(layer.res.code, Code::Dir(f.root().join("layers/common")));
    assert_eq!(layer.res.build.method.as_deref(), Some("python3.12"));
    assert_eq!(layer.compatible_runtimes, ["python3.12"]);
    assert!(p.root_stack().sam);
}

#[test]
fn overrides_change_code_paths_and_conditions() {
    let f = sam_fixture();
    let p = f.load_with("template.yaml", &[("Stage", "prod"), ("CodeDir", "src/node")]).unwrap();
    assert_eq!(p.function("PyFn").unwrap().res.code, Code::Dir(f.root().join("src/node")));
    let go = p.function("GoFn").unwrap();
    assert!(matches!(&go.res.code, Code::Invalid(m) if m.contains("src/missing") && m.contains("does not exist")));
    assert!(go.res.problem.as_deref().unwrap().contains("create it or fix CodeUri"));
}

#[test]
fn json_cloudformation_template() {
    let f = Fixture::new(&[
        (
            "template.json",
            r#"{
  "Resources": {
    "Fn": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "Code": "fn",
        "Handler": "index.handler",
        "Runtime": "nodejs20.x",
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Layers": [{"Ref": "Layer"}]
      }
    },
    "Layer": {
      "Type": "AWS::Lambda::LayerVersion",
      "Properties": {"Content": "layer", "CompatibleRuntimes": ["nodejs20.x"]}
    },
    "S3Fn": {
      "Type": "AWS::Lambda::Function",
      "Properties": {"Code": {"S3Bucket": "b", "S3Key": "k"}, "Handler": "a", "Runtime": "nodejs20.x", "Role": "r"}
    },
    "Inline": {
      "Type": "AWS::Lambda::Function",
      "Properties": {"Code": {"ZipFile": "x"}, "Handler": "a", "Runtime": "nodejs20.x", "Role": "r"}
    },
    "Role": {"Type": "AWS::IAM::Role", "Properties": {}}
  }
}"#,
        ),
        ("fn/index.js", "x"),
        ("layer/nodejs/x.js", "x"),
    ]);
    let p = f.load_with("template.json", &[]).unwrap();
    let fun = p.function("Fn").unwrap();
    assert_eq!(fun.res.flavor, Flavor::Cfn);
    assert_eq!(fun.res.code, Code::Dir(f.root().join("fn")));
    assert_eq!(fun.layers, [LayerRef::Local("Layer".into())]);
    assert_eq!(p.layer("Layer").unwrap().res.code, Code::Dir(f.root().join("layer")));
    assert_eq!(p.function("S3Fn").unwrap().res.code, Code::S3("s3://b/k".into()));
    assert_eq!(p.function("Inline").unwrap().res.code, Code::Inline);
    assert!(!p.root_stack().sam);
}

#[test]
fn missing_parameters_are_listed_together() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nParameters:\n  A: {Type: String}\n  B: {Type: String}\n  C: {Type: String, Default: c}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !Ref A, Handler: a.b, Runtime: python3.12}\n",
    )]);
    // Loading works (a build needs only what code paths use)...
    let p = f.load_with("template.yaml", &[]).unwrap();
    let problem = p.functions[0].res.problem.clone().unwrap();
    assert!(
        problem.contains("CodeUri: parameter `A` has no value") && problem.contains("--parameter-overrides A="),
        "{problem}"
    );
    // ...but a deploy needs every parameter, and says so in one message.
    let msg = p.check_parameters().unwrap_err().to_string();
    assert!(msg.contains("parameters without a value: A, B"), "{msg}");
    assert!(msg.contains("--parameter-overrides A=... B=..."), "{msg}");
    assert!(msg.contains("samconfig.toml"), "{msg}");
    let p = f.load_with("template.yaml", &[("A", "src"), ("B", "b")]).unwrap();
    assert!(p.check_parameters().is_ok());
}

#[test]
fn unknown_ref_names_file_line_and_fix() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: !Ref CodeDir\n      Handler: a.b\n      Runtime: python3.12\n",
        ),
        ("src/a.py", ""),
    ]);
    let err = f.load_with("template.yaml", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("template.yaml:3: Resources.Fn: `!Ref CodeDir` refers to no parameter"), "{msg}");
    assert!(msg.contains("declare parameter `CodeDir`"), "{msg}");
}

#[test]
fn duplicate_keys_keep_the_last_one_and_are_noted_with_both_lines() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::SNS::Topic\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: old.h\n      Runtime: python3.12\n      Handler: new.h\n",
        ),
        ("src/a.py", ""),
    ]);
    let p = f.load();
    assert_eq!(p.functions.len(), 1);
    assert_eq!(p.functions[0].handler.as_deref(), Some("new.h"));
    let notes: Vec<String> = p.notes.iter().map(ToString::to_string).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("key `Fn` is written twice in one map (lines 3 and 5)"), "{notes:?}");
    assert!(notes[1].contains("key `Handler` is written twice in one map (lines 9 and 11)"), "{notes:?}");
    assert!(notes[1].contains("template.yaml") && notes[1].contains("remove one"), "{notes:?}");
}

#[test]
fn unknown_tag_is_reported_with_the_known_ones() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Reff x\n",
    )]);
    let msg = f.load_with("template.yaml", &[]).unwrap_err().to_string();
    assert!(msg.contains(":5:18: invalid YAML: Resources.T.Properties.TopicName: unknown tag `!Reff`"), "{msg}");
    assert!(msg.contains("!Ref, !Condition"), "{msg}");
}

#[test]
fn resource_level_problems_do_not_fail_the_load() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  NoCode:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: a.b, Runtime: python3.12}\n  FileCode:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: app.py, Handler: a.b, Runtime: python3.12}\n  Outside:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: ../elsewhere, Handler: a.b, Runtime: python3.12}\n  NoHandler:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Runtime: python3.12}\n  Good:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.b, Runtime: python3.12}\n  Zipped:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: app.zip, Handler: a.b, Runtime: python3.12}\n",
        ),
        ("app.py", ""),
        ("app.zip", "PK"),
        ("src/a.py", ""),
    ]);
    let p = f.load();
    let problem = |id: &str| p.function(id).unwrap().res.problem.clone().unwrap_or_default();
    // As SAM: no CodeUri is the template's directory, and a lone file is packed alone.
    assert_eq!(p.function("NoCode").unwrap().res.code, Code::Dir(f.root()));
    assert_eq!(p.function("FileCode").unwrap().res.code, Code::File(f.root().join("app.py")));
    assert!(p.function("NoCode").unwrap().res.problem.is_none(), "{}", problem("NoCode"));
    assert!(p.function("FileCode").unwrap().res.problem.is_none(), "{}", problem("FileCode"));
    assert!(problem("Outside").contains("outside the project directory"), "{}", problem("Outside"));
    assert!(problem("NoHandler").contains("no Handler"), "{}", problem("NoHandler"));
    assert!(p.function("Good").unwrap().res.problem.is_none());
    assert_eq!(p.function("Zipped").unwrap().res.code, Code::Zip(f.root().join("app.zip")));
}

#[test]
fn unknown_resource_types_and_missing_transform() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Resources:\n  A:\n    Type: AWS::Serverless::Functon\n  B:\n    Type: AWS::Lambda::function\n  C:\n    Type: NotAType\n  D:\n    Type: Custom::Thing\n",
    )]);
    let msg = f.load_with("template.yaml", &[]).unwrap_err().to_string();
    assert!(msg.contains("template.yaml:2: resource `A`: unknown resource type `AWS::Serverless::Functon` (did you mean `AWS::Serverless::Function`?)"), "{msg}");
    assert!(msg.contains("`AWS::Lambda::function` (did you mean `AWS::Lambda::Function`?)"), "{msg}");
    assert!(msg.contains("`NotAType` is not a resource type"), "{msg}");
    assert!(msg.contains("has no `Transform: AWS::Serverless-2016-10-31`"), "{msg}");
    assert!(!msg.contains("resource `D`"), "{msg}");
}

#[test]
fn resource_types_lamb_does_not_model_pass_through() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.b, Runtime: python3.12}\n  Invoke:\n    Type: AWS::Lambda::EventInvokeConfig\n    Properties: {FunctionName: !Ref Fn, Qualifier: $LATEST, MaximumRetryAttempts: 0}\n  Foo:\n    Type: AWS::Foo::Bar\n    Properties: {Anything: [1, 2]}\n  Newer:\n    Type: AWS::Lambda::SomethingNew\n",
        ),
        ("src/a.py", ""),
    ]);
    let p = f.load();
    assert_eq!(p.functions.len(), 1);
    assert!(p.functions[0].res.problem.is_none(), "{:?}", p.functions[0].res.problem);
    assert_eq!(p.root_stack().resource_count, 4);
    let packaged = crate::infra::package(&p.root_stack().file.doc, &Default::default());
    assert_eq!(
        packaged.get("Resources").unwrap().get("Foo"),
        p.root_stack().file.doc.get("Resources").unwrap().get("Foo")
    );
}

#[test]
fn false_resource_condition_skips_the_resource() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nParameters:\n  On: {Type: String, Default: 'no'}\nConditions:\n  Enabled: !Equals [!Ref On, 'yes']\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Condition: Enabled\n    Properties: {CodeUri: src, Handler: a.b, Runtime: python3.12}\n",
        ),
        ("src/a.py", ""),
    ]);
    let p = f.load();
    assert!(p.functions.is_empty());
    assert!(p.notes.iter().any(|n| n.resource == "Fn" && n.message.contains("condition `Enabled` is false")));
    let p = f.load_with("template.yaml", &[("On", "yes")]).unwrap();
    assert_eq!(p.functions.len(), 1);
}

#[test]
fn nested_stacks_with_local_templates_are_loaded() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Child:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: child/template.yaml\n      Parameters:\n        Dir: code\n  Remote:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: https://example.com/t.yaml\n  Sar:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: {ApplicationId: arn:aws:serverlessrepo:x, SemanticVersion: 1.0.0}\n",
        ),
        (
            "child/template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Dir: {Type: String}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !Ref Dir, Handler: a.b, Runtime: python3.12}\n",
        ),
        ("child/code/a.py", ""),
    ]);
    let p = f.load();
    let fun = p.function("Child/Fn").unwrap();
    assert_eq!(fun.res.logical_id, "Fn");
    assert_eq!(fun.res.code, Code::Dir(f.root().join("child/code")));
    assert_eq!(p.nested.len(), 3);
    assert_eq!(p.nested[0].template, Some(f.root().join("child/template.yaml")));
    assert_eq!(p.nested[1].remote.as_deref(), Some("https://example.com/t.yaml"));
    assert_eq!(p.nested[2].remote.as_deref(), Some("arn:aws:serverlessrepo:x"));
    assert_eq!(p.resolve_id("Fn").unwrap(), "Child/Fn");
    assert!(p.resolve_id("Nope").unwrap_err().contains("known ids: Child/Fn"));
}

#[test]
fn nested_stack_cycle_is_an_error() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Resources:\n  Me:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: ./template.yaml\n",
    )]);
    let msg = f.load_with("template.yaml", &[]).unwrap_err().to_string();
    assert!(msg.contains("includes its own parent template"), "{msg}");
}

#[test]
fn long_form_intrinsics_and_findinmap() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}\nMappings:\n  Paths:\n    dev: {Code: src/dev}\n    prod: {Code: src/prod}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {\"Fn::FindInMap\": [Paths, {Ref: Env}, Code]}\n      Handler: {\"Fn::Sub\": ['${M}.handler', {M: app}]}\n      Runtime: {\"Fn::Join\": ['', [python, '3.12']]}\n",
        ),
        ("src/dev/app.py", ""),
        ("src/prod/app.py", ""),
    ]);
    let p = f.load();
    let fun = p.function("Fn").unwrap();
    assert_eq!(fun.res.code, Code::Dir(f.root().join("src/dev")));
    assert_eq!(fun.handler.as_deref(), Some("app.handler"));
    assert_eq!(fun.runtime.as_deref(), Some("python3.12"));
    let msg = f.load_with("template.yaml", &[("Env", "qa")]).unwrap_err().to_string();
    assert!(msg.contains("parameter `Env` is `qa`, which is not one of its AllowedValues (dev, prod)"), "{msg}");
}

#[test]
fn unresolvable_code_uri_is_a_resource_problem() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  B:\n    Type: AWS::S3::Bucket\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !GetAtt B.Arn, Handler: a.b, Runtime: python3.12}\n",
    )]);
    let p = f.load();
    let problem = p.function("Fn").unwrap().res.problem.clone().unwrap();
    assert!(problem.contains("CodeUri is `GetAtt`") && problem.contains("cannot resolve before deploy"), "{problem}");
}

#[test]
fn ignore_globals_attribute() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: nodejs20.x\n    Handler: index.handler\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    IgnoreGlobals: [Runtime]\n    Properties: {CodeUri: src, Runtime: python3.12}\n",
        ),
        ("src/a.py", ""),
    ]);
    let p = f.load();
    let fun = p.function("Fn").unwrap();
    assert_eq!(fun.runtime.as_deref(), Some("python3.12"));
    assert_eq!(fun.handler.as_deref(), Some("index.handler"));
}

#[test]
fn bad_globals_section_is_reported() {
    let f = Fixture::new(&[(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Functions:\n    Runtime: x\nResources:\n  T:\n    Type: AWS::SNS::Topic\n",
    )]);
    let msg = f.load_with("template.yaml", &[]).unwrap_err().to_string();
    assert!(msg.contains("Globals section `Functions` is not supported"), "{msg}");
}

#[test]
fn a_layer_chosen_by_a_condition_is_a_local_layer() {
    let f = Fixture::new(&[
        (
            "template.yaml",
            "Transform: AWS::Serverless-2016-10-31\nParameters:\n  WithLayer: {Type: String, Default: 'yes'}\nConditions:\n  UseLayer: !Equals [!Ref WithLayer, 'yes']\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: a.h\n      Runtime: python3.12\n      Layers:\n        - !If [UseLayer, !Ref Shared, !Ref AWS::NoValue]\n        - Fn::If: [UseLayer, {Ref: Shared}, 'arn:aws:lambda:us-east-1:123456789012:layer:other:1']\n  Shared:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: layer}\n",
        ),
        ("src/a.py", ""),
        ("layer/x.py", ""),
    ]);
    let p = f.load();
    let local = LayerRef::Local("Shared".into());
    assert_eq!(p.function("Fn").unwrap().layers, [local.clone(), local]);
    // Built and repointed with the function, as a plain `!Ref Shared` would be.
    assert_eq!(p.with_layers_of(&["Fn".into()]), ["Fn", "Shared"]);
    let p = f.load_with("template.yaml", &[("WithLayer", "no")]).unwrap();
    assert_eq!(
        p.function("Fn").unwrap().layers,
        [LayerRef::Arn("arn:aws:lambda:us-east-1:123456789012:layer:other:1".into())]
    );
}
