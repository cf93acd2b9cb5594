//! `lamb init` end to end: every built-in app template in every language is generated, built,
//! run with its own `events/event.json` by `lamb local invoke`, has its generated unit tests run
//! with the language's own runner, and is deployed to the emulator and deleted. Then the bad
//! input: names, runtimes, templates, missing flags, an existing directory, `--location`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::emulator::{Emulator, emulator};
use common::*;
use serde_json::Value;

const APPS: [&str; 4] = ["hello-world", "sqs", "scheduled", "step-functions"];

/// The functions of each app, and what each answers to the app's sample event.
fn functions(app: &str) -> &'static [&'static str] {
    match app {
        "hello-world" => &["HelloWorldFunction"],
        "sqs" => &["SQSPayloadLogger"],
        "scheduled" => &["ScheduledFunction"],
        _ => &["StockCheckerFunction", "StockBuyerFunction"],
    }
}

fn check_answer(name: &str, function: &str, event: &Value, answer: &Value) {
    match function {
        "HelloWorldFunction" => {
            assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            assert_eq!(body, serde_json::json!({"message": "hello world"}), "{name}");
        }
        "SQSPayloadLogger" => assert_eq!(answer, &serde_json::json!({"batchItemFailures": []}), "{name}"),
        "ScheduledFunction" => {
            assert_eq!(answer["ok"], true, "{name}: {answer}");
            assert_eq!(answer["time"], event["time"], "{name}: {answer}");
        }
        "StockCheckerFunction" => {
            let price = answer["stock_price"].as_u64().unwrap_or_else(|| panic!("{name}: {answer}"));
            assert!(price <= 100, "{name}: {answer}");
        }
        _ => {
            assert_eq!(answer["type"], "buy", "{name}: {answer}");
            assert_eq!(answer["price"], 0, "{name}: the sample event has no stock_price: {answer}");
        }
    }
}

/// A language's flags and how its generated unit tests run.
struct Language {
    id: &'static str,
    runtime: &'static str,
    manager: &'static str,
    suffix: &'static str,
    /// Environment for lamb and the test runner (toolchains on PATH, a shared Rust target dir).
    env: Vec<(&'static str, String)>,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directories holding a manifest named `manifest` (one per function), outside lamb's and
/// the toolchains' own directories.
fn code_dirs(root: &Path, manifest: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name();
            if [".lamb", "node_modules", "target", ".test"].iter().any(|n| name == *n) {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if name == manifest {
                out.push(dir.clone());
            }
        }
    }
    out.sort();
    out
}

/// Runs the project's generated unit tests with the language's usual runner.
fn unit_tests(lang: &Language, dir: &Path) {
    let with_env = |mut c: Command| {
        for (k, v) in &lang.env {
            c.env(k, v);
        }
        c
    };
    match lang.id {
        "python" => {
            let mut c = with_env(Command::new(pytest_python()));
            c.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"]).current_dir(dir);
            run(&mut c, &format!("pytest in {}", dir.display()));
        }
        "javascript" | "typescript" => {
            let dirs = code_dirs(dir, "package.json");
            assert!(!dirs.is_empty());
            for d in dirs {
                let mut c = with_env(Command::new("npm"));
                c.args(["test", "--silent"]).current_dir(&d);
                run(&mut c, &format!("npm test in {}", d.display()));
            }
        }
        "go" => {
            for d in code_dirs(dir, "go.mod") {
                let mut c = with_env(Command::new("go"));
                c.args(["test", "./..."]).current_dir(&d);
                run(&mut c, &format!("go test in {}", d.display()));
            }
        }
        _ => {
            for d in code_dirs(dir, "Cargo.toml") {
                let mut c = with_env(Command::new("cargo"));
                c.args(["test", "-q"]).current_dir(&d);
                run(&mut c, &format!("cargo test in {}", d.display()));
            }
        }
    }
}

fn pytest_python() -> PathBuf {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| toolchain("pytest.sh")).clone()
}

/// The last line a tests/toolchains script prints (a path).
fn toolchain(script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/toolchains").join(script))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run tests/toolchains/{script}: {e}"));
    assert!(out.status.success(), "tests/toolchains/{script} failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The resource types of `stack` in the emulator, sorted (duplicates kept).
fn stack_resource_types(emu: &Emulator, stack: &str) -> Vec<String> {
    rt().block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
        let res = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
        let mut types: Vec<String> =
            res.stack_resource_summaries().iter().filter_map(|r| r.resource_type().map(String::from)).collect();
        types.sort();
        types
    })
}

