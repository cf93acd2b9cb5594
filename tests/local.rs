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
