//! The bad-input matrix: everything a user can get wrong between two saves. Every row starts
//! from a deployed example, breaks one thing, runs `lamb sync`, and checks the message (file,
//! resource, fix) and that what was deployed is exactly as it was: same code, configuration,
//! layers, template and stack status.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::emulator::{Emulator, emulator};
use common::faults::FaultProxy;
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A function as Lambda runs it: physical name, CodeSha256, environment, layer ARNs.
type Live = (String, String, Vec<(String, String)>, Vec<String>);

/// What a stack runs, as far as a user could tell.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    status: String,
    template: String,
    functions: BTreeMap<String, Live>,
}

fn snapshot(emu: &Emulator, stack: &str) -> Snapshot {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let d = cfn.describe_stacks().stack_name(stack).send().await.unwrap();
        let status = d.stacks()[0].stack_status().unwrap().as_str().to_string();
        let template = cfn.get_template().stack_name(stack).send().await.unwrap().template_body().unwrap().to_string();
        let resources = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
        let mut functions = BTreeMap::new();
        for r in resources.stack_resource_summaries() {
            if r.resource_type() != Some("AWS::Lambda::Function") {
                continue;
            }
            let name = r.physical_resource_id().unwrap().to_string();
            let Ok(c) = lambda.get_function_configuration().function_name(&name).send().await else {
                functions.insert(
                    r.logical_resource_id().unwrap().to_string(),
                    (name, "<deleted>".into(), Vec::new(), Vec::new()),
                );
                continue;
            };
            let mut env: Vec<(String, String)> = c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            env.sort();
            let layers = c.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect();
            functions.insert(
                r.logical_resource_id().unwrap().to_string(),
                (name, c.code_sha256().unwrap().to_string(), env, layers),
            );
        }
        Snapshot { status, template, functions }
    })
}

/// The example deployed as `stack` on `emu`, with what it runs.
fn deployed_on(emu: &Emulator, stack: &str) -> (Project, Snapshot) {
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", stack], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let snap = snapshot(emu, stack);
    assert_eq!(snap.functions.len(), 4, "{snap:?}");
    (p, snap)
}

fn deployed(stack: &str) -> (Project, Snapshot) {
    deployed_on(emulator(), stack)
}

fn sync_on(emu: &Emulator, p: &Project, stack: &str) -> Run {
    p.lamb_env(&["sync", "--yes", "--stack-name", stack], &emu.env())
}

fn sync(p: &Project, stack: &str) -> Run {
    sync_on(emulator(), p, stack)
}

/// `lamb sync` failed with every one of `fragments` in its output, and the stack is as it was.
fn refused(p: &Project, stack: &str, before: &Snapshot, fragments: &[&str]) -> Run {
    let run = sync(p, stack);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    for f in fragments {
        assert!(all.contains(f), "the message lacks `{f}`:\n{all}");
    }
    assert_eq!(&snapshot(emulator(), stack), before, "the last good deploy was touched:\n{all}");
    run
}

fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let text = p.read(rel);
    assert!(text.contains(from), "{rel} has no `{from}`");
    p.write(rel, &text.replacen(from, to, 1));
}

#[test]
fn a_template_cut_off_mid_edit() {
    let (p, before) = deployed("bad-yaml");
    let t = p.read("template.yaml");
    // Saved halfway through typing a new property.
    p.write(
        "template.yaml",
        &t.replace("      Runtime: nodejs20.x\n", "      Runtime: nodejs20.x\n      Timeout: [30\n"),
    );
    refused(&p, "bad-yaml", &before, &["template.yaml:", "invalid YAML"]);
    // Truncated by an editor crash.
    p.write("template.yaml", &t[..t.len() / 2]);
    let run = sync(&p, "bad-yaml");
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("template.yaml"), "{}", run.stderr);
    assert_eq!(snapshot(emulator(), "bad-yaml"), before);
}

