//! lamb under AWS's bad days: throttling, 5xx, conflicts, updates that stay InProgress, dropped
//! connections, outages, an emulator that comes back empty, expired credentials, and a daemon
//! killed mid-sync. Faults come from the fault proxy (tests/emulator/fault_proxy.py) in front
//! of a private emulator; every test checks that nothing was lost: what is live equals a fresh
//! build of what is on disk.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::daemon::{Daemon, wait_until};
use common::emulator::Emulator;
use common::faults::FaultProxy;
use common::*;

const FUNCTIONS: [&str; 4] = ["HelloPython", "HelloNode", "HelloShell", "HelloMake"];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A private emulator with the example deployed as `stack`, and a fault proxy in front.
fn setup(stack: &str) -> (Emulator, FaultProxy, Project) {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", stack], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    (emu, proxy, p)
}

/// Logical id → CodeSha256 Lambda reports, read from the emulator directly (not the proxy).
fn live(emu: &Emulator, stack: &str) -> std::collections::BTreeMap<String, String> {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let mut out = std::collections::BTreeMap::new();
        let Ok(resources) = cfn.list_stack_resources().stack_name(stack).send().await else { return out };
        for r in resources.stack_resource_summaries() {
            if r.resource_type() != Some("AWS::Lambda::Function") {
                continue;
            }
            let name = r.physical_resource_id().unwrap();
            if let Ok(c) = lambda.get_function_configuration().function_name(name).send().await {
                out.insert(r.logical_resource_id().unwrap().to_string(), c.code_sha256().unwrap().to_string());
            }
        }
        out
    })
}

/// Logical id → CodeSha256 of a build of the project as it is on disk.
fn local(p: &Project) -> std::collections::BTreeMap<String, String> {
    let (report, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    FUNCTIONS.iter().map(|id| (id.to_string(), code_sha(&report, id))).collect()
}

fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let text = p.read(rel);
    assert!(text.contains(from), "{rel} has no `{from}`");
    p.write(rel, &text.replacen(from, to, 1));
}

fn edit_everything(p: &Project, tag: &str) {
    p.write("functions/hello_python/app.py", &(p.read("functions/hello_python/app.py") + &format!("# {tag}\n")));
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + &format!("// {tag}\n")));
    p.write("functions/hello_shell/bootstrap", &format!("#!/bin/sh\necho {tag}\n"));
    p.write("functions/hello_make/bootstrap.in", &format!("#!/bin/sh\necho {tag}\n"));
    p.write("layers/shared/shared/greeting.py", &(p.read("layers/shared/shared/greeting.py") + &format!("# {tag}\n")));
}

/// Every rule's faults were all injected (none left unused).
fn all_used(proxy: &FaultProxy) {
    let stats = proxy.stats();
    for r in stats["rules"].as_array().unwrap() {
        assert_eq!(r["remaining"], 0, "a fault was never hit: {r}\n{stats}");
    }
}

