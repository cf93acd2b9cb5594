//! `BuildMethod: esbuild`: TypeScript/JavaScript bundled as SAM's esbuild builder does it, from
//! `Metadata.BuildProperties` (EntryPoints, Minify, Sourcemap, Target, Format, External, Loader,
//! Banner, MainFields, Define), with the project's own esbuild (node_modules/.bin), else the
//! one its package.json lists under `dependencies` (from lamb's install of them, as SAM runs the
//! esbuild its npm install brought), else the one on PATH. Dependencies come from lamb's npm cache through NODE_PATH, so the bundle holds what
//! it imports and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::{BuildError, tools};
use crate::project::value::Value;

pub(super) const INSTALL: &str = "list it under `dependencies` in the function's package.json (`npm install esbuild`), or install it in the project (`npm install --save-dev esbuild`) or globally (`npm install -g esbuild`)";

/// The version range of esbuild the package.json in `source` lists under `dependencies`.
pub fn declared(source: &Path) -> Option<String> {
    let text = std::fs::read_to_string(source.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("dependencies")?.get("esbuild")?.as_str().map(str::to_string)
}

/// The esbuild of an npm install of the function's dependencies (`node_modules`), for the
/// function's platform: runnable here only when that is this machine's architecture.
pub fn in_dependencies(node_modules: &Path, arch: crate::project::Arch) -> Option<PathBuf> {
    let host = if cfg!(target_arch = "aarch64") { crate::project::Arch::Arm64 } else { crate::project::Arch::X86_64 };
    let bin = node_modules.join(".bin/esbuild");
    (arch == host && bin.is_file()).then_some(bin)
}

/// `node_modules/.bin/esbuild` in the code directory or any directory up to the project root.
fn in_project(source: &Path, project_root: &Path) -> Option<PathBuf> {
    for dir in source.ancestors() {
        let candidate = dir.join("node_modules/.bin/esbuild");
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir == project_root {
            break;
        }
    }
    None
}

/// The esbuild to run: the project's own ([`in_project`]), else the one on PATH.
pub fn find(source: &Path, project_root: &Path) -> Option<PathBuf> {
    in_project(source, project_root).or_else(on_path)
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("esbuild")).find(|p| p.is_file())
}

/// The esbuild found for `source`, with its version (part of the build key: another esbuild
/// may bundle differently). Probed once per binary per process. An esbuild that lamb's install
/// of the function's dependencies brings has an empty path here (it is found after the
/// install) and its declared range as version; the dependencies' key pins what is installed.
pub fn locate(source: &Path, project_root: &Path) -> Result<(PathBuf, String), BuildError> {
    static VERSIONS: OnceLock<Mutex<std::collections::HashMap<PathBuf, String>>> = OnceLock::new();
    if in_project(source, project_root).is_none()
        && let Some(range) = declared(source)
    {
        return Ok((PathBuf::new(), format!("dependencies: esbuild {range}")));
    }
    let bin = find(source, project_root)
        .ok_or_else(|| BuildError::MissingTool { tool: "esbuild".into(), install: INSTALL.into() })?;
    let cache = VERSIONS.get_or_init(Default::default);
    if let Some(v) = cache.lock().expect("esbuild version lock poisoned").get(&bin) {
        return Ok((bin, v.clone()));
    }
    let version = tools::run(Command::new(&bin).arg("--version"), "esbuild", INSTALL)?.trim().to_string();
    cache.lock().expect("esbuild version lock poisoned").insert(bin.clone(), version.clone());
    Ok((bin, version))
}

fn list(props: &Value, key: &str) -> Vec<String> {
    match props.get(key) {
        Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_string).collect(),
        Some(v) => v.scalar_string().map(|s| s.split(',').map(|p| p.trim().to_string()).collect()).unwrap_or_default(),
        None => Vec::new(),
    }
}

fn flag(props: &Value, key: &str, default: bool) -> bool {
    match props.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(v) => v.scalar_string().map_or(default, |s| s.eq_ignore_ascii_case("true")),
        None => default,
    }
}

