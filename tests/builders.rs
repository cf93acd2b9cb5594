//! The compiled and gem-based builders (`go1.x`, `rust-cargolambda`, Ruby with bundler for
//! functions and layers, Gradle), each run with its real toolchain (.ci/run installs them: Go,
//! Ruby, a JDK and Gradle from Debian, cargo-lambda and zig from PyPI into a venv under
//! target/), and what happens to a function whose toolchain is missing (also Maven and .NET).

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const GO_MAIN: &str = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello from go\")\n}\n";
const GO_MOD: &str = "module example.com/hello\n\ngo 1.19\n";

/// The bytes of one entry of a zip.
fn zip_file(zip: &Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    let mut bytes = Vec::new();
    z.by_name(name).unwrap_or_else(|_| panic!("no {name} in {}", zip.display())).read_to_end(&mut bytes).unwrap();
    bytes
}

/// The ELF machine of an executable: 62 for x86-64, 183 for AArch64.
fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF executable");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

const X86_64: u16 = 62;
const AARCH64: u16 = 183;

/// Runs an x86-64 executable taken out of a zip (on an x86-64 host) and returns its stdout.
fn run_extracted(bytes: &[u8], dir: &Path) -> Option<String> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    let exe = dir.join("extracted-bootstrap");
    fs::write(&exe, bytes).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{exe:?}: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn go_project() -> Project {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  GoFn:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: hello, Handler: bootstrap, Runtime: provided.al2023}\n  GoArm:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: hello, Handler: bootstrap, Runtime: provided.al2023, Architectures: [arm64]}\n  GoOld:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: hello, Handler: hello, Runtime: go1.x}\n",
    )
    .write("hello/main.go", GO_MAIN)
    .write("hello/go.mod", GO_MOD);
    p
}

#[test]
fn go_builds_a_linux_executable_for_each_architecture_the_same_in_two_checkouts() {
    let p = go_project();
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    for id in ["GoFn", "GoArm", "GoOld"] {
        assert_eq!(status_of(&r, id), "built", "{id}: {r}");
        assert_eq!(resource(&r, id)["method"], "go1.x", "{id}");
    }
    assert_eq!(zip_entries(&artifact_path(&r, "GoFn")), [("bootstrap".to_string(), 0o755)]);
    assert_eq!(zip_entries(&artifact_path(&r, "GoArm")), [("bootstrap".to_string(), 0o755)]);
    // The go1.x runtime runs the executable named by the Handler.
    assert_eq!(zip_entries(&artifact_path(&r, "GoOld")), [("hello".to_string(), 0o755)]);
    let x86 = zip_file(&artifact_path(&r, "GoFn"), "bootstrap");
    assert_eq!(elf_machine(&x86), X86_64);
    assert_eq!(elf_machine(&zip_file(&artifact_path(&r, "GoArm"), "bootstrap")), AARCH64);
    if let Some(out) = run_extracted(&x86, p.path()) {
        assert_eq!(out, "hello from go\n");
    }
    // Built in a scratch copy: nothing written to the code directory.
    let mut left: Vec<String> =
        fs::read_dir(p.path().join("hello")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["go.mod", "main.go"]);

    // Identical bytes when forced after touching everything, and from another checkout (no
    // build paths or VCS state in the binary).
    let bytes = fs::read(artifact_path(&r, "GoFn")).unwrap();
    touch_all(p.path());
    let (again, run) = p.build_json(&["--force", "-r", "GoFn"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&again, "GoFn"), "built");
    assert_eq!(fs::read(artifact_path(&again, "GoFn")).unwrap(), bytes);
    let other = go_project();
    let (elsewhere, _) = other.build_json(&["-r", "GoFn", "-r", "GoArm"]);
    assert_eq!(code_sha(&elsewhere, "GoFn"), code_sha(&r, "GoFn"));
    assert_eq!(code_sha(&elsewhere, "GoArm"), code_sha(&r, "GoArm"));

    // Unchanged: cached; an edit rebuilds the functions built from it.
    let (cached, _) = p.build_json(&[]);
    assert_eq!(status_of(&cached, "GoArm"), "cached");
    p.write("hello/main.go", &GO_MAIN.replace("hello from go", "edited"));
    let (edited, _) = p.build_json(&["-r", "GoFn"]);
    assert_eq!(status_of(&edited, "GoFn"), "built");
    assert_ne!(code_sha(&edited, "GoFn"), code_sha(&r, "GoFn"));
}

