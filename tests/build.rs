//! `lamb build` end to end, on copies of the example project and on small fixture projects.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

const ALL: [&str; 5] = ["HelloPython", "HelloNode", "HelloShell", "HelloMake", "SharedLayer"];

#[test]
fn example_first_build_builds_everything_then_everything_is_cached() {
    let p = Project::example("hello");
    let (first, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    for id in ALL {
        assert_eq!(status_of(&first, id), "built", "{id}: {first}");
    }
    assert_eq!(resource(&first, "HelloPython")["deps"], "installed");

    let (second, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    for id in ALL {
        assert_eq!(status_of(&second, id), "cached", "{id}");
        assert_eq!(code_sha(&first, id), code_sha(&second, id), "{id}");
    }

    // Touching every file changes no content: still all cached.
    touch_all(p.path());
    let (third, _) = p.build_json(&[]);
    for id in ALL {
        assert_eq!(status_of(&third, id), "cached", "{id} after touch");
    }

    // Editing one function rebuilds only it, reusing its installed dependencies.
    p.write("functions/hello_python/app.py", &(p.read("functions/hello_python/app.py") + "\n# edited\n"));
    let (fourth, _) = p.build_json(&[]);
    assert_eq!(status_of(&fourth, "HelloPython"), "built");
    assert_eq!(resource(&fourth, "HelloPython")["deps"], "cached");
    assert_ne!(code_sha(&fourth, "HelloPython"), code_sha(&first, "HelloPython"));
    for id in ["HelloNode", "HelloShell", "HelloMake", "SharedLayer"] {
        assert_eq!(status_of(&fourth, id), "cached", "{id}");
    }

    // The zips hold what each method should put in them.
    let py = zip_names(&artifact_path(&fourth, "HelloPython"));
    assert!(py.contains(&"app.py".to_string()) && py.contains(&"requests/__init__.py".to_string()), "{py:?}");
    assert!(
        !py.iter().any(|n| n.starts_with("shared/") || n.starts_with("python/")),
        "no layer content in the function: {py:?}"
    );
    assert!(!py.iter().any(|n| n.ends_with(".pyc")), "{py:?}");
    let layer = zip_names(&artifact_path(&fourth, "SharedLayer"));
    assert_eq!(layer, ["python/shared/__init__.py", "python/shared/greeting.py"]);
    let shell = zip_entries(&artifact_path(&fourth, "HelloShell"));
    assert_eq!(shell, [("bootstrap".to_string(), 0o755)]);
    let make = zip_entries(&artifact_path(&fourth, "HelloMake"));
    assert_eq!(make, [("bootstrap".to_string(), 0o755)]);
    let node = zip_entries(&artifact_path(&fourth, "HelloNode"));
    assert_eq!(node, [("index.js".to_string(), 0o644), ("package.json".to_string(), 0o644)]);
}

#[test]
fn forced_rebuild_after_touching_everything_gives_identical_bytes() {
    let p = Project::example("hello");
    let (first, _) = p.build_json(&["-r", "HelloShell", "-r", "HelloMake", "-r", "HelloNode", "-r", "SharedLayer"]);
    let bytes: Vec<Vec<u8>> = ["HelloShell", "HelloMake", "HelloNode", "SharedLayer"]
        .iter()
        .map(|id| fs::read(artifact_path(&first, id)).unwrap())
        .collect();
    touch_all(p.path());
    let (second, run) =
        p.build_json(&["--force", "-r", "HelloShell", "-r", "HelloMake", "-r", "HelloNode", "-r", "SharedLayer"]);
    assert_eq!(run.code, 0, "{}", run.all());
    for (id, before) in ["HelloShell", "HelloMake", "HelloNode", "SharedLayer"].iter().zip(bytes) {
        assert_eq!(status_of(&second, id), "built", "--force rebuilds {id}");
        assert_eq!(fs::read(artifact_path(&second, id)).unwrap(), before, "{id} zip bytes");
    }
}

#[test]
fn two_checkouts_build_identical_zips() {
    let a = Project::example("hello");
    let b = Project::example("hello");
    let (ra, _) = a.build_json(&[]);
    let (rb, _) = b.build_json(&[]);
    for id in ALL {
        assert_eq!(code_sha(&ra, id), code_sha(&rb, id), "{id}");
    }
}

/// Two python functions, each with its own requirements.txt naming a local wheel, so pip runs
/// without the network.
fn two_python_functions() -> Project {
    let p = Project::empty();
    make_wheel(&p.path().join("wheels"), "tinypkg", "1.0");
    make_wheel(&p.path().join("wheels"), "tinypkg", "1.1");
    let wheel = |v: &str| format!("{}/wheels/tinypkg-{v}-py3-none-any.whl\n", p.path().display());
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.12\n    Handler: app.handler\nResources:\n  A:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: a}\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: b}\n",
    )
    .write("a/app.py", "import tinypkg\n")
    .write("a/requirements.txt", &wheel("1.0"))
    .write("b/app.py", "import tinypkg\n")
    .write("b/requirements.txt", &wheel("1.0"));
    p
}

