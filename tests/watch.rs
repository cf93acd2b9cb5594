//! `lamb sync --watch`, `lamb trigger`, `lamb status` and the systemd integration end to end,
//! against a private emulator per test (so request counts are exact).

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, EVENT_LOG, wait_until};
use common::emulator::Emulator;
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// CodeSha256 Lambda reports for logical id `id` of `stack`.
fn live_sha(emu: &Emulator, stack: &str, id: &str) -> String {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let res = cfn.describe_stack_resource().stack_name(stack).logical_resource_id(id).send().await.unwrap();
        let name = res.stack_resource_detail().unwrap().physical_resource_id().unwrap().to_string();
        let lambda = aws_sdk_lambda::Client::new(&conf);
        lambda.get_function_configuration().function_name(name).send().await.unwrap().code_sha256().unwrap().to_string()
    })
}

fn env_of(emu: &Emulator, stack: &str, id: &str) -> Vec<(String, String)> {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let res = cfn.describe_stack_resource().stack_name(stack).logical_resource_id(id).send().await.unwrap();
        let name = res.stack_resource_detail().unwrap().physical_resource_id().unwrap().to_string();
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let c = lambda.get_function_configuration().function_name(name).send().await.unwrap();
        let mut env: Vec<(String, String)> = c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        env.sort();
        env
    })
}

fn local_sha(p: &Project, id: &str) -> String {
    let (r, _) = p.build_json(&["-r", id]);
    code_sha(&r, id)
}

/// Paths of UpdateFunctionCode calls since the last clear.
fn code_updates(emu: &Emulator) -> Vec<String> {
    let body = emu.raw_requests();
    body.into_iter()
        .filter(|r| r["action"] == "UpdateFunctionCode")
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What `lamb status -o json` says while daemon `d` watches `p` for `stack`.
fn status_json(d: &Daemon, p: &Project, stack: &str) -> serde_json::Value {
    let run = d.lamb(p, &["status", "-o", "json", "--stack-name", stack]);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()))
}

/// A project deployed on a private emulator, watched by a daemon.
fn watched(stack: &str, extra: &[&str]) -> (Emulator, Project, Daemon) {
    watched_with(stack, extra, &[])
}

/// [`watched`], with a daemon that logs each file event it maps to a target
/// ([`Daemon::changes`]).
fn watched_logging_events(stack: &str, extra: &[&str]) -> (Emulator, Project, Daemon) {
    watched_with(stack, extra, &[EVENT_LOG])
}

fn watched_with(stack: &str, extra: &[&str], env: &[(&str, &str)]) -> (Emulator, Project, Daemon) {
    let emu = Emulator::start();
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", stack], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let d = Daemon::start(&p, &emu.env(), stack, extra, env);
    (emu, p, d)
}

/// Sets a file's mtime to now, changing nothing else: an event for the daemon that starts a
/// pass with nothing to push.
fn touch(path: &Path) {
    fs::File::options().write(true).open(path).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
}

/// A "nothing happened" check that knows the daemon looked: after `action` (which must not
/// start a pass), a touch of a file the daemon does watch. Once the daemon has taken that
/// touch in, it has taken in every event `action` caused (one inotify queue, read in order);
/// once the touch's pass is over, anything those events started is over too. Returns the
/// paths the daemon mapped to a target meanwhile (the touched file, if `action` was ignored)
/// and how many passes it finished meanwhile (the touch's one).
fn then_a_touch(d: &Daemon, p: &Project, action: impl FnOnce()) -> (Vec<String>, u64) {
    let before = d.wait_idle(Duration::from_secs(30));
    let seen = d.changes().len();
    action();
    let barrier = p.path().join("functions/hello_shell/bootstrap");
    touch(&barrier);
    d.wait_change(&barrier, Duration::from_secs(20));
    let after = d.wait_idle_after(before, Duration::from_secs(30));
    (d.changes()[seen..].to_vec(), after - before)
}

#[test]
fn an_edit_goes_live_a_touch_does_not_and_an_editor_save_syncs_once() {
    let (emu, p, d) = watched("w-edit", &[]);
    assert!(d.output().contains("watching 4 functions and 1 layers of stack w-edit"), "{}", d.output());

    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// edit 1\n"));
    let want = local_sha(&p, "HelloNode");
    wait_until("the edit to be live", Duration::from_secs(20), || live_sha(&emu, "w-edit", "HelloNode") == want);
    // (Reported once Lambda says the update is done, a moment after the code is in place.)
    wait_until("the sync to be reported", Duration::from_secs(20), || d.output().contains("synced    HelloNode"));

    // Touching (and chmod-ing without changing the exec bit) changes no content: the daemon
    // looks (a pass runs) and syncs nothing.
    let before = d.wait_idle(Duration::from_secs(20));
    emu.clear_requests();
    let f = p.path().join("functions/hello_node/index.js");
    fs::File::options().write(true).open(&f).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut fs::metadata(&f).unwrap().permissions(), 0o644);
    fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o664)).unwrap();
    let touched = d.wait_idle_after(before, Duration::from_secs(20));
    assert!(code_updates(&emu).is_empty(), "a touch caused an update: {:?}", emu.requests());
    assert!(emu.writes().is_empty(), "{:?}", emu.writes());

    // An editor-style save: write a temp file, rename it over the original.
    let tmp = p.path().join("functions/hello_node/.index.js.tmp~");
    fs::write(&tmp, p.read("functions/hello_node/index.js") + "// edit 2\n").unwrap();
    fs::rename(&tmp, &f).unwrap();
    let want = local_sha(&p, "HelloNode");
    wait_until("the saved file to be live", Duration::from_secs(20), || live_sha(&emu, "w-edit", "HelloNode") == want);
    // Every pass the save's events started is over.
    d.wait_idle_after(touched, Duration::from_secs(20));
    assert_eq!(code_updates(&emu).len(), 1, "one save, one update: {:?}", emu.requests());
}

