//! `lamb list endpoints|resources|stack-outputs` and `lamb logs` end to end against the
//! emulator: before and after a deploy, log events put into the emulator's CloudWatch Logs
//! and read back interleaved, filtered and followed with `--tail`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::emulator::{Emulator, emulator};
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Two functions: `Hello` behind the implicit REST API and a function URL, `Worker` logging to
/// a log group of its own (`LoggingConfig.LogGroup: !Ref WorkerLogs`).
fn app(stack: Option<&str>) -> Project {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: index.handler
      Runtime: nodejs20.x
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Get: {Type: Api, Properties: {Path: /hello, Method: get}}
        Post: {Type: Api, Properties: {Path: /hello, Method: post}}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: index.handler
      Runtime: nodejs20.x
      LoggingConfig:
        LogGroup: !Ref WorkerLogs
  WorkerLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /custom/${AWS::StackName}/worker
Outputs:
  HelloApi:
    Description: the API's base URL
    Value: !Sub https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/
",
    )
    .write("fn/index.js", "exports.handler = async () => 1;\n");
    if let Some(stack) = stack {
        p.write(
            "samconfig.toml",
            &format!("version = 0.1\n[default.global.parameters]\nstack_name = \"{stack}\"\nresolve_s3 = true\n"),
        );
    }
    p
}

fn deployed_app(emu: &Emulator, stack: &str) -> Project {
    let p = app(Some(stack));
    let run = p.lamb_env(&["deploy"], &emu.env());
    assert_eq!(run.code, 0, "deploy failed: {}", run.all());
    p
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.all()))
}

/// `(LogicalResourceId, PhysicalResourceId)` of each row.
fn ids(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| (r["LogicalResourceId"].as_str().unwrap().into(), r["PhysicalResourceId"].as_str().unwrap().into()))
        .collect()
}

fn row<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v.as_array().unwrap().iter().find(|r| r["LogicalResourceId"] == id).unwrap_or_else(|| panic!("no {id} in {v}"))
}

/// Physical ids of `stack`'s resources, by logical id, as CloudFormation has them.
fn physical(emu: &Emulator, stack: &str, id: &str) -> String {
    rt().block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
        let res = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
        res.stack_resource_summaries()
            .iter()
            .find(|r| r.logical_resource_id() == Some(id))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("no {id} in {stack}"))
            .to_string()
    })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Writes events to `group`/`stream` in the emulator's CloudWatch Logs, creating both as needed.
fn put_events(emu: &Emulator, group: &str, stream: &str, events: &[(i64, &str)]) {
    rt().block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
        let _ = logs.create_log_group().log_group_name(group).send().await;
        let _ = logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
        let mut put = logs.put_log_events().log_group_name(group).log_stream_name(stream);
        for (ts, msg) in events {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(*ts).message(*msg).build().unwrap(),
            );
        }
        put.send().await.unwrap();
    });
}

const MIN: i64 = 60_000;