#[test]
fn an_unknown_resource_type() {
    let (p, before) = deployed("bad-type");
    edit(
        &p,
        "template.yaml",
        "  HelloShell:\n    Type: AWS::Serverless::Function",
        "  HelloShell:\n    Type: AWS::Serverless::Functon",
    );
    refused(&p, "bad-type", &before, &["template.yaml:", "HelloShell", "AWS::Serverless::Function"]);
}

#[test]
fn a_function_without_a_handler() {
    let (p, before) = deployed("bad-handler");
    edit(&p, "template.yaml", "      Handler: index.handler\n", "");
    refused(&p, "bad-handler", &before, &["HelloNode", "no Handler", "set Handler"]);
}

#[test]
fn code_outside_the_project() {
    let (p, before) = deployed("bad-outside");
    edit(&p, "template.yaml", "CodeUri: functions/hello_shell/", "CodeUri: ../elsewhere/");
    refused(&p, "bad-outside", &before, &["HelloShell", "outside the project"]);
}

#[test]
fn a_requirements_file_that_does_not_install() {
    let (p, before) = deployed("bad-pip");
    p.write("functions/hello_python/requirements.txt", "lamb-test-no-such-package==9.9.9\n");
    p.write("functions/hello_python/app.py", &(p.read("functions/hello_python/app.py") + "# edited\n"));
    refused(&p, "bad-pip", &before, &["HelloPython", "lamb-test-no-such-package"]);
}

#[test]
fn a_makefile_target_that_fails() {
    let (p, before) = deployed("bad-make");
    edit(
        &p,
        "functions/hello_make/Makefile",
        "build-HelloMake:\n",
        "build-HelloMake:\n\t@echo 'compiler says: no' >&2; false\n",
    );
    refused(&p, "bad-make", &before, &["HelloMake", "compiler says: no"]);
}

/// `len` bytes deflate cannot shrink (xorshift), so packing them takes a while.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn a_source_file_deleted_between_the_walk_and_the_zip_is_built_again_without_it() {
    let (p, before) = deployed("bad-vanish");
    // A copied (nodejs) function: a big file packed first, then a small one that is deleted
    // while the big one is being zipped, i.e. after the walk listed it and before the zip
    // reads it.
    let dir = p.path().join("functions/hello_node");
    fs::write(dir.join("a_big.bin"), incompressible(8 << 20)).unwrap();
    fs::write(dir.join("z_victim.js"), "module.exports = 'soon gone';\n").unwrap();
    let artifacts = p.path().join(".lamb/artifacts");
    let victim = dir.join("z_victim.js");
    let deleter = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let packing = fs::read_dir(&artifacts)
                .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".pack-")))
                .unwrap_or(false);
            if packing {
                fs::remove_file(&victim).unwrap();
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    });
    let run = p.lamb_env(&["-v", "sync", "--yes", "--stack-name", "bad-vanish"], &emulator().env());
    assert!(deleter.join().unwrap(), "the file was never deleted mid-pack: {}", run.all());
    assert!(!dir.join("z_victim.js").exists());
    // lamb saw the file go, built again from what is there now, and deployed that.
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("z_victim.js") && run.stderr.contains("building again"),
        "the rebuild is not reported:\n{}",
        run.stderr
    );
    let (report, _) = p.build_json(&["-r", "HelloNode"]);
    let after = snapshot(emulator(), "bad-vanish");
    assert_eq!(after.functions["HelloNode"].1, code_sha(&report, "HelloNode"), "live is the build of the final tree");
    let names = zip_names(&artifact_path(&report, "HelloNode"));
    assert!(names.contains(&"a_big.bin".to_string()) && !names.contains(&"z_victim.js".to_string()), "{names:?}");
    for id in ["HelloPython", "HelloShell", "HelloMake"] {
        assert_eq!(after.functions[id], before.functions[id], "{id}");
    }
}

