//! `lamb local`: functions run on this machine in real processes (python, node, a custom
//! runtime's bootstrap) behind lamb's Runtime API, without Docker.

mod common;

use common::{Project, Run};

/// A python function project: `template` resources under a SAM template with `globals`.
fn project(resources: &str) -> Project {
    let p = Project::empty();
    p.write(
        "template.yaml",
        &format!("Transform: AWS::Serverless-2016-10-31\nParameters:\n  Stage: {{Type: String, Default: dev}}\nResources:\n{resources}"),
    );
    p
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", run.all()))
}

/// The request id of the START line, checked against END and REPORT.
fn report_lines(run: &Run) -> (String, String) {
    let start =
        run.stderr.lines().find(|l| l.starts_with("START RequestId: ")).unwrap_or_else(|| panic!("{}", run.all()));
    let id = start["START RequestId: ".len()..].split_whitespace().next().unwrap().to_string();
    assert!(start.ends_with("Version: $LATEST"), "{start}");
    assert!(run.stderr.contains(&format!("END RequestId: {id}\n")), "{}", run.stderr);
    let report = run.stderr.lines().find(|l| l.starts_with("REPORT RequestId: ")).unwrap().to_string();
    assert!(report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")), "{report}");
    (id, report)
}

#[test]
fn the_example_functions_answer_in_their_own_runtimes() {
    let p = Project::example("hello");
    // Python, with a dependency from PyPI and a local layer.
    let run = p.lamb(&["local", "invoke", "HelloPython"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    assert_eq!(v["statusCode"], 200);
    let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["message"], "Hello from python", "from the shared layer's greet(): {body}");
    assert_eq!(body["stage"], "dev", "Globals' environment with the parameter's default");
    assert!(body["requests"].as_str().unwrap().starts_with("2."), "{body}");
    let (_, report) = report_lines(&run);
    for field in ["\tBilled Duration: ", " ms\tMemory Size: 256 MB\tMax Memory Used: ", "\tInit Duration: "] {
        assert!(report.contains(field), "{field} in {report}");
    }
    let used: u64 = report.split("Max Memory Used: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(used > 5, "the interpreter's real peak memory, not a placeholder: {report}");

    // The parameter reaches the environment.
    let run = p.lamb(&["local", "invoke", "HelloPython", "--parameter-overrides", "Stage=test"]);
    let body: serde_json::Value = serde_json::from_str(json(&run)["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["stage"], "test", "{}", run.all());

    let run = p.lamb(&["local", "invoke", "HelloNode"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(json(&run)["body"].as_str().unwrap().contains("Hello from node"), "{}", run.all());
    report_lines(&run);

    // A shell bootstrap speaking the Runtime API with curl, and a make-built one.
    for (id, message) in [("HelloShell", "Hello from shell"), ("HelloMake", "Hello from make")] {
        let run = p.lamb(&["local", "invoke", id]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert_eq!(json(&run)["message"], message);
    }
}

const CONTEXT_PY: &str = r#"import json, os, sys

def handler(event, context):
    print("hello from the handler")
    return {
        "event": event,
        "env": {k: os.environ.get(k) for k in [
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
            "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "AWS_EXECUTION_ENV",
            "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "TZ", "AWS_SAM_LOCAL",
            "AWS_LAMBDA_FUNCTION_TIMEOUT", "TABLE", "STAGE", "FROM_FILE", "EXTRA", "HOME_OF_LAMB",
            "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"]},
        "cwd": os.getcwd(),
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity": context.identity.cognito_identity_id,
        },
    }
"#;

#[test]
fn the_handler_gets_lambdas_context_environment_and_event() {
    let p = project(
        "  Ctx:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ctx\n      Handler: app.handler\n      Runtime: python3.11\n      Timeout: 7\n      MemorySize: 512\n      Environment:\n        Variables:\n          STAGE: !Ref Stage\n          TABLE: !Ref Table\n  Table:\n    Type: AWS::Serverless::SimpleTable\n",
    );
    p.write("ctx/app.py", CONTEXT_PY);
    p.write("event.json", r#"{"from": "file"}"#);
    p.write("env.json", r#"{"Parameters": {"FROM_FILE": "all"}, "Ctx": {"STAGE": "from-env-file", "EXTRA": "yes"}}"#);
    let run = p.lamb_env(
        &["local", "invoke", "-e", "event.json", "--env-vars", "env.json", "--region", "eu-west-3"],
        &[
            ("HOME_OF_LAMB", "leaks?".into()),
            ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".into()),
            ("AWS_SECRET_ACCESS_KEY", "s".into()),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    let (request_id, _) = report_lines(&run);
    assert_eq!(v["event"], serde_json::json!({"from": "file"}));
    let env = &v["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "Ctx");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_TIMEOUT"], "7");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["_HANDLER"], "app.handler");
    assert_eq!(env["AWS_REGION"], "eu-west-3");
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.11");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/Ctx");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["AWS_SAM_LOCAL"], "true");
    assert!(env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap().starts_with("127.0.0.1:"), "{env}");
    assert_eq!(env["LAMBDA_TASK_ROOT"], v["cwd"], "the code's directory is the working directory");
    assert_eq!(env["STAGE"], "from-env-file", "--env-vars overrides the template");
    assert_eq!(env["FROM_FILE"], "all");
    assert_eq!(env["EXTRA"], "yes", "lamb passes variables the template does not declare");
    assert_eq!(env["TABLE"], "Table", "a resource's logical id stands in for it");
    assert_eq!(env["HOME_OF_LAMB"], serde_json::Value::Null, "lamb's own environment does not leak in");
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "AKIDLOCAL", "the caller's credentials reach the function");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:1");
    let ctx = &v["context"];
    assert_eq!(ctx["aws_request_id"], request_id.as_str());
    assert_eq!(ctx["function_name"], "Ctx");
    assert_eq!(ctx["memory_limit_in_mb"], "512");
    assert_eq!(ctx["invoked_function_arn"], "arn:aws:lambda:eu-west-3:123456789012:function:Ctx");
    let remaining = ctx["remaining"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 7000, "{remaining}");
    assert!(run.stderr.contains("hello from the handler"), "the function's output is on stderr: {}", run.all());
    assert!(run.stderr.contains("refers to resource Table"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--env-vars sets EXTRA, FROM_FILE for Ctx, which its template does not declare"),
        "{}",
        run.stderr
    );

    // The event from stdin; no event is {}.
    let mut cmd = std::process::Command::new(common::lamb_bin());
    cmd.args(["local", "invoke", "Ctx", "-e", "-"]).current_dir(p.path()).stdin(std::process::Stdio::piped());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), br#"{"from": "stdin"}"#).unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(json(&run)["event"], serde_json::json!({"from": "stdin"}), "{}", run.all());
    let run = p.lamb(&["local", "invoke"]);
    assert_eq!(json(&run)["event"], serde_json::json!({}), "the only function, and no event");
}

#[test]
fn node_handlers_in_every_module_style() {
    let p = project(concat!(
        "  Cjs:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: cjs, Handler: src/app.handler, Runtime: nodejs20.x}\n",
        "  Esm:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: esm, Handler: app.handler, Runtime: nodejs20.x}\n",
        "  Module:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: module, Handler: index.lambdaHandler, Runtime: nodejs20.x}\n",
        "  Callback:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: callback, Handler: index.handler, Runtime: nodejs20.x}\n",
    ));
    p.write("cjs/src/app.js", "exports.handler = async (event, context) => ({ style: 'cjs', id: context.awsRequestId, left: context.getRemainingTimeInMillis(), fn: context.functionName });\n");
    p.write("esm/app.mjs", "export const handler = async (event) => ({ style: 'mjs', event });\n");
    p.write("module/package.json", r#"{"type": "module"}"#);
    p.write(
        "module/index.js",
        "export const lambdaHandler = async () => { console.log('logged', 42); return { style: 'type-module' }; };\n",
    );
    p.write("callback/index.js", "exports.handler = (event, context, callback) => { setTimeout(() => callback(null, { style: 'callback' }), 5); };\n");
    let run = p.lamb(&["local", "invoke", "Cjs"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    let (id, _) = report_lines(&run);
    assert_eq!(
        (v["style"].as_str(), v["id"].as_str(), v["fn"].as_str()),
        (Some("cjs"), Some(id.as_str()), Some("Cjs"))
    );
    assert!(v["left"].as_i64().unwrap() > 0 && v["left"].as_i64().unwrap() <= 3000, "{v}");
    p.write("event.json", r#"{"k": [1, 2]}"#);
    let run = p.lamb(&["local", "invoke", "Esm", "-e", "event.json"]);
    assert_eq!(json(&run), serde_json::json!({"style": "mjs", "event": {"k": [1, 2]}}), "{}", run.all());
    let run = p.lamb(&["local", "invoke", "Module"]);
    assert_eq!(json(&run)["style"], "type-module", "{}", run.all());
    let (id, _) = report_lines(&run);
    assert!(run.stderr.contains(&format!("\t{id}\tINFO\tlogged 42")), "Lambda's console format: {}", run.stderr);
    let run = p.lamb(&["local", "invoke", "Callback"]);
    assert_eq!(json(&run)["style"], "callback", "{}", run.all());
}

#[test]
fn function_errors_come_back_as_lambda_returns_them() {
    let p = project(concat!(
        "  Raises:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: py, Handler: app.raises, Runtime: python3.11}\n",
        "  NoModule:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: py, Handler: missing.handler, Runtime: python3.11}\n",
        "  NoHandler:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: py, Handler: app.nothere, Runtime: python3.11}\n",
        "  Syntax:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: bad, Handler: app.handler, Runtime: python3.11}\n",
        "  Crash:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: py, Handler: app.crash, Runtime: python3.11}\n",
        "  NodeThrows:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: js, Handler: index.handler, Runtime: nodejs20.x}\n",
        "  NodeMissing:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: js, Handler: nope.handler, Runtime: nodejs20.x}\n",
    ));
    p.write("py/app.py", "import os\n\ndef raises(event, context):\n    raise ValueError('bad input ' + str(event.get('n')))\n\ndef crash(event, context):\n    os._exit(3)\n");
    p.write("bad/app.py", "def handler(event, context)\n    return 1\n");
    p.write("js/index.js", "exports.handler = async () => { throw new TypeError('nope from node'); };\n");
    p.write("n.json", r#"{"n": 5}"#);
    let run = p.lamb(&["local", "invoke", "Raises", "-e", "n.json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v = json(&run);
    assert_eq!((v["errorType"].as_str(), v["errorMessage"].as_str()), (Some("ValueError"), Some("bad input 5")));
    let trace = v["stackTrace"].as_array().unwrap();
    assert!(trace.iter().any(|l| l.as_str().unwrap().contains("app.py")), "the user's frames: {v}");
    assert!(!trace.iter().any(|l| l.as_str().unwrap().contains("lamb_runtime")), "not lamb's: {v}");
    report_lines(&run);

    for (id, error_type, message) in [
        ("NoModule", "Runtime.ImportModuleError", "Unable to import module 'missing': No module named 'missing'"),
        ("NoHandler", "Runtime.HandlerNotFound", "Handler 'nothere' missing on module 'app'"),
        ("Syntax", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
        ("Crash", "Runtime.ExitError", "Runtime exited with error: exit status 3"),
        ("NodeThrows", "TypeError", "nope from node"),
        ("NodeMissing", "Runtime.ImportModuleError", "Cannot find module"),
    ] {
        let run = p.lamb(&["local", "invoke", id]);
        assert_eq!(run.code, 1, "{id}: {}", run.all());
        let v = json(&run);
        assert_eq!(v["errorType"], error_type, "{id}: {v}");
        assert!(v["errorMessage"].as_str().unwrap().contains(message), "{id}: {v}");
        assert!(run.stderr.contains(&format!("{id} failed ({error_type})")), "{id}: {}", run.stderr);
    }
}

#[test]
fn a_function_past_its_timeout_is_stopped_with_its_children() {
    let p = project(
        "  Slow:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: slow, Handler: app.handler, Runtime: python3.11, Timeout: 1}\n",
    );
    p.write(
        "slow/app.py",
        "import os, subprocess, time\n\ndef handler(event, context):\n    child = subprocess.Popen(['sleep', '300'])\n    open(os.environ['PIDS'], 'w').write('%d %d' % (os.getpid(), child.pid))\n    time.sleep(300)\n",
    );
    let pids = p.path().join("pids");
    p.write("env.json", &format!(r#"{{"Slow": {{"PIDS": "{}"}}}}"#, pids.display()));
    let run = p.lamb(&["local", "invoke", "--env-vars", "env.json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v = json(&run);
    assert_eq!(v["errorType"], "Sandbox.Timedout", "{v}");
    assert!(v["errorMessage"].as_str().unwrap().ends_with("Task timed out after 1.00 seconds"), "{v}");
    let (_, report) = report_lines(&run);
    assert!(report.contains("Duration: 10") || report.contains("Duration: 1"), "{report}");
    for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status.lines().find(|l| l.starts_with("State:")).unwrap_or("gone");
        assert!(state == "gone" || state.contains("zombie"), "process {pid} was left running: {state}");
    }
}

#[test]
fn mistakes_are_named_with_their_fix() {
    let p = project(concat!(
        "  One:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: one, Handler: app.handler, Runtime: python3.11}\n",
        "  Shell:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: shell, Handler: x, Runtime: provided.al2023}\n",
        "  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: java.jar, Handler: a.B::handle, Runtime: java21}\n",
        "  Early:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: early, Handler: x, Runtime: provided.al2023}\n",
    ));
    p.write("one/app.py", "def handler(e, c):\n    return 1\n");
    p.write("shell/bootstrap", "#!/bin/sh\nexit 0\n");
    p.write("early/bootstrap", "#!/bin/sh\necho giving up >&2\nexit 4\n");
    common::make_wheel(p.path(), "java", "1.0");
    std::fs::rename(p.path().join("java-1.0-py3-none-any.whl"), p.path().join("java.jar")).unwrap();

    let run = p.lamb(&["local", "invoke"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("name one: lamb local invoke ID (one of One, Shell, Java, Early)"), "{}", run.stderr);
    let run = p.lamb(&["local", "invoke", "Onne"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("did you mean `One`?") && run.stderr.contains("known ids"), "{}", run.stderr);
    p.write("bad.json", "{not json");
    let run = p.lamb(&["local", "invoke", "One", "-e", "bad.json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--event bad.json is not JSON"), "{}", run.stderr);
    let run = p.lamb(&["local", "invoke", "One", "-e", "missing.json"]);
    assert!(run.code == 2 && run.stderr.contains("--event missing.json"), "{}", run.all());
    let run = p.lamb(&["local", "invoke", "Java"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot run runtime java21 locally"), "{}", run.stderr);
    // A bootstrap that exits before asking for work: its exit, and its last words.
    let run = p.lamb(&["local", "invoke", "Early"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(json(&run)["errorMessage"].as_str().unwrap().contains("exit status 4"), "{}", run.all());
    assert!(run.stderr.contains("giving up"), "{}", run.stderr);
    let run = p.lamb(&["local", "invoke", "Shell"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        json(&run)["errorMessage"].as_str().unwrap().contains("Runtime exited without providing a reason"),
        "{}",
        run.all()
    );
    // Nothing built yet and --no-build.
    let fresh = project(
        "  One:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: one, Handler: app.handler, Runtime: python3.11}\n",
    );
    fresh.write("one/app.py", "def handler(e, c):\n    return 1\n");
    let run = fresh.lamb(&["local", "invoke", "--no-build"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("run `lamb build`"), "{}", run.stderr);
    assert_eq!(json(&fresh.lamb(&["local", "invoke"])), serde_json::json!(1));
    assert_eq!(json(&fresh.lamb(&["local", "invoke", "--no-build"])), serde_json::json!(1), "the last build, as it is");
}

use common::server::{Server, running};

/// An SDK client for a local Invoke API.
fn lambda_client(url: &str) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("local", "local", None, None, "test"))
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const ECHO_PY: &str = r#"import json, os

def handler(event, context):
    print("echo", json.dumps(event))
    if event.get("marker"):
        open(event["marker"], "w").write(context.aws_request_id)
    cc = context.client_context
    return {"event": event, "custom": cc.custom if cc else None, "arn": context.invoked_function_arn}
"#;

#[test]
fn start_lambda_answers_the_aws_sdk() {
    let p = project(concat!(
        "  Echo:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: echo, Handler: app.handler, Runtime: python3.11, FunctionName: echo-fn}\n",
        "  Fails:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fails, Handler: index.handler, Runtime: nodejs20.x}\n",
    ));
    p.write("echo/app.py", ECHO_PY);
    p.write("fails/index.js", "exports.handler = async () => { throw new Error('it broke'); };\n");
    let server = Server::start(&p, &["start-lambda"], &[]);
    let client = lambda_client(&server.url);
    rt().block_on(async {
        use aws_sdk_lambda::primitives::Blob;
        let out = client.invoke().function_name("Echo").payload(Blob::new(r#"{"a": 1}"#)).send().await.unwrap();
        assert_eq!(out.status_code(), 200);
        assert_eq!(out.executed_version(), Some("$LATEST"));
        assert!(out.function_error().is_none());
        let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        assert_eq!(v["event"], serde_json::json!({"a": 1}));
        assert_eq!(v["arn"], "arn:aws:lambda:us-east-1:123456789012:function:echo-fn");

        // By FunctionName and by ARN; the log tail; the client context.
        let context = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, r#"{"custom": {"k": "v"}}"#);
        let out = client
            .invoke()
            .function_name("arn:aws:lambda:us-east-1:123456789012:function:echo-fn")
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .client_context(context)
            .payload(Blob::new(r#"{"b": 2}"#))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        assert_eq!(v["custom"], serde_json::json!({"k": "v"}));
        let log =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, out.log_result().unwrap()).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(
            log.starts_with("START RequestId: ")
                && log.contains("echo {\"b\": 2}")
                && log.contains("REPORT RequestId: "),
            "{log}"
        );

        let out = client.invoke().function_name("Fails").send().await.unwrap();
        assert_eq!(out.function_error(), Some("Unhandled"));
        let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        assert_eq!((v["errorType"].as_str(), v["errorMessage"].as_str()), (Some("Error"), Some("it broke")));

        let e = client.invoke().function_name("Nope").send().await.unwrap_err();
        assert!(e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()), "{e:?}");

        let out = client
            .invoke()
            .function_name("Echo")
            .invocation_type(aws_sdk_lambda::types::InvocationType::DryRun)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status_code(), 204);

        // Event: accepted at once, run in the background.
        let marker = p.path().join("marker");
        let payload = serde_json::json!({"marker": marker}).to_string();
        let out = client
            .invoke()
            .function_name("Echo")
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .unwrap();
        assert_eq!(out.status_code(), 202);
        common::daemon::wait_until("the event's invocation", std::time::Duration::from_secs(30), || marker.exists());
    });
}

#[test]
fn hot_reload_serves_each_save_and_keeps_the_last_good_code() {
    let p = project(
        "  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}\n",
    );
    p.write("fn/app.py", "import os\n\ndef handler(event, context):\n    return ['v1', os.environ.get('ADDED')]\n");
    let server = Server::start(&p, &["start-lambda"], &[]);
    let client = lambda_client(&server.url);
    let call = || {
        rt().block_on(async {
            let out = client.invoke().function_name("Fn").send().await.unwrap();
            serde_json::from_slice::<serde_json::Value>(out.payload().unwrap().as_ref()).unwrap()
        })
    };
    assert_eq!(call(), serde_json::json!(["v1", null]));
    p.write("fn/app.py", "import os\n\ndef handler(event, context):\n    return ['v2', os.environ.get('ADDED')]\n");
    server.wait_for_log("reloaded Fn", 1);
    assert_eq!(call(), serde_json::json!(["v2", null]), "the next request runs the saved code");
    // A syntax error: reported, and the last good code keeps serving.
    p.write("fn/app.py", "def handler(event, context)\n    return 'v3'\n");
    server.wait_for_log("error: Fn: Runtime.UserCodeSyntaxError", 1);
    assert_eq!(call(), serde_json::json!(["v2", null]), "{}", server.log());
    p.write("fn/app.py", "import os\n\ndef handler(event, context):\n    return ['v4', os.environ.get('ADDED')]\n");
    server.wait_for_log("reloaded Fn", 2);
    assert_eq!(call(), serde_json::json!(["v4", null]));
    // A template edit: the new variable reaches the function.
    let t = p
        .read("template.yaml")
        .replace("Runtime: python3.11}", "Runtime: python3.11, Environment: {Variables: {ADDED: yes}}}");
    p.write("template.yaml", &t);
    server.wait_for_log("template reloaded", 1);
    assert_eq!(call(), serde_json::json!(["v4", "yes"]), "{}", server.log());
}

/// When the process `pid` started, in clock ticks since boot (/proc/PID/stat, field 22).
fn started_at(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_reload_takes_over_an_interpreter_started_before_the_save_in_the_new_codes_place() {
    let p = project(
        "  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}\n",
    );
    let app = |v: &str| {
        format!(
            "import os, sys\n\ndef handler(event, context):\n    root = os.environ['LAMBDA_TASK_ROOT']\n    \
             return {{'v': '{v}', 'pid': os.getpid(), 'root': root, 'cwd': os.getcwd(), \
             'code_paths': [q for q in sys.path if '/.lamb/local/code/' in q], 'spare_flag': os.environ.get('_LAMB_DEFER')}}\n"
        )
    };
    p.write("fn/app.py", &app("v1"));
    let server = Server::start(&p, &["start-lambda"], &[]);
    let client = lambda_client(&server.url);
    let call = || {
        rt().block_on(async {
            let out = client.invoke().function_name("Fn").send().await.unwrap();
            serde_json::from_slice::<serde_json::Value>(out.payload().unwrap().as_ref()).unwrap()
        })
    };
    let mut roots = vec![call()["root"].as_str().unwrap().to_string()];
    for (n, v) in ["v2", "v3", "v4"].into_iter().enumerate() {
        p.write("fn/app.py", &app(v));
        // A process started right after the save: one started for the reload starts later.
        let mut marker = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let saved = started_at(marker.id());
        marker.kill().unwrap();
        marker.wait().unwrap();
        server.wait_for_log("reloaded Fn", n + 1);
        let got = call();
        assert_eq!(got["v"], v, "{}", server.log());
        let root = got["root"].as_str().unwrap().to_string();
        assert!(!roots.contains(&root), "new code has a new task root: {got}");
        assert_eq!(got["cwd"], root.as_str(), "the working directory is the new task root");
        assert_eq!(got["code_paths"], serde_json::json!([root]), "only the new code on sys.path");
        assert_eq!(got["spare_flag"], serde_json::Value::Null, "lamb's own variable does not reach the function");
        let pid = got["pid"].as_u64().unwrap() as u32;
        if n > 0 {
            // From the second reload on, a spare started after the first one takes over.
            assert!(started_at(pid) <= saved, "the process of {v} started after the save: {got}");
        }
        roots.push(root);
    }
}

#[test]
fn a_local_function_reaches_the_emulator_through_aws_endpoint_url() {
    let emu = common::emulator::Emulator::start();
    rt().block_on(async {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&emu.sdk().await).force_path_style(true).build(),
        );
        s3.create_bucket().bucket("seen-from-local").send().await.unwrap();
    });
    let p = project(
        "  Lister:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}\n",
    );
    p.write(
        "fn/app.py",
        "import os, urllib.request\n\ndef handler(event, context):\n    body = urllib.request.urlopen(os.environ['AWS_ENDPOINT_URL'] + '/').read().decode()\n    return {'listed': 'seen-from-local' in body, 'key': os.environ.get('AWS_ACCESS_KEY_ID')}\n",
    );
    let run = p.lamb_env(&["local", "invoke"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(json(&run), serde_json::json!({"listed": true, "key": "testing"}));
}

#[test]
fn ctrl_c_stops_every_function_process_and_a_taken_port_is_named() {
    let p = project(
        "  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}\n",
    );
    let pid_file = p.path().join("pid");
    p.write(
        "fn/app.py",
        &format!(
            "import os\nopen({:?}, 'w').write(str(os.getpid()))\n\ndef handler(e, c):\n    return 1\n",
            pid_file.display().to_string()
        ),
    );
    let server = Server::start(&p, &["start-lambda"], &[]);
    let out = rt().block_on(lambda_client(&server.url).invoke().function_name("Fn").send()).unwrap();
    assert_eq!(out.status_code(), 200);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(running(&pid), "a warm process between requests");
    let addr = server.url.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    // A second server on the same port.
    let run = p.lamb(&["local", "start-lambda", "--port", &port]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains(&format!("{addr} is in use")) && run.stderr.contains("--port"), "{}", run.stderr);
    assert_eq!(server.interrupt(), Some(0));
    assert!(!running(&pid), "the function's process is stopped with lamb");
    // Even a lamb killed outright takes its function processes with it.
    let mut server = Server::start(&p, &["start-lambda"], &[]);
    let out = rt().block_on(lambda_client(&server.url).invoke().function_name("Fn").send()).unwrap();
    assert_eq!(out.status_code(), 200);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(running(&pid));
    server.child.kill().unwrap();
    common::daemon::wait_until("the orphaned function process to go", std::time::Duration::from_secs(10), || {
        !running(&pid)
    });
}

/// One HTTP request with curl: status, headers (lower-case names), body.
fn curl(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let out = std::process::Command::new("curl").args(["-s", "-i", "--max-time", "30"]).args(args).output().unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
    let body = out.stdout[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())).collect();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

const API_TEMPLATE: &str = r#"
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: app.handler
      Runtime: python3.11
      Events:
        Rest:
          Type: Api
          Properties: {Path: "/rest/{id}", Method: get}
        Http:
          Type: HttpApi
          Properties: {Path: "/http/{proxy+}", Method: ANY}
        Legacy:
          Type: HttpApi
          Properties: {Path: /v1, Method: post, PayloadFormatVersion: "1.0"}
  Binary:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: app.png
      Runtime: python3.11
      Events:
        Png:
          Type: Api
          Properties: {Path: /logo, Method: get, RestApiId: !Ref Guarded}
        Upload:
          Type: Api
          Properties: {Path: /upload, Method: post, RestApiId: !Ref Guarded}
  Guarded:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v2
      BinaryMediaTypes: [image~1png]
      Variables: {color: blue}
      Auth:
        DefaultAuthorizer: Tok
        Authorizers:
          Tok:
            FunctionArn: !GetAtt Auth.Arn
  Auth:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: echo, Handler: app.authorize, Runtime: python3.11}
  Web:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ["https://app.example"]
        AllowMethods: [GET, POST]
  Cors:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: app.handler
      Runtime: python3.11
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /cors, Method: get, ApiId: !Ref Web}
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: app.slow
      Runtime: python3.11
      Timeout: 1
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /slow, Method: get}
  Crash:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: index.crash
      Runtime: nodejs20.x
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /crash, Method: get}
"#;

const API_PY: &str = r#"import base64, json, os, time

def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Seen": "yes"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]}, "body": json.dumps(event)}

def png(event, context):
    if event.get("httpMethod") == "POST":
        return {"statusCode": 200, "body": json.dumps({"b64": event["isBase64Encoded"], "len": len(base64.b64decode(event["body"]))})}
    return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True,
            "body": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff").decode()}

def authorize(event, context):
    effect = "Allow" if event["authorizationToken"] == "let-me-in" else "Deny"
    return {"principalId": "user-1", "context": {"team": "blue"},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]}}

def slow(event, context):
    time.sleep(30)
"#;

#[test]
fn start_api_serves_the_templates_apis_as_api_gateway_does() {
    let p = project(API_TEMPLATE);
    p.write("echo/app.py", API_PY);
    // Crash runs on node: its handler file sits beside the python ones.
    p.write("echo/index.js", "exports.crash = async () => { process.exit(2); };\n");
    p.write("public/index.html", "<h1>static</h1>");
    let server = Server::start(&p, &["start-api"], &[]);
    server.wait_for_log("/rest/{id}  → Echo (REST API ServerlessRestApi, stage Prod)", 1);
    let url = |path: &str| format!("{}{path}", server.url);

    // Payload 1.0, REST, field by field.
    let (status, headers, body) = curl(&[&url("/rest/42?a=1&a=2&b=x"), "-H", "X-Custom: one"]);
    assert_eq!(status, 200, "{}", server.log());
    assert_eq!(header(&headers, "x-seen"), Some("yes"));
    assert_eq!(
        headers.iter().filter(|(k, _)| k == "x-multi").count(),
        2,
        "multiValueHeaders become repeated headers: {headers:?}"
    );
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["resource"], "/rest/{id}");
    assert_eq!(e["path"], "/rest/42");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["pathParameters"], serde_json::json!({"id": "42"}));
    assert_eq!(e["queryStringParameters"], serde_json::json!({"a": "2", "b": "x"}));
    assert_eq!(e["multiValueQueryStringParameters"], serde_json::json!({"a": ["1", "2"], "b": ["x"]}));
    assert_eq!(e["headers"]["x-custom"], "one", "{e}");
    assert_eq!(e["multiValueHeaders"]["x-custom"], serde_json::json!(["one"]));
    assert_eq!(e["requestContext"]["stage"], "Prod");
    assert_eq!(e["requestContext"]["resourcePath"], "/rest/{id}");
    assert_eq!(e["requestContext"]["httpMethod"], "GET");
    assert_eq!(e["requestContext"]["accountId"], "123456789012");
    assert_eq!(e["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert!(e["requestContext"]["requestTimeEpoch"].as_u64().unwrap() > 1_600_000_000_000, "milliseconds: {e}");
    assert_eq!(e["body"], serde_json::Value::Null);
    assert_eq!(e["isBase64Encoded"], false);

    // Payload 2.0, HTTP API, with a greedy path, cookies and a body.
    let (status, _, body) =
        curl(&[&url("/http/a/b/c?x=1&x=2"), "-X", "PUT", "-H", "Cookie: k1=v1; k2=v2", "-d", "hello"]);
    assert_eq!(status, 200);
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "ANY /http/{proxy+}");
    assert_eq!(e["rawPath"], "/http/a/b/c");
    assert_eq!(e["rawQueryString"], "x=1&x=2");
    assert_eq!(e["queryStringParameters"], serde_json::json!({"x": "1,2"}));
    assert_eq!(e["pathParameters"], serde_json::json!({"proxy": "a/b/c"}));
    assert_eq!(e["cookies"], serde_json::json!(["k1=v1", "k2=v2"]));
    assert_eq!(e["requestContext"]["http"]["method"], "PUT");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert!(e["requestContext"]["http"]["userAgent"].as_str().unwrap().starts_with("curl/"), "{e}");
    assert_eq!(e["body"], "hello");
    // An HTTP API route on payload 1.0.
    let (status, _, body) = curl(&[&url("/v1"), "-X", "POST", "-d", "{}"]);
    assert_eq!(status, 200);
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((e["version"].as_str(), e["httpMethod"].as_str()), (Some("1.0"), Some("POST")), "{e}");

    // No route.
    let (status, _, body) = curl(&[&url("/nowhere")]);
    assert_eq!(
        (status, String::from_utf8_lossy(&body).to_string()),
        (403, r#"{"message":"Missing Authentication Token"}"#.into())
    );

    // The authorizer: no token, a denied one, an allowed one (its context reaches the function).
    let (status, _, _) = curl(&[&url("/logo")]);
    assert_eq!(status, 401);
    let (status, _, body) = curl(&[&url("/logo"), "-H", "Authorization: nope"]);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // Binary: the function's base64 body decoded for an Accept of image/png.
    let (status, headers, body) = curl(&[&url("/logo"), "-H", "Authorization: let-me-in", "-H", "Accept: image/png"]);
    assert_eq!(status, 200, "{}", server.log());
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert_eq!(body, b"\x89PNG\r\n\x1a\n\x00\xff");
    // A binary upload reaches the function base64-encoded.
    let upload = p.path().join("upload.bin");
    std::fs::write(&upload, [0u8, 159, 146, 150, 255]).unwrap();
    let (status, _, body) = curl(&[
        &url("/upload"),
        "-H",
        "Authorization: let-me-in",
        "-H",
        "Content-Type: image/png",
        "--data-binary",
        &format!("@{}", upload.display()),
    ]);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), serde_json::json!({"b64": true, "len": 5}));

    // CORS: the preflight without the function; the response's headers from the API.
    let (status, headers, _) = curl(&[
        &url("/cors"),
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: GET",
    ]);
    assert!(status == 204 || status == 200, "{status}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("https://app.example"));
    let (_, headers, _) = curl(&[&url("/cors"), "-H", "Origin: https://app.example"]);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("https://app.example"));
    let (_, headers, _) = curl(&[&url("/cors"), "-H", "Origin: https://evil.example"]);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    // A timeout and a crash are the API's error, not a hang.
    let (status, _, _) = curl(&[&url("/slow")]);
    assert_eq!(status, 500);
    assert!(server.log().contains("Task timed out after 1.00 seconds"), "{}", server.log());
    let (status, _, _) = curl(&[&url("/crash")]);
    assert_eq!(status, 500);
    assert!(server.log().contains("Runtime exited with error: exit status 2"), "{}", server.log());

    // A function URL, under its function's id: payload 2.0, the path as the function sees it.
    let (status, _, body) = curl(&[&url("/Cors/any/where?q=1")]);
    assert_eq!(status, 200, "{}", server.log());
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (e["version"].as_str(), e["rawPath"].as_str(), e["rawQueryString"].as_str()),
        (Some("2.0"), Some("/any/where"), Some("q=1")),
        "{e}"
    );

    // Static files.
    let (status, headers, body) = curl(&[&url("/index.html")]);
    assert_eq!((status, body.as_slice()), (200, b"<h1>static</h1>".as_slice()));
    assert!(header(&headers, "content-type").unwrap().starts_with("text/html"));
}

#[test]
fn start_api_reloads_an_edited_handler_for_the_next_request() {
    let p = Project::example("hello");
    let server = Server::start(&p, &["start-api"], &[]);
    let get = || curl(&[&format!("{}/node", server.url)]);
    let (status, _, body) = get();
    assert_eq!(status, 200, "{}", server.log());
    assert!(String::from_utf8_lossy(&body).contains("Hello from node"));
    let code = p.read("functions/hello_node/index.js").replace("from node", "from edited node");
    p.write("functions/hello_node/index.js", &code);
    server.wait_for_log("reloaded HelloNode", 1);
    assert!(String::from_utf8_lossy(&get().2).contains("Hello from edited node"), "{}", server.log());
}

#[test]
fn generate_event_prints_sams_samples_with_overrides() {
    let p = Project::empty();
    let run = p.lamb(&[
        "local",
        "generate-event",
        "apigateway",
        "aws-proxy",
        "--path",
        "users",
        "--method",
        "POST",
        "--body",
        "{\"a\": 1}",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["httpMethod"], "POST");
    assert_eq!(v["path"], "/users");
    let body = match v["isBase64Encoded"].as_bool() {
        Some(true) => String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v["body"].as_str().unwrap()).unwrap(),
        )
        .unwrap(),
        _ => v["body"].as_str().unwrap().to_string(),
    };
    assert_eq!(body, "{\"a\": 1}");
    let run = p.lamb(&["local", "generate-event", "s3", "put", "--bucket", "photos", "--key", "a b.png"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["Records"][0]["s3"]["bucket"]["name"], "photos");
    assert_eq!(v["Records"][0]["eventName"], "ObjectCreated:Put");
    for (service, event) in [
        ("sqs", "receive-message"),
        ("sns", "notification"),
        ("dynamodb", "update"),
        ("eventbridge", "event"),
        ("cloudwatch", "scheduled-event"),
        ("apigateway", "http-api-proxy"),
    ] {
        let run = p.lamb(&["local", "generate-event", service, event]);
        assert_eq!(run.code, 0, "{service} {event}: {}", run.all());
        assert!(serde_json::from_str::<serde_json::Value>(&run.stdout).is_ok(), "{service} {event}");
    }
    // Piped into local invoke, as SAM's hands-on does.
    let f = project(
        "  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}\n",
    );
    f.write("fn/app.py", "def handler(event, context):\n    return event['Records'][0]['body']\n");
    let event = f.lamb(&["local", "generate-event", "sqs", "receive-message", "--body", "queued"]).stdout;
    let mut child = std::process::Command::new(common::lamb_bin())
        .args(["local", "invoke", "-e", "-"])
        .current_dir(f.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), event.as_bytes()).unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(json(&run), serde_json::json!("queued"), "{}", run.all());
    let run = p.lamb(&["local", "generate-event", "sqs", "recieve-message"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("receive-message"), "a did-you-mean: {}", run.stderr);
}