#[test]
fn throttling_5xx_and_dropped_connections_are_retried_and_the_sync_completes() {
    let (emu, proxy, p) = setup("f-retry");
    edit_everything(&p, "retry");
    proxy.add_all(vec![
        json!({"fault": "throttle", "service": "cloudformation", "action": "DescribeStacks", "times": 2}),
        json!({"fault": "error500", "service": "lambda", "action": "GetFunctionConfiguration", "times": 2}),
        json!({"fault": "throttle", "service": "lambda", "action": "UpdateFunctionCode", "times": 3}),
        json!({"fault": "error503", "service": "lambda", "action": "UpdateFunctionCode", "times": 1}),
        json!({"fault": "reset", "service": "lambda", "action": "UpdateFunctionCode", "times": 1}),
        json!({"fault": "throttle", "service": "lambda", "action": "PublishLayerVersion", "times": 1}),
        json!({"fault": "error500", "service": "lambda", "action": "UpdateFunctionConfiguration", "times": 1}),
    ]);
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-retry"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    all_used(&proxy);
    assert_eq!(live(&emu, "f-retry"), local(&p), "every change is live");
    // A deploy under the same weather.
    p.write("template.yaml", &p.read("template.yaml").replace("Timeout: 10", "Timeout: 11"));
    proxy.clear();
    proxy.add_all(vec![
        json!({"fault": "throttle", "service": "cloudformation", "action": "CreateChangeSet", "times": 2}),
        json!({"fault": "error503", "service": "cloudformation", "action": "DescribeChangeSet", "times": 2}),
        json!({"fault": "error500", "service": "s3", "action": "PutObject", "times": 2}),
        json!({"fault": "throttle", "service": "cloudformation", "action": "DescribeStackEvents", "times": 2}),
    ]);
    edit_everything(&p, "deploy");
    let run = p.lamb_env(&["deploy", "--stack-name", "f-retry"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    all_used(&proxy);
    assert_eq!(live(&emu, "f-retry"), local(&p));
}

/// Lambda's updates of one function, from the proxy's request log: for each function, the
/// requests that update it and the polls that saw it in progress, in arrival order. Panics
/// if an update of a function was sent while the last answer lamb had about it said an
/// update was in progress (or before it had seen the previous update finish).
fn updates_wait_for_the_function_to_settle(
    log: &[serde_json::Value],
) -> std::collections::BTreeMap<String, (u64, u64)> {
    // Per function: busy (an update sent or InProgress seen, no Successful poll since),
    // updates sent, polls that answered InProgress.
    let mut seen: std::collections::BTreeMap<String, (bool, u64, u64)> = Default::default();
    for r in log {
        let (Some(f), Some(action)) = (r["function"].as_str(), r["action"].as_str()) else { continue };
        if f.is_empty() {
            continue;
        }
        let e = seen.entry(f.to_string()).or_default();
        match action {
            "UpdateFunctionCode" | "UpdateFunctionConfiguration" => {
                assert!(!e.0, "{action} sent for {f} while it was still updating (request {}):\n{log:#?}", r["seq"]);
                e.0 = true;
                e.1 += 1;
            }
            "GetFunctionConfiguration" if r["status"] == 200 => {
                let in_progress = r["fault"] == "rewrite" && r["replaced"].as_u64().unwrap_or(0) > 0;
                e.0 = in_progress;
                e.2 += u64::from(in_progress);
            }
            _ => {}
        }
    }
    seen.into_iter().map(|(f, (_, updates, in_progress))| (f, (updates, in_progress))).collect()
}

#[test]
fn conflicts_and_updates_in_progress_wait_and_never_overlap_on_a_function() {
    let (emu, proxy, p) = setup("f-conflict");
    edit_everything(&p, "conflict");
    const IN_PROGRESS: u64 = 6;
    proxy.add_all(vec![
        // Another update is running on HelloNode: twice refused, then accepted.
        json!({"fault": "conflict", "action": "UpdateFunctionCode", "path": "HelloNode", "times": 2}),
        // The layer swap on HelloPython collides too.
        json!({"fault": "conflict", "action": "UpdateFunctionConfiguration", "times": 1}),
        // Lambda reports HelloPython's updates as still in progress for a while.
        json!({"fault": "rewrite", "action": "GetFunctionConfiguration", "path": "HelloPython", "times": IN_PROGRESS,
               "find": "\"LastUpdateStatus\":\\s*\"Successful\"", "replace": "\"LastUpdateStatus\": \"InProgress\""}),
    ]);
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-conflict"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    all_used(&proxy);
    assert_eq!(live(&emu, "f-conflict"), local(&p));
    // Never two updates at once on one function, whatever their kinds.
    let in_flight = proxy.max_in_flight();
    assert_eq!(in_flight.len(), 4, "every function was updated: {in_flight:?}");
    for (function, n) in &in_flight {
        assert_eq!(*n, 1, "two updates at once on {function}: {in_flight:?}");
    }
    // No update was sent while Lambda said one was in progress, and lamb kept polling until it
    // said it was done: every InProgress answer was followed by another poll.
    let log = proxy.request_log();
    let per_function = updates_wait_for_the_function_to_settle(&log);
    let (python, (updates, in_progress)) =
        per_function.iter().find(|(f, _)| f.contains("HelloPython")).expect("HelloPython was updated");
    assert_eq!(*in_progress, IN_PROGRESS, "{per_function:?}");
    assert!(*updates >= 2, "the layer swap and the code push: {per_function:?}");
    let polls =
        log.iter().filter(|r| r["function"] == python.as_str() && r["action"] == "GetFunctionConfiguration").count()
            as u64;
    assert!(polls > IN_PROGRESS, "{polls} polls of {python} for {IN_PROGRESS} InProgress answers:\n{log:#?}");
}

/// For each function using a layer: (its layer version ARN, that version's CodeSha256, the
/// layer's latest version ARN), read from the emulator.
fn layer_use(emu: &Emulator, stack: &str) -> Vec<(String, String, String, String)> {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let mut out = Vec::new();
        let resources = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
        for r in resources.stack_resource_summaries() {
            if r.resource_type() != Some("AWS::Lambda::Function") {
                continue;
            }
            let c = lambda.get_function_configuration().function_name(r.physical_resource_id().unwrap()).send().await;
            for l in c.unwrap().layers() {
                let arn = l.arn().unwrap().to_string();
                let v = lambda.get_layer_version_by_arn().arn(&arn).send().await.unwrap();
                let sha = v.content().unwrap().code_sha256().unwrap().to_string();
                let (base, _) = arn.rsplit_once(':').unwrap();
                let name = base.rsplit(':').next().unwrap();
                let versions = lambda.list_layer_versions().layer_name(name).send().await.unwrap();
                let latest = versions.layer_versions().iter().max_by_key(|v| v.version()).unwrap();
                let latest = latest.layer_version_arn().unwrap().to_string();
                out.push((r.logical_resource_id().unwrap().to_string(), arn, sha, latest));
            }
        }
        out
    })
}

