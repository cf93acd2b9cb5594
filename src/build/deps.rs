//! Dependency installs (pip, npm), cached by what decides their result: the manifest files, the
//! runtime and the architecture. Editing code reuses the installed dependencies; editing
//! requirements.txt or package.json reinstalls them for the functions that use that manifest only.
//! Concurrent builds needing the same dependencies wait for one install.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::{BuildError, tools};
use crate::fingerprint::hex;
use crate::project::Arch;

/// Files whose content decides a dependency install.
pub const PYTHON_MANIFESTS: &[&str] = &["requirements.txt"];
pub const NODE_MANIFESTS: &[&str] = &["package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc"];

/// Where installed dependencies live, and whether this build installed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deps {
    /// Cache entry name (`python-<hash>`), recorded in build state.
    pub key: String,
    /// Directory whose contents go into the zip (site-packages, or node_modules).
    pub dir: PathBuf,
    pub installed: bool,
}

/// One install, shared by every build that needs it; the error is kept as text.
type Install = Arc<OnceLock<Result<PathBuf, String>>>;

/// The dependency cache under `.lamb/deps`.
pub struct DepsCache {
    dir: PathBuf,
    inflight: Mutex<HashMap<String, Install>>,
}

impl DepsCache {
    pub fn new(dir: PathBuf) -> Self {
        DepsCache { dir, inflight: Mutex::new(HashMap::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the cached install for `key`, or runs `install(tmp_dir)` once to create it.
    fn get_or_install(
        &self,
        key: &str,
        install: impl FnOnce(&Path) -> Result<(), BuildError>,
    ) -> Result<(PathBuf, bool), BuildError> {
        let final_dir = self.dir.join(key);
        if final_dir.join(".complete").is_file() {
            return Ok((final_dir, false));
        }
        let cell = {
            let mut map = self.inflight.lock().expect("deps cache lock poisoned");
            map.entry(key.to_string()).or_default().clone()
        };
        let mut ran = false;
        let result = cell.get_or_init(|| {
            ran = true;
            let tmp = self.dir.join(format!(".tmp-{key}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            let outcome = (|| {
                fs::create_dir_all(&tmp)
                    .map_err(|e| BuildError::Io { what: format!("cannot create {}", tmp.display()), source: e })?;
                install(&tmp)?;
                fs::write(tmp.join(".complete"), b"")
                    .map_err(|e| BuildError::Io { what: "cannot mark deps complete".into(), source: e })?;
                let _ = fs::remove_dir_all(&final_dir);
                fs::rename(&tmp, &final_dir).map_err(|e| BuildError::Io {
                    what: format!("cannot move deps into {}", final_dir.display()),
                    source: e,
                })?;
                Ok::<_, BuildError>(final_dir.clone())
            })();
            if outcome.is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
            outcome.map_err(|e| e.to_string())
        });
        match result {
            Ok(dir) => Ok((dir.clone(), ran)),
            Err(msg) if ran => Err(BuildError::Deps(msg.clone())),
            Err(msg) => Err(BuildError::Deps(format!("(shared install) {msg}"))),
        }
    }
}

/// The hash of the manifests that exist in `source` plus the build settings.
fn manifest_key(
    kind: &str,
    source: &Path,
    manifests: &[&str],
    runtime: &str,
    arch: Arch,
) -> Result<Option<String>, BuildError> {
    let mut h = Sha256::new();
    h.update(format!("lamb-deps-v1\0{kind}\0{runtime}\0{}\0", arch.as_str()));
    let mut any = false;
    for name in manifests {
        let p = source.join(name);
        match fs::read(&p) {
            Ok(bytes) => {
                any = true;
                h.update(name.as_bytes());
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BuildError::Io { what: format!("cannot read {}", p.display()), source: e }),
        }
    }
    Ok(any.then(|| format!("{kind}-{}", &hex(&h.finalize())[..24])))
}

/// Python dependencies of `source` (from requirements.txt), installed with pip.
pub fn python(cache: &DepsCache, source: &Path, runtime: &str, arch: Arch) -> Result<Option<Deps>, BuildError> {
    let req = source.join("requirements.txt");
    let has_requirements = fs::read_to_string(&req)
        .map(|t| t.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .unwrap_or(false);
    if !has_requirements {
        return Ok(None);
    }
    let Some(key) = manifest_key("python", source, PYTHON_MANIFESTS, runtime, arch)? else {
        return Ok(None);
    };
    let (dir, installed) = cache.get_or_install(&key, |tmp| {
        let python = python_for(runtime)?;
        let mut cmd = Command::new(&python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--no-compile",
            "--no-warn-script-location",
            "--quiet",
            "--target",
        ])
        .arg(tmp.join("site"))
        .arg("-r")
        .arg(&req)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(source);
        tools::run(&mut cmd, &python, "install Python 3 with pip (e.g. apt install python3-pip)").map_err(|e| match e {
            BuildError::Command { output, .. } => BuildError::Deps(format!(
                "pip could not install {}:\n{output}\nfix requirements.txt (package names and versions) and save again",
                req.display()
            )),
            other => other,
        })?;
        Ok(())
    })?;
    Ok(Some(Deps { key, dir: dir.join("site"), installed }))
}

/// The interpreter for a `python3.X` runtime: `python3.X` when it runs and has pip, else
/// `python3`. Probed once per runtime per process (pyenv shims, for one, exist but may fail).
fn python_for(runtime: &str) -> Result<String, BuildError> {
    static FOUND: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    if let Some(hit) = found.lock().expect("python probe lock poisoned").get(runtime) {
        return hit.clone().ok_or_else(|| no_python(runtime));
    }
    let wanted = runtime.trim_start_matches("python");
    let mut choice = None;
    for candidate in [runtime, "python3"] {
        let probe = Command::new(candidate)
            .args(["-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"])
            .stdin(std::process::Stdio::null())
            .output();
        let Ok(out) = probe else { continue };
        if !out.status.success() {
            continue;
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if version != wanted {
            tracing::warn!(
                runtime,
                interpreter = candidate,
                version = %version,
                "no working {runtime} with pip found; installing dependencies with {candidate} ({version}). Pure-Python packages are fine; compiled ones may not match Lambda's {runtime}: install {runtime} to be exact"
            );
        }
        choice = Some(candidate.to_string());
        break;
    }
    found.lock().expect("python probe lock poisoned").insert(runtime.to_string(), choice.clone());
    choice.ok_or_else(|| no_python(runtime))
}

fn no_python(runtime: &str) -> BuildError {
    BuildError::MissingTool {
        tool: format!("{runtime} (or python3) with pip"),
        install: format!("install {runtime} and pip (e.g. apt install python3 python3-pip) to build its dependencies"),
    }
}

/// Node dependencies of `source` (from package.json), installed with npm, production only.
pub fn nodejs(cache: &DepsCache, source: &Path, runtime: &str, arch: Arch) -> Result<Option<Deps>, BuildError> {
    let manifest = source.join("package.json");
    let Ok(text) = fs::read_to_string(&manifest) else { return Ok(None) };
    let parsed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| BuildError::Deps(format!("{}: invalid JSON ({e}); fix package.json", manifest.display())))?;
    let has_deps = parsed.get("dependencies").and_then(|d| d.as_object()).is_some_and(|d| !d.is_empty());
    if !has_deps {
        return Ok(None);
    }
    let Some(key) = manifest_key("nodejs", source, NODE_MANIFESTS, runtime, arch)? else {
        return Ok(None);
    };
    let (dir, installed) = cache.get_or_install(&key, |tmp| {
        let mut has_lock = false;
        for name in NODE_MANIFESTS {
            let from = source.join(name);
            if from.is_file() {
                has_lock |= *name != "package.json" && *name != ".npmrc";
                fs::copy(&from, tmp.join(name))
                    .map_err(|e| BuildError::Io { what: format!("cannot copy {}", from.display()), source: e })?;
            }
        }
        let mut cmd = Command::new("npm");
        if has_lock {
            cmd.arg("ci");
        } else {
            cmd.args(["install", "--no-package-lock"]);
        }
        cmd.args(["--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"])
            .env("npm_config_update_notifier", "false")
            .current_dir(tmp);
        tools::run(&mut cmd, "npm", "install Node.js and npm (e.g. apt install nodejs npm)").map_err(|e| match e {
            BuildError::Command { command, output, .. } => BuildError::Deps(format!(
                "`{command}` failed for {}:\n{output}\nfix package.json (and package-lock.json) and save again",
                manifest.display()
            )),
            other => other,
        })?;
        fs::create_dir_all(tmp.join("node_modules"))
            .map_err(|e| BuildError::Io { what: "cannot create node_modules".into(), source: e })?;
        Ok(())
    })?;
    Ok(Some(Deps { key, dir: dir.join("node_modules"), installed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_key_depends_on_content_runtime_and_arch() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
        let k = |rt, arch| manifest_key("python", d.path(), PYTHON_MANIFESTS, rt, arch).unwrap().unwrap();
        let base = k("python3.12", Arch::X86_64);
        assert_eq!(base, k("python3.12", Arch::X86_64));
        assert_ne!(base, k("python3.11", Arch::X86_64));
        assert_ne!(base, k("python3.12", Arch::Arm64));
        fs::write(d.path().join("requirements.txt"), "six==1.17.0\n").unwrap();
        assert_ne!(base, k("python3.12", Arch::X86_64));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(manifest_key("python", empty.path(), PYTHON_MANIFESTS, "python3.12", Arch::X86_64).unwrap(), None);
    }

    #[test]
    fn one_install_for_concurrent_requests_and_failures_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cache = DepsCache::new(d.path().to_path_buf());
        let count = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    cache
                        .get_or_install("k", |tmp| {
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            fs::write(tmp.join("x"), "x").unwrap();
                            Ok(())
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(d.path().join("k/x").is_file());
        // A later process finds it complete without running the installer.
        let again = DepsCache::new(d.path().to_path_buf());
        let (_, installed) = again.get_or_install("k", |_| panic!("must be cached")).unwrap();
        assert!(!installed);

        let err = again.get_or_install("bad", |_| Err(BuildError::Deps("nope".into()))).unwrap_err();
        assert!(err.to_string().contains("nope"));
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("k")]);
    }
}
