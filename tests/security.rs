//! What lamb keeps to itself: no credentials, session tokens or signed URLs in any output or
//! file it writes, owner-only state, and no way around the first-sync confirmation but `--yes`.
//! (The control socket's peer check is a unit test in src/daemon/ipc.rs.)

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, wait_until};
use common::emulator::{Emulator, emulator};
use common::faults::FaultProxy;
use common::*;

const KEY_ID: &str = "AKIALAMBLEAKCHECK001";
const SECRET: &str = "lambLeakCheckSecret/0123456789abcdefghij";
const TOKEN: &str = "LambLeakCheckSessionToken0123456789";

/// The emulator's environment with distinctive credentials, a session token among them.
fn leaky_env() -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = emulator()
        .env()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY"))
        .collect();
    env.push(("AWS_ACCESS_KEY_ID", KEY_ID.into()));
    env.push(("AWS_SECRET_ACCESS_KEY", SECRET.into()));
    env.push(("AWS_SESSION_TOKEN", TOKEN.into()));
    env
}

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY_ID, SECRET, TOKEN, "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature="] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

#[test]
fn no_credentials_tokens_or_signed_urls_in_logs_output_or_state() {
    let p = Project::example("hello");
    let env = leaky_env();
    let mut seen = String::new();
    let mut run = |args: &[&str], extra: &[(&str, String)]| {
        let mut all = env.clone();
        all.extend(extra.iter().cloned());
        let r = p.lamb_env(args, &all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        assert_clean(&format!("lamb {}", args.join(" ")), &r.all());
        seen.push_str(&r.all());
    };
    run(&["-vvv", "deploy", "--stack-name", "sec-logs"], &[]);
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// 1\n"));
    run(&["-vvv", "sync", "--yes", "--stack-name", "sec-logs"], &[]);
    // Even a user asking for every log line the SDK has.
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// 2\n"));
    run(&["sync", "--yes", "--stack-name", "sec-logs", "--log-format", "json"], &[("LAMB_LOG", "trace".into())]);
    p.write("layers/shared/shared/greeting.py", &(p.read("layers/shared/shared/greeting.py") + "# 3\n"));
    run(
        &["sync", "--yes", "--stack-name", "sec-logs", "-o", "json"],
        &[("LAMB_LOG", "aws_smithy_runtime=trace".into())],
    );
    run(&["-vvv", "outputs", "--stack-name", "sec-logs"], &[]);
    run(&["-vvv", "status", "--stack-name", "sec-logs", "-o", "json"], &[]);
    assert!(seen.contains("synced") && seen.len() > 10_000, "the runs logged something to check: {} bytes", seen.len());

    // The watch daemon, at trace level, through a sync.
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(lamb_bin());
    cmd.args(["sync", "--watch", "--yes", "--stack-name", "sec-logs"])
        .current_dir(p.path())
        .env("LAMB_LOG", "trace")
        .env("XDG_RUNTIME_DIR", logs.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(logs.path().join("out")).unwrap())
        .stderr(fs::File::create(logs.path().join("err")).unwrap());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let output = || {
        fs::read_to_string(logs.path().join("out")).unwrap_or_default()
            + &fs::read_to_string(logs.path().join("err")).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !output().contains("watching 4 functions") {
        assert!(Instant::now() < deadline, "the daemon did not start: {}", output());
        std::thread::sleep(Duration::from_millis(50));
    }
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho watched\n");
    while !output().contains("synced    HelloShell") {
        assert!(Instant::now() < deadline, "the edit did not sync: {}", output());
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert_clean("lamb sync --watch", &output());

    // Nothing lamb keeps on disk has them either.
    let mut read = Vec::new();
    for entry in walk(&p.path().join(".lamb")) {
        if let Ok(text) = fs::read(&entry) {
            assert_clean(&entry.display().to_string(), &String::from_utf8_lossy(&text));
            read.push(entry.strip_prefix(p.path()).unwrap().display().to_string());
        }
    }
    assert_checked_what_lamb_keeps(&read, "sec-logs");
}

/// The walk over `.lamb` looked at what lamb keeps there: the stack's state, the build
/// record and at least one artifact (else a check of their contents proves nothing).
fn assert_checked_what_lamb_keeps(read: &[String], stack: &str) {
    let state = format!(".lamb/stacks/us-east-1--{stack}.json");
    assert!(read.contains(&state), "{state} was not checked: {read:?}");
    assert!(read.iter().any(|f| f == ".lamb/build.json"), "the build record was not checked: {read:?}");
    assert!(
        read.iter().any(|f| f.starts_with(".lamb/artifacts/") && f.ends_with(".zip")),
        "no artifact was checked: {read:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn state_files_are_owner_only() {
    let emu = emulator();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "sec-modes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho modes\n");
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "sec-modes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let mode = |rel: &str| fs::metadata(p.path().join(rel)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".lamb"), 0o700);
    assert_eq!(mode(".lamb/build.json"), 0o600);
    // Every file lamb keeps about the project and its stacks: state, locks, artifacts.
    let files: Vec<_> = walk(&p.path().join(".lamb"))
        .into_iter()
        .filter(|f| !f.starts_with(p.path().join(".lamb/deps")) && !f.ends_with(".gitignore"))
        .collect();
    assert!(files.iter().any(|f| f.ends_with("us-east-1--sec-modes.json")), "{files:?}");
    for f in files {
        let m = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(m & 0o077, 0, "{} is {m:o}", f.display());
    }
}

#[test]
fn only_yes_skips_the_first_sync_confirmation() {
    let emu = emulator();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "sec-yes"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    // Not an environment variable, not samconfig, not the watch daemon without a terminal.
    p.write(
        "samconfig.toml",
        &(p.read("samconfig.toml").replace("[default.sync.parameters]\n", "[default.sync.parameters]\nyes = true\n")),
    );
    let mut env = emu.env();
    env.push(("LAMB_YES", "1".into()));
    env.push(("YES", "1".into()));
    for args in [
        &["sync", "--stack-name", "sec-yes"][..],
        &["sync", "--code", "--stack-name", "sec-yes"],
        &["sync", "--watch", "--stack-name", "sec-yes"],
    ] {
        let run = p.lamb_env(args, &env);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all());
        assert!(run.stderr.contains("needs confirmation") && run.stderr.contains("--yes"), "{args:?}: {}", run.stderr);
    }
    let st = fs::read_to_string(p.path().join(".lamb/stacks/us-east-1--sec-yes.json")).unwrap();
    assert!(st.contains("\"sync_confirmed\": false"), "{st}");
}

/// A Lambda error quoting a presigned S3 URL and a SigV4 header, as real ones sometimes do.
const SIGNED_KEY_ID: &str = "ASIALAMBSIGNEDURL001";
const SIGNED_TOKEN: &str = "IQoJb3JpZ2luX2VjLAMBTOKENLEAK";
const SIGNATURE: &str = "5a1e0f6b1f7f3c0b2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";

fn signed_message() -> String {
    format!(
        "Error occurred while GetObject. S3 Error Code: AccessDenied. S3 URL: https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snapshots/123456789012/fn-leak?X-Amz-Security-Token={SIGNED_TOKEN}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=600&X-Amz-Credential={SIGNED_KEY_ID}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature={SIGNATURE} (request: Authorization: AWS4-HMAC-SHA256 Credential={SIGNED_KEY_ID}/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature={SIGNATURE})"
    )
}

fn assert_redacted(what: &str, text: &str) {
    for secret in
        [SIGNED_KEY_ID, SIGNED_TOKEN, SIGNATURE, "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"]
    {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
    assert!(text.contains("fn-leak?<redacted>") && text.contains("Credential=<redacted>"), "{what}:\n{text}");
}

#[test]
fn a_signed_url_in_an_aws_error_is_redacted_in_output_logs_and_state() {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", "sec-signed"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    // Lambda refuses the code, quoting where it tried to read it from (not retried: a 400).
    let rule = serde_json::json!({"fault": "error500", "action": "UpdateFunctionCode", "status": 400, "times": -1,
        "code": "InvalidParameterValueException", "message": signed_message()});
    proxy.add(rule.clone());
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho signed\n");
    for args in [
        &["-vvv", "sync", "--yes", "--stack-name", "sec-signed"][..],
        &["sync", "--yes", "--stack-name", "sec-signed", "-o", "json", "--log-format", "json"],
    ] {
        let run = p.lamb_env(args, &proxy.env());
        assert_eq!(run.code, 1, "{args:?}: {}", run.all());
        assert!(run.all().contains("InvalidParameterValueException"), "{args:?}: {}", run.all());
        assert_redacted(&format!("lamb {}", args.join(" ")), &run.all());
    }
    assert!(proxy.injected("error500") >= 2, "{}", proxy.stats());
    // What lamb keeps on disk about the failure.
    let state = fs::read_to_string(p.path().join(".lamb/stacks/us-east-1--sec-signed.json")).unwrap();
    assert_redacted("the stack state", &state);

    // The watch daemon: its log line about the failure, and what `lamb status` says.
    let d = Daemon::start(&p, &proxy.env(), "sec-signed", &[], &[("LAMB_LOG", "debug")]);
    wait_until("the failure to be reported", Duration::from_secs(30), || d.output().contains("failed    HelloShell"));
    assert_redacted("lamb sync --watch", &d.output());
    let status = d.lamb(&p, &["status", "-o", "json"]);
    assert_redacted("lamb status", &status.stdout);
    let mut read = Vec::new();
    for entry in walk(&p.path().join(".lamb")) {
        if let Ok(text) = fs::read(&entry) {
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains(SIGNATURE) && !text.contains(SIGNED_TOKEN), "{}: {text}", entry.display());
            read.push(entry.strip_prefix(p.path()).unwrap().display().to_string());
        }
    }
    assert_checked_what_lamb_keeps(&read, "sec-signed");
}
