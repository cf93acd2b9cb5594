//! `lamb deploy`, `lamb sync`, `outputs`, `invoke` and `delete` end to end against the emulator
//! (moto server with SAM expansion; see tests/emulator/).

mod common;

use std::fs;

use common::emulator::{Emulator, emulator};
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A copy of the example project deployed as `stack` on `emu`.
fn deployed_example(emu: &Emulator, stack: &str) -> Project {
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", stack], &emu.env());
    assert_eq!(run.code, 0, "deploy failed: {}", run.all());
    p
}

/// A function as Lambda has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Deployed {
    logical: String,
    name: String,
    sha: String,
    layers: Vec<String>,
    env: Vec<(String, String)>,
}

/// Every function of `stack`, by logical id.
fn functions(emu: &Emulator, stack: &str) -> Vec<Deployed> {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let res = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
        let mut out = Vec::new();
        for r in res.stack_resource_summaries() {
            if r.resource_type() != Some("AWS::Lambda::Function") {
                continue;
            }
            let name = r.physical_resource_id().unwrap().to_string();
            let c = lambda.get_function_configuration().function_name(&name).send().await.unwrap();
            let layers = c.layers().iter().filter_map(|l| l.arn().map(String::from)).collect();
            let mut env: Vec<(String, String)> = c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            env.sort();
            out.push(Deployed {
                logical: r.logical_resource_id().unwrap().to_string(),
                name,
                sha: c.code_sha256().unwrap_or_default().to_string(),
                layers,
                env,
            });
        }
        out.sort();
        out
    })
}

fn find<'a>(fns: &'a [Deployed], id: &str) -> &'a Deployed {
    fns.iter().find(|f| f.logical == id).unwrap_or_else(|| panic!("no {id}"))
}

fn sha_of(fns: &[Deployed], id: &str) -> String {
    find(fns, id).sha.clone()
}

fn env_of(fns: &[Deployed], id: &str) -> Vec<(String, String)> {
    find(fns, id).env.clone()
}

fn sync_json(p: &Project, emu: &Emulator, stack: &str, extra: &[&str]) -> (serde_json::Value, Run) {
    let mut args = vec!["sync", "--yes", "-o", "json", "--stack-name", stack];
    args.extend_from_slice(extra);
    let run = p.lamb_env(&args, &emu.env());
    let v = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.all()));
    (v, run)
}

fn item<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["items"].as_array().unwrap().iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("no {id} in {r}"))
}