#[test]
fn go_compile_errors_a_missing_go_mod_and_a_package_in_the_handlers_directory() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Runtime: provided.al2023, Handler: bootstrap}\nResources:\n  Broken:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: broken}\n  NoMod:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: nomod}\n  Good:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: good}\n  InSub:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: mod, Handler: hello, Runtime: go1.x}\n",
    )
    .write("mod/go.mod", GO_MOD)
    .write("mod/hello/main.go", GO_MAIN)
    .write("broken/main.go", "package main\n\nfunc main() {\n\tundefinedThing()\n}\n")
    .write("broken/go.mod", GO_MOD)
    .write("nomod/main.go", GO_MAIN)
    .write("good/main.go", GO_MAIN)
    .write("good/go.mod", GO_MOD);
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let broken = resource(&r, "Broken")["message"].as_str().unwrap();
    assert!(broken.contains("undefined: undefinedThing") && broken.contains("main.go:4"), "{broken}");
    assert!(broken.contains("fix the Go code of `Broken`"), "{broken}");
    let nomod = resource(&r, "NoMod")["message"].as_str().unwrap();
    assert!(nomod.contains("nomod/go.mod: missing") && nomod.contains("`go mod init"), "{nomod}");
    assert_eq!(status_of(&r, "Good"), "built");
    // No Go files at the module's top: SAM builds the Handler's directory.
    assert_eq!(zip_entries(&artifact_path(&r, "InSub")), [("hello".to_string(), 0o755)]);
}

#[test]
fn a_missing_toolchain_fails_its_function_alone_and_says_how_to_install_it() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Go:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n    Properties: {CodeUri: go, Handler: bootstrap, Runtime: provided.al2023}\n  Rust:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: rust-cargolambda}\n    Properties: {CodeUri: rust, Handler: bootstrap, Runtime: provided.al2023}\n  Gems:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: gems, Handler: app.handler, Runtime: ruby3.3}\n  Plain:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: plain, Handler: app.handler, Runtime: ruby3.3}\n  Shell:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: shell, Handler: x, Runtime: provided.al2023}\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: java, Handler: app.Handler::handleRequest, Runtime: java21}\n  Gradle:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: gradle, Handler: app.Handler::handleRequest, Runtime: java17}\n  Dotnet:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dotnet, Handler: Hello::Hello.Function::Handler, Runtime: dotnet8}\n",
    )
    .write("gradle/build.gradle", "plugins { id 'java' }\n")
    .write("gradle/src/main/java/app/Handler.java", "package app;\npublic class Handler {}\n")
    .write("dotnet/Hello.csproj", "<Project Sdk=\"Microsoft.NET.Sdk\"></Project>\n")
    .write("java/pom.xml", "<project><modelVersion>4.0.0</modelVersion><groupId>a</groupId><artifactId>f</artifactId><version>1</version></project>\n")
    .write("go/main.go", GO_MAIN)
    .write("go/go.mod", GO_MOD)
    .write("rust/Cargo.toml", "[package]\nname = \"f\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    .write("rust/src/main.rs", "fn main() {}\n")
    .write("gems/app.rb", "def handler(event:, context:) = 1\n")
    .write("gems/Gemfile", "source \"https://rubygems.org\"\n")
    .write("plain/app.rb", "def handler(event:, context:) = 1\n")
    .write("shell/bootstrap", "#!/bin/sh\n");
    // A PATH with none of the toolchains on it.
    let empty = tempfile::tempdir().unwrap();
    let run = p.lamb_env(&["build", "-o", "json"], &[("PATH", empty.path().display().to_string())]);
    assert_eq!(run.code, 1, "{}", run.all());
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let msg = |id| resource(&r, id)["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(status_of(&r, "Go"), "failed");
    assert!(
        msg("Go").contains("`go` is not installed") && msg("Go").contains("apt install golang-go"),
        "{}",
        msg("Go")
    );
    assert_eq!(status_of(&r, "Rust"), "failed");
    assert!(
        msg("Rust").contains("`cargo-lambda` is not installed")
            && msg("Rust").contains("pip install cargo-lambda")
            && msg("Rust").contains("cargo install cargo-lambda"),
        "{}",
        msg("Rust")
    );
    assert_eq!(status_of(&r, "Gems"), "failed");
    assert!(msg("Gems").contains("`ruby` is not installed") && msg("Gems").contains("ruby-bundler"), "{}", msg("Gems"));
    assert_eq!(status_of(&r, "Java"), "failed");
    assert!(
        msg("Java").contains("`mvn` is not installed") && msg("Java").contains("apt install maven"),
        "{}",
        msg("Java")
    );
    assert_eq!(status_of(&r, "Gradle"), "failed");
    assert!(
        msg("Gradle").contains("`gradle` is not installed") && msg("Gradle").contains("Gradle wrapper"),
        "{}",
        msg("Gradle")
    );
    assert_eq!(status_of(&r, "Dotnet"), "failed");
    assert!(
        msg("Dotnet").contains("`dotnet` is not installed")
            && msg("Dotnet").contains(".NET SDK")
            && msg("Dotnet").contains("dotnet tool install -g Amazon.Lambda.Tools"),
        "{}",
        msg("Dotnet")
    );
    // Ruby without a Gemfile needs no Ruby to build: its sources are the artifact.
    assert_eq!(status_of(&r, "Plain"), "built");
    assert_eq!(zip_names(&artifact_path(&r, "Plain")), ["app.rb"]);
    assert_eq!(status_of(&r, "Shell"), "built");
}

/// Builds a one-file gem with `gem build` into `dir`, so bundler can install it offline.
fn make_gem(dir: &Path, name: &str, version: &str) -> PathBuf {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("lib")).unwrap();
    fs::write(src.path().join(format!("lib/{name}.rb")), format!("module Tiny; VERSION = '{version}'; end\n")).unwrap();
    fs::write(
        src.path().join(format!("{name}.gemspec")),
        format!(
            "Gem::Specification.new do |s|\n  s.name = '{name}'\n  s.version = '{version}'\n  s.summary = 'test gem'\n  s.authors = ['lamb']\n  s.files = ['lib/{name}.rb']\n  s.date = '2020-01-01'\nend\n"
        ),
    )
    .unwrap();
    let out = Command::new("gem").args(["build", &format!("{name}.gemspec")]).current_dir(src.path()).output().unwrap();
    assert!(out.status.success(), "gem build: {}", String::from_utf8_lossy(&out.stderr));
    fs::create_dir_all(dir).unwrap();
    let gem = dir.join(format!("{name}-{version}.gem"));
    fs::copy(src.path().join(format!("{name}-{version}.gem")), &gem).unwrap();
    gem
}