#[test]
fn writes_applied_but_answered_with_a_reset_converge() {
    let (emu, proxy, p) = setup("f-applied");
    edit_everything(&p, "applied");
    // The code update and the layer publish reach Lambda and are applied; lamb only sees the
    // connection drop, as when a network fails after the request went out.
    proxy.add_all(vec![
        json!({"fault": "reset_after", "service": "lambda", "action": "UpdateFunctionCode", "path": "HelloShell"}),
        json!({"fault": "reset_after", "service": "lambda", "action": "UpdateFunctionCode", "path": "HelloPython"}),
        json!({"fault": "reset_after", "service": "lambda", "action": "PublishLayerVersion"}),
    ]);
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-applied"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    all_used(&proxy);
    assert_eq!(proxy.injected("reset_after"), 3, "{}", proxy.stats());
    let log = proxy.request_log();
    let published = log.iter().filter(|r| r["action"] == "PublishLayerVersion").count();
    assert!(published >= 2, "the reset publish was tried again: {published}");
    assert_eq!(live(&emu, "f-applied"), local(&p), "every change is live");
    // The layer's users run its newest version, whose content is the fresh build's; none is
    // left on the version whose publish looked failed (or on an older one).
    let (report, _) = p.build_json(&["-r", "SharedLayer"]);
    let want = code_sha(&report, "SharedLayer");
    let uses = layer_use(&emu, "f-applied");
    assert!(!uses.is_empty());
    for (id, arn, sha, latest) in &uses {
        assert_eq!(sha, &want, "{id} runs layer {arn}, not the fresh build");
        assert_eq!(arn, latest, "{id} is on {arn}, not the latest {latest}");
    }
    // lamb's record matches what runs: the next sync writes nothing.
    emu.clear_requests();
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-applied"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(emu.writes().is_empty(), "{:?}", emu.writes());
}

#[test]
fn throttling_that_never_clears_fails_that_function_clearly_in_bounded_time() {
    let (emu, proxy, p) = setup("f-storm");
    edit_everything(&p, "storm");
    proxy.add(json!({"fault": "throttle", "action": "UpdateFunctionCode", "path": "HelloShell", "times": -1}));
    let started = Instant::now();
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-storm", "-o", "json"], &proxy.env());
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let shell = report["items"].as_array().unwrap().iter().find(|i| i["id"] == "HelloShell").unwrap();
    assert_eq!(shell["status"], "failed");
    let msg = shell["message"].as_str().unwrap();
    assert!(msg.contains("TooManyRequestsException") && msg.contains("try again in a moment"), "{msg}");
    let attempts = proxy.injected("throttle");
    assert!((2..=10).contains(&attempts), "bounded retries, not a storm: {attempts}");
    assert!(took < Duration::from_secs(60), "gave up in bounded time: {took:?}");
    // The other functions went out regardless.
    let (live, local) = (live(&emu, "f-storm"), local(&p));
    for id in ["HelloPython", "HelloNode", "HelloMake"] {
        assert_eq!(live[id], local[id], "{id}");
    }
    assert_ne!(live["HelloShell"], local["HelloShell"]);
}