/// The extensions SAM tries, in order, for an entry point named by a Handler.
const HANDLER_EXTENSIONS: &[&str] = &["ts", "js", "mjs", "cjs", "tsx", "jsx", "mts", "cts"];

/// Whether `props` name their entry points; without them the Handler names the entry.
pub fn has_entry_points(props: &Value) -> bool {
    !list(props, "EntryPoints").is_empty()
}

/// The entry point SAM takes when BuildProperties have no EntryPoints: the Handler's module
/// (`app.lambdaHandler` -> `app`, `src/handlers/app.handler` -> `src/handlers/app`), as the
/// first existing of `app.ts`, `app.js`, `app.mjs`, ... in `src` (the code directory).
pub fn entry_from_handler(handler: Option<&str>, src: &Path) -> Result<String, String> {
    let Some(handler) = handler else {
        return Err("BuildMethod esbuild needs Metadata.BuildProperties.EntryPoints (e.g. `EntryPoints: [app.ts]`) or a Handler naming the entry file (e.g. `app.handler`)".into());
    };
    let module = handler.rsplit_once('.').map_or(handler, |(m, _)| m);
    let candidates: Vec<String> = HANDLER_EXTENSIONS.iter().map(|e| format!("{module}.{e}")).collect();
    candidates.iter().find(|c| src.join(c).is_file()).cloned().ok_or_else(|| {
        format!(
            "BuildMethod esbuild without Metadata.BuildProperties.EntryPoints bundles the Handler's file, but none of {} exists for Handler `{handler}`; add the file, fix Handler, or set EntryPoints",
            candidates.join(", ")
        )
    })
}

/// The esbuild command line for `props`, as SAM builds it; `handler_entry` is the entry point
/// taken from the Handler when `props` have no EntryPoints. `Err` names what is missing.
pub fn arguments(props: &Value, handler_entry: Option<&str>, outdir: &Path) -> Result<Vec<String>, String> {
    let mut entries = list(props, "EntryPoints");
    // An entry taken from `src/handlers/app.handler` keeps its path in the output, so the
    // Handler finds `src/handlers/app.js` in the zip (lamb pushes code without rewriting the
    // Handler, where `sam build` rewrites it in its built template).
    let mut keep_paths = false;
    if entries.is_empty() {
        let Some(entry) = handler_entry else {
            return Err(
                "BuildMethod esbuild needs Metadata.BuildProperties.EntryPoints, e.g. `EntryPoints: [app.ts]`".into()
            );
        };
        keep_paths = entry.contains('/');
        entries.push(entry.to_string());
    }
    let mut args: Vec<String> = entries;
    if keep_paths {
        args.push("--outbase=.".into());
    }
    args.push("--bundle".into());
    args.push("--platform=node".into());
    args.push(format!("--outdir={}", outdir.display()));
    let format = props.get("Format").and_then(Value::scalar_string).unwrap_or_else(|| "cjs".into());
    args.push(format!("--format={format}"));
    let target = props.get("Target").and_then(Value::scalar_string).unwrap_or_else(|| "es2020".into());
    args.push(format!("--target={target}"));
    if flag(props, "Minify", true) {
        args.push("--minify".into());
    }
    if flag(props, "Sourcemap", false) {
        args.push("--sourcemap".into());
        if !flag(props, "SourcesContent", true) {
            args.push("--sources-content=false".into());
        }
    }
    for e in list(props, "External") {
        args.push(format!("--external:{e}"));
    }
    for l in list(props, "Loader") {
        args.push(format!("--loader:{l}"));
    }
    if let Some(b) = props.get("Banner").and_then(Value::scalar_string) {
        args.push(format!("--banner:{b}"));
    }
    let main = list(props, "MainFields");
    if !main.is_empty() {
        args.push(format!("--main-fields={}", main.join(",")));
    }
    for d in list(props, "Define") {
        args.push(format!("--define:{d}"));
    }
    if let Some(ext) = props.get("OutExtension").and_then(|v| v.as_seq().map(<[Value]>::to_vec)) {
        for e in ext.iter().filter_map(Value::scalar_string) {
            args.push(format!("--out-extension:{e}"));
        }
    }
    Ok(args)
}