#[test]
fn a_code_save_once_the_stack_is_known_is_one_request_to_aws() {
    let (emu, p, d) = watched("w-one", &[]);
    let f = "functions/hello_python/app.py";
    // The first save after the initial deploy reads the stack and what Lambda runs; the saves
    // after it push at once (HelloPython also has a layer, unchanged: no call for it either).
    for round in 0..3 {
        let before = d.wait_idle(Duration::from_secs(30));
        emu.clear_requests();
        p.write(f, &(p.read(f) + &format!("# edit {round}\n")));
        d.wait_idle_after(before, Duration::from_secs(30));
        // What the pass sent (the check of the stack after it may follow).
        let actions: Vec<String> = emu.requests().into_iter().map(|(_, _, action)| action).collect();
        assert_eq!(live_sha(&emu, "w-one", "HelloPython"), local_sha(&p, "HelloPython"), "round {round}");
        if round == 0 {
            assert!(actions.iter().any(|a| a == "DescribeStacks"), "{actions:?}");
            continue;
        }
        assert_eq!(actions.first().map(String::as_str), Some("UpdateFunctionCode"), "round {round}: {actions:?}");
        let pushes = actions.iter().filter(|a| *a == "UpdateFunctionCode").count();
        assert_eq!(pushes, 1, "round {round}: {actions:?}");
        assert!(
            !actions.iter().any(|a| a == "GetFunctionConfiguration" || a == "GetLayerVersionByArn"),
            "round {round}: Lambda was read on the save's path: {actions:?}"
        );
        // After the push, off the save's path, the daemon reads the stack again (what it did
        // not read first); the next round starts once that is done.
        wait_until("the check of the stack after the push", Duration::from_secs(20), || {
            let actions: Vec<String> = emu.requests().into_iter().map(|(_, _, action)| action).collect();
            let pushed = actions.iter().position(|a| a == "UpdateFunctionCode");
            pushed.is_some_and(|i| actions[i..].iter().any(|a| a == "ListStackResources"))
        });
    }
}

#[test]
fn an_editors_rename_over_save_syncs_without_waiting_out_the_quiet_window() {
    // A minute of quiet window: only a save that needs none goes live within the test.
    let (emu, p, d) = watched_logging_events("w-rename", &["--debounce-ms", "60000"]);
    d.wait_idle(Duration::from_secs(30));
    let f = p.path().join("functions/hello_node/index.js");
    let tmp = p.path().join("functions/hello_node/.index.js.tmp~");
    fs::write(&tmp, p.read("functions/hello_node/index.js") + "// saved by renaming over\n").unwrap();
    fs::rename(&tmp, &f).unwrap();
    let want = local_sha(&p, "HelloNode");
    wait_until("the rename-over save to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-rename", "HelloNode") == want
    });

    // A plain write may be followed by more: it waits out the window (seen, pending, not pushed).
    emu.clear_requests();
    let app = p.path().join("functions/hello_python/app.py");
    p.write("functions/hello_python/app.py", &(p.read("functions/hello_python/app.py") + "# written in place\n"));
    d.wait_change(&app, Duration::from_secs(20));
    let v = status_json(&d, &p, "w-rename");
    let python = v["functions"].as_array().unwrap().iter().find(|f| f["id"] == "HelloPython").unwrap().clone();
    assert_eq!(python["pending"], true, "{v}");
    assert!(code_updates(&emu).is_empty(), "{:?}", emu.requests());
}

/// The quiet window of the storm test. The storm is one burst only if the daemon never sees
/// it pause for this long: a trailing window is a clock, and no wait on an event can keep a
/// pass from starting once the window has passed mid-storm (that pass would push part of the
/// files, the rest a second update). Writing the 1,000 files takes about half a second (a
/// debug build on 2 CPUs), a few milliseconds between two writes to one function at most; the
/// window is hundreds of times that, so a test thread descheduled for a while on a loaded
/// machine does not split the storm, as a 300 ms one could.
const STORM_QUIET_MS: u64 = 2000;

