//! The fault proxy (tests/emulator/fault_proxy.py) as the AWS SDK for Rust sees it: its
//! injected errors parse as the real services' errors, and its stats count them.

mod common;

use std::io::Write;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use common::emulator::Emulator;
use common::faults::FaultProxy;
use serde_json::json;

const ROLE_TEMPLATE: &str = r#"{
  "Resources": {
    "Role": {
      "Type": "AWS::IAM::Role",
      "Properties": {
        "AssumeRolePolicyDocument": {
          "Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
        }
      }
    }
  },
  "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}}}
}"#;

fn code_zip() -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("app.py", zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(b"def handler(event, context):\n    return 1\n").unwrap();
    z.finish().unwrap().into_inner()
}

#[test]
fn the_rust_sdk_parses_injected_faults_and_the_proxy_counts_them() {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conf = proxy.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);

        // Normal traffic through the proxy: a role (through CloudFormation), then a function.
        cfn.create_stack().stack_name("proxy-role").template_body(ROLE_TEMPLATE).send().await.unwrap();
        let stacks = cfn.describe_stacks().stack_name("proxy-role").send().await.unwrap();
        let role = stacks.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some("RoleArn"))
            .and_then(|o| o.output_value())
            .expect("RoleArn output")
            .to_string();
        lambda
            .create_function()
            .function_name("proxy-fn")
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .role(&role)
            .handler("app.handler")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(code_zip()))
                    .build(),
            )
            .send()
            .await
            .unwrap();

        // A conflict is not retried by the SDK's default retry config: the first call fails.
        let id = proxy.add(
            json!({"fault": "conflict", "service": "lambda", "action": "UpdateFunctionConfiguration", "times": 2}),
        );
        let err = lambda
            .update_function_configuration()
            .function_name("proxy-fn")
            .timeout(9)
            .send()
            .await
            .expect_err("the conflict reaches the caller");
        assert_eq!(err.code(), Some("ResourceConflictException"), "{err:?}");
        assert!(
            err.message().unwrap_or_default().contains(
                "An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:proxy-fn"
            ),
            "{err:?}"
        );
        assert!(err.into_service_error().is_resource_conflict_exception());
        let stats = proxy.stats();
        assert_eq!(proxy.injected("conflict"), 1, "{stats}");
        let rule = stats["rules"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(rule["remaining"], 1, "{stats}");
        assert_eq!(stats["events"][0]["action"], "UpdateFunctionConfiguration", "{stats}");
        assert_eq!(proxy.max_in_flight(), [("proxy-fn".to_string(), 1)]);
        // The faulted update never reached the emulator.
        let direct = aws_sdk_lambda::Client::new(&emu.sdk().await);
        let cfg = direct.get_function_configuration().function_name("proxy-fn").send().await.unwrap();
        assert_ne!(cfg.timeout(), Some(9));

        // A throttle is retried by the SDK, so the call succeeds after one injected 429.
        proxy.clear();
        proxy.add(json!({"fault": "throttle", "service": "lambda", "action": "GetFunctionConfiguration"}));
        let cfg = lambda.get_function_configuration().function_name("proxy-fn").send().await.unwrap();
        assert_eq!(cfg.function_name(), Some("proxy-fn"));
        assert_eq!(proxy.injected("throttle"), 1);
        assert_eq!(proxy.requests(), 2, "{}", proxy.stats());

        // The rewrite documented in fault_proxy.py makes moto report an update in progress.
        proxy.add(json!({"fault": "rewrite", "action": "GetFunctionConfiguration",
            "find": "\"LastUpdateStatus\":\\s*\"Successful\"", "replace": "\"LastUpdateStatus\": \"InProgress\""}));
        let cfg = lambda.get_function_configuration().function_name("proxy-fn").send().await.unwrap();
        assert_eq!(cfg.last_update_status(), Some(&aws_sdk_lambda::types::LastUpdateStatus::InProgress));
    });
}

#[test]
fn a_5xx_html_page_without_an_aws_error_is_reported_with_status_endpoint_and_body() {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    // What a load balancer in front of AWS sends when its upstream is down.
    proxy.add(json!({"fault": "rewrite", "service": "cloudformation", "action": "DescribeStacks", "times": -1,
        "status": 502, "find": "(?s)^.*$", "replace": "<html><body><h1>502 Bad Gateway</h1>\n</body></html>"}));
    let p = common::Project::empty();
    p.write("template.yaml", "Resources:\n  T:\n    Type: AWS::SNS::Topic\n");
    let run = p.lamb_env(&["outputs", "--stack-name", "html-5xx"], &proxy.env());
    assert_eq!(run.code, 1, "{}", run.all());
    let endpoint = proxy.env().into_iter().find(|(k, _)| *k == "AWS_ENDPOINT_URL").unwrap().1;
    assert!(run.stderr.contains("DescribeStacks failed: HTTP 502 from "), "{}", run.stderr);
    assert!(run.stderr.contains(endpoint.trim_end_matches('/')), "{endpoint}: {}", run.stderr);
    assert!(run.stderr.contains("<html><body><h1>502 Bad Gateway</h1> </body></html>"), "{}", run.stderr);
    assert!(!run.stderr.contains("Unknown: "), "{}", run.stderr);
    assert!(proxy.injected("rewrite") >= 1);
}