#[test]
fn editing_requirements_reinstalls_dependencies_for_that_function_only() {
    let p = two_python_functions();
    let (first, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // Same requirements, runtime and architecture: one install serves both.
    let deps: Vec<&str> = ["A", "B"].iter().map(|id| resource(&first, id)["deps"].as_str().unwrap()).collect();
    assert!(deps.contains(&"installed"), "{deps:?}");
    assert!(zip_names(&artifact_path(&first, "A")).contains(&"tinypkg/__init__.py".to_string()));

    let wheel11 = p.read("a/requirements.txt").replace("1.0", "1.1");
    p.write("a/requirements.txt", &wheel11);
    let (second, _) = p.build_json(&[]);
    assert_eq!(status_of(&second, "A"), "built");
    assert_eq!(resource(&second, "A")["deps"], "installed");
    assert_eq!(status_of(&second, "B"), "cached");
    let a_zip = artifact_path(&second, "A");
    let mut z = zip::ZipArchive::new(fs::File::open(&a_zip).unwrap()).unwrap();
    let mut init = String::new();
    std::io::Read::read_to_string(&mut z.by_name("tinypkg/__init__.py").unwrap(), &mut init).unwrap();
    assert_eq!(init, "VERSION = '1.1'\n");

    // Code-only edits reuse the install.
    p.write("b/app.py", "import tinypkg  # edited\n");
    let (third, _) = p.build_json(&[]);
    assert_eq!(status_of(&third, "B"), "built");
    assert_eq!(resource(&third, "B")["deps"], "cached");
}

#[test]
fn unreadable_requirement_path_names_the_requirements_line_and_other_functions_still_build() {
    let p = two_python_functions();
    p.write("a/requirements.txt", "/nonexistent/definitely-not-a-package.whl\n");
    let (report, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&report, "A"), "failed");
    let msg = resource(&report, "A")["message"].as_str().unwrap();
    assert!(
        msg.contains("a/requirements.txt:1: ")
            && msg.contains("definitely-not-a-package.whl")
            && msg.contains("fix the reference"),
        "{msg}"
    );
    assert_eq!(status_of(&report, "B"), "built");
}

#[test]
fn functions_sharing_code_are_built_once() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  One:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.one, Runtime: python3.12}\n  Two:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.two, Runtime: python3.12}\n  Arm:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.one, Runtime: python3.12, Architectures: [arm64]}\n",
    )
    .write("src/a.py", "def one(e, c): pass\ndef two(e, c): pass\n");
    let (r, _) = p.build_json(&[]);
    assert_eq!(status_of(&r, "One"), "built");
    assert_eq!(status_of(&r, "Two"), "built");
    assert_eq!(resource(&r, "Two")["shared_with"], "One");
    assert_eq!(code_sha(&r, "One"), code_sha(&r, "Two"));
    assert!(resource(&r, "Arm")["shared_with"].is_null(), "another architecture is another build");
}

#[test]
fn makefile_failure_shows_output_and_the_rest_still_builds() {
    let p = Project::example("hello");
    p.write(
        "functions/hello_make/Makefile",
        "build-HelloMake:\n\t@echo compiling things\n\t@echo 'error: it broke' >&2; exit 7\n",
    );
    let run = p.lamb(&["build"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("failed  HelloMake"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Error 7")
            && run.stdout.contains("error: it broke")
            && run.stdout.contains("compiling things"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("template.yaml:62"), "names the resource's line: {}", run.stdout);
    assert!(run.stdout.contains("fix the `build-HelloMake` target"), "{}", run.stdout);
    for id in ["HelloShell", "HelloNode", "SharedLayer"] {
        assert!(run.stdout.contains(&format!("built   {id}")), "{id}: {}", run.stdout);
    }
    assert!(run.stdout.contains("built 4, cached 0, failed 1"), "{}", run.stdout);
}

#[test]
fn makefile_without_the_target_says_which_target_to_add() {
    let p = Project::example("hello");
    p.write("functions/hello_make/Makefile", "build-Other:\n\ttrue\n");
    let (r, _) = p.build_json(&["-r", "HelloMake"]);
    let msg = resource(&r, "HelloMake")["message"].as_str().unwrap();
    assert!(msg.contains("add a `build-HelloMake:` target"), "{msg}");
}

#[test]
fn symlink_to_a_file_outside_the_project_is_refused_unless_allowed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("credentials"), "[default]\naws_secret_access_key = SECRET\n").unwrap();
    let p = Project::example("hello");
    std::os::unix::fs::symlink(outside.path().join("credentials"), p.path().join("functions/hello_shell/creds"))
        .unwrap();
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&r, "HelloShell"), "failed");
    let msg = resource(&r, "HelloShell")["message"].as_str().unwrap();
    assert!(msg.contains("symlink points outside the project") && msg.contains("--follow-external-symlinks"), "{msg}");
    assert_eq!(status_of(&r, "HelloMake"), "built");
    let (r, run) = p.build_json(&["--follow-external-symlinks", "-r", "HelloShell"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(zip_names(&artifact_path(&r, "HelloShell")).contains(&"creds".to_string()));
}

#[test]
fn non_utf8_file_name_is_reported() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::example("hello");
    fs::write(p.path().join("functions/hello_node").join(std::ffi::OsStr::from_bytes(b"bad\xff.js")), "x").unwrap();
    let (r, _) = p.build_json(&["-r", "HelloNode"]);
    let msg = resource(&r, "HelloNode")["message"].as_str().unwrap();
    assert!(msg.contains("not valid UTF-8; rename it"), "{msg}");
}

