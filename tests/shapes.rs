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
    let p = esbuild_project("{Minify: false}");
    let (r, _) = p.build_json(&[]);
    let msg = resource(&r, "Es")["message"].as_str().unwrap();
    assert!(msg.contains("EntryPoints"), "{msg}");

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
    assert!(msg.contains("`esbuild` is not installed") && msg.contains("npm install --save-dev esbuild"), "{msg}");
}