/// Bundles the sources in `src` (a scratch copy) into `outdir`.
pub fn bundle(
    bin: &Path,
    src: &Path,
    props: &Value,
    handler: Option<&str>,
    node_modules: Option<&Path>,
    outdir: &Path,
) -> Result<(), BuildError> {
    let entry = if has_entry_points(props) {
        None
    } else {
        Some(entry_from_handler(handler, src).map_err(BuildError::Properties)?)
    };
    let args = arguments(props, entry.as_deref(), outdir).map_err(BuildError::Properties)?;
    let mut cmd = Command::new(bin);
    cmd.args(&args).arg("--log-level=warning").current_dir(src);
    if let Some(nm) = node_modules {
        cmd.env("NODE_PATH", nm);
    }
    tools::run(&mut cmd, "esbuild", INSTALL).map_err(|e| match e {
        BuildError::ToolFailed { run, .. } => {
            BuildError::ToolFailed { run, fix: Some("fix the code or the esbuild BuildProperties".into()) }
        }
        other => other,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn build_properties_become_esbuild_flags_with_sams_defaults() {
        let out = Path::new("/out");
        let args = arguments(&yaml("EntryPoints: [app.ts]"), None, out).unwrap();
        assert_eq!(
            args,
            ["app.ts", "--bundle", "--platform=node", "--outdir=/out", "--format=cjs", "--target=es2020", "--minify"]
        );
        let args = arguments(
            &yaml("EntryPoints: [a.ts, b.ts]\nMinify: false\nSourcemap: true\nTarget: node20\nFormat: esm\nExternal: ['@aws-sdk/*', pg]\nLoader: ['.png=file']\nBanner: 'js=// hi'\nOutExtension: ['.js=.mjs']\n"),
            None,
            out,
        )
        .unwrap();
        assert!(!args.contains(&"--minify".to_string()));
        for want in [
            "--sourcemap",
            "--target=node20",
            "--format=esm",
            "--external:@aws-sdk/*",
            "--external:pg",
            "--loader:.png=file",
            "--banner:js=// hi",
            "--out-extension:.js=.mjs",
        ] {
            assert!(args.contains(&want.to_string()), "{want} in {args:?}");
        }
        assert!(arguments(&yaml("Minify: true"), None, out).unwrap_err().contains("EntryPoints"));
    }

    #[test]
    fn without_entry_points_the_handler_names_the_entry() {
        let d = tempfile::tempdir().unwrap();
        for f in ["app.js", "app.mjs", "src/handlers/app.ts", "src/handlers/app.js"] {
            std::fs::create_dir_all(d.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(entry_from_handler(Some("app.lambdaHandler"), d.path()).unwrap(), "app.js");
        assert_eq!(entry_from_handler(Some("src/handlers/app.handler"), d.path()).unwrap(), "src/handlers/app.ts");
        let err = entry_from_handler(Some("missing.handler"), d.path()).unwrap_err();
        assert!(err.contains("missing.ts, missing.js, missing.mjs") && err.contains("set EntryPoints"), "{err}");
        assert!(entry_from_handler(None, d.path()).unwrap_err().contains("EntryPoints"));
        let out = Path::new("/out");
        let args = arguments(&yaml("Minify: false"), Some("src/handlers/app.ts"), out).unwrap();
        assert_eq!(&args[..2], ["src/handlers/app.ts", "--outbase=."]);
        let args = arguments(&yaml("Minify: false"), Some("app.js"), out).unwrap();
        assert!(!args.contains(&"--outbase=.".to_string()), "{args:?}");
    }

    #[test]
    fn the_projects_own_esbuild_comes_first() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("node_modules/.bin/esbuild");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::create_dir_all(d.path().join("fn")).unwrap();
        assert_eq!(find(&d.path().join("fn"), d.path()), Some(bin));
    }
}