#[test]
fn unreadable_file_is_reported_with_the_fix() {
    let p = Project::example("hello");
    let secret = p.path().join("functions/hello_node/secret.js");
    fs::write(&secret, "x").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let run = if fs::read(&secret).is_err() {
        p.lamb(&["build", "-o", "json", "-r", "HelloNode"])
    } else {
        // As root, permissions do not stop reads: run lamb as nobody instead.
        let status = std::process::Command::new("chown").args(["-R", "65534:65534"]).arg(p.path()).status().unwrap();
        assert!(status.success());
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                lamb_bin(),
                "build",
                "-o",
                "json",
                "-r",
                "HelloNode",
            ])
            .current_dir(p.path())
            .output()
            .expect("setpriv is needed to test unreadable files as root");
        Run::from(out)
    };
    assert_eq!(run.code, 1, "{}", run.all());
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let msg = resource(&r, "HelloNode")["message"].as_str().unwrap();
    assert!(msg.contains("secret.js: cannot read") && msg.contains("chmod u+r"), "{msg}");
}

#[test]
fn skipped_and_invalid_resources_are_reported_per_resource() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  InS3:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: s3://bucket/code.zip, Handler: a.b, Runtime: python3.12}\n  Img:\n    Type: AWS::Serverless::Function\n    Properties: {PackageType: Image, ImageUri: x}\n  Missing:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: nope/, Handler: a.b, Runtime: python3.12}\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.b, Runtime: java21}\n  Ok:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.b, Runtime: python3.12}\n",
    )
    .write("src/a.py", "");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(status_of(&r, "InS3"), "skipped");
    assert!(resource(&r, "InS3")["message"].as_str().unwrap().contains("already in S3"));
    assert_eq!(status_of(&r, "Img"), "skipped");
    assert_eq!(status_of(&r, "Missing"), "failed");
    let msg = resource(&r, "Missing")["message"].as_str().unwrap();
    assert!(msg.contains("CodeUri `nope/` does not exist") && msg.contains("create it or fix CodeUri"), "{msg}");
    assert_eq!(
        resource(&r, "Missing")["location"].as_str().unwrap(),
        format!("{}:9", p.path().canonicalize().unwrap().join("template.yaml").display())
    );
    let msg = resource(&r, "Java")["message"].as_str().unwrap();
    assert!(msg.contains("runtime `java21`") && msg.contains("BuildMethod: makefile"), "{msg}");
    assert_eq!(status_of(&r, "Ok"), "built");
}