fn stack_exists(emu: &Emulator, stack: &str) -> bool {
    rt().block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&emu.sdk().await);
        match cfn.describe_stacks().stack_name(stack).send().await {
            Ok(r) => r.stacks().iter().any(|s| s.stack_status().is_some_and(|st| st.as_str() != "DELETE_COMPLETE")),
            Err(_) => false,
        }
    })
}

/// Every app of `lang`: generate, build, invoke locally, unit tests, deploy, delete.
fn every_app(lang: &Language) {
    let emu = emulator();
    for app in APPS {
        let name = format!("init-{}-{app}", lang.id);
        let template = format!("{app}{}", lang.suffix);
        let p = Project::empty();
        let init = p.lamb(&[
            "init",
            "--no-interactive",
            "--name",
            &name,
            "--runtime",
            lang.runtime,
            "--app-template",
            &template,
            "--dependency-manager",
            lang.manager,
        ]);
        assert_eq!(init.code, 0, "{name}: {}", init.all());
        let dir = p.path().join(&name);
        let in_project = |args: &[&str], env: &[(&str, String)]| {
            let mut cmd = Command::new(lamb_bin());
            cmd.args(args).current_dir(&dir).env_remove("LAMB_LOG").env_remove("AWS_PROFILE").env("NO_COLOR", "1");
            for (k, v) in lang.env.iter().map(|(k, v)| (*k, v)).chain(env.iter().map(|(k, v)| (*k, v))) {
                cmd.env(k, v);
            }
            Run::from(cmd.output().unwrap())
        };

        let started = std::time::Instant::now();
        let step = |what: &str| eprintln!("{name}: {what} done at {} ms", started.elapsed().as_millis());
        let build = in_project(&["build", "-o", "json"], &[]);
        assert_eq!(build.code, 0, "{name}: lamb build: {}", build.all());
        let report: Value = serde_json::from_str(&build.stdout).unwrap();
        for f in functions(app) {
            assert_eq!(status_of(&report, f), "built", "{name}: {report}");
        }

        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("events/event.json")).unwrap()).unwrap();
        for f in functions(app) {
            let invoke = in_project(&["local", "invoke", f, "-e", "events/event.json"], &[]);
            assert_eq!(invoke.code, 0, "{name}: lamb local invoke {f}: {}", invoke.all());
            let answer: Value = serde_json::from_str(invoke.stdout.trim())
                .unwrap_or_else(|e| panic!("{name}: {f} answered no JSON ({e}): {}", invoke.all()));
            check_answer(&name, f, &event, &answer);
            assert!(invoke.stderr.contains("REPORT RequestId"), "{name}: {}", invoke.stderr);
        }

        step("build and local invoke");
        unit_tests(lang, &dir);
        step("unit tests");

        // samconfig.toml names the stack and asks for the managed bucket: no flags needed.
        let deploy = in_project(&["deploy"], &emu.env());
        assert_eq!(deploy.code, 0, "{name}: lamb deploy: {}", deploy.all());
        step("deploy");
        let types = stack_resource_types(emu, &name);
        let lambdas = types.iter().filter(|t| *t == "AWS::Lambda::Function").count();
        assert_eq!(lambdas, functions(app).len(), "{name}: {types:?}");
        let expected = match app {
            "hello-world" => "AWS::ApiGateway::RestApi",
            "sqs" => "AWS::SQS::Queue",
            "scheduled" => "AWS::Events::Rule",
            _ => "AWS::StepFunctions::StateMachine",
        };
        assert!(types.iter().any(|t| t == expected), "{name}: no {expected} in {types:?}");

        let delete = in_project(&["delete", "--yes"], &emu.env());
        assert_eq!(delete.code, 0, "{name}: lamb delete: {}", delete.all());
        assert!(!stack_exists(emu, &name), "{name}: the stack is still there after lamb delete");
        step("delete");
    }
}

#[test]
fn python_apps_build_run_test_deploy_and_delete() {
    every_app(&Language { id: "python", runtime: "python3.13", manager: "pip", suffix: "", env: vec![] });
}

#[test]
fn javascript_apps_build_run_test_deploy_and_delete() {
    every_app(&Language { id: "javascript", runtime: "nodejs22.x", manager: "npm", suffix: "", env: vec![] });
}

