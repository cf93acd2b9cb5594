//! The project shapes real SAM users have (issue 6), checked at the zip level: esbuild bundles,
//! files the template points at, parameters, versions and aliases.

mod common;

use std::fs;

use common::*;

fn zip_text(path: &std::path::Path, name: &str) -> String {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut z.by_name(name).unwrap(), &mut s).unwrap();
    s
}

fn esbuild_project(props: &str) -> Project {
    let p = Project::empty();
    p.write(
        "template.yaml",
        &format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Es:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildMethod: esbuild\n      BuildProperties: {props}\n    Properties: {{CodeUri: fn, Handler: app.handler, Runtime: nodejs20.x}}\n"
        ),
    )
    .write("fn/app.ts", "import isNumber from 'is-number';\nimport { double } from './lib/util';\nexport const handler = async (event: { n: number }): Promise<boolean> => isNumber(double(event.n));\n")
    .write("fn/lib/util.ts", "export function double(n: number): number { return n * 2; }\n")
    .write("fn/package.json", "{\"name\": \"es\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\"}}\n");
    p
}

#[test]
fn esbuild_bundles_typescript_with_its_dependencies_and_nothing_else() {
    let p = esbuild_project("{EntryPoints: [app.ts], Minify: false, Target: es2020, External: ['@aws-sdk/*']}");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(resource(&r, "Es")["method"], "esbuild");
    let zip = artifact_path(&r, "Es");
    assert_eq!(zip_names(&zip), ["app.js"], "one bundle, no node_modules, no sources");
    let js = zip_text(&zip, "app.js");
    assert!(js.contains("function double"), "bundled the local module:\n{js}");
    assert!(js.contains("node_modules/is-number/index.js"), "bundled the dependency:\n{js}");
    assert!(!js.contains(": number"), "TypeScript compiled away:\n{js}");
    assert!(js.contains("module.exports") || js.contains("exports"), "CommonJS by default");

    // Unchanged sources: cached; forced: the same bytes.
    let bytes = fs::read(&zip).unwrap();
    touch_all(p.path());
    let (again, _) = p.build_json(&[]);
    assert_eq!(status_of(&again, "Es"), "cached");
    let (forced, _) = p.build_json(&["--force"]);
    assert_eq!(fs::read(artifact_path(&forced, "Es")).unwrap(), bytes);
}

#[test]
fn esbuild_without_entry_points_bundles_the_handlers_file() {
    let p = esbuild_project("{Minify: false}");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let zip = artifact_path(&r, "Es");
    assert_eq!(zip_names(&zip), ["app.js"], "app.handler -> app.ts");
    assert!(zip_text(&zip, "app.js").contains("function double"), "bundled from app.ts");

    // A handler in a subdirectory: its bundle keeps the path the Handler names.
    p.write(
        "template.yaml",
        &p.read("template.yaml").replace("Handler: app.handler", "Handler: src/handlers/app.handler"),
    )
    .write(
        "fn/src/handlers/app.mjs",
        "import { double } from '../../lib/util';\nexport const handler = async (e) => double(e.n);\n",
    );
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let zip = artifact_path(&r, "Es");
    assert_eq!(zip_names(&zip), ["src/handlers/app.js"]);
    assert!(zip_text(&zip, "src/handlers/app.js").contains("function double"));
}

#[test]
fn esbuild_properties_reach_esbuild() {
    let p = esbuild_project(
        "{EntryPoints: [app.ts], Minify: true, Sourcemap: true, Format: esm, OutExtension: ['.js=.mjs']}",
    );
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(zip_names(&artifact_path(&r, "Es")), ["app.mjs", "app.mjs.map"]);
    assert!(!zip_text(&artifact_path(&r, "Es"), "app.mjs").contains("function double"), "minified");
}