#[test]
fn template_errors_exit_1_with_file_line_and_column() {
    let p = Project::empty();
    p.write("template.yaml", "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: [a\n");
    let run = p.lamb(&["build"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("template.yaml:5:1: invalid YAML"), "{}", run.stderr);

    p.write(
        "template.json",
        "{\"Resources\": {\"A\": {\"Type\": \"AWS::SNS::Topic\"}, \"A\": {\"Type\": \"AWS::SNS::Topic\"}}}",
    );
    // A key written twice is SAM's business as usual: the last one wins, with a warning.
    let run = p.lamb(&["validate", "-t", "template.json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("key `A` is written twice in one map (lines 1 and 1)"), "{}", run.all());

    p.write(
        "template.yaml",
        "Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Ref Nope\n",
    );
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("template.yaml:2: Resources.T: `!Ref Nope` refers to no parameter or resource"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::example("hello");
    let run = p.lamb(&["build", "-r", "HelloPyton"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("no function or layer `HelloPyton`") && run.stderr.contains("did you mean `HelloPython`?"),
        "{}",
        run.stderr
    );
    let run = p.lamb(&["build", "--parameter-overrides", "Stage"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("`Stage` is not Key=Value"), "{}", run.stderr);
    assert_eq!(p.lamb(&["build", "--no-such-flag"]).code, 2);
    assert_eq!(p.lamb(&["nope"]).code, 2);
    let run = p.lamb(&["build", "--parameter-overrides", "Stage=prod", "-r", "HelloShell"]);
    assert_eq!(run.code, 1, "an invalid value is a template problem: {}", run.all());
    assert!(
        run.stderr.contains("parameter `Stage` is `prod`, which is not one of its AllowedValues (dev, test)"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_version_and_completions() {
    let p = Project::empty();
    let run = p.lamb(&["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("lamb "), "{}", run.stdout);
    for args in [&["--help"][..], &["build", "--help"], &["validate", "--help"], &["completions", "--help"]] {
        let run = p.lamb(args);
        assert_eq!(run.code, 0, "{args:?}");
        assert!(run.stdout.contains("Usage:"), "{args:?}");
    }
    assert!(p.lamb(&["build", "--help"]).stdout.contains("Exit status:"));
    let run = p.lamb(&["completions", "bash"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("_lamb()"), "{}", &run.stdout[..200.min(run.stdout.len())]);
}

#[test]
fn plain_lines_when_not_a_terminal() {
    let p = Project::example("hello");
    let run = p.lamb(&["build", "-r", "HelloShell"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains('\x1b'), "no escape codes without a terminal: {:?}", run.all());
    assert!(run.stdout.lines().next().unwrap().starts_with("built   HelloShell"), "{}", run.stdout);
    assert!(run.stdout.contains("CodeSha256 "), "{}", run.stdout);
}

#[test]
fn dry_run_reports_without_building() {
    let p = Project::example("hello");
    let (r, run) = p.build_json(&["--dry-run", "-r", "HelloShell"]);
    assert_eq!(run.code, 0);
    assert_eq!(status_of(&r, "HelloShell"), "changed");
    assert!(!p.path().join(".lamb/build.json").exists());
    p.build_json(&["-r", "HelloShell"]);
    let (r, _) = p.build_json(&["--dry-run", "-r", "HelloShell"]);
    assert_eq!(status_of(&r, "HelloShell"), "cached");
}

#[test]
fn removed_functions_are_forgotten_and_their_artifacts_pruned() {
    let p = Project::example("hello");
    let (r, _) = p.build_json(&["-r", "HelloShell", "-r", "HelloMake"]);
    let shell_zip = artifact_path(&r, "HelloShell");
    assert!(shell_zip.is_file());
    let t = p.read("template.yaml");
    let start = t.find("  HelloShell:").unwrap();
    let end = t.find("  HelloMake:").unwrap();
    p.write("template.yaml", &format!("{}{}", &t[..start], &t[end..]));
    p.build_json(&["-r", "HelloMake"]);
    assert!(shell_zip.is_file(), "a partial build keeps other records");
    p.build_json(&[]);
    assert!(!shell_zip.exists(), "a full build prunes artifacts no function uses");
    let state: serde_json::Value = serde_json::from_str(&p.read(".lamb/build.json")).unwrap();
    assert!(state["resources"].get("HelloShell").is_none());
    assert!(state["resources"].get("HelloMake").is_some());
}

#[test]
fn lamb_dir_is_gitignored_and_private() {
    let p = Project::example("hello");
    p.build_json(&["-r", "HelloShell"]);
    assert_eq!(p.read(".lamb/.gitignore").lines().last(), Some("*"));
    let mode = fs::metadata(p.path().join(".lamb/build.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "state is owner-only");
}

#[test]
fn nodejs_dependencies_and_layers_from_the_npm_registry() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: index.handler, Runtime: nodejs20.x}\n  Layer:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {BuildMethod: nodejs20.x}\n    Properties: {ContentUri: layer}\n",
    )
    .write("fn/index.js", "const isNumber = require('is-number');\nexports.handler = async () => isNumber(1);\n")
    .write("fn/package.json", "{\"name\": \"fn\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\"}, \"devDependencies\": {\"left-pad\": \"1.3.0\"}}\n")
    .write("fn/node_modules/stale/index.js", "left over from a local npm install")
    .write("layer/package.json", "{\"name\": \"layer\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\"}}\n")
    .write("layer/util.js", "module.exports = 1;\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let names = zip_names(&artifact_path(&r, "Fn"));
    assert!(names.contains(&"node_modules/is-number/index.js".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("left-pad")), "dev dependencies are left out: {names:?}");
    assert!(!names.iter().any(|n| n.contains("stale")), "the source's own node_modules is replaced: {names:?}");
    let layer = zip_names(&artifact_path(&r, "Layer"));
    assert!(layer.contains(&"nodejs/util.js".to_string()), "{layer:?}");
    assert!(layer.contains(&"nodejs/node_modules/is-number/index.js".to_string()), "{layer:?}");
}

#[test]
fn prebuilt_zip_code_uri_is_used_as_is() {
    let p = Project::empty();
    let wheel = make_wheel(&p.path().join("dist"), "pkg", "1.0");
    fs::rename(&wheel, p.path().join("dist/app.zip")).unwrap();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dist/app.zip, Handler: a.b, Runtime: python3.12}\n",
    );
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&r, "Fn"), "built");
    assert_eq!(artifact_path(&r, "Fn"), p.path().canonicalize().unwrap().join("dist/app.zip"));
    let digest = sha2_b64(&fs::read(p.path().join("dist/app.zip")).unwrap());
    assert_eq!(code_sha(&r, "Fn"), digest);
    let (r, _) = p.build_json(&[]);
    assert_eq!(status_of(&r, "Fn"), "cached");
}

#[test]
fn a_jar_is_used_as_is_and_a_broken_zip_is_named() {
    let p = Project::empty();
    let wheel = make_wheel(&p.path().join("dist"), "pkg", "1.0");
    fs::rename(&wheel, p.path().join("dist/app.jar")).unwrap();
    p.write("dist/broken.zip", "this is not a zip\n").write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dist/app.jar, Handler: app.Handler, Runtime: java21}\n  Broken:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dist/broken.zip, Handler: a.b, Runtime: python3.12}\n",
    );
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(status_of(&r, "Java"), "built");
    assert_eq!(code_sha(&r, "Java"), sha2_b64(&fs::read(p.path().join("dist/app.jar")).unwrap()));
    let msg = resource(&r, "Broken")["message"].as_str().unwrap();
    assert!(msg.contains("dist/broken.zip: not a valid zip") && msg.contains("rebuild it"), "{msg}");
}

fn sha2_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

#[test]
fn validate_lists_functions_and_layers() {
    let p = Project::example("hello");
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("SAM template, 5 resources in 1 stack(s), 4 functions, 1 layers"), "{}", run.stdout);
    let run = p.lamb(&["validate", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["valid"], true);
    let f = &v["functions"][0];
    assert_eq!(f["id"], "HelloPython");
    assert_eq!(f["build"], "python3.12");
    assert_eq!(f["layers"][0], "SharedLayer");
    assert_eq!(v["layers"][0]["code"], "layers/shared/");
}

#[test]
fn a_no_change_build_leaves_state_untouched() {
    let p = Project::example("hello");
    p.build_json(&["-r", "HelloShell", "-r", "HelloMake"]);
    let state = p.path().join(".lamb/build.json");
    let before = (fs::read(&state).unwrap(), fs::metadata(&state).unwrap().modified().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (r, _) = p.build_json(&["-r", "HelloShell", "-r", "HelloMake"]);
    assert_eq!(status_of(&r, "HelloShell"), "cached");
    let after = (fs::read(&state).unwrap(), fs::metadata(&state).unwrap().modified().unwrap());
    assert_eq!(before, after);
}

#[test]
fn validate_fails_on_a_resource_problem() {
    let p = Project::example("hello");
    fs::remove_dir_all(p.path().join("functions/hello_node")).unwrap();
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("template.yaml:42: resource `HelloNode`: CodeUri `functions/hello_node/` does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("INVALID"), "{}", run.stdout);
}

#[test]
fn terminal_gets_a_live_status_line() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("the `script` command (util-linux) is needed to give lamb a terminal");
    }
    let p = Project::example("hello");
    let cmd = format!("{} build -r HelloMake -r HelloShell", lamb_bin());
    let out =
        std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).current_dir(p.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\x1b[2K  building ") && text.contains("HelloMake (0."),
        "status line while building: {text:?}"
    );
    assert!(text.contains("\x1b[32mbuilt  \x1b[0m HelloMake"), "coloured result on a terminal: {text:?}");
}

#[test]
fn python_dependencies_are_lambda_wheels_for_the_functions_architecture() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Runtime: python3.12, Handler: app.handler}\nResources:\n  Arm:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Architectures: [arm64]}\n  X86:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn}\n",
    )
    .write("fn/app.py", "import markupsafe\n")
    .write("fn/requirements.txt", "markupsafe==2.1.5\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let arm = zip_names(&artifact_path(&r, "Arm"));
    assert!(arm.iter().any(|n| n.starts_with("markupsafe/_speedups.cpython-312-aarch64-linux-gnu")), "{arm:?}");
    let x86 = zip_names(&artifact_path(&r, "X86"));
    assert!(x86.iter().any(|n| n.starts_with("markupsafe/_speedups.cpython-312-x86_64-linux-gnu")), "{x86:?}");
    assert!(!x86.iter().any(|n| n.starts_with("bin/")), "console scripts carry host paths: {x86:?}");
}

#[test]
fn source_only_packages_are_built_and_unknown_ones_are_named() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Runtime: python3.12, Handler: app.handler}\n",
    )
    .write("fn/app.py", "import termcolor\n")
    // termcolor 1.1.0 was only ever published as a source distribution.
    .write("fn/requirements.txt", "termcolor==1.1.0\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(zip_names(&artifact_path(&r, "Fn")).contains(&"termcolor.py".to_string()));

    p.write("fn/requirements.txt", "lamb-test-no-such-package==9.9.9\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    let msg = resource(&r, "Fn")["message"].as_str().unwrap();
    // Not a platform problem: the package does not exist at all.
    assert!(
        msg.contains("`lamb-test-no-such-package==9.9.9` is not on the package index")
            && msg.contains("check its name and version"),
        "{msg}"
    );
    assert!(!msg.contains("has no wheel for Lambda"), "{msg}");
}

/// A source distribution `name-1.0.tar.gz` in `dir` whose setup.py runs `setup_body` first.
fn make_sdist(dir: &std::path::Path, name: &str, setup_body: &str) {
    let src = dir.join("src").join(format!("{name}-1.0"));
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("setup.py"),
        format!(
            "{setup_body}\nfrom setuptools import setup\nsetup(name='{name}', version='1.0', py_modules=['{name}'])\n"
        ),
    )
    .unwrap();
    fs::write(src.join(format!("{name}.py")), "V = 1\n").unwrap();
    fs::write(src.join("PKG-INFO"), format!("Metadata-Version: 1.0\nName: {name}\nVersion: 1.0\n")).unwrap();
    let tar = std::process::Command::new("tar")
        .args(["czf", &format!("../{name}-1.0.tar.gz"), &format!("{name}-1.0")])
        .current_dir(dir.join("src"))
        .status()
        .unwrap();
    assert!(tar.success());
}

#[test]
fn sources_from_the_requirements_links_are_built_and_one_that_cannot_build_is_named() {
    let p = Project::empty();
    let dists = p.path().join("dists");
    make_sdist(&dists, "purepkg", "");
    // Stands for a C extension with no manylinux wheel that does not build here.
    make_sdist(&dists, "cext", "raise SystemExit('error: this package needs a C compiler')");
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Runtime: python3.12, Handler: app.handler}\n",
    )
    .write("fn/app.py", "import purepkg\n")
    .write("fn/requirements.txt", "--find-links ../dists\npurepkg==1.0\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(zip_names(&artifact_path(&r, "Fn")).contains(&"purepkg.py".to_string()));
    p.write("fn/requirements.txt", "--find-links ../dists\npurepkg==1.0\ncext==1.0\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let msg = resource(&r, "Fn")["message"].as_str().unwrap();
    assert!(msg.contains("`cext==1.0` has no wheel for Lambda (python3.12, manylinux x86_64)"), "{msg}");
    assert!(
        msg.contains("pin a version that publishes a manylinux wheel") && msg.contains("BuildMethod: makefile"),
        "{msg}"
    );
}

#[test]
fn local_package_requirements_are_rebuilt_when_they_change_and_leave_the_tree_clean() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Runtime: python3.12, Handler: app.handler}\n",
    )
    .write("fn/app.py", "import mypkg\n")
    .write("fn/requirements.txt", "../mypkg\n")
    .write("mypkg/pyproject.toml", "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"mypkg\"\nversion = \"1.0\"\n")
    .write("mypkg/mypkg/__init__.py", "V = 1\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let read_v = |r: &serde_json::Value| {
        let mut z = zip::ZipArchive::new(fs::File::open(artifact_path(r, "Fn")).unwrap()).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut z.by_name("mypkg/__init__.py").unwrap(), &mut s).unwrap();
        s
    };
    assert_eq!(read_v(&r), "V = 1\n");
    p.write("mypkg/mypkg/__init__.py", "V = 2\n");
    let (r, _) = p.build_json(&[]);
    assert_eq!(resource(&r, "Fn")["deps"], "installed", "a change in a local requirement reinstalls");
    assert_eq!(read_v(&r), "V = 2\n");
    assert!(
        !p.path().join("mypkg/build").exists() && !p.path().join("mypkg/mypkg.egg-info").exists(),
        "pip built in a scratch copy"
    );
}