#[test]
fn a_storm_of_files_is_one_sync_per_affected_function() {
    let (emu, p, d) = watched("w-storm", &["--debounce-ms", &STORM_QUIET_MS.to_string()]);
    let before = d.wait_idle(Duration::from_secs(20));
    emu.clear_requests();
    // The longest the writer paused between two writes to the same function: a split storm
    // is explained by it if it is not shorter than the window.
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    for i in 0..500 {
        p.write(&format!("functions/hello_node/gen/file{i}.js"), &format!("module.exports = {i};\n"));
        p.write(&format!("functions/hello_shell/data/file{i}.txt"), &format!("{i}\n"));
        longest = longest.max(last.elapsed());
        last = Instant::now();
    }
    let (node, shell) = (local_sha(&p, "HelloNode"), local_sha(&p, "HelloShell"));
    wait_until("both functions to be live", Duration::from_secs(30), || {
        live_sha(&emu, "w-storm", "HelloNode") == node && live_sha(&emu, "w-storm", "HelloShell") == shell
    });
    // Every pass the storm started is over: nothing running, nothing left in a quiet window.
    d.wait_idle_after(before, Duration::from_secs(30));
    let updates = code_updates(&emu);
    assert_eq!(
        updates.len(),
        2,
        "1,000 files, two functions, two updates: {updates:?} (the writer paused up to {longest:?}; the quiet window is {STORM_QUIET_MS} ms)"
    );
    assert!(
        updates.iter().any(|u| u.contains("HelloNode")) && updates.iter().any(|u| u.contains("HelloShell")),
        "{updates:?}"
    );
}

#[test]
fn edits_during_a_sync_end_with_the_latest_content_live() {
    let (emu, p, d) = watched("w-race", &["--debounce-ms", "5"]);
    for i in 0..8 {
        p.write("functions/hello_shell/bootstrap", &format!("#!/bin/sh\necho {i}\n"));
        std::thread::sleep(Duration::from_millis(15));
    }
    let want = local_sha(&p, "HelloShell");
    wait_until("the last edit to be live", Duration::from_secs(20), || live_sha(&emu, "w-race", "HelloShell") == want);
    // Every pass the edits started is over: none is left to push something older.
    d.wait_idle(Duration::from_secs(20));
    assert_eq!(live_sha(&emu, "w-race", "HelloShell"), want, "nothing older overwrote it");
}

#[test]
fn a_broken_template_is_reported_and_the_fix_deploys() {
    let (emu, p, d) = watched("w-template", &[]);
    let good = p.read("template.yaml");
    p.write("template.yaml", &good.replace("  HelloNode:\n", "  HelloNode\n"));
    wait_until("the parse error to be reported", Duration::from_secs(20), || d.output().contains("template.yaml:"));
    let out = d.output();
    assert!(out.contains("invalid YAML") && out.contains("still watching with the last good template"), "{out}");
    // Still alive, still syncing code with the last good model. (The expected zip comes from
    // another checkout: builds are the same everywhere, and this one's template is broken.)
    let bootstrap = "#!/bin/sh\n# while the template is broken\n";
    p.write("functions/hello_shell/bootstrap", bootstrap);
    let other = Project::example("hello");
    other.write("functions/hello_shell/bootstrap", bootstrap);
    let want = local_sha(&other, "HelloShell");
    wait_until("code to sync meanwhile", Duration::from_secs(20), || {
        live_sha(&emu, "w-template", "HelloShell") == want
    });
    // The fixed template, with a new variable, is deployed.
    p.write(
        "template.yaml",
        &good.replace("        GREETING: !Ref Greeting\n", "        GREETING: !Ref Greeting\n        FIXED: 'yes'\n"),
    );
    wait_until("the infrastructure deploy", Duration::from_secs(30), || {
        env_of(&emu, "w-template", "HelloNode").contains(&("FIXED".to_string(), "yes".to_string()))
    });
}

#[test]
fn functions_added_to_the_template_are_deployed_and_watched_and_removed_ones_forgotten() {
    let (emu, p, d) = watched_logging_events("w-added", &[]);
    p.write("functions/hello_new/bootstrap", "#!/bin/sh\necho new\n");
    let t = p.read("template.yaml").replace(
        "  SharedLayer:\n",
        "  HelloNew:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/hello_new/\n      Handler: bootstrap\n      Runtime: provided.al2023\n\n  SharedLayer:\n",
    );
    p.write("template.yaml", &t);
    let want = local_sha(&p, "HelloNew");
    wait_until("the new function to be deployed", Duration::from_secs(30), || {
        rt().block_on(async {
            let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
            cfn.describe_stack_resource().stack_name("w-added").logical_resource_id("HelloNew").send().await.is_ok()
        })
    });
    assert_eq!(live_sha(&emu, "w-added", "HelloNew"), want);
    p.write("functions/hello_new/bootstrap", "#!/bin/sh\necho newer\n");
    let want = local_sha(&p, "HelloNew");
    wait_until("an edit of the new function to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-added", "HelloNew") == want
    });

    // Taken out of the template again: deployed away, no longer watched or listed.
    p.write("template.yaml", &t.replace(
        "  HelloNew:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/hello_new/\n      Handler: bootstrap\n      Runtime: provided.al2023\n\n",
        "",
    ));
    let gone = || {
        rt().block_on(async {
            let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
            cfn.describe_stack_resource().stack_name("w-added").logical_resource_id("HelloNew").send().await.is_err()
        })
    };
    wait_until("the function to be deployed away", Duration::from_secs(30), gone);
    let listed = |d: &Daemon| {
        let v = status_json(d, &p, "w-added");
        let running = v["daemon"]["running"].as_bool().unwrap_or(true) || v["daemon"]["infra_pending"] == true;
        (
            running,
            v["functions"].as_array().unwrap().iter().any(|f| f["id"] == "HelloNew"),
            v["daemon"]["passes"].as_u64().unwrap(),
        )
    };
    wait_until("the deploy pass to end", Duration::from_secs(20), || !listed(&d).0);
    let (_, still_listed, _) = listed(&d);
    assert!(!still_listed, "status still lists HelloNew");
    d.wait_idle(Duration::from_secs(20));
    emu.clear_requests();
    let (mapped, passes) = then_a_touch(&d, &p, || {
        p.write("functions/hello_new/bootstrap", "#!/bin/sh\necho orphan\n");
    });
    assert!(
        !mapped.iter().any(|c| c.contains("hello_new")),
        "the removed function's code is still watched: {mapped:?}"
    );
    assert_eq!(passes, 1, "an edit to a removed function's code started a pass (one is the touch's): {mapped:?}");
    assert!(emu.writes().is_empty(), "{:?}", emu.writes());
}