#[test]
fn esbuild_errors_name_the_fix() {
    // No EntryPoints, and no file for the Handler to name (with EntryPoints it is the Handler's).
    let p = esbuild_project("{Minify: false}");
    p.write("template.yaml", &p.read("template.yaml").replace("Handler: app.handler", "Handler: gone.handler"));
    let (r, _) = p.build_json(&[]);
    let msg = resource(&r, "Es")["message"].as_str().unwrap();
    assert!(msg.contains("gone.ts, gone.js") && msg.contains("set EntryPoints"), "{msg}");

    let p = esbuild_project("{EntryPoints: [app.ts]}");
    p.write("fn/app.ts", "export const handler = async ( => 1;\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    let msg = resource(&r, "Es")["message"].as_str().unwrap();
    assert!(msg.contains("app.ts") && msg.contains("fix the code or the esbuild BuildProperties"), "{msg}");

    // No esbuild in the project or on PATH.
    let p = esbuild_project("{EntryPoints: [app.ts]}");
    let empty = tempfile::tempdir().unwrap();
    let run = p.lamb_env(&["build", "-o", "json"], &[("PATH", empty.path().display().to_string())]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let msg = resource(&v, "Es")["message"].as_str().unwrap();
    assert!(
        msg.contains("`esbuild` is not installed")
            && msg.contains("under `dependencies`")
            && msg.contains("npm install --save-dev esbuild"),
        "{msg}"
    );
}

#[test]
fn esbuild_listed_in_the_functions_dependencies_bundles_without_one_installed() {
    // As in SAM's TypeScript starter: esbuild is a dependency, installed by the build itself.
    let p = esbuild_project("{EntryPoints: [app.ts], Minify: false}");
    p.write(
        "fn/package.json",
        "{\"name\": \"es\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\", \"esbuild\": \"0.28.2\"}}\n",
    );
    // A PATH with node, npm and a shell (for install scripts), and no esbuild.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["node", "npm", "sh"] {
        let found = std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.path().join(tool)).unwrap();
    }
    let run = p.lamb_env(&["build", "-o", "json"], &[("PATH", bin.path().display().to_string())]);
    assert_eq!(run.code, 0, "{}", run.all());
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let zip = artifact_path(&r, "Es");
    assert_eq!(zip_names(&zip), ["app.js"]);
    assert!(zip_text(&zip, "app.js").contains("function double"));
}

#[test]
fn no_code_uri_packs_the_template_directory_but_not_the_template_or_lambs_state() {
    let p = Project::empty();
    let template = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Root:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: app.handler, Runtime: python3.12}\n  Other:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: other, Handler: o.handler, Runtime: python3.12}\n";
    p.write("template.yaml", template)
        .write("app.py", "def handler(e, c): return 1\n")
        .write("other/o.py", "def handler(e, c): return 2\n")
        .write(".aws-sam/build/Root/app.py", "stale sam build output\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // The whole directory, as SAM packs it (the other function's code included), without
    // the template, lamb's .lamb/ (written by this very build) or SAM's .aws-sam/.
    assert_eq!(zip_names(&artifact_path(&r, "Root")), ["app.py", "other/o.py"]);
    assert!(p.path().join(".lamb").is_dir());

    // A template edit is not a code change; a code edit is.
    p.write("template.yaml", &format!("{template}Outputs:\n  X: {{Value: x}}\n"));
    let (again, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(status_of(&again, "Root"), "cached");
    p.write("app.py", "def handler(e, c): return 3\n");
    let (edited, _) = p.build_json(&[]);
    assert_eq!(status_of(&edited, "Root"), "built");
    assert_eq!(zip_text(&artifact_path(&edited, "Root"), "app.py"), "def handler(e, c): return 3\n");
}

#[test]
fn a_code_uri_that_is_one_file_is_packed_alone_at_the_zip_root() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  One:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src/function.js, Handler: function.handler, Runtime: nodejs20.x}\n",
    )
    .write("src/function.js", "exports.handler = async () => 1;\n")
    .write("src/other.js", "exports.other = 1;\n")
    .write("src/package.json", "{\"name\": \"x\", \"dependencies\": {\"is-number\": \"7.0.0\"}}\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(resource(&r, "One")["method"], "file");
    assert_eq!(zip_entries(&artifact_path(&r, "One")), [("function.js".to_string(), 0o644)]);
    let v: serde_json::Value = serde_json::from_str(&p.lamb(&["validate", "-o", "json"]).stdout).unwrap();
    assert_eq!(v["functions"][0]["code"], "src/function.js");

    // Only that file is the function's code: a neighbour's edit changes nothing.
    p.write("src/other.js", "exports.other = 2;\n");
    let (again, _) = p.build_json(&[]);
    assert_eq!(status_of(&again, "One"), "cached");
    p.write("src/function.js", "exports.handler = async () => 2;\n");
    fs::set_permissions(p.path().join("src/function.js"), fs::Permissions::from_mode(0o755)).unwrap();
    let (edited, _) = p.build_json(&[]);
    assert_eq!(status_of(&edited, "One"), "built");
    assert_eq!(zip_entries(&artifact_path(&edited, "One")), [("function.js".to_string(), 0o755)]);
    assert_eq!(zip_text(&artifact_path(&edited, "One"), "function.js"), "exports.handler = async () => 2;\n");
}