#[test]
fn deploy_creates_the_stack_with_outputs_and_code_matching_the_local_build() {
    let emu = emulator();
    let p = deployed_example(emu, "t-deploy");
    let fns = functions(emu, "t-deploy");
    assert_eq!(
        fns.iter().map(|f| f.logical.as_str()).collect::<Vec<_>>(),
        ["HelloMake", "HelloNode", "HelloPython", "HelloShell"]
    );
    let (built, _) = p.build_json(&[]);
    for id in ["HelloMake", "HelloNode", "HelloPython", "HelloShell"] {
        assert_eq!(sha_of(&fns, id), code_sha(&built, id), "{id} runs the zip lamb built");
    }
    let python = find(&fns, "HelloPython");
    assert_eq!(python.layers.len(), 1, "HelloPython uses the shared layer: {:?}", python.layers);
    assert!(env_of(&fns, "HelloPython").contains(&("STAGE".into(), "dev".into())));

    let run = p.lamb_env(&["outputs", "--stack-name", "t-deploy", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let keys: Vec<&str> = v["outputs"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["ApiUrl", "HelloPythonArn"]);
    assert!(v["endpoints"][0]["url"].as_str().unwrap().ends_with("/Prod/"), "{v}");

    // Deploying again with nothing changed is "no changes", not an error.
    let run = p.lamb_env(&["deploy", "--stack-name", "t-deploy"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("no changes: stack t-deploy is up to date"), "{}", run.stdout);
}

#[test]
fn sync_pushes_only_the_edited_function_and_a_second_sync_writes_nothing() {
    let emu = Emulator::start();
    let p = deployed_example(&emu, "t-code");
    let before = functions(&emu, "t-code");
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// edited\n"));
    let (r, run) = sync_json(&p, &emu, "t-code", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "code", "{r}");
    assert_eq!(item(&r, "HelloNode")["status"], "synced");
    for id in ["HelloPython", "HelloShell", "HelloMake", "SharedLayer"] {
        assert_eq!(item(&r, id)["status"], "unchanged", "{id}");
    }
    let after = functions(&emu, "t-code");
    let (built, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(sha_of(&after, "HelloNode"), code_sha(&built, "HelloNode"));
    assert_ne!(sha_of(&after, "HelloNode"), sha_of(&before, "HelloNode"));
    for id in ["HelloPython", "HelloShell", "HelloMake"] {
        assert_eq!(sha_of(&after, id), sha_of(&before, id), "{id} untouched");
    }

    emu.clear_requests();
    let (r, run) = sync_json(&p, &emu, "t-code", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(r["items"].as_array().unwrap().iter().all(|i| i["status"] == "unchanged"), "{r}");
    let writes = emu.writes();
    assert!(writes.is_empty(), "a sync with nothing to do wrote: {writes:?}");
    // It did compare with what Lambda runs: one read per function.
    let reads = emu
        .requests()
        .into_iter()
        .filter(|(_, service, action)| service == "lambda" && action == "GetFunctionConfiguration")
        .count();
    assert_eq!(reads, 4, "{:?}", emu.requests());
}

#[test]
fn a_layer_edit_republishes_it_and_repoints_its_functions() {
    let emu = emulator();
    let p = deployed_example(emu, "t-layer");
    let before = functions(emu, "t-layer");
    let old_layer = find(&before, "HelloPython").layers[0].clone();
    p.write("layers/shared/shared/greeting.py", "def greet(g, who):\n    return f'{g}, {who}!'\n");
    let (r, run) = sync_json(&p, emu, "t-layer", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let layer = item(&r, "SharedLayer");
    assert_eq!(layer["status"], "published");
    let new_arn = layer["version_arn"].as_str().unwrap().to_string();
    assert_ne!(new_arn, old_layer);
    assert_eq!(layer["updated_functions"], serde_json::json!(["HelloPython"]));
    let after = functions(emu, "t-layer");
    assert_eq!(find(&after, "HelloPython").layers, [new_arn]);
    assert_eq!(sha_of(&after, "HelloPython"), sha_of(&before, "HelloPython"), "the function's own code is untouched");
}

#[test]
fn template_and_parameter_changes_deploy_through_cloudformation() {
    let emu = emulator();
    let p = deployed_example(emu, "t-infra");
    let t = p
        .read("template.yaml")
        .replace("        GREETING: !Ref Greeting\n", "        GREETING: !Ref Greeting\n        EXTRA: added\n");
    p.write("template.yaml", &t);

    // --code refuses to deploy infrastructure, and says what it skipped.
    let (r, run) = sync_json(&p, emu, "t-infra", &["--code"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["infra_skipped"], true);
    assert!(
        r["infra_reasons"][0].as_str().unwrap().contains("Globals.Function.Environment.Variables.EXTRA is new"),
        "{r}"
    );
    assert!(!env_of(&functions(emu, "t-infra"), "HelloNode").iter().any(|(k, _)| k == "EXTRA"));
    let human = p.lamb_env(&["sync", "--yes", "--code", "--stack-name", "t-infra"], &emu.env());
    assert!(
        human.stderr.contains("infrastructure changes not deployed (--code)") && human.stderr.contains("lamb deploy"),
        "{}",
        human.stderr
    );

    let (r, run) = sync_json(&p, emu, "t-infra", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    assert!(env_of(&functions(emu, "t-infra"), "HelloNode").contains(&("EXTRA".into(), "added".into())));

    let (r, run) = sync_json(&p, emu, "t-infra", &["--parameter-overrides", "Greeting=Hi"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    assert!(r["infra_reasons"].to_string().contains("parameter Greeting is `Hi` here but `Hello` in the stack"), "{r}");
    assert!(env_of(&functions(emu, "t-infra"), "HelloNode").contains(&("GREETING".into(), "Hi".into())));

    // Back in step: the next pass is a code pass again.
    let (r, _) = sync_json(&p, emu, "t-infra", &["--parameter-overrides", "Greeting=Hi"]);
    assert_eq!(r["mode"], "code");
}

#[test]
fn a_large_function_goes_through_s3() {
    let emu = emulator();
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Big:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: big, Handler: bootstrap, Runtime: provided.al2023}\n",
    )
    .write("big/bootstrap", "#!/bin/sh\n");
    // 60 MB that deflate cannot shrink.
    let mut data = vec![0u8; 60 * 1024 * 1024];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(p.path().join("big/blob.bin"), &data).unwrap();
    let run = p.lamb_env(&["deploy", "--stack-name", "t-big", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    p.write("big/bootstrap", "#!/bin/sh\n# v2\n");
    // Another checkout knows no bucket: the push fails, saying how to give one...
    fs::remove_dir_all(p.path().join(".lamb")).unwrap();
    let (r, run) = sync_json(&p, emu, "t-big", &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let msg = item(&r, "Big")["message"].as_str().unwrap();
    assert!(msg.contains("over Lambda's 50 MB limit for direct uploads") && msg.contains("--resolve-s3"), "{msg}");
    // ...and the next pass, given one, pushes it.
    let (r, run) = sync_json(&p, emu, "t-big", &["--resolve-s3"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let big = item(&r, "Big");
    assert_eq!(big["status"], "synced");
    assert!(big["bytes"].as_u64().unwrap() > 50_000_000, "{big}");
    let (built, _) = p.build_json(&[]);
    assert_eq!(sha_of(&functions(emu, "t-big"), "Big"), code_sha(&built, "Big"));
    // It went up to the artifact bucket under its content hash.
    let sha256 = resource(&built, "Big")["artifact"]["sha256"].as_str().unwrap().to_string();
    let found = rt().block_on(async {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&emu.sdk().await).force_path_style(true).build(),
        );
        s3.head_object()
            .bucket("lamb-artifacts-123456789012-us-east-1")
            .key(format!("t-big/{sha256}.zip"))
            .send()
            .await
            .is_ok()
    });
    assert!(found, "the 60 MB zip was uploaded to S3 for UpdateFunctionCode");
    // In parts (8 MiB each), not as one 60 MB request.
    let object = format!("t-big/{sha256}.zip");
    let calls: Vec<String> = emu
        .raw_requests()
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(&object)))
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    let count = |a: &str| calls.iter().filter(|c| c.as_str() == a).count();
    assert_eq!(count("CreateMultipartUpload"), 1, "{calls:?}");
    assert_eq!(count("UploadPart"), 8, "{calls:?}");
    assert_eq!(count("CompleteMultipartUpload"), 1, "{calls:?}");
    assert_eq!(count("PutObject"), 0, "{calls:?}");
}

#[test]
fn first_sync_needs_yes_and_remembers_it() {
    let emu = emulator();
    let p = deployed_example(emu, "t-confirm");
    let run = p.lamb_env(&["sync", "--stack-name", "t-confirm"], &emu.env());
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("first sync of stack t-confirm needs confirmation") && run.stderr.contains("--yes"),
        "{}",
        run.stderr
    );
    let run = p.lamb_env(&["sync", "--stack-name", "t-confirm", "--yes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let run = p.lamb_env(&["sync", "--stack-name", "t-confirm"], &emu.env());
    assert_eq!(run.code, 0, "the answer is remembered: {}", run.all());
}

#[test]
fn code_only_sync_of_a_missing_stack_or_function_says_to_deploy() {
    let emu = emulator();
    let p = Project::example("hello");
    let run = p.lamb_env(&["sync", "--yes", "--code", "--stack-name", "t-nostack"], &emu.env());
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("stack t-nostack does not exist; deploy it first with `lamb deploy`"),
        "{}",
        run.stderr
    );

    let p = deployed_example(emu, "t-gone");
    let name = find(&functions(emu, "t-gone"), "HelloShell").name.clone();
    rt().block_on(async {
        aws_sdk_lambda::Client::new(&emu.sdk().await).delete_function().function_name(&name).send().await.unwrap()
    });
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\n# changed\n");
    let (r, run) = sync_json(&p, emu, "t-gone", &["--code"]);
    assert_eq!(run.code, 1);
    let msg = item(&r, "HelloShell")["message"].as_str().unwrap();
    assert!(msg.contains("no longer exists in Lambda") && msg.contains("lamb deploy"), "{msg}");
}

#[test]
fn plain_cloudformation_project_deploys_and_syncs() {
    let emu = emulator();
    let p = Project::empty();
    p.write(
        "template.json",
        r#"{
  "Resources": {
    "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
    "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Code": "fn", "Handler": "index.handler", "Runtime": "nodejs20.x", "Role": {"Fn::GetAtt": ["Role", "Arn"]}}}
  },
  "Outputs": {"FnName": {"Value": {"Ref": "Fn"}}}
}"#,
    )
    .write("fn/index.js", "exports.handler = async () => 1;\n");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-cfn", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("FnName"), "{}", run.stdout);
    p.write("fn/index.js", "exports.handler = async () => 2;\n");
    let (r, run) = sync_json(&p, emu, "t-cfn", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "code");
    assert_eq!(item(&r, "Fn")["status"], "synced");
    let (built, _) = p.build_json(&[]);
    assert_eq!(sha_of(&functions(emu, "t-cfn"), "Fn"), code_sha(&built, "Fn"));
}

#[test]
fn failed_deploys_report_reasons_and_a_rolled_back_stack_says_how_to_recover() {
    let emu = emulator();
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {Code: fn, Handler: index.handler, Runtime: nodejs20.x, Role: 'arn:aws:iam::123456789012:role/does-not-exist'}\n",
    )
    .write("fn/index.js", "x");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-fail", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("deploy of stack t-fail failed: the stack is ROLLBACK_COMPLETE"), "{}", run.stderr);
    // The events as they came, and the failed resource's reason at the end.
    assert!(run.all().contains("CREATE_FAILED") && run.all().contains("ROLLBACK_IN_PROGRESS"), "{}", run.all());
    assert!(run.stderr.contains("The role defined for the function cannot be assumed by Lambda"), "{}", run.stderr);
    let run = p.lamb_env(&["deploy", "--stack-name", "t-fail", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("stack t-fail is ROLLBACK_COMPLETE") && run.stderr.contains("lamb delete"),
        "{}",
        run.stderr
    );
    let run = p.lamb_env(&["delete", "--stack-name", "t-fail", "--yes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn no_execute_changeset_leaves_the_stack_alone() {
    let emu = emulator();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-noexec", "--no-execute-changeset"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("change set for t-noexec created, not executed"), "{}", run.stdout);
    let exists = rt().block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
        cfn.describe_stacks()
            .stack_name("t-noexec")
            .send()
            .await
            .ok()
            .and_then(|o| o.stacks().first().and_then(|s| s.stack_status().map(|s| s.as_str().to_string())))
    });
    assert_eq!(exists.as_deref(), Some("REVIEW_IN_PROGRESS"));
}

#[test]
fn delete_removes_the_stack_and_purges_lambs_uploads() {
    let emu = emulator();
    let p = deployed_example(emu, "t-delete");
    let run = p.lamb_env(&["delete", "--stack-name", "t-delete"], &emu.env());
    assert_eq!(run.code, 1, "no terminal to confirm on: {}", run.all());
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    let run = p.lamb_env(&["delete", "--stack-name", "t-delete", "--yes", "--purge-artifacts"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let (stack, objects) = rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        let stack = cfn
            .describe_stacks()
            .stack_name("t-delete")
            .send()
            .await
            .ok()
            .and_then(|o| o.stacks().first().and_then(|s| s.stack_status().map(|s| s.as_str().to_string())));
        let objects = s3
            .list_objects_v2()
            .bucket("lamb-artifacts-123456789012-us-east-1")
            .prefix("t-delete/")
            .send()
            .await
            .unwrap()
            .key_count();
        (stack, objects)
    });
    assert!(stack.is_none() || stack.as_deref() == Some("DELETE_COMPLETE"), "{stack:?}");
    assert_eq!(objects, Some(0));
}

#[test]
fn invoke_reports_the_function_error() {
    let emu = emulator();
    let p = deployed_example(emu, "t-invoke");
    p.write("event.json", "{\"hello\": 1}");
    let run = p.lamb_env(&["invoke", "HelloNode", "--event", "event.json", "--stack-name", "t-invoke"], &emu.env());
    // The emulator has no Docker to run functions: its answer is a function error, which lamb
    // reports as such.
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("the function returned an error"), "{}", run.stderr);
    // The response printed is the emulator's: it cannot start the function without Docker.
    assert!(run.stdout.contains("docker"), "{}", run.stdout);
    let run = p.lamb_env(&["invoke", "Nope", "--stack-name", "t-invoke"], &emu.env());
    assert_eq!(run.code, 2);
}

#[test]
fn missing_credentials_are_one_clear_error() {
    let emu = emulator();
    let p = Project::example("hello");
    let env: Vec<(&str, String)> =
        emu.env().into_iter().filter(|(k, _)| *k != "AWS_ACCESS_KEY_ID" && *k != "AWS_SECRET_ACCESS_KEY").collect();
    let started = std::time::Instant::now();
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "t-creds", "-r", "HelloShell"], &env);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no usable AWS credentials") && run.stderr.contains("aws sso login"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "no retry storm");
}

#[test]
fn code_changed_outside_lamb_is_pushed_back_by_the_next_sync() {
    let emu = emulator();
    let p = deployed_example(emu, "t-drift");
    sync_json(&p, emu, "t-drift", &[]);
    let name = find(&functions(emu, "t-drift"), "HelloShell").name.clone();
    let (built, _) = p.build_json(&["-r", "HelloMake"]);
    // Someone pushes other code to HelloShell directly.
    let other = fs::read(artifact_path(&built, "HelloMake")).unwrap();
    rt().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&emu.sdk().await);
        lambda
            .update_function_code()
            .function_name(&name)
            .zip_file(aws_sdk_lambda::primitives::Blob::new(other))
            .send()
            .await
            .unwrap();
    });
    // The next sync compares with what Lambda runs, not with its own record.
    let (r, run) = sync_json(&p, emu, "t-drift", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(item(&r, "HelloShell")["status"], "synced");
    let (mine, _) = p.build_json(&["-r", "HelloShell"]);
    assert_eq!(sha_of(&functions(emu, "t-drift"), "HelloShell"), code_sha(&mine, "HelloShell"));
}

#[test]
fn syncing_a_layer_alone_repoints_its_functions() {
    let emu = emulator();
    let p = deployed_example(emu, "t-layer-only");
    p.write("layers/shared/shared/greeting.py", "def greet(g, who):\n    return g\n");
    let (r, run) = sync_json(&p, emu, "t-layer-only", &["-r", "SharedLayer"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let layer = item(&r, "SharedLayer");
    assert_eq!(layer["status"], "published");
    assert_eq!(layer["updated_functions"], serde_json::json!(["HelloPython"]));
    assert_eq!(find(&functions(emu, "t-layer-only"), "HelloPython").layers, [layer["version_arn"].as_str().unwrap()]);
    // Nothing left to do.
    let (r, _) = sync_json(&p, emu, "t-layer-only", &["-r", "SharedLayer"]);
    assert_eq!(item(&r, "SharedLayer")["status"], "unchanged");
}

#[test]
fn deploy_after_sync_and_a_local_revert_brings_lambda_back_to_the_build() {
    let emu = emulator();
    let p = deployed_example(emu, "t-revert");
    let original = p.read("functions/hello_node/index.js");
    let v1 = sha_of(&functions(emu, "t-revert"), "HelloNode");
    p.write("functions/hello_node/index.js", &(original.clone() + "// v2\n"));
    sync_json(&p, emu, "t-revert", &[]);
    assert_ne!(sha_of(&functions(emu, "t-revert"), "HelloNode"), v1);
    // Back to v1 locally: the template is what was deployed, so CloudFormation changes nothing,
    // and lamb pushes the code itself.
    p.write("functions/hello_node/index.js", &original);
    let run = p.lamb_env(&["deploy", "--stack-name", "t-revert"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("no changes") && run.stdout.contains("pushed code CloudFormation left as it was"),
        "{}",
        run.stdout
    );
    assert_eq!(sha_of(&functions(emu, "t-revert"), "HelloNode"), v1);
    let (r, _) = sync_json(&p, emu, "t-revert", &[]);
    assert_eq!(item(&r, "HelloNode")["status"], "unchanged");
}

#[test]
fn a_resource_id_sync_with_a_template_change_deploys_everything() {
    let emu = emulator();
    let p = deployed_example(emu, "t-rid-infra");
    let t = p
        .read("template.yaml")
        .replace("      Timeout: 10\n", "      Timeout: 11\n")
        .replace("    Timeout: 10\n", "    Timeout: 12\n");
    p.write("template.yaml", &t);
    let (r, run) = sync_json(&p, emu, "t-rid-infra", &["-r", "HelloNode"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    let name = find(&functions(emu, "t-rid-infra"), "HelloShell").name.clone();
    let timeout = rt().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&emu.sdk().await);
        lambda.get_function_configuration().function_name(name).send().await.unwrap().timeout()
    });
    assert_eq!(timeout, Some(12));
}

#[test]
fn nested_stack_changes_are_found_and_their_functions_sync() {
    let emu = emulator();
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Resources:\n  Child:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: child.yaml\n",
    )
    .write(
        "child.yaml",
        "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: 'sts:AssumeRole'}]}\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Code: fn\n      Handler: index.handler\n      Runtime: nodejs20.x\n      Role: !GetAtt Role.Arn\n      Environment: {Variables: {A: '1'}}\n",
    )
    .write("fn/index.js", "exports.handler = async () => 1;\n");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-nested", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    p.write("fn/index.js", "exports.handler = async () => 2;\n");
    let (r, run) = sync_json(&p, emu, "t-nested", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "code");
    assert_eq!(item(&r, "Child/Fn")["status"], "synced");
    // A change inside the nested template is an infrastructure change.
    p.write("child.yaml", &p.read("child.yaml").replace("A: '1'", "A: '2'"));
    let (r, run) = sync_json(&p, emu, "t-nested", &["--code"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(r["infra_reasons"].to_string().contains("child.yaml differs from the deployed template"), "{r}");
    let (r, run) = sync_json(&p, emu, "t-nested", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    let (r, _) = sync_json(&p, emu, "t-nested", &[]);
    assert_eq!(r["mode"], "code", "deployed: in step again");
}

#[test]
fn tag_changes_and_unexecuted_change_sets_in_sync() {
    let emu = emulator();
    let p = deployed_example(emu, "t-tags");
    let (r, run) = sync_json(&p, emu, "t-tags", &["--tags", "team=core", "--no-execute-changeset"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    assert!(r["infra_reasons"].to_string().contains("tag team is not on the stack"), "{r}");
    assert!(r["items"].as_array().unwrap().iter().all(|i| i["status"] == "skipped"), "not executed: {r}");
    let (r, run) = sync_json(&p, emu, "t-tags", &["--tags", "team=core"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(r["mode"], "infra");
    let (r, _) = sync_json(&p, emu, "t-tags", &["--tags", "team=core"]);
    assert_eq!(r["mode"], "code");
}

#[test]
fn many_functions_are_read_with_list_functions_and_only_changed_ones_pushed() {
    let emu = Emulator::start();
    let p = Project::empty();
    let mut t = String::from(
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Handler: bootstrap, Runtime: provided.al2023}\nResources:\n",
    );
    for i in 0..12 {
        t.push_str(&format!(
            "  Fn{i:02}:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: fns/f{i:02}}}\n"
        ));
        p.write(&format!("fns/f{i:02}/bootstrap"), &format!("#!/bin/sh\necho {i}\n"));
    }
    p.write("template.yaml", &t);
    let run = p.lamb_env(&["deploy", "--stack-name", "t-many", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    p.write("fns/f07/bootstrap", "#!/bin/sh\necho seven\n");
    emu.clear_requests();
    let (r, run) = sync_json(&p, &emu, "t-many", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let synced: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "synced")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(synced, ["Fn07"]);
    let requests = emu.requests();
    let reads = |action: &str| requests.iter().filter(|(_, s, a)| s == "lambda" && a == action).count();
    assert_eq!(reads("ListFunctions"), 1, "{requests:?}");
    assert_eq!(reads("UpdateFunctionCode"), 1, "{requests:?}");
    let writes = emu.writes();
    assert_eq!(writes.len(), 1, "only the changed function is written: {writes:?}");
}

#[test]
fn a_profile_with_its_own_endpoint_and_region_works_like_the_environment() {
    // No AWS_ENDPOINT_URL, no AWS_REGION: the named profile in the config file gives the
    // emulator's endpoint (S3 then goes path-style on it), the region and the keys.
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    fs::write(
        &config,
        format!(
            "[profile emu]\nregion = us-east-1\nendpoint_url = {}\naws_access_key_id = testing\naws_secret_access_key = testing\n",
            // A host name, not an IP address, for which S3 would default to `bucket.localhost`.
            emu.env().iter().find(|(k, _)| *k == "AWS_ENDPOINT_URL").unwrap().1.replace("127.0.0.1", "localhost")
        ),
    )
    .unwrap();
    let env = [
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--profile", "emu", "--stack-name", "t-profile", "--resolve-s3"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// via profile\n"));
    let run = p.lamb_env(&["sync", "--profile", "emu", "--yes", "--stack-name", "t-profile"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let (built, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(sha_of(&functions(emu, "t-profile"), "HelloNode"), code_sha(&built, "HelloNode"));
    // The same profile without its keys: one clear error naming it.
    fs::write(&config, "[profile emu]\nregion = us-east-1\n").unwrap();
    let run = p.lamb_env(&["sync", "--profile", "emu", "--yes", "--stack-name", "t-profile"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no usable AWS credentials (profile `emu`)"), "{}", run.stderr);
}

/// Runs `lamb ARGS` in `p` on a terminal (`script`), typing `input` at it at once (the
/// terminal keeps it until lamb reads); whether it succeeded, and what the terminal showed.
fn on_terminal(p: &Project, args: &str, env: &[(&str, String)], input: &str) -> (bool, String) {
    let (code, shown) = common::terminal::on_terminal(p, args, env, &[("", input)]);
    (code == Some(0), shown)
}

#[test]
fn deploy_shows_the_change_set_and_the_events_and_asks_when_told_to() {
    let emu = emulator();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-show"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let all = run.all();
    assert!(all.contains("packaging 5 artifact(s) to s3://"), "{all}");
    assert!(all.contains("change set for t-show:"), "{all}");
    for (id, ty) in [
        ("HelloNode", "AWS::Lambda::Function"),
        ("SharedLayer", "AWS::Lambda::LayerVersion"),
        ("ServerlessRestApi", "AWS::ApiGateway::RestApi"),
    ] {
        assert!(
            all.lines().any(|l| l.trim_start().starts_with("Add") && l.contains(id) && l.contains(ty)),
            "{id}: {all}"
        );
    }
    assert!(all.lines().any(|l| l.contains("CREATE_COMPLETE") && l.contains("t-show")), "{all}");
    assert!(all.contains("deployed stack t-show: CREATE_COMPLETE"), "{all}");

    // --confirm-changeset: a "no" on the terminal deploys nothing; without a terminal it says
    // it needs one.
    p.write(
        "template.yaml",
        &p.read("template.yaml").replace("GREETING: !Ref Greeting", "GREETING: !Ref Greeting\n        ASKED: \"yes\""),
    );
    let run = p.lamb_env(&["deploy", "--stack-name", "t-show", "--confirm-changeset"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("--confirm-changeset needs a terminal"), "{}", run.stderr);
    let (ok, text) = on_terminal(&p, "deploy --stack-name t-show --confirm-changeset", &emu.env(), "n\n");
    assert!(!ok, "{text}");
    assert!(
        text.contains("Modify")
            && text.contains("HelloNode")
            && text.contains("Deploy this change set to stack t-show? [y/N]"),
        "{text}"
    );
    assert!(text.contains("the change set was not confirmed; nothing was deployed"), "{text}");
    assert!(
        !env_of(&functions(emu, "t-show"), "HelloNode").iter().any(|(k, _)| k == "ASKED"),
        "declined: nothing deployed"
    );
    let (ok, text) = on_terminal(&p, "deploy --stack-name t-show --confirm-changeset", &emu.env(), "y\n");
    assert!(ok, "{text}");
    assert!(text.contains("UPDATE_COMPLETE"), "{text}");
    assert!(env_of(&functions(emu, "t-show"), "HelloNode").contains(&("ASKED".into(), "yes".into())));

    // Code already in S3 under its hash is not uploaded again.
    p.write("template.yaml", &p.read("template.yaml").replace("ASKED: \"yes\"", "ASKED: \"again\""));
    let run = p.lamb_env(&["deploy", "--stack-name", "t-show", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["uploaded"], 0, "{v}");
    assert_eq!(v["already_uploaded"], 5, "{v}");
}

#[test]
fn outputs_give_each_api_its_own_stages() {
    let emu = emulator();
    let p = Project::empty();
    let api = |id: &str, stage: &str, path: &str| {
        format!(
            "  {id}:\n    Type: AWS::Serverless::Api\n    Properties: {{StageName: {stage}}}\n  {id}Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn\n      Handler: index.handler\n      Runtime: nodejs20.x\n      Events:\n        Get: {{Type: Api, Properties: {{RestApiId: !Ref {id}, Path: {path}, Method: get}}}}\n"
        )
    };
    p.write(
        "template.yaml",
        &format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n{}{}",
            api("Alpha", "alpha", "/a"),
            api("Beta", "beta", "/b")
        ),
    )
    .write("fn/index.js", "exports.handler = async () => 1;\n");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-apis", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let run = p.lamb_env(&["outputs", "--stack-name", "t-apis", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut urls: Vec<(String, String)> = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["id"].as_str().unwrap().to_string(), e["url"].as_str().unwrap().rsplit('/').nth(1).unwrap().to_string())
        })
        .collect();
    urls.sort();
    assert_eq!(urls, [("Alpha".to_string(), "alpha".to_string()), ("Beta".to_string(), "beta".to_string())], "{v}");
}

#[test]
fn an_app_with_a_function_url_deploys_syncs_and_names_its_url() {
    let emu = emulator();
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Web:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn\n      Handler: index.handler\n      Runtime: nodejs20.x\n      FunctionUrlConfig:\n        AuthType: NONE\nOutputs:\n  WebUrl:\n    Value: !GetAtt WebUrl.FunctionUrl\n",
    )
    .write("fn/index.js", "exports.handler = async () => 1;\n");
    let run = p.lamb_env(&["deploy", "--stack-name", "t-url", "--resolve-s3"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let run = p.lamb_env(&["outputs", "--stack-name", "t-url", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let output =
        v["outputs"].as_array().unwrap().iter().find(|o| o["key"] == "WebUrl").expect("the WebUrl output").clone();
    let url = output["value"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://") && url.contains(".lambda-url.us-east-1.on.aws"), "{v}");
    let endpoint = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "function-url")
        .expect("a function URL endpoint")
        .clone();
    assert_eq!(endpoint["id"], "Web", "{v}");
    assert_eq!(endpoint["url"], url.as_str(), "the endpoint is the URL the stack created: {v}");
    // A code edit syncs as for any function.
    p.write("fn/index.js", "exports.handler = async () => 2;\n");
    let (r, run) = sync_json(&p, emu, "t-url", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(item(&r, "Web")["status"], "synced", "{r}");
    let run = p.lamb_env(&["delete", "--stack-name", "t-url", "--yes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn an_update_lambda_does_not_report_back_fails_loudly_and_the_next_sync_pushes_again() {
    // moto, for one, answers UpdateFunctionCode for a missing S3 key with 200 and an empty
    // CodeSha256: lamb checks the code Lambda reports after every update (in the update's own
    // answer when it says the update is done).
    let emu = Emulator::start();
    let proxy = common::faults::FaultProxy::start(&emu);
    let p = deployed_example(&emu, "t-verify");
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// verify\n"));
    // Every answer to the update, and every read after it, claims other code.
    for action in ["UpdateFunctionCode", "GetFunctionConfiguration"] {
        let skip = u64::from(action == "GetFunctionConfiguration");
        proxy.add(serde_json::json!({"fault": "rewrite", "action": action, "path": "HelloNode",
            "skip": skip, "times": -1, "find": "\"CodeSha256\":\\s*\"[^\"]*\"", "replace": "\"CodeSha256\": \"\""}));
    }
    let run = p.lamb_env(&["sync", "--yes", "-r", "HelloNode", "--stack-name", "t-verify", "-o", "json"], &proxy.env());
    assert_eq!(run.code, 1, "{}", run.all());
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let msg = item(&r, "HelloNode")["message"].as_str().unwrap().to_string();
    assert!(msg.contains("Lambda reports CodeSha256 ``") && msg.contains("the upload did not take"), "{msg}");
    assert!(proxy.injected("rewrite") > 0);
    // Not recorded as done: once Lambda answers truly, the next sync pushes it again.
    proxy.clear();
    let (r, run) = sync_json(&p, &emu, "t-verify", &["-r", "HelloNode"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let (built, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(item(&r, "HelloNode")["code_sha256"], code_sha(&built, "HelloNode"));
    assert_eq!(sha_of(&functions(&emu, "t-verify"), "HelloNode"), code_sha(&built, "HelloNode"));
}

#[test]
fn deploy_guided_asks_deploys_and_saves_samconfig_so_the_next_commands_need_no_flags() {
    let emu = emulator();
    let p = Project::example("hello");
    // Comments, other environments and other commands' keys are kept.
    let before =
        p.read("samconfig.toml").replace("[default.sync.parameters]", "# watch by default\n[default.sync.parameters]")
            + "\n[prod.deploy.parameters]\nstack_name = \"hello-prod\"\n";
    p.write("samconfig.toml", &before);
    // Stack, region, Stage (not allowed, then allowed), Greeting, confirm, IAM, rollback, the
    // two functions with open APIs, save, file, environment.
    let input = "t-guided\n\nprod\ntest\nHowdy\n\n\n\ny\ny\n\n\n\n";
    let (ok, out) = on_terminal(&p, "deploy --guided", &emu.env(), input);
    assert!(ok, "{out}");
    for shown in [
        "Stack Name [lamb-hello]: ",
        "AWS Region [us-east-1]: ",
        "`prod` is not one of the AllowedValues of Stage (dev, test); try again",
        "Allow IAM role creation [Y/n]: ",
        "HelloNode may not have authorization defined, Is this okay? [y/N]: ",
        "HelloPython may not have authorization defined, Is this okay? [y/N]: ",
        "Configuration environment [default]: ",
        "deployed stack t-guided",
    ] {
        assert!(out.contains(shown), "{shown} in\n{out}");
    }
    let node = functions(emu, "t-guided").into_iter().find(|f| f.logical == "HelloNode").unwrap();
    assert!(
        node.env.contains(&("GREETING".into(), "Howdy".into())) && node.env.contains(&("STAGE".into(), "test".into()))
    );
    let saved = p.read("samconfig.toml");
    for kept in [
        "# watch by default",
        "watch = true",
        "[prod.deploy.parameters]\nstack_name = \"hello-prod\"",
        "[default.build.parameters]",
    ] {
        assert!(saved.contains(kept), "{kept} in\n{saved}");
    }
    let deploy = &saved[saved.find("[default.deploy.parameters]").unwrap()..];
    for key in [
        "stack_name = \"t-guided\"",
        "resolve_s3 = true",
        "s3_prefix = \"t-guided\"",
        "region = \"us-east-1\"",
        "confirm_changeset = false",
        "capabilities = \"CAPABILITY_IAM\"",
        "disable_rollback = false",
        "parameter_overrides = 'Stage=\"test\" Greeting=\"Howdy\"'",
    ] {
        assert!(deploy.contains(key), "{key} in\n{saved}");
    }
    // The next deploy and sync read it all: nothing to change.
    let run = p.lamb_env(&["deploy"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("no changes: stack t-guided is up to date"), "{}", run.all());
    let run = p.lamb_env(&["sync", "--yes", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["stack"], "t-guided", "{}", run.stdout);
}

#[test]
fn deploy_guided_needs_a_terminal_and_ctrl_c_or_a_broken_samconfig_leave_everything_as_it_was() {
    let emu = emulator();
    let p = Project::example("hello");
    let before = p.read("samconfig.toml");
    let run = p.lamb_env(&["deploy", "--guided"], &emu.env());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("not one; pass the answers as flags instead: --stack-name"), "{}", run.stderr);

    // Ctrl-C at the second question: exit 130, nothing written or deployed.
    let steps = [("Stack Name [lamb-hello]: ", "t-ctrl-c\n"), ("AWS Region [us-east-1]: ", "\u{3}")];
    let (code, out) = common::terminal::on_terminal(&p, "deploy --guided", &emu.env(), &steps);
    assert_eq!(code, Some(130), "{out}");
    assert_eq!(p.read("samconfig.toml"), before);
    let exists = rt().block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
        cfn.describe_stacks().stack_name("t-ctrl-c").send().await.is_ok()
    });
    assert!(!exists, "a stack was created:\n{out}");

    // A samconfig.toml that does not parse: where, and the file left as it is.
    let broken = "version = 0.1\n[default.deploy.parameters\nstack_name = \"x\"\n";
    p.write("samconfig.toml", broken);
    let (ok, out) = on_terminal(&p, "deploy --guided", &emu.env(), "");
    assert!(!ok, "{out}");
    assert!(out.contains("samconfig.toml") && out.contains("line 2") && out.contains("column"), "{out}");
    assert_eq!(p.read("samconfig.toml"), broken);
}