#[test]
fn before_a_deploy_list_shows_what_the_template_says() {
    // No stack name anywhere: the template alone, no AWS call.
    let p = app(None);
    let run = p.lamb(&["list", "resources", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        ids(&json(&run)),
        [("Hello", "-"), ("Worker", "-"), ("WorkerLogs", "-"), ("ServerlessRestApi", "-")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let run = p.lamb(&["list", "endpoints", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    assert_eq!(
        v,
        serde_json::json!([
            {"LogicalResourceId": "Hello", "PhysicalResourceId": "-", "CloudEndpoint": "-", "Methods": "-"},
            {"LogicalResourceId": "Worker", "PhysicalResourceId": "-", "CloudEndpoint": "-", "Methods": "-"},
            {"LogicalResourceId": "ServerlessRestApi", "PhysicalResourceId": "-", "CloudEndpoint": "-",
             "Methods": ["/hello['get', 'post']"]}
        ])
    );
    // The table has SAM's column names.
    let run = p.lamb(&["list", "endpoints"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let header = run.stdout.lines().next().unwrap();
    assert!(
        header.split_whitespace().eq(["LogicalResourceId", "PhysicalResourceId", "CloudEndpoint", "Methods"]),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("/hello['get', 'post']"), "{}", run.stdout);
    // Outputs need a stack.
    let run = p.lamb(&["list", "stack-outputs"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no stack name: pass --stack-name"), "{}", run.stderr);

    // A stack named in samconfig but not created yet: the same, with a note saying so.
    let emu = emulator();
    let p = app(Some("t-list-undeployed"));
    let run = p.lamb_env(&["list", "resources", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(ids(&json(&run)).iter().all(|(_, phys)| phys == "-"), "{}", run.stdout);
    assert!(
        run.stderr.contains("stack t-list-undeployed does not exist in us-east-1; deploy it first with `lamb deploy`"),
        "{}",
        run.stderr
    );
    let run = p.lamb_env(&["list", "stack-outputs", "-o", "json"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(json(&run)["error"].as_str().unwrap().contains("deploy it first"), "{}", run.stdout);
}

#[test]
fn after_a_deploy_list_shows_physical_ids_urls_and_outputs() {
    let emu = emulator();
    let stack = "t-list";
    let p = deployed_app(emu, stack);

    let run = p.lamb_env(&["list", "resources", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    for id in ["Hello", "Worker", "WorkerLogs", "ServerlessRestApi", "HelloRole"] {
        assert_eq!(row(&v, id)["PhysicalResourceId"], physical(emu, stack, id).as_str(), "{id}: {v}");
    }
    assert_eq!(row(&v, "WorkerLogs")["PhysicalResourceId"], format!("/custom/{stack}/worker"));
    let listed: Vec<String> = ids(&v).into_iter().map(|(id, _)| id).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed, sorted, "each resource once, by id: {v}");

    let run = p.lamb_env(&["list", "endpoints", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    let api = row(&v, "ServerlessRestApi");
    let api_id = physical(emu, stack, "ServerlessRestApi");
    assert_eq!(api["PhysicalResourceId"], api_id.as_str());
    assert_eq!(
        api["CloudEndpoint"],
        serde_json::json!([format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/Prod/")]),
        "every stage: {v}"
    );
    assert_eq!(api["Methods"], serde_json::json!(["/hello['get', 'post']"]));
    let hello = row(&v, "Hello");
    assert_eq!(hello["PhysicalResourceId"], physical(emu, stack, "Hello").as_str());
    let url = hello["CloudEndpoint"].as_str().unwrap();
    assert!(url.starts_with("https://") && url.contains(".lambda-url.us-east-1.on.aws"), "the function URL: {v}");
    assert_eq!(row(&v, "Worker")["CloudEndpoint"], "-", "no URL: {v}");

    let run = p.lamb_env(&["list", "stack-outputs", "--output", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        json(&run),
        serde_json::json!([{
            "OutputKey": "HelloApi",
            "OutputValue": format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/Prod/"),
            "Description": "the API's base URL"
        }])
    );
    let run = p.lamb_env(&["list", "stack-outputs"], &emu.env());
    assert!(run.stdout.lines().next().unwrap().split_whitespace().eq(["OutputKey", "OutputValue", "Description"]));

    // `lamb outputs` shares the endpoint discovery and still prints its own shape.
    let run = p.lamb_env(&["outputs", "-o", "json"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let v = json(&run);
    let kinds: Vec<&str> = v["endpoints"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"rest-api") && kinds.contains(&"function-url"), "{}", run.stdout);
}

/// The events of `lamb logs -o json`, as (function, message).
fn events(run: &Run) -> Vec<(String, String)> {
    assert_eq!(run.code, 0, "{}", run.all());
    json(run)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["function"].as_str().unwrap().to_string(), e["message"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn logs_interleave_functions_by_time_with_filter_and_since() {
    let emu = emulator();
    let stack = "t-logs";
    let p = deployed_app(emu, stack);
    let hello = format!("/aws/lambda/{}", physical(emu, stack, "Hello"));
    let worker = format!("/custom/{stack}/worker");
    let now = now_ms();
    put_events(emu, &hello, "2026/12/08/[$LATEST]a", &[(now - 20 * MIN, "hello old"), (now - 5 * MIN, "hello start")]);
    put_events(emu, &hello, "2026/12/08/[$LATEST]b", &[(now - 3 * MIN, "hello ERROR x"), (now - MIN, "hello end")]);
    put_events(emu, &worker, "w1", &[(now - 4 * MIN, "worker ERROR boom"), (now - 2 * MIN, "worker done")]);

    // Both functions (the default), the last 10 minutes (the default), in time order.
    let run = p.lamb_env(&["logs", "-o", "json"], &emu.env());
    assert_eq!(
        events(&run),
        pairs(&[
            ("Hello", "hello start"),
            ("Worker", "worker ERROR boom"),
            ("Hello", "hello ERROR x"),
            ("Worker", "worker done"),
            ("Hello", "hello end"),
        ])
    );
    let v = json(&run);
    let groups: Vec<&str> =
        v["functions"].as_array().unwrap().iter().map(|f| f["log_group"].as_str().unwrap()).collect();
    assert_eq!(groups, [hello.as_str(), worker.as_str()], "Worker's LoggingConfig.LogGroup is read: {v}");

    let run = p.lamb_env(&["logs", "--filter", "ERROR", "-o", "json"], &emu.env());
    assert_eq!(events(&run), pairs(&[("Worker", "worker ERROR boom"), ("Hello", "hello ERROR x")]));

    let run = p.lamb_env(&["logs", "-r", "Hello", "--since", "30m", "-o", "json"], &emu.env());
    assert_eq!(
        events(&run),
        pairs(&[("Hello", "hello old"), ("Hello", "hello start"), ("Hello", "hello ERROR x"), ("Hello", "hello end")])
    );
    let run = p.lamb_env(&["logs", "--since", "150s", "-o", "json"], &emu.env());
    assert_eq!(events(&run), pairs(&[("Worker", "worker done"), ("Hello", "hello end")]));

    // Human lines: the function's id, the time in UTC, the message.
    let run = p.lamb_env(&["logs", "-r", "Worker"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with("Worker  20") && lines[0].ends_with("Z  worker ERROR boom"), "{}", run.stdout);
}

#[test]
fn logs_of_what_cannot_be_read_say_why() {
    let emu = emulator();
    // A function that never ran has no log group: nothing to show, and a note saying so.
    let stack = "t-logs-bad";
    let p = deployed_app(emu, stack);
    let run = p.lamb_env(&["logs", "-r", "Hello"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("Hello has no logs yet: its log group /aws/lambda/"), "{}", run.stderr);

    let run = p.lamb_env(&["logs", "-r", "Helo"], &emu.env());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains(
            "--resource-id Helo: no such function in the template (did you mean `Hello`?); its functions: Hello, Worker"
        ),
        "{}",
        run.stderr
    );
    let run = p.lamb_env(&["logs", "-r", "WorkerLogs"], &emu.env());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("its functions: Hello, Worker"), "{}", run.stderr);

    for since in ["soon", "2999-01-01T00:00:00Z", "10 parsecs"] {
        let run = p.lamb_env(&["logs", "--since", since, "-o", "json"], &emu.env());
        assert_eq!(run.code, 2, "{since}: {}", run.all());
        let error = json(&run)["error"].as_str().unwrap().to_string();
        assert!(error.starts_with(&format!("--since `{since}`: ")), "{error}");
        assert!(error.contains("30s, 10m") || error.contains("future"), "{error}");
    }

    let p = app(Some("t-logs-never-deployed"));
    let run = p.lamb_env(&["logs"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("stack t-logs-never-deployed does not exist in us-east-1; deploy it first with `lamb deploy`"),
        "{}",
        run.stderr
    );
}

/// Lines of a running process's stdout, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `text`, returning the lines seen before it and the line.
fn wait_for(rx: &mpsc::Receiver<String>, text: &str, timeout: Duration) -> (Vec<String>, String) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(text) => return (seen, line),
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {text:?} within {timeout:?}; saw {seen:?}"),
        }
    }
}

/// The lines seen before the one containing `text`.
fn wait_line(rx: &mpsc::Receiver<String>, text: &str, timeout: Duration) -> Vec<String> {
    wait_for(rx, text, timeout).0
}

/// The line containing `text`.
fn wait_line_text(rx: &mpsc::Receiver<String>, text: &str, timeout: Duration) -> String {
    wait_for(rx, text, timeout).1
}

/// `lamb logs --tail ARGS` running in `p` with `env`, and its stdout lines as they come.
fn spawn_tail(p: &Project, args: &[&str], env: &[(&str, String)]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(lamb_bin());
    cmd.args(["logs", "--tail"]).args(args).current_dir(p.path()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = lines_of(&mut child);
    (child, rx)
}

/// Sends SIGINT (Ctrl-C) and waits, bounded, for the exit; returns the exit code, stderr, and
/// every line printed after those already taken from `rx`.
fn interrupt(mut child: std::process::Child, rx: mpsc::Receiver<String>) -> (Option<i32>, String, Vec<String>) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "lamb logs --tail did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // The reader ends at the end of the output: everything printed is in by now.
    (status.code(), stderr, rx.iter().collect())
}

#[test]
fn tail_prints_events_written_after_it_started_once_each_and_exits_0_on_ctrl_c() {
    let emu = emulator();
    let stack = "t-tail";
    let p = deployed_app(emu, stack);
    let hello = format!("/aws/lambda/{}", physical(emu, stack, "Hello"));
    let worker = format!("/custom/{stack}/worker");
    put_events(emu, &hello, "s1", &[(now_ms() - MIN, "before the tail")]);

    let (child, rx) = spawn_tail(&p, &[], &emu.env());
    wait_line(&rx, "before the tail", Duration::from_secs(30));
    // Written after it started: both functions' new events show up, each once (the window
    // read again each second still holds "before the tail").
    put_events(emu, &worker, "w1", &[(now_ms(), "worker after")]);
    let line = wait_line_text(&rx, "worker after", Duration::from_secs(30));
    assert!(line.starts_with("Worker  "), "{line}");
    put_events(emu, &hello, "s1", &[(now_ms(), "hello after")]);
    let between = wait_line(&rx, "hello after", Duration::from_secs(30));
    assert!(between.is_empty(), "nothing printed twice: {between:?}");

    let (code, stderr, rest) = interrupt(child, rx);
    assert_eq!(code, Some(0), "Ctrl-C is a normal end: {stderr}");
    assert!(rest.is_empty(), "nothing printed twice: {rest:?}");
}

#[test]
fn tail_rides_out_an_outage_and_prints_json_lines() {
    let emu = emulator();
    let stack = "t-tail-outage";
    let p = deployed_app(emu, stack);
    let hello = format!("/aws/lambda/{}", physical(emu, stack, "Hello"));
    put_events(emu, &hello, "s1", &[(now_ms() - MIN, "before")]);
    let proxy = common::faults::FaultProxy::start(emu);

    let (child, rx) = spawn_tail(&p, &["-r", "Hello", "-o", "json"], &proxy.env());
    let first = wait_line_text(&rx, "before", Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!((v["function"].as_str(), v["log_group"].as_str()), (Some("Hello"), Some(hello.as_str())), "{v}");
    assert!(v["event_id"].is_string() && v["timestamp"].is_i64() && v["time"].as_str().unwrap().ends_with('Z'));
    // More failures in a row than the SDK retries: polls fail for a while, then work again.
    proxy.add(serde_json::json!({"fault": "error503", "service": "logs", "action": "FilterLogEvents", "times": 12}));
    put_events(emu, &hello, "s1", &[(now_ms(), "after the outage")]);
    let between = wait_line(&rx, "after the outage", Duration::from_secs(60));
    assert!(between.is_empty(), "nothing printed twice: {between:?}");
    assert_eq!(proxy.injected("error503"), 12);

    let (code, stderr, rest) = interrupt(child, rx);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("reading logs failed, retrying"), "the outage is reported: {stderr}");
    assert!(rest.is_empty(), "nothing printed twice: {rest:?}");
}