#[test]
fn ruby_gems_are_vendored_where_the_lambda_runtime_loads_them() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Handler: app.handler, Runtime: ruby3.3}\nResources:\n  WithGem:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: withgem}\n  NoGems:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: nogems}\n  NoGemfile:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: nogemfile}\n",
    )
    .write("withgem/app.rb", "require 'tiny'\ndef handler(event:, context:) = Tiny::VERSION\n")
    .write("withgem/Gemfile", "source \"https://rubygems.org\"\ngem \"tiny\"\n")
    .write("nogems/app.rb", "def handler(event:, context:) = 1\n")
    .write("nogems/Gemfile", "source \"https://rubygems.org\"\n")
    .write("nogemfile/app.rb", "def handler(event:, context:) = 1\n")
    // A stale local install: never packed, the build installs its own.
    .write("nogemfile/vendor/bundle/ruby/3.1.0/gems/old/x.rb", "");
    // The gem cached in the project (`bundle cache`), with its lockfile: installed offline.
    make_gem(&p.path().join("withgem/vendor/cache"), "tiny", "1.0.0");
    p.write("withgem/Gemfile.lock", "GEM\n  remote: https://rubygems.org/\n  specs:\n    tiny (1.0.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  tiny\n");

    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let names = zip_names(&artifact_path(&r, "WithGem"));
    for want in [
        "app.rb",
        "Gemfile",
        "Gemfile.lock",
        ".bundle/config",
        "vendor/bundle/ruby/3.3.0/gems/tiny-1.0.0/lib/tiny.rb",
        "vendor/bundle/ruby/3.3.0/specifications/tiny-1.0.0.gemspec",
    ] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    let config = String::from_utf8(zip_file(&artifact_path(&r, "WithGem"), ".bundle/config")).unwrap();
    assert!(config.contains("BUNDLE_PATH: \"vendor/bundle\"") && config.contains("development:test"), "{config}");
    // No Ruby version but the runtime's in the layout.
    assert!(!names.iter().any(|n| n.starts_with("vendor/bundle/ruby/") && !n.starts_with("vendor/bundle/ruby/3.3.0/")));
    // The user's tree is left as it was.
    assert!(!p.path().join("withgem/vendor/bundle").exists() && !p.path().join("withgem/.bundle").exists());

    // A Gemfile without gems: locked, nothing vendored.
    let names = zip_names(&artifact_path(&r, "NoGems"));
    assert!(names.contains(&"Gemfile.lock".to_string()) && names.contains(&"app.rb".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("vendor/")), "{names:?}");
    assert_eq!(zip_names(&artifact_path(&r, "NoGemfile")), ["app.rb"]);

    // The same bytes when forced after touching everything.
    let bytes = fs::read(artifact_path(&r, "WithGem")).unwrap();
    touch_all(p.path());
    let (again, _) = p.build_json(&["--force", "-r", "WithGem"]);
    assert_eq!(fs::read(artifact_path(&again, "WithGem")).unwrap(), bytes);

    // A Gemfile edited without relocking: bundler's complaint and the fix.
    p.write("withgem/Gemfile", "source \"https://rubygems.org\"\ngem \"tiny\"\ngem \"other\"\n");
    let (r, run) = p.build_json(&["-r", "WithGem"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let msg = resource(&r, "WithGem")["message"].as_str().unwrap();
    assert!(msg.contains("withgem/Gemfile") && msg.contains("run `bundle lock`"), "{msg}");
}

/// Unpacks a zip into `dir`.
fn unzip_into(zip: &Path, dir: &Path) {
    let mut z = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    z.extract(dir).unwrap();
}

#[test]
fn a_ruby_layer_puts_its_gems_and_code_where_lambda_loads_them_from_opt() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Gems:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {BuildMethod: ruby3.3}\n    Properties: {ContentUri: gems, CompatibleRuntimes: [ruby3.3]}\n  Plain:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {BuildMethod: ruby3.3}\n    Properties: {ContentUri: plain}\n",
    )
    .write("gems/helpers.rb", "require 'tiny'\nmodule Helpers; def self.version = Tiny::VERSION; end\n")
    .write("gems/Gemfile", "source \"https://rubygems.org\"\ngem \"tiny\"\n")
    .write("gems/Gemfile.lock", "GEM\n  remote: https://rubygems.org/\n  specs:\n    tiny (2.0.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  tiny\n")
    .write("plain/util.rb", "module Util; end\n");
    make_gem(&p.path().join("gems/vendor/cache"), "tiny", "2.0.0");

    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let names = zip_names(&artifact_path(&r, "Gems"));
    for want in ["ruby/lib/helpers.rb", "ruby/lib/Gemfile.lock", "ruby/gems/3.3.0/gems/tiny-2.0.0/lib/tiny.rb"] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains(".bundle/") || n.contains("vendor/bundle")), "{names:?}");
    assert_eq!(zip_names(&artifact_path(&r, "Plain")), ["ruby/lib/util.rb"]);

    // As Lambda's Ruby runtime sees /opt: GEM_PATH has ruby/gems/3.3.0, RUBYLIB has ruby/lib.
    let opt = tempfile::tempdir().unwrap();
    unzip_into(&artifact_path(&r, "Gems"), opt.path());
    let out = Command::new("ruby")
        .args(["-e", "require 'helpers'; print Helpers.version"])
        .env("GEM_PATH", opt.path().join("ruby/gems/3.3.0"))
        .env("RUBYLIB", opt.path().join("ruby/lib"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2.0.0");
}

fn gradle_build(p: &Project, args: &[&str]) -> (serde_json::Value, Run) {
    let mut all = vec!["build", "-o", "json"];
    all.extend_from_slice(args);
    // No Gradle daemon left behind by a test.
    let run = p.lamb_env(&all, &[("GRADLE_OPTS", "-Dorg.gradle.daemon=false".to_string())]);
    let r = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    (r, run)
}

#[test]
fn gradle_builds_a_subproject_with_its_classes_on_top_and_its_project_dependencies_in_lib() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: app/hello, Handler: app.Handler::handleRequest, Runtime: java17}\n",
    )
    // A multi-project build: the function's project depends on a sibling, found through the
    // settings file in the parent directory.
    .write("app/settings.gradle", "include 'core', 'hello'\n")
    .write("app/core/build.gradle", "apply plugin: 'java'\n")
    .write("app/core/src/main/java/core/Greeting.java", "package core;\npublic class Greeting {\n  public static String text() { return \"hello from core\"; }\n}\n")
    .write("app/hello/build.gradle", "apply plugin: 'java'\ndependencies { implementation project(':core') }\n")
    .write("app/hello/src/main/resources/greeting.properties", "who=lambda\n")
    .write(
        "app/hello/src/main/java/app/Handler.java",
        "package app;\npublic class Handler {\n  public String handleRequest(Object in) { return core.Greeting.text(); }\n  public static void main(String[] a) { System.out.println(new Handler().handleRequest(null)); }\n}\n",
    );
    let (r, run) = gradle_build(&p, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&r, "Hello"), "built");
    let zip = artifact_path(&r, "Hello");
    let names = zip_names(&zip);
    for want in ["app/Handler.class", "greeting.properties", "lib/core.jar"] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("build/") || n.ends_with(".java")), "{names:?}");
    // The zip is a classpath Lambda's Java runtime can load: the top and every jar in lib/.
    let dir = tempfile::tempdir().unwrap();
    unzip_into(&zip, dir.path());
    let cp = format!("{}:{}", dir.path().display(), dir.path().join("lib/core.jar").display());
    let out = Command::new("java").args(["-cp", &cp, "app.Handler"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello from core");

    // Gradle's build/ in the code directory is not code: nothing changed, nothing rebuilt.
    assert!(p.path().join("app/hello/build").is_dir());
    let (again, _) = gradle_build(&p, &[]);
    assert_eq!(status_of(&again, "Hello"), "cached");

    // A compile error: Gradle's output and the fix, naming the function.
    p.write("app/hello/src/main/java/app/Handler.java", "package app;\npublic class Handler { oops }\n");
    let (r, run) = gradle_build(&p, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let msg = resource(&r, "Hello")["message"].as_str().unwrap();
    assert!(msg.contains("Handler.java") && msg.contains("fix the Gradle build or the Java code of `Hello`"), "{msg}");
}

/// The bin directory of the cargo-lambda venv (tests/toolchains/cargo-lambda.sh).
fn cargo_lambda_bin() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/toolchains/cargo-lambda.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run tests/toolchains/cargo-lambda.sh");
    assert!(out.status.success(), "tests/toolchains/cargo-lambda.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim())
}

#[test]
fn cargo_lambda_builds_the_binary_each_function_names() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Handler: bootstrap, Runtime: provided.al2023}\nResources:\n  Api:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: api}}\n    Properties: {CodeUri: app}\n  Worker:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: worker}}\n    Properties: {CodeUri: app}\n  Which:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: rust-cargolambda}\n    Properties: {CodeUri: app}\n",
    )
    .write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
    )
    .write("app/src/bin/api.rs", "fn main() {\n    println!(\"api {}\", itoa::Buffer::new().format(42));\n}\n")
    .write("app/src/bin/worker.rs", "fn main() {\n    println!(\"worker\");\n}\n");
    // Locked, as a project in git is: `cargo lambda build` writes Cargo.lock (and target/)
    // into the code directory, like SAM's builder, and a new lockfile is a code change.
    let lock = Command::new("cargo").arg("generate-lockfile").current_dir(p.path().join("app")).output().unwrap();
    assert!(lock.status.success(), "{}", String::from_utf8_lossy(&lock.stderr));
    let path = format!("{}:{}", cargo_lambda_bin().display(), std::env::var("PATH").unwrap());
    let run = p.lamb_env(&["build", "-o", "json"], &[("PATH", path.clone())]);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.all()));
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(resource(&r, "Api")["method"], "rust-cargolambda");
    for (id, says) in [("Api", "api 42\n"), ("Worker", "worker\n")] {
        assert_eq!(status_of(&r, id), "built", "{id}: {r}");
        assert_eq!(zip_entries(&artifact_path(&r, id)), [("bootstrap".to_string(), 0o755)], "{id}");
        let exe = zip_file(&artifact_path(&r, id), "bootstrap");
        assert_eq!(elf_machine(&exe), X86_64, "{id}");
        if let Some(out) = run_extracted(&exe, p.path()) {
            assert_eq!(out, says, "{id}");
        }
    }
    let which = resource(&r, "Which")["message"].as_str().unwrap();
    assert!(which.contains("2 binaries (api, worker)") && which.contains("Binary: NAME"), "{which}");

    // Cached when nothing changed; cargo's target/ is not part of the code.
    let run = p.lamb_env(&["build", "-o", "json", "-r", "Api", "-r", "Worker"], &[("PATH", path)]);
    let again: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status_of(&again, "Api"), "cached", "{}", run.all());
    assert_eq!(status_of(&again, "Worker"), "cached");
}