#[test]
fn code_a_build_step_makes_is_a_warning_in_validate_and_an_error_where_it_is_needed() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: target/app.jar, Handler: a.App::handle, Runtime: java21}\n  Web:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: web/dist/, Handler: index.handler, Runtime: nodejs20.x}\n  Typo:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: srcc, Handler: index.handler, Runtime: nodejs20.x}\n",
    )
    .write("pom.xml", "<project/>\n")
    .write("web/package.json", "{\"scripts\": {\"build\": \"tsc\"}}\n");
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let java = "resource `Java`: CodeUri `target/app.jar` is not built yet: run `mvn package` first";
    let web = "resource `Web`: CodeUri `web/dist/` is not built yet: run `npm run build` in `web/` first";
    let warned = |what: &str| run.stdout.lines().any(|l| l.starts_with("warning: ") && l.contains(what));
    assert!(warned(&format!("template.yaml:3: {java}")), "{}", run.all());
    assert!(warned(web), "{}", run.all());
    // Only the path no step makes fails validate.
    assert!(run.stderr.contains("resource `Typo`: CodeUri `srcc` does not exist"), "{}", run.stderr);
    assert!(!run.stderr.contains("Java") && !run.stderr.contains("Web"), "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&p.lamb(&["validate", "-o", "json"]).stdout).unwrap();
    assert_eq!(v["functions"][0]["code"], "target/app.jar");
    assert!(v["functions"][0]["problem"].is_null() && v["functions"][0]["not_built_yet"].is_string(), "{v}");

    // A build needs the code: it fails naming the step, until the step has run.
    let (r, run) = p.build_json(&["-r", "Java", "-r", "Web"]);
    assert_eq!(run.code, 1, "{}", run.all());
    for id in ["Java", "Web"] {
        assert_eq!(status_of(&r, id), "failed", "{id}");
    }
    assert!(resource(&r, "Java")["message"].as_str().unwrap().contains("run `mvn package` first"), "{r}");
    p.write("web/dist/index.js", "exports.handler = async () => 1;\n");
    let (r, run) = p.build_json(&["-r", "Web"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(zip_names(&artifact_path(&r, "Web")), ["index.js"]);
}

#[test]
fn prebuilt_layer_zips_and_makefile_layers() {
    let p = Project::empty();
    let z = make_wheel(&p.path().join("dist"), "pkg", "1.0");
    fs::rename(&z, p.path().join("dist/layer.zip")).unwrap();
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Zipped:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: dist/layer.zip}\n  Made:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {BuildMethod: makefile}\n    Properties: {ContentUri: made}\n  Skip:\n    Type: AWS::Serverless::Function\n    Metadata: {SkipBuild: true}\n    Properties: {CodeUri: skip, Handler: app.handler, Runtime: python3.12}\n",
    )
    .write("made/Makefile", "build-Made:\n\tmkdir -p \"$(ARTIFACTS_DIR)/bin\"\n\tcp tool.sh \"$(ARTIFACTS_DIR)/bin/tool\"\n\tchmod 755 \"$(ARTIFACTS_DIR)/bin/tool\"\n")
    .write("made/tool.sh", "#!/bin/sh\necho tool\n")
    .write("skip/app.py", "def handler(e, c): return 1\n")
    .write("skip/requirements.txt", "this-is-never-installed==1\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(artifact_path(&r, "Zipped"), p.path().canonicalize().unwrap().join("dist/layer.zip"), "used as is");
    assert_eq!(zip_entries(&artifact_path(&r, "Made")), [("bin/tool".to_string(), 0o755)]);
    assert_eq!(resource(&r, "Skip")["method"], "prebuilt", "SkipBuild packs the directory as is");
    assert_eq!(zip_names(&artifact_path(&r, "Skip")), ["app.py", "requirements.txt"]);
}

#[test]
fn layers_are_built_like_sam_builds_them_and_never_inside_their_functions() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::empty();
    make_wheel(&p.path().join("wheels"), "tinypkg", "1.0");
    p.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: app\n      Handler: handler.main\n      Runtime: python3.12\n      Layers: [!Ref PyLayer, !Ref RawLayer]\n  PyLayer:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {BuildMethod: python3.12}\n    Properties: {ContentUri: app/pylayer, CompatibleRuntimes: [python3.12]}\n  RawLayer:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: app/raw}\n  Skip:\n    Type: AWS::Serverless::Function\n    Metadata: {SkipBuild: true}\n    Properties: {CodeUri: skip, Handler: run.sh, Runtime: provided.al2023}\n",
    )
    .write("app/handler.py", "import shared\n")
    .write("app/pylayer/shared.py", "X = 1\n")
    .write("app/pylayer/requirements.txt", "../../wheels/tinypkg-1.0-py3-none-any.whl\n")
    .write("app/raw/bin/tool", "#!/bin/sh\n")
    .write("app/raw/.gitignore", "out.bin\n")
    .write("app/raw/out.bin", "prebuilt output\n")
    .write("skip/run.sh", "#!/bin/sh\n")
    .write("skip/data.txt", "d\n");
    for f in ["app/raw/bin/tool", "skip/run.sh"] {
        fs::set_permissions(p.path().join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // The function's code directory holds its layers' directories: they are not in its zip.
    assert_eq!(zip_entries(&artifact_path(&r, "Fn")), [("handler.py".to_string(), 0o644)]);
    // A python layer: sources and installed requirements under python/.
    let py = zip_names(&artifact_path(&r, "PyLayer"));
    assert!(
        py.contains(&"python/shared.py".to_string()) && py.contains(&"python/tinypkg/__init__.py".to_string()),
        "{py:?}"
    );
    assert!(py.iter().all(|n| n.starts_with("python/")), "{py:?}");
    // Without a BuildMethod: the directory as is, gitignored build output and exec bits too.
    assert_eq!(
        zip_entries(&artifact_path(&r, "RawLayer")),
        [(".gitignore".to_string(), 0o644), ("bin/tool".to_string(), 0o755), ("out.bin".to_string(), 0o644)]
    );
    assert_eq!(
        zip_entries(&artifact_path(&r, "Skip")),
        [("data.txt".to_string(), 0o644), ("run.sh".to_string(), 0o755)]
    );
    // Same bytes when everything is built again.
    let (again, _) = p.build_json(&["--force"]);
    for id in ["Fn", "PyLayer", "RawLayer", "Skip"] {
        assert_eq!(code_sha(&again, id), code_sha(&r, id), "{id}");
    }
}

#[test]
fn unsupported_runtimes_fail_one_by_one_and_the_rest_builds() {
    let p = Project::empty();
    let mut t = String::from("Transform: AWS::Serverless-2016-10-31\nResources:\n");
    for (id, rt) in [("Go", "go1.x"), ("Ruby", "ruby3.3"), ("Dotnet", "dotnet8"), ("Java", "java21")] {
        t.push_str(&format!("  {id}:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: src, Handler: h, Runtime: {rt}}}\n"));
    }
    t.push_str("  Ok:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.h, Runtime: python3.12}\n");
    p.write("template.yaml", &t).write("src/a.py", "");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1);
    // Java without a Gradle or Maven project: how to point at one, or build it with make.
    let java = resource(&r, "Java")["message"].as_str().unwrap();
    assert!(
        java.contains("runtime `java21`")
            && java.contains("build.gradle")
            && java.contains("BuildMethod: makefile")
            && java.contains("build-Java"),
        "{java}"
    );
    // Go, Ruby and .NET have builders (tests/builders.rs): a directory without go.mod is no Go
    // module, Ruby without a Gemfile is its sources, and .NET needs its SDK (not installed
    // here) and a project file.
    let dotnet = resource(&r, "Dotnet")["message"].as_str().unwrap();
    assert_eq!(status_of(&r, "Dotnet"), "failed");
    assert!(dotnet.contains("`dotnet` is not installed") || dotnet.contains("no .csproj"), "{dotnet}");
    let go = resource(&r, "Go")["message"].as_str().unwrap();
    assert!(go.contains("src/go.mod: missing") && go.contains("go mod init"), "{go}");
    assert_eq!(status_of(&r, "Ruby"), "built");
    assert_eq!(status_of(&r, "Ok"), "built");
}