#[test]
fn trigger_wait_returns_the_result_and_status_reflects_it() {
    let (emu, p, d) = watched("w-trigger", &["--debounce-ms", "60000"]);
    p.write("functions/hello_make/bootstrap.in", "#!/bin/sh\necho triggered\n");
    let run = d.lamb(&p, &["trigger", "--wait", "functions/hello_make/bootstrap.in"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("synced    HelloMake"), "{}", run.stdout);
    let want = local_sha(&p, "HelloMake");
    assert_eq!(live_sha(&emu, "w-trigger", "HelloMake"), want, "live when trigger --wait returns");

    let run = d.lamb(&p, &["trigger", "--wait", "-o", "json", "functions/hello_make/bootstrap.in"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"]["items"][0]["status"], "unchanged", "{v}");

    let run = d.lamb(&p, &["status", "-o", "json", "--stack-name", "w-trigger"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["daemon"]["pid"], d.child.id());
    let make = v["functions"].as_array().unwrap().iter().find(|f| f["id"] == "HelloMake").unwrap();
    assert_eq!(make["code_sha256"], want);
    assert!(make["last_sync"].as_u64().is_some() && make["pending"] == false, "{make}");
    let human = d.lamb(&p, &["status", "--stack-name", "w-trigger"]);
    assert!(human.stdout.contains("daemon: running") && human.stdout.contains("HelloMake"), "{}", human.stdout);
}

#[test]
fn sigterm_stops_cleanly_and_a_second_daemon_is_refused() {
    let (emu, p, mut d) = watched("w-stop", &[]);
    let second = p.lamb_env(&["sync", "--watch", "--yes", "--stack-name", "w-stop"], &emu.env());
    assert_eq!(second.code, 1);
    assert!(
        second.stderr.contains(&format!("pid {}", d.child.id())) && second.stderr.contains("already watching"),
        "{}",
        second.stderr
    );
    let socket = fs::read_dir(d.runtime_dir.path().join("lamb")).unwrap().next().unwrap().unwrap().path();
    d.signal(libc::SIGTERM);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", d.output());
    assert!(!socket.exists(), "the socket is removed");
    assert!(fs::read_dir(p.path().join(".lamb/stacks")).unwrap().count() > 0, "state saved");
    // The lock is free again.
    let d2 = Daemon::start(&p, &emu.env(), "w-stop", &[], &[]);
    drop(d2);
}

/// Makes HelloMake's build take `secs` seconds longer.
fn slow_make(p: &Project, secs: u32) {
    let makefile = p.read("functions/hello_make/Makefile");
    let slow = makefile.replace("build-HelloMake:\n", &format!("build-HelloMake:\n\tsleep {secs}\n"));
    assert_ne!(makefile, slow);
    p.write("functions/hello_make/Makefile", &slow);
}

fn recorded_sha(p: &Project, stack: &str, id: &str) -> Option<String> {
    let text = fs::read_to_string(p.path().join(format!(".lamb/stacks/us-east-1--{stack}.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["functions"][id]["code_sha256"].as_str().map(str::to_string)
}

#[test]
fn sigterm_during_a_sync_lets_it_finish_and_records_it() {
    let (emu, p, mut d) = watched("w-term", &["--debounce-ms", "5"]);
    // One save that makes HelloMake's build slow and changes what it builds to: the pass that
    // runs the slow make is the one that carries the change.
    let edit = |p: &Project| {
        let makefile = p.read("functions/hello_make/Makefile");
        let edited = makefile
            .replace("build-HelloMake:\n", "build-HelloMake:\n\tsleep 2\n")
            .replace("s/@WHO@/make/", "s/@WHO@/before-stop/");
        assert_ne!(makefile, edited);
        p.write("functions/hello_make/Makefile", &edited);
    };
    // What it builds to, worked out in another checkout: a build in this one would take the
    // build lock from the daemon, and could leave it nothing to build.
    let other = Project::example("hello");
    edit(&other);
    let want = local_sha(&other, "HelloMake");
    edit(&p);
    assert_ne!(recorded_sha(&p, "w-term", "HelloMake").as_deref(), Some(want.as_str()));
    // The pass is building (make sleeps): stop the daemon now.
    d.wait_child(&["sleep", "2"], Duration::from_secs(20));
    d.signal(libc::SIGTERM);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", d.output());
    assert_eq!(live_sha(&emu, "w-term", "HelloMake"), want, "the in-flight sync finished before the exit");
    assert_eq!(recorded_sha(&p, "w-term", "HelloMake"), Some(want), "and was recorded");
}

#[test]
fn an_edit_during_the_initial_sync_is_not_lost() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    assert_eq!(p.lamb_env(&["deploy", "--stack-name", "w-initial"], &emu.env()).code, 0);
    // The initial pass rebuilds HelloMake slowly; the edit lands while its make runs, after
    // the pass has hashed HelloShell (every unit is hashed before any build starts).
    slow_make(&p, 2);
    let mut d = Daemon::spawn(&p, &emu.env(), "w-initial", &[], &[]);
    d.wait_child(&["sleep", "2"], Duration::from_secs(30));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho edited-during-the-initial-sync\n");
    let want = local_sha(&p, "HelloShell");
    d.expect_notify("READY=1", Duration::from_secs(60));
    wait_until("the edit to be live", Duration::from_secs(20), || live_sha(&emu, "w-initial", "HelloShell") == want);
}

#[test]
fn a_code_directory_deleted_and_created_again_is_still_watched() {
    let (emu, p, _d) = watched("w-recreate", &["--debounce-ms", "50"]);
    // As `git checkout` of another branch or a tool that regenerates the directory does it.
    fs::remove_dir_all(p.path().join("functions/hello_shell")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho recreated\n");
    let want = local_sha(&p, "HelloShell");
    wait_until("the recreated code to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-recreate", "HelloShell") == want
    });
    // Edits inside the new directory are seen too.
    std::thread::sleep(Duration::from_millis(300));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho edited-after\n");
    let want = local_sha(&p, "HelloShell");
    wait_until("an edit in the recreated directory to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-recreate", "HelloShell") == want
    });
}

#[test]
fn systemd_gets_ready_status_watchdog_and_reload_notifications() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    assert_eq!(p.lamb_env(&["deploy", "--stack-name", "w-notify"], &emu.env()).code, 0);
    let mut d = Daemon::start(&p, &emu.env(), "w-notify", &[], &[("WATCHDOG_USEC", "200000")]);
    d.expect_notify("WATCHDOG=1", Duration::from_secs(5));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho notify\n");
    let status = d.expect_notify("STATUS=", Duration::from_secs(20));
    assert!(status.contains("watching 4 functions"), "{status}");
    d.signal(libc::SIGHUP);
    d.expect_notify("RELOADING=1", Duration::from_secs(5));
    let ready = d.expect_notify("READY=1", Duration::from_secs(30));
    assert!(ready.contains("STATUS=watching"), "{ready}");
    // A reload of a template that no longer parses starts no pass, and still ends with
    // READY=1: `systemctl --user reload` must not hang on a bad edit.
    let good = p.read("template.yaml");
    p.write("template.yaml", &good.replace("Resources:", "Resources: [oops"));
    d.signal(libc::SIGHUP);
    d.expect_notify("RELOADING=1", Duration::from_secs(5));
    let ready = d.expect_notify("READY=1", Duration::from_secs(10));
    assert!(ready.contains("STATUS=watching"), "{ready}");
    d.signal(libc::SIGTERM);
    d.expect_notify("STOPPING=1", Duration::from_secs(10));
}

#[test]
fn trigger_without_a_daemon_is_quiet_or_falls_back_to_a_sync() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    assert_eq!(p.lamb_env(&["deploy", "--stack-name", "w-nodaemon"], &emu.env()).code, 0);
    let rd = tempfile::tempdir().unwrap();
    let mut env = emu.env();
    env.push(("XDG_RUNTIME_DIR", rd.path().display().to_string()));
    let run = p.lamb_env(&["trigger", "functions/hello_node/index.js"], &env);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "", ""), "quiet without a daemon");
    p.write("functions/hello_node/index.js", "exports.handler = async () => 'fallback';\n");
    p.write(
        "samconfig.toml",
        &p.read("samconfig.toml").replace("stack_name = \"lamb-hello\"", "stack_name = \"w-nodaemon\""),
    );
    let run = p.lamb_env(&["trigger", "--fallback-sync", "functions/hello_node/index.js"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("synced    HelloNode"), "{}", run.stdout);
    assert_eq!(live_sha(&emu, "w-nodaemon", "HelloNode"), local_sha(&p, "HelloNode"));
}