#[test]
fn expired_credentials_are_one_clear_error_without_a_retry_storm() {
    let (_emu, proxy, p) = setup("f-expired");
    edit_everything(&p, "expired");
    proxy.add(json!({"fault": "expired", "times": -1}));
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-expired"], &proxy.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("no usable AWS credentials")
            && run.stderr.contains("ExpiredToken")
            && run.stderr.contains("aws sso login"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("no usable AWS credentials").count(), 1, "{}", run.stderr);
    // It says which credentials: the default chain here.
    assert!(
        run.stderr.contains("the default credential chain: environment, ~/.aws profiles, SSO, IMDS"),
        "{}",
        run.stderr
    );
    assert!(proxy.requests() <= 2, "no retries of a credentials error: {}", proxy.stats());
    // A profile chosen by AWS_PROFILE, or by --profile, is named.
    let mut env = proxy.env();
    env.push(("AWS_PROFILE", "ci-expired".into()));
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-expired"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no usable AWS credentials (profile `ci-expired` from AWS_PROFILE)"), "{}", run.stderr);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[profile dev-expired]\naws_access_key_id = testing\naws_secret_access_key = testing\nregion = us-east-1\n",
    )
    .unwrap();
    let mut env: Vec<(&str, String)> = proxy
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
        .collect();
    env.push(("AWS_CONFIG_FILE", config.path().display().to_string()));
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-expired", "--profile", "dev-expired"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no usable AWS credentials (profile `dev-expired`)"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("no usable AWS credentials").count(), 1, "{}", run.stderr);
}

#[test]
fn a_throttling_exception_code_is_retried_like_too_many_requests() {
    let (emu, proxy, p) = setup("f-throttling");
    edit_everything(&p, "throttling");
    // Some services answer throttling as 400 ThrottlingException, not 429.
    let throttling = |extra: serde_json::Value| {
        let mut rule =
            json!({"fault": "throttle", "status": 400, "code": "ThrottlingException", "message": "Rate exceeded"});
        rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        rule
    };
    proxy.add_all(vec![
        throttling(json!({"service": "lambda", "action": "UpdateFunctionCode", "times": 3})),
        throttling(json!({"service": "lambda", "action": "GetFunctionConfiguration", "times": 2})),
    ]);
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-throttling"], &proxy.env());
    assert_eq!(run.code, 0, "{}", run.all());
    all_used(&proxy);
    assert_eq!(proxy.injected("throttle"), 5);
    assert_eq!(live(&emu, "f-throttling"), local(&p));
    // When it never clears: that function fails, saying so, after bounded retries.
    proxy.clear();
    proxy.add(throttling(json!({"action": "UpdateFunctionCode", "path": "HelloShell", "times": -1})));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho still throttled\n");
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "f-throttling"], &proxy.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.all().contains("ThrottlingException: Rate exceeded") && run.all().contains("try again in a moment"),
        "{}",
        run.all()
    );
    let attempts = proxy.injected("throttle");
    assert!((2..=10).contains(&attempts), "bounded retries, not a storm: {attempts}");
}

/// A daemon talking to AWS through the proxy.
fn daemon(p: &Project, proxy: &FaultProxy, stack: &str, extra: &[&str]) -> Daemon {
    Daemon::start(p, &proxy.env(), stack, extra, &[])
}

#[test]
fn an_outage_is_reported_once_and_its_changes_sync_when_aws_is_back() {
    let (emu, proxy, p) = setup("f-outage");
    let d = daemon(&p, &proxy, "f-outage", &[]);
    let ready = d.output();
    // The network goes: every request is cut.
    proxy.add(json!({"fault": "reset", "times": -1}));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho during the outage\n");
    let want = local(&p)["HelloShell"].clone();
    wait_until("the outage to be reported", Duration::from_secs(30), || d.output().contains("retrying"));
    // Several retries, one message.
    wait_until("retries", Duration::from_secs(30), || proxy.injected("reset") >= 12);
    let during = d.output()[ready.len()..].to_string();
    let reports = during.lines().filter(|l| l.contains("retrying")).count();
    assert_eq!(reports, 1, "one report, not one per retry:\n{during}");
    assert!(during.contains("cannot reach AWS"), "{during}");
    // Back: the pending change goes out without another save.
    proxy.clear();
    wait_until("the change to sync after the outage", Duration::from_secs(45), || {
        live(&emu, "f-outage")["HelloShell"] == want
    });
    wait_until("the sync to be reported", Duration::from_secs(20), || d.output().contains("synced    HelloShell"));
}