#[test]
fn typescript_apps_build_run_test_deploy_and_delete() {
    every_app(&Language {
        id: "typescript",
        runtime: "nodejs22.x",
        manager: "npm",
        suffix: "-typescript",
        env: vec![],
    });
}

#[test]
fn go_apps_build_run_test_deploy_and_delete() {
    every_app(&Language { id: "go", runtime: "provided.al2023", manager: "mod", suffix: "", env: vec![] });
}

/// The Rust apps share one target directory (lambda_runtime and its dependencies compile once
/// per profile for all five crates), and both profiles skip optimisation and debug info: the
/// tests check behaviour, not speed.
#[test]
fn rust_apps_build_run_test_deploy_and_delete() {
    let path = format!("{}:{}", toolchain("cargo-lambda.sh").display(), std::env::var("PATH").unwrap());
    let target = repo_root().join("target/init-rust-target");
    every_app(&Language {
        id: "rust",
        runtime: "provided.al2023",
        manager: "cargo",
        suffix: "",
        env: vec![
            ("PATH", path),
            ("CARGO_TARGET_DIR", target.display().to_string()),
            ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0".into()),
            ("CARGO_PROFILE_RELEASE_DEBUG", "false".into()),
            ("CARGO_PROFILE_DEV_DEBUG", "false".into()),
            ("CARGO_INCREMENTAL", "0".into()),
        ],
    });
}

fn init(p: &Project, args: &[&str]) -> Run {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    p.lamb(&all)
}