/// A function whose requirements name a local package (built into a wheel here) and a
/// local wheel by a relative path.
fn local_requirements_project() -> Project {
    let p = Project::empty();
    make_wheel(&p.path().join("wheels"), "tinypkg", "1.0");
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Runtime: python3.12, Handler: app.handler}\n",
    )
    .write("fn/app.py", "import mypkg, tinypkg\n")
    .write("fn/requirements.txt", "../mypkg\n../wheels/tinypkg-1.0-py3-none-any.whl\n")
    .write("mypkg/pyproject.toml", "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"mypkg\"\nversion = \"1.0\"\n")
    .write("mypkg/mypkg/__init__.py", "V = 1\n");
    p
}

#[test]
fn local_requirements_give_the_same_zip_in_two_checkouts_and_when_forced() {
    // pip records a local package's `file://` origin (and a freshly built wheel's hash) in
    // direct_url.json: left in, the CodeSha256 would differ per checkout and per build.
    let (a, b) = (local_requirements_project(), local_requirements_project());
    let (ra, run) = a.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let (rb, run) = b.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(code_sha(&ra, "Fn"), code_sha(&rb, "Fn"), "two checkouts");
    let (forced, _) = a.build_json(&["--force"]);
    assert_eq!(code_sha(&forced, "Fn"), code_sha(&ra, "Fn"), "a forced rebuild");
    let names = zip_names(&artifact_path(&ra, "Fn"));
    assert!(
        names.contains(&"mypkg/__init__.py".to_string()) && names.contains(&"tinypkg/__init__.py".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("direct_url.json")), "{names:?}");
    let mut z = zip::ZipArchive::new(fs::File::open(artifact_path(&ra, "Fn")).unwrap()).unwrap();
    let mut record = String::new();
    std::io::Read::read_to_string(&mut z.by_name("mypkg-1.0.dist-info/RECORD").unwrap(), &mut record).unwrap();
    assert!(record.contains("mypkg/__init__.py") && !record.contains("direct_url"), "{record}");
}