#[test]
fn an_emulator_that_restarts_empty_is_redeployed_or_reported_with_the_fix() {
    let (emu, proxy, p) = setup("f-empty");
    // --code: lamb may not deploy, so it says what to do and keeps watching.
    let d = daemon(&p, &proxy, "f-empty", &["--code"]);
    emu.reset();
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho after the restart\n");
    wait_until("the missing stack to be reported", Duration::from_secs(30), || {
        d.output().contains("stack f-empty does not exist")
    });
    assert!(d.output().contains("lamb deploy"), "{}", d.output());
    drop(d);
    // Without --code, the daemon deploys the stack again, then the code is live.
    let d = daemon(&p, &proxy, "f-empty", &[]);
    wait_until("the stack to be back with the new code", Duration::from_secs(60), || {
        live(&emu, "f-empty").get("HelloShell") == local(&p).get("HelloShell")
    });
    assert_eq!(live(&emu, "f-empty"), local(&p), "{}", d.output());
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The daemon's count of finished passes (`lamb status`).
fn passes(d: &Daemon, p: &Project) -> Option<u64> {
    let run = d.lamb(p, &["status", "-o", "json"]);
    serde_json::from_str::<serde_json::Value>(&run.stdout).ok()?["daemon"]["passes"].as_u64()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn one_daemon_through_an_outage_and_an_emulator_back_empty_backs_off_then_redeploys() {
    let (emu, proxy, p) = setup("f-gone");
    // The emulator that will come back, empty, started early so the test need not wait.
    let fresh = Emulator::start();
    let d = daemon(&p, &proxy, "f-gone", &[]);
    let ready = d.output().len();
    // The emulator goes down: nothing answers where the proxy forwards.
    proxy.clear();
    proxy.repoint_port(dead_port());
    drop(emu);
    let before = passes(&d, &p).unwrap();
    let outage_started = unix_now();
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho through the outage\n");
    // When each failed pass was seen to have finished (UNIX seconds), from the daemon's own
    // count of passes.
    let mut finished: Vec<f64> = Vec::new();
    let mut last = before;
    wait_until("four failed passes", Duration::from_secs(40), || {
        if let Some(n) = passes(&d, &p)
            && n > last
        {
            assert_eq!(
                n,
                last + 1,
                "two passes ended between two looks (1 s of backoff or more apart): the looks are too slow to tell them apart"
            );
            finished.push(unix_now());
            last = n;
        }
        finished.len() >= 4
    });
    let log = proxy.request_log();
    // Backoff doubles (1 s, 2 s, 4 s): each retry starts at least that long after the last
    // one failed. Timed by the proxy, on the requests themselves: a failed pass sent its last
    // request before it failed (before it was seen to), the next pass its first only after the
    // backoff (long after it was seen to: a look takes milliseconds).
    let starts: Vec<f64> = log.iter().map(|r| r["start"].as_f64().unwrap()).collect();
    let gaps: Vec<f64> = finished[..3]
        .iter()
        .map(|seen| {
            let last_of_pass = starts.iter().copied().filter(|t| t <= seen).fold(f64::NAN, f64::max);
            let first_of_next = starts.iter().copied().filter(|t| t > seen).fold(f64::NAN, f64::min);
            first_of_next - last_of_pass
        })
        .collect();
    for (gap, backoff) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        assert!(*gap >= backoff, "retries {gaps:?} s apart do not back off (want >= {backoff} s):\n{log:#?}");
    }
    // An upper bound on the traffic: a pass is one failing call with the SDK's 5 attempts;
    // in the first 8 s at most 4 passes, so at most 20 requests.
    let early = log.iter().filter(|r| r["start"].as_f64().unwrap() < outage_started + 8.0).count();
    assert!(early <= 20, "{early} requests in the first 8 s of the outage: not backing off:\n{log:#?}");
    assert!(log.len() <= 5 * finished.len() + 5, "{} requests for {} passes", log.len(), finished.len());
    assert!(log.iter().all(|r| r["fault"] == "upstream_down"), "{log:#?}");
    let during = d.output()[ready..].to_string();
    assert_eq!(during.matches("cannot reach AWS").count(), 1, "one report, not one per retry:\n{during}");
    assert_eq!(during.lines().filter(|l| l.contains("retrying")).count(), 1, "{during}");

    // The emulator is back, knowing nothing: no stack, no functions. The same daemon, on its
    // own next retry, deploys the stack again (or says to run `lamb deploy`), with the change.
    let reported = d.output().len();
    proxy.repoint(&fresh);
    let mut fixed_by_hand = false;
    wait_until("a redeploy, or the missing stack reported", Duration::from_secs(60), || {
        if d.output()[reported..].contains("lamb deploy") && !fixed_by_hand {
            let run = p.lamb_env(&["deploy", "--stack-name", "f-gone"], &proxy.env());
            assert_eq!(run.code, 0, "{}", run.all());
            fixed_by_hand = true;
        }
        live(&fresh, "f-gone").get("HelloShell") == local(&p).get("HelloShell")
    });
    assert_eq!(live(&fresh, "f-gone"), local(&p), "{}", d.output());
    // And it keeps syncing into the new stack.
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// after the restart\n"));
    let want = local(&p);
    wait_until("the next save to be live", Duration::from_secs(30), || live(&fresh, "f-gone") == want);
    let all = d.output()[ready..].to_string();
    assert_eq!(all.matches("cannot reach AWS").count(), 1, "{all}");
    eprintln!(
        "outage: {} failed passes {gaps:?} s apart, {} requests; redeployed by {}",
        finished.len(),
        log.len(),
        if fixed_by_hand { "`lamb deploy` as the daemon said" } else { "the daemon" }
    );
}

/// Start times of each round of `action` requests for functions whose name contains `id`:
/// a round is a run of attempts (the SDK's retries, under 1 s apart) ended by a longer pause
/// (the daemon's backoff, 1 s or more).
fn rounds(log: &[serde_json::Value], action: &str, id: &str) -> Vec<f64> {
    let mut starts: Vec<f64> = Vec::new();
    let mut last = f64::MIN;
    for r in log.iter().filter(|r| r["action"] == action && r["function"].as_str().is_some_and(|f| f.contains(id))) {
        let t = r["start"].as_f64().unwrap();
        if t - last > 0.95 {
            starts.push(t);
        }
        last = t;
    }
    starts
}

#[test]
fn functions_that_fail_together_are_retried_at_different_times() {
    let (_emu, proxy, p) = setup("f-jitter");
    // Only triggers start passes, so both functions surely fail in one pass.
    let d = daemon(&p, &proxy, "f-jitter", &["--debounce-ms", "60000"]);
    proxy.clear();
    proxy.add(json!({"fault": "throttle", "action": "UpdateFunctionCode", "times": -1}));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho jitter\n");
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// jitter\n"));
    let run = d.lamb(&p, &["trigger", "functions/hello_shell/bootstrap", "functions/hello_node/index.js"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let mut log = Vec::new();
    wait_until("three rounds of retries of both", Duration::from_secs(60), || {
        log = proxy.request_log();
        rounds(&log, "UpdateFunctionCode", "HelloShell").len() >= 4
            && rounds(&log, "UpdateFunctionCode", "HelloNode").len() >= 4
    });
    let (shell, node) =
        (rounds(&log, "UpdateFunctionCode", "HelloShell"), rounds(&log, "UpdateFunctionCode", "HelloNode"));
    let apart: Vec<f64> = shell.iter().zip(&node).map(|(a, b)| (a - b).abs()).collect();
    // The first attempt: one pass pushed both at once.
    assert!(apart[0] < 0.2, "the first pushes were not one pass: {apart:?}");
    // Their retries: each function's own random jitter, not the same delay for everyone.
    assert!(
        apart[1..4].iter().any(|s| *s > 0.05),
        "both functions were retried in lockstep, {apart:?} s apart:\n{}",
        d.output()
    );
}

#[test]
fn killed_mid_sync_and_restarted_the_next_pass_finishes_the_job() {
    let (emu, proxy, p) = setup("f-kill");
    let mut d = daemon(&p, &proxy, "f-kill", &[]);
    // The upload is slow to answer: kill the daemon while it waits.
    proxy.add(json!({"fault": "delay", "action": "UpdateFunctionCode", "delay_ms": 3000, "times": 1}));
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// killed\n"));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho killed\n");
    wait_until("an upload in flight", Duration::from_secs(20), || proxy.injected("delay") == 1);
    d.signal(libc::SIGKILL);
    d.child.wait().unwrap();
    // The state on disk is whole: every file parses, no temporary files are left.
    for entry in std::fs::read_dir(p.path().join(".lamb/stacks")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{name} is torn ({e}): {text}"));
        } else {
            assert!(name.ends_with(".lock"), "a leftover file: {name}");
        }
    }
    let build: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join(".lamb/build.json")).unwrap()).unwrap();
    assert!(build["resources"].is_object());
    // Every zip in the store is whole, every record parses; no temporary file is left.
    for entry in std::fs::read_dir(p.path().join(".lamb/artifacts")).unwrap().flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            // (A zip without its record is possible and harmless: it is not used until described.)
            Some("zip") => {
                zip_entries(&path);
            }
            Some("json") => {
                serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&path).unwrap()).unwrap();
            }
            _ => panic!("a leftover file in the store: {path:?}"),
        }
    }
    // A new daemon finishes what the old one started.
    let _d = daemon(&p, &proxy, "f-kill", &[]);
    wait_until("both edits to be live", Duration::from_secs(30), || live(&emu, "f-kill") == local(&p));
}