#[test]
fn custom_runtime_code_without_a_runnable_bootstrap_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::empty();
    let f = |id: &str, uri: &str, extra: &str| {
        format!(
            "  {id}:\n    Type: AWS::Serverless::Function\n{extra}    Properties: {{CodeUri: {uri}, Handler: bootstrap, Runtime: provided.al2023}}\n"
        )
    };
    let layered = "  Layered:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: php, Handler: index.php, Runtime: provided.al2023, Layers: ['arn:aws:lambda:us-east-1:534081306603:layer:php-83:1']}\n";
    let t = format!(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n{}{}{}{}{layered}",
        f("RustSrc", "rust", ""),
        f("NotExec", "notexec", ""),
        f("Built", "built", ""),
        f("Skip", "rust", "    Metadata: {SkipBuild: true}\n"),
    );
    p.write("template.yaml", &t)
        .write("rust/Cargo.toml", "[package]\nname = \"f\"\n")
        .write("rust/src/main.rs", "fn main() {}\n")
        .write("built/bootstrap", "#!/bin/sh\n")
        .write("php/index.php", "<?php echo 1;\n");
    fs::create_dir_all(p.path().join("notexec")).unwrap();
    fs::write(p.path().join("notexec/bootstrap"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(p.path().join("notexec/bootstrap"), fs::Permissions::from_mode(0o644)).unwrap();
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    // Rust sources with no build: a zip of them would be a function that cannot start.
    let msg = resource(&r, "RustSrc")["message"].as_str().unwrap();
    assert!(
        msg.contains("needs an executable `bootstrap`")
            && msg.contains("BuildMethod: makefile")
            && msg.contains("build-RustSrc"),
        "{msg}"
    );
    assert!(msg.contains("cargo lambda build"), "{msg}");
    let msg = resource(&r, "NotExec")["message"].as_str().unwrap();
    assert!(msg.contains("`bootstrap` is not executable") && msg.contains("chmod +x"), "{msg}");
    assert_eq!(zip_entries(&artifact_path(&r, "Built")), [("bootstrap".to_string(), 0o755)]);
    // SkipBuild says "as is", and a layer may bring the runtime's bootstrap (PHP, for one).
    assert_eq!(status_of(&r, "Skip"), "built");
    assert_eq!(zip_names(&artifact_path(&r, "Layered")), ["index.php"]);
}

#[test]
fn each_shape_gone_wrong_says_what_and_how_to_fix_it() {
    let base = "Transform: AWS::Serverless-2016-10-31\nResources:\n";
    let fn_ = "  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.h, Runtime: python3.12}\n";
    // Template-level: the command fails before building, naming the file and resource.
    for (resource, want) in [
        (
            "  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p, DefinitionUri: missing.yaml}\n",
            "resource `Api`: DefinitionUri `missing.yaml` does not exist",
        ),
        (
            "  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p, DefinitionUri: api.d}\n",
            "resource `Api`: DefinitionUri `api.d` is a directory",
        ),
        (
            "  Child:\n    Type: AWS::Serverless::Application\n    Properties: {Location: child/missing.yaml}\n",
            "resource `Child`: Location `child/missing.yaml` does not exist",
        ),
        (
            "  Other:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: !If [Nope, src, src], Handler: a.h, Runtime: python3.12}\n",
            "condition `Nope` is not defined; add it under Conditions",
        ),
    ] {
        let p = Project::empty();
        p.write("template.yaml", &format!("{base}{fn_}{resource}")).write("src/a.py", "");
        fs::create_dir_all(p.path().join("api.d")).unwrap();
        let run = p.lamb(&["build"]);
        assert_eq!(run.code, 1, "{resource}: {}", run.all());
        assert!(run.stderr.contains("template.yaml:") && run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    // Resource-level: that resource fails with its fix, the rest still builds.
    let p = Project::empty();
    p.write(
        "template.yaml",
        &format!(
            "{base}{fn_}  NoCode:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: !Ref AWS::NoValue, Handler: a.h, Runtime: python3.12}}\n  EsLayer:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {{BuildMethod: esbuild}}\n    Properties: {{ContentUri: layer}}\n  PyLayer:\n    Type: AWS::Serverless::LayerVersion\n    Metadata: {{BuildMethod: python3.12}}\n    Properties: {{ContentUri: pylayer}}\n  Node:\n    Type: AWS::Serverless::Function\n    Properties: {{CodeUri: node, Handler: index.h, Runtime: nodejs20.x}}\n"
        ),
    )
    .write("src/a.py", "")
    .write("layer/x.js", "")
    .write("pylayer/requirements.txt", "requests[\n")
    .write("node/index.js", "")
    .write("node/package.json", "{\"dependencies\": {\"lamb-test-no-such-package-x\": \"9.9.9\"}}\n");
    let (r, run) = p.build_json(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(status_of(&r, "Fn"), "built");
    for (id, want) in [
        ("NoCode", "CodeUri comes to nothing (AWS::NoValue)"),
        ("EsLayer", "build a layer with BuildMethod nodejs20.x"),
        ("PyLayer", "pip could not install"),
        ("Node", "fix package.json"),
    ] {
        assert_eq!(status_of(&r, id), "failed", "{id}");
        let msg = resource(&r, id)["message"].as_str().unwrap();
        assert!(msg.contains(want), "{id}: {msg}");
    }
    let msg = resource(&r, "Node")["message"].as_str().unwrap();
    assert!(msg.contains("lamb-test-no-such-package-x") && msg.contains("node/package.json"), "{msg}");
}

#[test]
fn other_globals_sections_and_tooling_metadata_parse() {
    let p = Project::empty();
    p.write(
        "template.yaml",
        "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\nDescription: tooling keys\nMetadata:\n  AWS::ServerlessRepo::Application: {Name: app, Author: me}\n  cfn-lint: {config: {ignore_checks: [W3002]}}\nGlobals:\n  Api: {Cors: \"'*'\"}\n  HttpApi: {CorsConfiguration: {AllowOrigins: ['*']}}\n  LayerVersion: {PublishLambdaVersion: true, CompatibleArchitectures: [arm64]}\n  Function: {Runtime: python3.12, Timeout: 5}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata: {SamResourceId: Fn, 'aws:cdk:path': x}\n    Properties:\n      CodeUri: src\n      Handler: a.h\n      Environment:\n        Variables:\n          T: {Ref: AWS::StackName}\n          U: {'Fn::GetAtt': [Table, Arn]}\n          V: {'Fn::Sub': ['${A}-${B}', {A: x, B: {Ref: AWS::Region}}]}\n  Table:\n    Type: AWS::Serverless::SimpleTable\n  Layer:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: src}\n",
    )
    .write("src/a.py", "");
    let run = p.lamb(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("function Fn"), "{}", run.stdout);
    // Globals.LayerVersion reaches the layers: built for the architecture it names.
    let run = p.lamb(&["validate", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["layers"][0]["architecture"], "arm64", "{v}");
}

mod cloud {
    use super::*;
    use common::emulator::emulator;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn function_name(stack: &str, id: &str) -> String {
        rt().block_on(async {
            let cfn = aws_sdk_cloudformation::Client::new(&emulator().sdk().await);
            let r = cfn.list_stack_resources().stack_name(stack).send().await.unwrap();
            let found = r.stack_resource_summaries().iter().find(|s| s.logical_resource_id() == Some(id)).unwrap();
            found.physical_resource_id().unwrap().to_string()
        })
    }

    fn sync(p: &Project, stack: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["sync", "--yes", "-o", "json", "--stack-name", stack];
        args.extend_from_slice(extra);
        let run = p.lamb_env(&args, &emulator().env());
        assert_eq!(run.code, 0, "{}", run.all());
        serde_json::from_str(&run.stdout).unwrap()
    }

    const API: &str = "openapi: '3.0.1'\ninfo: {title: shapes, version: '1.0'}\npaths:\n  /hello:\n    get:\n      responses: {'200': {description: ok}}\n      x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: 'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:x/invocations'}\n";

    const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: prod, DefinitionUri: api/openapi.yaml}\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: bootstrap, Runtime: provided.al2023, AutoPublishAlias: live}\n  Canary:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: canary, Handler: bootstrap, Runtime: provided.al2023, AutoPublishAlias: live, DeploymentPreference: {Type: AllAtOnce}}\n";

    fn project() -> Project {
        project_with(TEMPLATE)
    }

    fn project_with(template: &str) -> Project {
        let p = Project::empty();
        p.write("template.yaml", template)
            .write("api/openapi.yaml", API)
            .write("fn/bootstrap", "#!/bin/sh\necho 1\n")
            .write("canary/bootstrap", "#!/bin/sh\necho 1\n");
        p
    }

    #[test]
    fn definition_files_are_packaged_and_their_changes_deploy() {
        definition_round_trip(project(), "s-def");
    }

    #[test]
    fn a_definition_file_named_in_globals_compares_by_content_too() {
        let t = TEMPLATE.replace(
            "Resources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: prod, DefinitionUri: api/openapi.yaml}\n",
            "Globals:\n  Api: {DefinitionUri: api/openapi.yaml}\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: prod}\n",
        );
        assert_ne!(t, TEMPLATE);
        definition_round_trip(project_with(&t), "s-def-globals");
    }

    /// Deploys `p`, whose Api takes its definition from `api/openapi.yaml`, and checks it is in
    /// S3 under its hash, that an unchanged one means a code sync and an edited one a deploy.
    fn definition_round_trip(p: Project, stack: &str) {
        let run = p.lamb_env(&["deploy", "--stack-name", stack, "--resolve-s3"], &emulator().env());
        assert_eq!(run.code, 0, "{}", run.all());
        // Uploaded under its content hash.
        let sha = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(API.as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let found = rt().block_on(async {
            let conf = emulator().sdk().await;
            let s3 =
                aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
            s3.head_object()
                .bucket("lamb-artifacts-123456789012-us-east-1")
                .key(format!("{stack}/{sha}.yaml"))
                .send()
                .await
                .is_ok()
        });
        assert!(found, "the definition is in S3 under its hash");
        assert_eq!(sync(&p, stack, &[])["mode"], "code", "unchanged definition: code mode");
        p.write("api/openapi.yaml", &API.replace("title: shapes", "title: shapes2"));
        let r = sync(&p, stack, &["--code"]);
        assert!(r["infra_reasons"].to_string().contains("Resources.Api.Properties.DefinitionUri changed"), "{r}");
        assert_eq!(sync(&p, stack, &[])["mode"], "infra");
        assert_eq!(sync(&p, stack, &[])["mode"], "code");
    }

    #[test]
    fn auto_publish_alias_follows_code_syncs_and_deployment_preference_goes_through_cloudformation() {
        let p = project();
        let run = p.lamb_env(&["deploy", "--stack-name", "s-alias", "--resolve-s3"], &emulator().env());
        assert_eq!(run.code, 0, "{}", run.all());
        p.write("fn/bootstrap", "#!/bin/sh\necho 2\n");
        let r = sync(&p, "s-alias", &[]);
        let item = r["items"].as_array().unwrap().iter().find(|i| i["id"] == "Fn").unwrap().clone();
        assert_eq!(item["status"], "synced");
        let alias = item["alias"].as_str().unwrap().to_string();
        let (name, version) = alias.split_once(':').unwrap();
        assert_eq!(name, "live");
        let fname = function_name("s-alias", "Fn");
        let (pointed, sha) = rt().block_on(async {
            let lambda = aws_sdk_lambda::Client::new(&emulator().sdk().await);
            let a = lambda.get_alias().function_name(&fname).name("live").send().await.unwrap();
            let v = a.function_version().unwrap().to_string();
            let c = lambda.get_function_configuration().function_name(&fname).qualifier(&v).send().await.unwrap();
            (v, c.code_sha256().unwrap().to_string())
        });
        assert_eq!(pointed, version);
        let (built, _) = p.build_json(&["-r", "Fn"]);
        assert_eq!(sha, code_sha(&built, "Fn"), "the alias runs the new code");

        // DeploymentPreference: --code refuses to push it, a sync deploys it.
        p.write("canary/bootstrap", "#!/bin/sh\necho 2\n");
        let r = sync(&p, "s-alias", &["--code"]);
        let canary = r["items"].as_array().unwrap().iter().find(|i| i["id"] == "Canary").unwrap().clone();
        assert_eq!(canary["status"], "skipped");
        assert!(canary["message"].as_str().unwrap().contains("DeploymentPreference"), "{canary}");
        assert!(r["infra_reasons"].to_string().contains("Canary has a DeploymentPreference"), "{r}");
        let r = sync(&p, "s-alias", &[]);
        assert_eq!(r["mode"], "infra");
    }
}