#[test]
fn an_empty_file_is_packed_and_an_unreadable_one_is_refused() {
    let (p, _) = deployed("bad-files");
    p.write("functions/hello_node/empty.js", "");
    let run = sync(&p, "bad-files");
    assert_eq!(run.code, 0, "{}", run.all());
    let (report, _) = p.build_json(&["-r", "HelloNode"]);
    let entries = zip_entries(&artifact_path(&report, "HelloNode"));
    assert!(entries.iter().any(|(name, _)| name == "empty.js"), "{entries:?}");
    let before = snapshot(emulator(), "bad-files");
    assert_eq!(before.functions["HelloNode"].1, code_sha(&report, "HelloNode"));

    // A file only its owner can read, and lamb running as someone else (as root, run lamb as
    // nobody: permissions do not stop root).
    use std::os::unix::fs::PermissionsExt;
    let secret = p.path().join("functions/hello_node/secret.js");
    fs::write(&secret, "x").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let run = if fs::read(&secret).is_err() {
        sync(&p, "bad-files")
    } else {
        let status = std::process::Command::new("chown").args(["-R", "65534:65534"]).arg(p.path()).status().unwrap();
        assert!(status.success());
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", lamb_bin(), "sync", "--yes"])
            .args(["--stack-name", "bad-files"])
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env("HOME", p.path());
        for (k, v) in emulator().env() {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("setpriv is needed to test unreadable files as root"))
    };
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("secret.js: cannot read") && run.all().contains("chmod u+r"), "{}", run.all());
    assert_eq!(snapshot(emulator(), "bad-files"), before);
}

#[test]
fn a_code_directory_replaced_by_a_file() {
    let (p, before) = deployed("bad-dirfile");
    fs::remove_dir_all(p.path().join("functions/hello_shell")).unwrap();
    fs::write(p.path().join("functions/hello_shell"), "#!/bin/sh\n").unwrap();
    refused(&p, "bad-dirfile", &before, &["HelloShell", "functions/hello_shell", "is a file, not a directory"]);
}

#[test]
fn a_symlink_loop() {
    let (p, before) = deployed("bad-loop");
    let dir = p.path().join("functions/hello_node");
    std::os::unix::fs::symlink(dir.join("b"), dir.join("a")).unwrap();
    std::os::unix::fs::symlink(dir.join("a"), dir.join("b")).unwrap();
    refused(&p, "bad-loop", &before, &["HelloNode", "hello_node/a", "symlink loop", "remove the link"]);
}

#[test]
fn a_symlink_to_a_file_outside_the_project() {
    let (p, before) = deployed("bad-symlink");
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("credentials"), "[default]\naws_secret_access_key = nope\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("credentials"), p.path().join("functions/hello_node/creds"))
        .unwrap();
    refused(&p, "bad-symlink", &before, &["HelloNode", "creds", "--follow-external-symlinks"]);
}

#[test]
fn a_function_over_lambdas_unzipped_limit_is_refused_before_upload() {
    let emu = Emulator::start();
    let (p, before) = deployed_on(&emu, "bad-big");
    // 251 MB of zeros (sparse on disk): tiny zipped, too big unzipped.
    let big = fs::File::create(p.path().join("functions/hello_shell/data.bin")).unwrap();
    big.set_len(251 * 1024 * 1024).unwrap();
    emu.clear_requests();
    let run = sync_on(&emu, &p, "bad-big");
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(all.contains("HelloShell") && all.contains("263.2 MB") && all.contains("limit of 262.1 MB"), "{all}");
    assert!(emu.writes().is_empty(), "nothing is uploaded: {:?}", emu.writes());
    assert_eq!(snapshot(&emu, "bad-big"), before);
}

#[test]
fn a_function_over_the_unzipped_limit_only_with_its_layer_is_refused_before_upload() {
    let emu = Emulator::start();
    let (p, before) = deployed_on(&emu, "bad-big-layer");
    // Each under 250 MB unzipped (sparse zeros: tiny zipped), together over it.
    let sparse = |rel: &str, mib: u64| {
        let f = fs::File::create(p.path().join(rel)).unwrap();
        f.set_len(mib * 1024 * 1024).unwrap();
    };
    sparse("layers/shared/shared/data.bin", 140);
    sparse("functions/hello_python/data.bin", 130);
    emu.clear_requests();
    let run = sync_on(&emu, &p, "bad-big-layer");
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    for fragment in ["HelloPython", "with its layers (SharedLayer 146.8 MB)", "in all", "limit of 262.1 MB"] {
        assert!(all.contains(fragment), "the message lacks `{fragment}`:\n{all}");
    }
    // The layer alone is within Lambda's limits and may be published; nothing is done to the
    // function (no code, no layer swap).
    let writes = emu.writes();
    assert!(writes.iter().all(|(_, _, action)| action == "PublishLayerVersion"), "{writes:?}");
    assert_eq!(snapshot(&emu, "bad-big-layer"), before);
}