/// Files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// What lamb keeps in `.lamb` is whole: state and build records parse, every zip in the store
/// opens, and no temporary or partial file is left (dependency installs aside).
fn lamb_dir_is_whole(p: &Project) {
    let lamb = p.path().join(".lamb");
    for f in files_under(&lamb) {
        let rel = f.strip_prefix(&lamb).unwrap().to_string_lossy().into_owned();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if rel.starts_with("deps/") || rel.starts_with("work/") {
            continue;
        }
        assert!(!name.starts_with('.') || name == ".gitignore", "a temporary file is left: {rel}");
        match f.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let text = std::fs::read_to_string(&f).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("{rel} is torn ({e}): {text}"));
            }
            Some("zip") => {
                assert!(rel.starts_with("artifacts/"), "{rel}");
                zip_entries(&f);
            }
            Some("lock") => {}
            _ => assert!(name == ".gitignore", "an unexpected file: {rel}"),
        }
    }
}

/// Convergence seed 6: a daemon killed (SIGKILL) while it was starting a build tool, between
/// the tool's fork and its exec, left the daemon lock held by the tool for a moment after it
/// was reaped (the lock is on an open file the child shares until exec closes it), and a
/// daemon started again at once was refused as if the dead one still watched.
#[test]
fn a_daemon_killed_while_starting_a_build_tool_can_be_started_again_at_once() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "f-spawnkill"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    // Many missing directories first in PATH: a child's search for `make` or `pip`, between
    // its fork and its exec, takes long enough to be caught there.
    let path: Vec<String> = (0..14_000).map(|i| format!("/n/{i:x}")).chain(std::env::var("PATH")).collect();
    let path = path.join(":");
    let lamb = std::fs::canonicalize(lamb_bin()).unwrap();
    let lock = p.path().join(".lamb/daemon.lock");
    for attempt in 0.. {
        assert!(attempt < 5, "no daemon was killed while a child it was starting still held its lock");
        // Changed code, so the initial pass builds (and starts make and pip).
        p.write("functions/hello_make/bootstrap.in", &format!("#!/bin/sh\necho @WHO@ {attempt}\n"));
        p.write("functions/hello_python/app.py", &format!("def handler(event, context):\n    return {attempt}\n"));
        let mut d = Daemon::spawn(&p, &emu.env(), "f-spawnkill", &[], &[("PATH", &path)]);
        // A child that is still lamb: forked, not yet exec'd.
        let deadline = Instant::now() + Duration::from_secs(60);
        let spawning = loop {
            let child = common::descendants(d.child.id())
                .into_iter()
                .find(|c| std::fs::read_link(format!("/proc/{c}/exe")).is_ok_and(|exe| exe == lamb));
            if child.is_some() || d.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break child;
            }
        };
        if spawning.is_none() {
            continue;
        }
        d.signal(libc::SIGKILL);
        d.child.wait().unwrap();
        // The daemon is reaped; is its lock still held (by the child)?
        let probe = std::fs::File::options().read(true).write(true).open(&lock).unwrap();
        if probe.try_lock().is_ok() {
            // The child exec'd first: not the moment this test is about.
            continue;
        }
        drop(probe);
        // Started again at once, as a service manager (or the convergence test) does.
        let again = Daemon::start(&p, &emu.env(), "f-spawnkill", &[], &[]);
        let status = again.status();
        assert_eq!(status["daemon"]["pid"], again.child.id(), "{status}");
        return;
    }
}