#[test]
fn nested_stack_functions_build_with_their_stack_path() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Child:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: child/template.yaml\n      Parameters: {Greeting: hi}\n",
    )
    .write(
        "child/template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Greeting: {Type: String}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Runtime: nodejs20.x, Handler: index.handler}\n",
    )
    .write("child/src/index.js", "exports.handler = async () => 1;\n");
    let (r, run) = p.build_json(&["-r", "Fn"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&r, "Child/Fn"), "built");
    assert_eq!(zip_names(&artifact_path(&r, "Child/Fn")), ["index.js"]);
}

#[test]
fn samconfig_environment_and_build_section_parameterise_the_build() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Dir: {Type: String}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !Ref Dir, Runtime: nodejs20.x, Handler: index.handler}\n",
    )
    .write("samconfig.toml", "version = 0.1\n[default.build.parameters]\nparameter_overrides = \"Dir=dev\"\n[prod.build.parameters]\nparameter_overrides = [\"Dir=prod\"]\n")
    .write("dev/index.js", "dev")
    .write("prod/index.js", "prod");
    let (dev, _) = p.build_json(&[]);
    let (prod, run) = p.build_json(&["--config-env", "prod"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_ne!(code_sha(&dev, "Fn"), code_sha(&prod, "Fn"));
    let (flag, _) = p.build_json(&["--config-env", "prod", "--parameter-overrides", "Dir=dev"]);
    assert_eq!(code_sha(&flag, "Fn"), code_sha(&dev, "Fn"), "flags override samconfig");
    let run = p.lamb(&["build", "--config-env", "staging"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("samconfig.toml: there is no environment `staging`"), "{}", run.stderr);
}

#[test]
fn missing_parameter_used_by_a_code_path_is_a_resource_error() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Dir: {Type: String}\n  Other: {Type: String}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !Ref Dir, Runtime: nodejs20.x, Handler: index.handler}\n  Fixed:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Runtime: nodejs20.x, Handler: index.handler, Environment: {Variables: {O: !Ref Other}}}\n",
    )
    .write("src/index.js", "x");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    let msg = resource(&r, "Fn")["message"].as_str().unwrap();
    assert!(
        msg.contains("CodeUri: parameter `Dir` has no value") && msg.contains("--parameter-overrides Dir="),
        "{msg}"
    );
    assert_eq!(status_of(&r, "Fixed"), "built", "a parameter only the environment uses does not stop a build");
    // validate: Dir blocks Fn (its CodeUri); Other, used by no code path, is only a warning.
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("CodeUri: parameter `Dir` has no value"), "{}", run.stderr);
    assert!(
        run.stdout.contains("warning: parameters without a value: Other;")
            && run.stdout.contains("--parameter-overrides Other=..."),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("parameters without a value: Dir"), "{}", run.all());
}