#[test]
fn a_function_deleted_outside_lamb() {
    let (p, before) = deployed("bad-deleted");
    let (name, _, _, _) = before.functions["HelloShell"].clone();
    rt().block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&emulator().sdk().await);
        lambda.delete_function().function_name(&name).send().await.unwrap();
    });
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho after the delete\n");
    p.write("functions/hello_node/index.js", &(p.read("functions/hello_node/index.js") + "// also edited\n"));
    let run = sync(&p, "bad-deleted");
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(all.contains(&name) && all.contains("no longer exists in Lambda") && all.contains("lamb delete"), "{all}");
    // The other edit still went out; nothing else changed.
    let after = snapshot(emulator(), "bad-deleted");
    let (report, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(after.functions["HelloNode"].1, code_sha(&report, "HelloNode"));
    for id in ["HelloPython", "HelloMake"] {
        assert_eq!(after.functions[id], before.functions[id], "{id}");
    }
    assert_eq!(after.functions["HelloShell"].1, "<deleted>", "lamb did not create a function behind CloudFormation");
    assert_eq!((after.status, after.template), (before.status, before.template));
}

#[test]
fn a_production_stack_is_refused_unless_allowed() {
    let emu = emulator();
    let p = Project::example("hello");
    // By name: refused before anything is built or called.
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "shop-prod"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("stack shop-prod looks like production (its name `shop-prod`)")
            && run.stderr.contains("--allow-production"),
        "{}",
        run.stderr
    );
    assert!(!p.path().join(".lamb").exists(), "nothing was built");
    // By the stack's own tag, found when it is described.
    let run = p.lamb_env(&["deploy", "--stack-name", "bad-tagged", "--tags", "Environment=Production"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let before = snapshot(emu, "bad-tagged");
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho hotfix\n");
    let run = p.lamb_env(&["sync", "--yes", "--stack-name", "bad-tagged"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("its tag Environment=Production"), "{}", run.stderr);
    assert_eq!(snapshot(emu, "bad-tagged"), before);
    // The watch daemon refuses too, before it watches anything.
    let run = p.lamb_env(&["sync", "--watch", "--yes", "--stack-name", "live-site"], &emu.env());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("looks like production"), "{}", run.stderr);
    // The watch daemon on the tagged stack: its name says nothing, the stack's tag does. It
    // reports that, and pushes nothing, however often the code is saved.
    let d = common::daemon::Daemon::spawn(&p, &emu.env(), "bad-tagged", &[], &[]);
    common::daemon::wait_until("the refusal", std::time::Duration::from_secs(30), || {
        d.output().contains("its tag Environment=Production")
    });
    let passes = d.wait_idle(std::time::Duration::from_secs(30));
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho hotfix 2\n");
    // The daemon looks at the save (a pass runs, and is refused) and pushes nothing.
    d.wait_idle_after(passes, std::time::Duration::from_secs(30));
    let out = d.output();
    assert!(out.contains("looks like production") && out.contains("--allow-production"), "{out}");
    assert_eq!(snapshot(emu, "bad-tagged"), before, "{out}");
    drop(d);
    // Allowed explicitly.
    let run = p.lamb_env(&["sync", "--yes", "--allow-production", "--stack-name", "bad-tagged"], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let (report, _) = p.build_json(&["-r", "HelloShell"]);
    assert_eq!(snapshot(emu, "bad-tagged").functions["HelloShell"].1, code_sha(&report, "HelloShell"));
}

#[test]
fn a_stack_that_cannot_be_updated_is_reported_and_left_alone() {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let (p, before) = deployed_on(&emu, "bad-state");
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho not now\n");
    p.write("template.yaml", &p.read("template.yaml").replace("Timeout: 10", "Timeout: 12"));
    for (status, fix) in [
        ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback --stack-name bad-state"),
        ("UPDATE_IN_PROGRESS", "another operation is running on it; wait for it to finish"),
        ("UPDATE_ROLLBACK_IN_PROGRESS", "another operation is running on it; wait for it to finish"),
        ("CREATE_IN_PROGRESS", "another operation is running on it; wait for it to finish"),
        ("ROLLBACK_COMPLETE", "delete it (`lamb delete`) and deploy again"),
        ("DELETE_FAILED", "finish deleting it"),
    ] {
        // What CloudFormation would say about the stack (the emulator cannot get there).
        proxy.clear();
        proxy.add(serde_json::json!({"fault": "rewrite", "action": "DescribeStacks", "times": -1,
            "find": "<StackStatus>[A-Z_]+</StackStatus>", "replace": format!("<StackStatus>{status}</StackStatus>")}));
        emu.clear_requests();
        let run = p.lamb_env(&["sync", "--yes", "--stack-name", "bad-state"], &proxy.env());
        assert_eq!(run.code, 1, "{status}: {}", run.all());
        assert!(run.stderr.contains(status) && run.stderr.contains(fix), "{status}: {}", run.stderr);
        assert!(emu.writes().is_empty(), "{status}: no blind deploy or push: {:?}", emu.writes());
        assert_eq!(snapshot(&emu, "bad-state"), before, "{status}");
    }
}

#[test]
fn in_watch_mode_each_bad_edit_is_reported_and_the_daemon_keeps_going() {
    use common::daemon::{Daemon, wait_until};
    use std::time::Duration;
    let (p, before) = deployed("bad-watch");
    let d = Daemon::start(&p, &emulator().env(), "bad-watch", &[], &[]);
    let seen = |what: &str| {
        let what = what.to_string();
        wait_until(&what.clone(), Duration::from_secs(30), || d.output().contains(&what));
    };
    // A failing build, a dependency that does not exist, a link out of the project, a
    // template that stops parsing: each is reported, nothing deployed is touched.
    let makefile = p.read("functions/hello_make/Makefile");
    p.write("functions/hello_make/Makefile", &makefile.replace("build-HelloMake:\n", "build-HelloMake:\n\tfalse\n"));
    seen("failed    HelloMake");
    let requirements = p.read("functions/hello_python/requirements.txt");
    p.write("functions/hello_python/requirements.txt", "lamb-test-no-such-package==9.9.9\n");
    seen("lamb-test-no-such-package");
    std::os::unix::fs::symlink("/etc/hostname", p.path().join("functions/hello_node/host")).unwrap();
    seen("--follow-external-symlinks");
    let template = p.read("template.yaml");
    p.write("template.yaml", &template.replace("  HelloNode:\n", "  HelloNode\n"));
    seen("still watching with the last good template");
    assert_eq!(snapshot(emulator(), "bad-watch"), before, "{}", d.output());
    // Each fixed, with an edit on top: all of it goes live, from the same daemon.
    p.write("template.yaml", &template);
    p.write("functions/hello_make/Makefile", &makefile);
    p.write("functions/hello_python/requirements.txt", &requirements);
    fs::remove_file(p.path().join("functions/hello_node/host")).unwrap();
    p.write("functions/hello_shell/bootstrap", "#!/bin/sh\necho fixed\n");
    let (report, _) = p.build_json(&[]);
    wait_until("everything to be live", Duration::from_secs(60), || {
        let now = snapshot(emulator(), "bad-watch");
        ["HelloPython", "HelloNode", "HelloShell", "HelloMake"]
            .iter()
            .all(|id| now.functions[*id].1 == code_sha(&report, id))
    });
    let mut d = d;
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon is still running");
}