#[test]
fn killed_during_a_slow_make_build_and_restarted_the_state_is_whole_and_the_build_finishes() {
    let (emu, proxy, p) = setup("f-killmake");
    // A slow build: the target says when it starts, then takes its time.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("make-started");
    let slow = |p: &Project| {
        edit(
            p,
            "functions/hello_make/Makefile",
            "build-HelloMake:\n",
            &format!("build-HelloMake:\n\ttouch {}\n\tsleep 3\n", marker.display()),
        );
        p.write("functions/hello_make/bootstrap.in", "#!/bin/sh\necho @WHO@ killed mid-make\n");
    };
    // What it builds to, worked out in another checkout, so that no build in this one can
    // finish the daemon's job for it.
    let other = Project::example("hello");
    slow(&other);
    let want = local(&other);
    std::fs::remove_file(&marker).unwrap();
    let mut d = daemon(&p, &proxy, "f-killmake", &[]);
    slow(&p);
    wait_until("make to be running", Duration::from_secs(30), || marker.exists());
    // SIGKILL, as a service manager stopping the unit hard: the daemon and its make.
    let children = descendants(d.child.id());
    assert!(!children.is_empty(), "make runs under the daemon");
    d.signal(libc::SIGKILL);
    for c in &children {
        // SAFETY: signalling processes our own child started.
        unsafe { libc::kill(*c as i32, libc::SIGKILL) };
    }
    d.child.wait().unwrap();
    lamb_dir_is_whole(&p);
    assert_ne!(live(&emu, "f-killmake")["HelloMake"], want["HelloMake"], "the killed build was not deployed");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join(".lamb/build.json")).unwrap()).unwrap();
    assert_ne!(
        record["resources"]["HelloMake"]["code_sha256"].as_str().unwrap(),
        want["HelloMake"],
        "the killed build left no record of an artifact it never made: {record}"
    );
    // A new daemon builds again (make runs again) and deploys what is on disk.
    std::fs::remove_file(&marker).unwrap();
    let _d = daemon(&p, &proxy, "f-killmake", &[]);
    wait_until("the edit to be live", Duration::from_secs(60), || live(&emu, "f-killmake") == want);
    assert!(marker.exists(), "the restarted daemon ran make again");
    lamb_dir_is_whole(&p);
    let scratch = files_under(&p.path().join(".lamb/work"));
    assert!(scratch.is_empty(), "the killed build's scratch copy was not cleaned up: {scratch:?}");
}