#[test]
fn a_parameter_lamb_cannot_know_blocks_nothing_that_does_not_need_it() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nParameters:\n  Subnets: {Type: 'List<AWS::EC2::Subnet::Id>'}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Runtime: nodejs20.x, Handler: index.handler, VpcConfig: {SubnetIds: !Ref Subnets, SecurityGroupIds: [sg-1]}}\n",
    )
    .write("src/index.js", "x");
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.all().matches("parameters without a value: Subnets;").count(), 1, "{}", run.all());
    assert!(run.all().contains("--parameter-overrides Subnets=..."), "{}", run.all());
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&r, "Fn"), "built");
    assert!(run.stderr.contains("--parameter-overrides Subnets=..."), "{}", run.stderr);
}

#[test]
fn gitignored_files_stay_out_of_built_zips() {
    let p = Project::example("hello");
    p.write(".gitignore", &(p.read(".gitignore") + "*.log\n"))
        .write("functions/hello_node/debug.log", "noise")
        .write("functions/hello_node/.env", "SECRET=1");
    let (r, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(zip_names(&artifact_path(&r, "HelloNode")), ["index.js", "package.json"]);
    // Editing an ignored file changes nothing.
    p.write("functions/hello_node/debug.log", "more noise");
    let (again, _) = p.build_json(&["-r", "HelloNode"]);
    assert_eq!(status_of(&again, "HelloNode"), "cached");
}

#[test]
fn resource_id_builds_the_functions_layers_too() {
    let p = Project::example("hello");
    let (r, _) = p.build_json(&["-r", "HelloPython"]);
    let ids: Vec<String> = statuses(&r).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["HelloPython", "SharedLayer"]);
}