#[test]
fn service_install_dry_run_prints_the_unit_for_the_project() {
    let p = Project::example("hello");
    let run = p.lamb(&["service", "install", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let dir = p.path().canonicalize().unwrap();
    assert!(
        run.stdout.contains(&format!("ExecStart={} sync --watch --yes --project-dir %f", lamb_bin())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Type=notify"), "{}", run.stdout);
    // systemd-escape --path: `/` becomes `-`; `-` itself (and other specials) become \xNN.
    let escaped = dir.to_string_lossy().trim_matches('/').replace('-', "\\x2d").replace('/', "-");
    assert!(run.stdout.contains(&format!("systemctl --user enable --now lamb@{escaped}")), "{}", run.stdout);
    let empty = Project::empty();
    let run = empty.lamb(&["service", "install", "--dry-run"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("has no template.yaml"), "{}", run.stderr);
}

/// The daemon's own CPU time (user + system), from /proc.
fn cpu_time(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest.split(' ').skip(11).take(2).map(|x| x.parse().unwrap()).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((f[0] + f[1]) * 1000 / hz)
}

#[test]
fn a_change_that_falls_due_during_a_slow_pass_waits_without_spinning() {
    let (emu, p, d) = watched("w-spin", &[]);
    // A build that takes a while (a large `pip install`, a slow compiler), then a save to
    // another function while it runs: that change falls due mid-pass and must wait idle.
    p.write(
        "functions/hello_make/Makefile",
        &p.read("functions/hello_make/Makefile").replace("build-HelloMake:\n", "build-HelloMake:\n\tsleep 3\n"),
    );
    wait_until("the slow build to start", Duration::from_secs(10), || {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| fs::read_to_string(e.path().join("cmdline")).is_ok_and(|c| c.starts_with("sleep\u{0}3\u{0}")))
    });
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// during\n"));
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_time(d.pid());
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_time(d.pid()) - before;
    assert!(used < Duration::from_millis(400), "the daemon used {used:?} of CPU in 1.5 s while waiting for a build");
    // And the waiting change still goes live after the slow pass.
    let want = local_sha(&p, "HelloNode");
    wait_until("the waiting edit to be live", Duration::from_secs(30), || {
        live_sha(&emu, "w-spin", "HelloNode") == want
    });
}

#[test]
fn files_git_ignores_inside_a_function_start_no_pass() {
    let (emu, p, d) = watched_logging_events("w-ignored", &[]);
    p.write(".gitignore", &(p.read(".gitignore") + "dist/\n*.log\n"));
    let passes = |d: &Daemon| status_json(d, &p, "w-ignored")["daemon"]["passes"].as_u64().unwrap();
    let before = d.wait_idle(Duration::from_secs(20));
    emu.clear_requests();
    // A build tool writing its output, a test run writing logs, npm filling node_modules.
    let (mapped, _) = then_a_touch(&d, &p, || {
        for i in 0..100 {
            p.write(&format!("functions/hello_node/dist/bundle{i}.js"), "x");
            p.write(&format!("functions/hello_node/node_modules/dep{i}/index.js"), "x");
        }
        p.write("functions/hello_python/debug.log", "x");
    });
    assert!(
        mapped.iter().all(|c| c.ends_with("functions/hello_shell/bootstrap")),
        "ignored files were mapped to a function: {mapped:?}"
    );
    // The one pass is the touch's.
    assert_eq!(passes(&d), before + 1, "ignored files started a pass: {}", d.output());
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
    // The code itself still syncs.
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// real\n"));
    let want = local_sha(&p, "HelloNode");
    wait_until("the edit to be live", Duration::from_secs(20), || live_sha(&emu, "w-ignored", "HelloNode") == want);
}

/// A `systemd --user` manager of the test's own, in a mount namespace where
/// /run/systemd/system exists (systemd checks it to believe it was booted with systemd); its
/// runtime directory and home are temp dirs. Stopped (with every unit it runs) when dropped.
struct UserManager {
    child: std::process::Child,
    runtime: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl UserManager {
    /// Starts one, or says why this machine cannot run one.
    fn start() -> Result<UserManager, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root, for a mount namespace".into());
        }
        for tool in ["systemd", "systemctl", "unshare", "nsenter"] {
            let found = std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
            if !found.is_ok_and(|o| o.status.success()) {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let runtime = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", "mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec systemd --user"])
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("HOME", home.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut m = UserManager { child, runtime, home };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(format!("systemd --user exited ({status}): no mount namespace or systemd here"));
            }
            let state = m.run("systemctl", &["--user", "is-system-running"]).1;
            if matches!(state.trim(), "running" | "degraded") {
                return Ok(m);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("systemd --user did not come up: {state}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `program args` in the manager's namespace, as its user session would.
    fn run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "--", program])
            .args(args)
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.home.path())
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn show(&self, unit: &str, property: &str) -> String {
        self.run("systemctl", &["--user", "show", "--value", "-p", property, unit]).1.trim().to_string()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // Stops every unit (lamb with them), then the manager itself.
        let _ = self.run("systemctl", &["--user", "exit"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn runs_as_a_systemd_user_service_started_reloaded_and_stopped_by_systemd() {
    let m = match UserManager::start() {
        Ok(m) => m,
        Err(why) => {
            // The notify protocol itself is tested on a socket of the test's own
            // (systemd_gets_ready_status_watchdog_and_reload_notifications).
            eprintln!("skipped: no systemd --user manager on this machine: {why}");
            return;
        }
    };
    let emu = Emulator::start();
    let p = Project::example("hello");
    p.write(
        "samconfig.toml",
        &p.read("samconfig.toml").replace("stack_name = \"lamb-hello\"", "stack_name = \"w-systemd\""),
    );
    let run = p.lamb_env(&["deploy"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    // The service's environment comes from the manager, as `systemctl --user set-environment`
    // or environment.d would give it.
    let vars: Vec<String> = emu.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec!["--user", "set-environment"];
    args.extend(vars.iter().map(String::as_str));
    assert!(m.run("systemctl", &args).0);
    // Its output in a file we can show when something fails (there is no journald here).
    let log = m.home.path().join("lamb.log");
    let dropin = m.home.path().join(".config/systemd/user/lamb@.service.d");
    fs::create_dir_all(&dropin).unwrap();
    fs::write(
        dropin.join("log.conf"),
        format!("[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\n", log.display()),
    )
    .unwrap();
    let logs = || fs::read_to_string(&log).unwrap_or_default();

    // Installed and started: `systemctl start` of a Type=notify unit returns once lamb said READY=1.
    let dir = p.path().canonicalize().unwrap();
    let (ok, out) = m.run(lamb_bin(), &["service", "install", "--yes", dir.to_str().unwrap()]);
    assert!(ok, "{out}\n{}", logs());
    let escaped = m.run("systemd-escape", &["--path", dir.to_str().unwrap()]).1;
    let unit = format!("lamb@{}.service", escaped.trim());
    assert!(out.contains(&format!("enabled and started {unit}")), "{out}");
    assert_eq!(m.show(&unit, "ActiveState"), "active", "{}", logs());
    assert_eq!(m.show(&unit, "WorkingDirectory"), dir.display().to_string());
    assert!(
        m.show(&unit, "StatusText").starts_with("watching 4 functions and 1 layers of stack w-systemd"),
        "{}",
        logs()
    );

    // It syncs what is saved, and says so in its status.
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// under systemd\n"));
    let want = local_sha(&p, "HelloNode");
    wait_until("the edit to be live", Duration::from_secs(30), || live_sha(&emu, "w-systemd", "HelloNode") == want);
    wait_until("the status to name the sync", Duration::from_secs(10), || {
        m.show(&unit, "StatusText").contains("last sync HelloNode")
    });

    // Reloaded: RELOADING=1 puts the unit in `reloading` until lamb says READY=1 again
    // (`systemctl reload` itself returns once the HUP is sent, before systemd 253's notify-reload).
    let (ok, out) = m.run("systemctl", &["--user", "reload", &unit]);
    assert!(ok, "{out}\n{}", logs());
    wait_until("the reload to end with READY=1", Duration::from_secs(20), || m.show(&unit, "ActiveState") == "active");
    assert!(logs().contains("SIGHUP: reloading the template and settings"), "{}", logs());
    let (ok, out) = m.run(lamb_bin(), &["service", "status", dir.to_str().unwrap()]);
    assert!(ok && out.contains("active (running)"), "{out}");

    // Stopped with SIGTERM: a clean exit, no failure for systemd to restart.
    let (ok, out) = m.run("systemctl", &["--user", "stop", &unit]);
    assert!(ok, "{out}");
    assert_eq!(m.show(&unit, "ActiveState"), "inactive");
    assert_eq!(m.show(&unit, "Result"), "success", "{}", logs());
    assert_eq!(m.show(&unit, "ExecMainStatus"), "0", "{}", logs());
    let (ok, out) = m.run(lamb_bin(), &["service", "uninstall", dir.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_ne!(m.run("systemctl", &["--user", "is-enabled", &unit]).1.trim(), "enabled");
}

#[test]
fn shared_code_linked_into_a_function_is_watched_where_it_lives() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    // A linked directory and a linked file: inotify reports changes under the link of the
    // one, but a change to the other's target only to a watch where the target is.
    p.write("shared/greet.js", "module.exports = 'hi';\n").write("shared/lib/util.js", "module.exports = 1;\n");
    std::os::unix::fs::symlink("../../shared/greet.js", p.path().join("functions/hello_node/greet.js")).unwrap();
    std::os::unix::fs::symlink("../../shared/lib", p.path().join("functions/hello_node/lib")).unwrap();
    let run = p.lamb_env(&["deploy", "--stack-name", "w-linked"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let _d = Daemon::start(&p, &emu.env(), "w-linked", &[], &[]);
    p.write("shared/greet.js", "module.exports = 'hello';\n");
    let want = local_sha(&p, "HelloNode");
    wait_until("the shared edit to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-linked", "HelloNode") == want
    });
    p.write("shared/lib/util.js", "module.exports = 2;\n");
    let want = local_sha(&p, "HelloNode");
    wait_until("the linked directory's edit to be live", Duration::from_secs(20), || {
        live_sha(&emu, "w-linked", "HelloNode") == want
    });
}

#[test]
fn a_lamb_toml_naming_what_is_not_there_is_refused_with_the_fix() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    for (toml, want) in [
        (
            "[functions.HeloNode]\nwatch = [\"shared\"]\n",
            "[functions.HeloNode]: the template has no function `HeloNode`",
        ),
        ("[functions.HelloNode]\nwatch = [\"no-such-dir\"]\n", "no-such-dir does not exist; create it or fix the path"),
    ] {
        p.write("lamb.toml", toml);
        let run = p.lamb_env(&["sync", "--watch", "--yes", "--stack-name", "w-toml"], &emu.env());
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains("lamb.toml") && run.stderr.contains(want), "{want}: {}", run.stderr);
    }
}

#[test]
fn status_without_a_daemon_reads_lambs_record() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    // No region anywhere but in lamb's own record of the stack (and the emulator's env).
    p.write("samconfig.toml", &p.read("samconfig.toml").replace("region = \"us-east-1\"\n", ""));
    assert_eq!(p.lamb_env(&["deploy", "--stack-name", "w-record"], &emu.env()).code, 0);
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// recorded\n"));
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "w-record"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let rd = tempfile::tempdir().unwrap();
    let run = p.lamb_env(
        &["status", "-o", "json", "--stack-name", "w-record"],
        &[
            ("XDG_RUNTIME_DIR", rd.path().display().to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_REGION", String::new()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["daemon"].is_null(), "{v}");
    assert_eq!(v["stack"]["region"], "us-east-1", "{v}");
    let node = v["functions"].as_array().unwrap().iter().find(|f| f["id"] == "HelloNode").unwrap().clone();
    assert_eq!(node["code_sha256"], local_sha(&p, "HelloNode"), "{v}");
    assert!(node["last_sync"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn trigger_wait_of_a_failing_build_exits_1_with_the_reason() {
    let (_emu, p, d) = watched("w-trigger-fail", &["--debounce-ms", "60000"]);
    p.write("functions/hello_make/Makefile", "build-HelloMake:\n\t@echo the compiler says no >&2; exit 3\n");
    let run = d.lamb(&p, &["trigger", "--wait", "functions/hello_make/Makefile"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("HelloMake") && run.all().contains("the compiler says no"), "{}", run.all());
    // The daemon is still there for the fix.
    p.write("functions/hello_make/Makefile", &Project::example("hello").read("functions/hello_make/Makefile"));
    let run = d.lamb(&p, &["trigger", "--wait", "functions/hello_make/Makefile"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn sigint_stops_the_daemon_cleanly_too() {
    let (_emu, _p, mut d) = watched("w-sigint", &[]);
    d.signal(libc::SIGINT);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", d.output());
    assert!(d.output().contains("stopping"), "{}", d.output());
}

#[test]
fn under_journald_log_lines_carry_no_time_of_their_own() {
    let emu = Emulator::start();
    let p = Project::example("hello");
    assert_eq!(p.lamb_env(&["deploy", "--stack-name", "w-journal"], &emu.env()).code, 0);
    let json_lines = |d: &Daemon| -> Vec<serde_json::Value> {
        // Log lines (with a level), not the per-sync lines on stdout.
        d.output()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l.get("level").is_some())
            .collect()
    };
    // A reload logs a line at info level.
    let logged = |d: &mut Daemon| {
        d.signal(libc::SIGHUP);
        d.expect_notify("READY=1", Duration::from_secs(20));
        wait_until("a log line", Duration::from_secs(5), || !json_lines(d).is_empty());
        json_lines(d)
    };
    let mut plain = Daemon::start(&p, &emu.env(), "w-journal", &["--log-format", "json"], &[]);
    let lines = logged(&mut plain);
    assert!(!lines.is_empty() && lines.iter().all(|l| l.get("timestamp").is_some()), "{}", plain.output());
    drop(plain);
    let mut journal =
        Daemon::start(&p, &emu.env(), "w-journal", &["--log-format", "json"], &[("JOURNAL_STREAM", "8:12345")]);
    let lines = logged(&mut journal);
    assert!(!lines.is_empty() && lines.iter().all(|l| l.get("timestamp").is_none()), "{}", journal.output());
    assert!(!journal.output().contains('\u{1b}'), "no colours: {}", journal.output());
}

#[test]
fn service_dry_runs_say_what_they_would_do() {
    let p = Project::example("hello");
    let dir = p.path().canonicalize().unwrap();
    let escaped = dir.to_string_lossy().trim_matches('/').replace('-', "\\x2d").replace('/', "-");
    let run = p.lamb(&["service", "uninstall", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains(&format!("systemctl --user disable --now lamb@{escaped}.service")), "{}", run.stdout);
    let run = p.lamb(&["service", "status", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains(&format!("systemctl --user status lamb@{escaped}.service")), "{}", run.stdout);
}

#[test]
fn a_lamb_toml_saved_while_watching_takes_effect_without_a_restart() {
    let (emu, p, d) = watched_logging_events("w-settings", &[]);
    let status = |d: &Daemon| status_json(d, &p, "w-settings");
    let passes = |d: &Daemon| status(d)["daemon"]["passes"].as_u64().unwrap();
    let before = passes(&d);
    p.write("lamb.toml", "[watch]\nexclude = [\"*.gen.js\"]\n");
    // The settings are reloaded with the template (an infrastructure pass, nothing to deploy).
    wait_until("the reload pass", Duration::from_secs(20), || {
        let v = status(&d);
        v["daemon"]["passes"].as_u64().unwrap() > before && v["daemon"]["running"] == false
    });
    let after = d.wait_idle_after(before, Duration::from_secs(20));
    emu.clear_requests();
    let (mapped, _) = then_a_touch(&d, &p, || {
        p.write("functions/hello_node/types.gen.js", "// generated\n");
    });
    assert!(
        !mapped.iter().any(|c| c.ends_with("types.gen.js")),
        "an excluded file was mapped to a function: {mapped:?}"
    );
    // The one pass is the touch's.
    assert_eq!(passes(&d), after + 1, "an excluded file started a pass: {}", d.output());
    assert!(emu.writes().is_empty(), "{:?}", emu.writes());
}
