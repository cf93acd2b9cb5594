//! Node.js dependencies: production only (`npm ci --omit=dev`, or `npm install` without a
//! lockfile), installed in lamb's cache rather than the user's tree. Local `file:` dependencies
//! are installed as copies (`--install-links`) and their contents are part of the cache key.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::deps::{Deps, DepsContext, KeyBuilder};
use super::{BuildError, tools};
use crate::fingerprint::{self, WalkOptions};
use crate::project::Arch;

/// Files whose content decides an npm install.
const MANIFESTS: &[&str] = &["package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc"];

/// What a function's Node.js dependencies are, decided before any install.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    source: PathBuf,
    manifest: PathBuf,
    /// package.json with `file:` paths made absolute.
    parsed: serde_json::Value,
    local: bool,
    arch: Arch,
}

/// Reads `source`'s package.json (and the local packages it refers to); `None` when it
/// declares no dependencies.
pub fn plan(source: &Path, runtime: &str, arch: Arch, project_root: &Path) -> Result<Option<Plan>, BuildError> {
    let manifest = source.join("package.json");
    let Some(text) = super::deps::read_manifest(&manifest)? else { return Ok(None) };
    let mut parsed: serde_json::Value = serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
        file: manifest.clone(),
        line: None,
        problem: format!("invalid JSON ({e}); fix package.json"),
    })?;
    let Some(deps) = parsed.get_mut("dependencies").and_then(|d| d.as_object_mut()).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let mut key = KeyBuilder::new("nodejs", runtime, arch);
    for name in MANIFESTS {
        if let Ok(bytes) = fs::read(source.join(name)) {
            key.bytes(name, &bytes);
        }
    }
    // `file:` dependencies: hash what they point at, and point at it absolutely, since npm runs
    // in lamb's cache directory.
    let mut local = false;
    for (name, spec) in deps.iter_mut() {
        let Some(rel) = spec.as_str().and_then(|s| s.strip_prefix("file:")) else { continue };
        let path = crate::project::normalize(&source.join(rel));
        key.path(&path, project_root).map_err(|e| BuildError::Manifest {
            file: manifest.clone(),
            line: None,
            problem: format!("dependency `{name}`: {e}"),
        })?;
        *spec = serde_json::Value::String(format!("file:{}", path.display()));
        local = true;
    }
    let key = key.finish("nodejs");
    Ok(Some(Plan { key, source: source.to_path_buf(), manifest, parsed, local, arch }))
}

/// Installs the planned dependencies (or finds them in the cache).
pub fn install(ctx: &DepsContext, plan: &Plan) -> Result<Deps, BuildError> {
    let Plan { key, source, manifest, parsed, local, arch } = plan;
    let (source, manifest, local) = (source.as_path(), manifest.as_path(), *local);
    let (dir, installed) = ctx.cache.get_or_install(key, ctx.force, |tmp| {
        let mut has_lock = false;
        for name in MANIFESTS {
            let from = source.join(name);
            if !from.is_file() {
                continue;
            }
            has_lock |= *name == "package-lock.json" || *name == "npm-shrinkwrap.json";
            let to = tmp.join(name);
            let io =
                |e| BuildError::Io { what: format!("cannot copy {} to {}", from.display(), to.display()), source: e };
            if *name == "package.json" && local {
                fs::write(&to, serde_json::to_vec_pretty(parsed).unwrap_or_default()).map_err(io)?;
            } else {
                fs::copy(&from, &to).map_err(io)?;
            }
        }
        let mut cmd = Command::new("npm");
        if has_lock && !local {
            cmd.arg("ci");
        } else {
            // A lockfile records relative `file:` paths, which no longer match: resolve again.
            cmd.args(["install", "--no-package-lock"]);
        }
        if local {
            cmd.arg("--install-links");
        }
        // Lambda's platform, not the host's: packages with per-platform builds (optional
        // dependencies such as `@esbuild/linux-arm64`) are picked for the function.
        let cpu = match arch {
            Arch::X86_64 => "x64",
            Arch::Arm64 => "arm64",
        };
        cmd.args(["--os=linux", &format!("--cpu={cpu}"), "--libc=glibc"]);
        cmd.args(["--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"])
            .env("npm_config_update_notifier", "false")
            .current_dir(tmp);
        tools::run(&mut cmd, "npm", "install Node.js and npm (e.g. apt install nodejs npm)").map_err(|e| match e {
            BuildError::ToolFailed { run, .. } => BuildError::InstallFailed {
                tool: "npm",
                manifest: manifest.to_path_buf(),
                run,
                fix: "fix package.json (and package-lock.json) and save again".into(),
            },
            other => other,
        })?;
        let modules = tmp.join("node_modules");
        fs::create_dir_all(&modules)
            .map_err(|e| BuildError::Io { what: format!("cannot create {}", modules.display()), source: e })?;
        // Check the install is packable (no dangling links) before the cache calls it complete.
        let opts = WalkOptions {
            project_root: tmp.to_path_buf(),
            gitignore: false,
            extra_excludes: Vec::new(),
            follow_external_symlinks: false,
            skip_dirs: Vec::new(),
        };
        let files = fingerprint::walk(&modules, &opts)
            .map_err(|e| BuildError::Manifest {
                file: manifest.to_path_buf(),
                line: None,
                problem: format!("npm's install for it cannot be packed: {e}"),
            })?;
        // A compiled addon was built (or downloaded by an install script) for this machine.
        let host = if cfg!(target_arch = "aarch64") { Arch::Arm64 } else { Arch::X86_64 };
        if *arch != host
            && let Some(addon) = files.iter().find(|f| f.rel.ends_with(".node"))
        {
            tracing::warn!(
                manifest = %manifest.display(),
                addon = %addon.rel,
                "a native addon was built for this machine ({}), not for the function's {}; build the function with BuildMethod: makefile in a matching environment if it loads the addon",
                host.as_str(),
                arch.as_str()
            );
        }
        Ok(())
    })?;
    Ok(Deps { key: key.clone(), dir: dir.join("node_modules"), installed })
}