#[test]
fn bad_names_runtimes_and_templates_are_usage_errors_listing_what_is_known() {
    let p = Project::empty();
    let base = ["--no-interactive", "--runtime", "python3.13", "--app-template", "hello-world"];
    let with = |extra: &[&str]| -> Run {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        init(&p, &a)
    };
    for (name, why) in [("1app", "must start with a letter"), ("my_app", "`_` is not allowed"), ("a/b", "`/`")] {
        let r = with(&["--name", name]);
        assert_eq!(r.code, 2, "{name}: {}", r.all());
        assert!(
            r.stderr.contains(&format!("`{name}` cannot be the project's name")) && r.stderr.contains(why),
            "{}",
            r.stderr
        );
    }

    let r = init(&p, &["--no-interactive", "--name", "a", "--runtime", "python2.7", "--app-template", "sqs"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("unknown runtime `python2.7`") && r.stderr.contains("python3.13, python3.12"),
        "{}",
        r.stderr
    );

    let r = init(&p, &["--no-interactive", "--name", "a", "--runtime", "nodejs22.x", "--app-template", "web"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("unknown app template `web` for nodejs22.x")
            && r.stderr.contains("hello-world, sqs, scheduled, step-functions, hello-world-typescript"),
        "{}",
        r.stderr
    );

    let r = init(&p, &["--no-interactive", "--name", "a", "--runtime", "provided.al2023", "--app-template", "sqs"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("pass --dependency-manager: cargo (Rust (cargo-lambda)), mod (Go)"), "{}", r.stderr);

    let r = with(&["--name", "ok", "--extra-context", "[]"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--extra-context `[]` is not a JSON object"), "{}", r.stderr);

    assert_eq!(std::fs::read_dir(p.path()).unwrap().count(), 0, "nothing was written");
}

#[test]
fn without_a_terminal_missing_flags_are_named() {
    let p = Project::empty();
    // No --no-interactive: stdin is not a terminal here, so lamb cannot ask either.
    for args in [&["--name", "a"][..], &["--no-interactive", "--name", "a"]] {
        let r = init(&p, args);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr.contains(
                "not on a terminal, so lamb init cannot ask; pass --runtime RUNTIME, --app-template TEMPLATE"
            ),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn an_existing_directory_is_refused_and_kept() {
    let p = Project::empty();
    p.write("app/notes.txt", "mine");
    let r = init(&p, &["--no-interactive", "--name", "app", "--runtime", "python3.13", "--app-template", "sqs"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("app already exists; lamb init does not overwrite"), "{}", r.stderr);
    assert_eq!(p.read("app/notes.txt"), "mine");
    assert_eq!(std::fs::read_dir(p.path().join("app")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(p.path()).unwrap().count(), 1, "no temporary directory left");
}

#[test]
fn generated_projects_say_what_to_run_next() {
    let p = Project::empty();
    let r = init(
        &p,
        &[
            "--no-interactive",
            "--name",
            "shop",
            "--runtime",
            "nodejs20.x",
            "--app-template",
            "hello-world",
            "--architecture",
            "arm64",
            "--output-dir",
            "apps",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("Generated apps/shop") && r.stdout.contains("lamb deploy --guided"), "{}", r.stdout);
    let readme = p.read("apps/shop/README.md");
    for next in [
        "lamb build",
        "lamb local invoke HelloWorldFunction -e events/event.json",
        "lamb deploy --guided",
        "lamb sync --watch",
    ] {
        assert!(readme.contains(next), "README lacks `{next}`:\n{readme}");
    }
    let template = p.read("apps/shop/template.yaml");
    assert!(template.contains("Runtime: nodejs20.x") && template.contains("- arm64"), "{template}");
    assert!(p.read("apps/shop/samconfig.toml").contains("[default.deploy.parameters]\nstack_name = \"shop\""));
}

#[test]
fn a_location_renders_the_users_cookiecutter_template_from_a_directory_or_a_zip() {
    let p = Project::empty();
    p.write("tpl/cookiecutter.json", r#"{"project_name": "svc", "owner": "nobody", "lang": ["python", "go"]}"#)
        .write(
            "tpl/{{cookiecutter.project_name}}/{{cookiecutter.lang}}.txt",
            "{{ cookiecutter.owner }} owns {{ cookiecutter.project_name }}\n",
        )
        .write("tpl/hooks/pre_gen_project.py", "raise SystemExit(1)\n");
    let r =
        init(&p, &["--location", "tpl", "--name", "billing", "--extra-context", r#"{"owner": "ana", "lang": "go"}"#]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(p.read("billing/go.txt"), "ana owns billing\n");

    let zip = p.path().join("tpl.zip");
    let status = Command::new("zip").args(["-qr", zip.to_str().unwrap(), "tpl"]).current_dir(p.path()).status();
    if status.is_ok_and(|s| s.success()) {
        let r = init(&p, &["--location", "tpl.zip", "--output-dir", "z"]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(p.read("z/svc/python.txt"), "nobody owns svc\n");
    }

    p.write("plain/README.md", "not a template");
    let r = init(&p, &["--location", "plain"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("plain is not a cookiecutter template: it has no cookiecutter.json"), "{}", r.stderr);

    let r = init(&p, &["--location", "tpl", "--extra-context", r#"{"lang": "rust"}"#]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("variable `lang`: `\"rust\"` is not one of the template's choices"), "{}", r.stderr);
}

/// Runs `lamb ARGS` in `p` on a terminal (`script`), typing each step's text once the terminal
/// shows its marker; the exit code and everything the terminal showed.
fn on_terminal(p: &Project, args: &str, steps: &[(&str, &str)]) -> (Option<i32>, String) {
    common::terminal::on_terminal(p, args, &[], steps)
}

fn has_script() -> bool {
    Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn on_a_terminal_init_asks_numbered_questions_with_defaults() {
    if !has_script() {
        eprintln!("skipped: `script` (util-linux/bsdutils) is not installed");
        return;
    }
    let p = Project::empty();
    let steps = [
        ("Which template", "2\n"),
        ("Which runtime", "\n"),
        ("Which architecture", "3\n"),
        ("is not one of 1-2", "2\n"),
        ("Project name [lamb-app]", "queue-app\n"),
    ];
    let (code, text) = on_terminal(&p, "init", &steps);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 - Hello World") && text.contains("Choice [1]"), "{text}");
    assert!(text.contains("python3.13 (Python, pip)") && text.contains("(Rust (cargo-lambda), cargo)"), "{text}");
    let template = p.read("queue-app/template.yaml");
    assert!(template.contains("AWS::SQS::Queue") && template.contains("Runtime: python3.13"), "{template}");
    assert!(template.contains("- arm64"), "{template}");
}

#[test]
fn ctrl_c_in_the_questions_writes_nothing_and_exits_130() {
    if !has_script() {
        eprintln!("skipped: `script` (util-linux/bsdutils) is not installed");
        return;
    }
    let p = Project::empty();
    let (code, text) = on_terminal(&p, "init", &[("Which template", "1\n"), ("Which runtime", "\x03")]);
    assert_eq!(code, Some(130), "{text}");
    assert_eq!(std::fs::read_dir(p.path()).unwrap().count(), 0, "nothing written: {text}");
}