#[test]
fn json_output_is_json_even_when_the_template_is_broken() {
    let p = Project::empty();
    p.write("template.yaml", "Resources: [\n");
    let run = p.lamb(&["build", "-o", "json"]);
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("invalid YAML"), "{v}");
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn quiet_prints_only_failures() {
    let p = Project::example("hello");
    p.write("functions/hello_make/Makefile", "build-HelloMake:\n\texit 1\n");
    let run = p.lamb(&["build", "-q", "-r", "HelloMake", "-r", "HelloShell"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("failed  HelloMake") && !run.stdout.contains("HelloShell"), "{}", run.stdout);
}

#[test]
fn a_requirements_file_pip_rejects_shows_pips_message() {
    let p = two_python_functions();
    p.write("a/requirements.txt", "requests[\n");
    let (r, run) = p.build_json(&["-r", "A"]);
    assert_eq!(run.code, 1);
    let msg = resource(&r, "A")["message"].as_str().unwrap();
    assert!(msg.contains("pip could not install") && msg.contains("a/requirements.txt"), "{msg}");
    assert!(msg.contains("Invalid requirement") && msg.contains("fix requirements.txt"), "{msg}");
}

#[test]
fn a_manifest_that_is_not_text_fails_that_function_instead_of_dropping_its_dependencies() {
    let p = two_python_functions();
    fs::write(p.path().join("a/requirements.txt"), b"caf\xe9-lib==1.0\n").unwrap();
    p.write(
        "template.yaml",
        &(p.read("template.yaml")
            + "  N:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: n, Runtime: nodejs20.x, Handler: index.handler}\n"),
    );
    p.write("n/index.js", "exports.handler = async () => 1;\n");
    fs::write(p.path().join("n/package.json"), b"{\"dependencies\": {\"caf\xe9\": \"1\"}}").unwrap();
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    for (id, file) in [("A", "a/requirements.txt"), ("N", "n/package.json")] {
        assert_eq!(status_of(&r, id), "failed", "{id}");
        let msg = resource(&r, id)["message"].as_str().unwrap();
        assert!(msg.contains(file) && msg.contains("not UTF-8 text; save it as UTF-8"), "{msg}");
    }
    assert_eq!(status_of(&r, "B"), "built", "the other functions still build");
}

#[test]
fn npm_ci_installs_the_lockfile_for_lambdas_platform() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Runtime: nodejs20.x, Handler: index.handler}\nResources:\n  X86:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn}\n  Arm:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Architectures: [arm64]}\n",
    )
    .write("fn/index.js", "exports.handler = async () => require('esbuild').version;\n")
    .write(
        "fn/package.json",
        "{\"name\": \"fn\", \"version\": \"1.0.0\", \"dependencies\": {\"esbuild\": \"0.28.2\"}, \"devDependencies\": {\"is-number\": \"7.0.0\"}}\n",
    );
    let lock = std::process::Command::new("npm")
        .args(["install", "--package-lock-only", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(p.path().join("fn"))
        .output()
        .unwrap();
    assert!(lock.status.success(), "{}", String::from_utf8_lossy(&lock.stderr));
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // Each architecture gets its own platform package (esbuild ships its binary as an optional
    // dependency per platform), whatever this machine is.
    for (id, want, other) in [("X86", "linux-x64", "linux-arm64"), ("Arm", "linux-arm64", "linux-x64")] {
        let names = zip_names(&artifact_path(&r, id));
        assert!(names.contains(&format!("node_modules/@esbuild/{want}/bin/esbuild")), "{id}: {names:?}");
        assert!(!names.iter().any(|n| n.contains(&format!("@esbuild/{other}/"))), "{id}: {names:?}");
        assert!(!names.iter().any(|n| n.contains("is-number")), "{id}: dev dependencies stay out: {names:?}");
    }
    // With a lockfile lamb runs `npm ci`, which refuses a package.json the lock does not match.
    p.write(
        "fn/package.json",
        "{\"name\": \"fn\", \"version\": \"1.0.0\", \"dependencies\": {\"esbuild\": \"0.28.2\", \"left-pad\": \"1.3.0\"}}\n",
    );
    let (r, run) = p.build_json(&["-r", "X86"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let msg = resource(&r, "X86")["message"].as_str().unwrap();
    assert!(msg.contains("npm ci") && msg.contains("in sync") && msg.contains("fn/package.json"), "{msg}");
}