#[test]
fn expired_credentials_in_the_daemon_are_reported_once_and_recover_after_login() {
    let (emu, proxy, p) = setup("f-login");
    let d = daemon(&p, &proxy, "f-login", &[]);
    let ready = d.output();
    let before = d.wait_idle(Duration::from_secs(30));
    proxy.add(json!({"fault": "expired", "times": -1}));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho after login\n");
    let want = local(&p)["HelloShell"].clone();
    wait_until("the expiry to be reported", Duration::from_secs(30), || {
        d.output().contains("no usable AWS credentials")
    });
    // The first failure and two retries (after 1 s, then 2 s of backoff), each failed.
    wait_until("two retries to fail too", Duration::from_secs(30), || passes(&d, &p).is_some_and(|n| n >= before + 3));
    let during = d.output()[ready.len()..].to_string();
    assert_eq!(during.matches("no usable AWS credentials").count(), 1, "one report:\n{during}");
    let tries = proxy.injected("expired");
    assert!((1..=5).contains(&tries), "retried with backoff, not in a loop: {tries}");
    // Backed off: the first refused request came before the first pass failed, the last
    // after two backoffs (1 s + 2 s) had passed since.
    let refused: Vec<f64> =
        proxy.request_log().iter().filter(|r| r["fault"] == "expired").map(|r| r["start"].as_f64().unwrap()).collect();
    let span = refused.last().unwrap() - refused.first().unwrap();
    assert!(span >= 3.0, "three failed passes within {span:.2} s: not backing off: {refused:?}");
    // `aws sso login` happened: the next retry succeeds without another save.
    proxy.clear();
    wait_until("the change to sync after login", Duration::from_secs(45), || {
        live(&emu, "f-login")["HelloShell"] == want
    });
}

#[test]
fn trigger_wait_during_a_slow_upload_returns_only_once_its_own_save_is_live() {
    let (emu, proxy, p) = setup("f-order");
    // What the second save builds to, worked out beforehand in another checkout (builds are
    // the same everywhere) so that nothing slows the test down between the two saves.
    let second = "#!/bin/sh\necho second\n";
    let other = Project::example("hello");
    other.write("functions/hello_shell/bootstrap", second);
    let want = local(&other)["HelloShell"].clone();
    // A long quiet window: only triggers start passes.
    let d = daemon(&p, &proxy, "f-order", &["--debounce-ms", "60000"]);
    proxy.add(json!({"fault": "delay", "action": "UpdateFunctionCode", "delay_ms": 2500, "times": 1}));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho first\n");
    let run = d.lamb(&p, &["trigger", "functions/hello_shell/bootstrap"]);
    assert_eq!(run.code, 0, "{}", run.all());
    wait_until("the first upload to be in flight", Duration::from_secs(20), || proxy.injected("delay") == 1);
    // Saved again while the first upload is still out: the waiting client must get the
    // second content, not the pass already running with the first.
    p.write("functions/hello_shell/bootstrap", second);
    let run = d.lamb(&p, &["trigger", "--wait", "-o", "json", "functions/hello_shell/bootstrap"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let items = answer["result"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{answer}");
    assert_eq!(items[0]["status"], "synced", "{answer}");
    assert_eq!(items[0]["code_sha256"], want.as_str(), "the answer is about the second save: {answer}");
    assert_eq!(live(&emu, "f-order")["HelloShell"], want);
}
