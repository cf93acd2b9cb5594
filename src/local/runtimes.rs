//! Which program runs a function locally: the code's own `bootstrap` for custom runtimes
//! (`provided.al2023`, `provided.al2`: a Rust or Go binary or a script talks to the Runtime
//! API as on Lambda), and for `python3.x` and `nodejs*.x` lamb's own runtime client under the
//! machine's interpreter. Layers are where each runtime looks for them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::LocalError;
use crate::project::Arch;

const PYTHON_CLIENT: &str = include_str!("runtimes/lamb_runtime.py");
const NODE_CLIENT: &str = include_str!("runtimes/lamb_runtime.mjs");

/// How to start one function's process.
#[derive(Debug, Clone, PartialEq)]
pub struct Runner {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The runtime's own variables (`PYTHONPATH`, `NODE_PATH`, `LD_LIBRARY_PATH`).
    pub env: Vec<(String, String)>,
    /// What the user should know (an interpreter version that differs from the runtime's).
    pub warnings: Vec<String>,
    /// The process can start as a spare that takes new code over later (lamb's python client).
    pub spare: bool,
}

/// The architecture of this machine.
pub fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") { Arch::Arm64 } else { Arch::X86_64 }
}

/// Writes lamb's runtime clients under `dir` (when they differ) and returns their paths.
fn clients(dir: &Path) -> Result<(PathBuf, PathBuf), LocalError> {
    let io = |what: String| move |source| LocalError::Io { what, source };
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let mut out = Vec::new();
    for (name, text) in [("lamb_runtime.py", PYTHON_CLIENT), ("lamb_runtime.mjs", NODE_CLIENT)] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            crate::state::write_atomic(&path, text.as_bytes()).map_err(|e| LocalError::Io {
                what: format!("cannot write {}", path.display()),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        out.push(path);
    }
    Ok((out.remove(0), out.remove(0)))
}

/// An interpreter found on this machine: its real path (not a shim's) and its version.
#[derive(Debug, Clone)]
struct Interpreter {
    path: PathBuf,
    version: String,
}

/// Finds `candidates[0]` or the next that runs, asking it for its path and version (once per
/// process per runtime).
fn interpreter(key: &str, candidates: &[&str], probe: &[&str]) -> Option<Interpreter> {
    static FOUND: OnceLock<Mutex<std::collections::HashMap<String, Option<Interpreter>>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    if let Some(hit) = found.lock().expect("interpreter cache poisoned").get(key) {
        return hit.clone();
    }
    let choice = candidates.iter().find_map(|c| {
        let out = Command::new(c)
            .args(probe)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let path = lines.next()?.trim();
        let version = lines.next()?.trim().to_string();
        Some(Interpreter { path: PathBuf::from(if path.is_empty() { *c } else { path }), version })
    });
    found.lock().expect("interpreter cache poisoned").insert(key.to_string(), choice.clone());
    choice
}

fn join_paths(parts: impl IntoIterator<Item = PathBuf>) -> String {
    parts.into_iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
}

/// How to run a function of `runtime` whose code is in `task_root`, with `layers` (unpacked,
/// in the template's order). `scripts` is where lamb keeps its runtime clients.
pub fn runner(
    id: &str,
    runtime: Option<&str>,
    arch: Arch,
    task_root: &Path,
    layers: &[PathBuf],
    scripts: &Path,
) -> Result<Runner, LocalError> {
    let mut warnings = Vec::new();
    if arch != host_arch() {
        warnings.push(format!(
            "{id} is built for {}, this machine is {}: it runs here only if its code does not depend on the architecture",
            arch.as_str(),
            host_arch().as_str()
        ));
    }
    let lib = join_paths(std::iter::once(task_root.join("lib")).chain(layers.iter().map(|l| l.join("lib"))));
    let runtime = runtime.unwrap_or("provided");
    if let Some(version) = runtime.strip_prefix("python") {
        let (client, _) = clients(scripts)?;
        let found = interpreter(
            runtime,
            &[runtime, "python3"],
            &["-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
        )
        .ok_or_else(|| LocalError::NoInterpreter {
            id: id.to_string(),
            runtime: runtime.to_string(),
            install: format!("install {runtime} (or python3) and make sure it is on PATH"),
        })?;
        if found.version != version {
            warnings.push(format!(
                "{id} runs on {runtime} in Lambda; here it runs on Python {} ({})",
                found.version,
                found.path.display()
            ));
        }
        let mut path = vec![task_root.to_path_buf()];
        for l in layers {
            path.push(l.join("python"));
            path.push(l.join(format!("python/lib/python{version}/site-packages")));
        }
        return Ok(Runner {
            program: found.path,
            args: vec!["-u".into(), client.display().to_string()],
            env: vec![("PYTHONPATH".into(), join_paths(path)), ("LD_LIBRARY_PATH".into(), lib)],
            warnings,
            spare: true,
        });
    }
    if let Some(version) = runtime.strip_prefix("nodejs") {
        let (_, client) = clients(scripts)?;
        let found = interpreter(
            "node",
            &["node"],
            &["-e", "console.log(process.execPath); console.log(process.versions.node)"],
        )
        .ok_or_else(|| LocalError::NoInterpreter {
            id: id.to_string(),
            runtime: runtime.to_string(),
            install: "install Node.js (e.g. apt install nodejs) and make sure `node` is on PATH".into(),
        })?;
        let major = version.trim_end_matches(".x");
        if found.version.split('.').next() != Some(major) {
            warnings.push(format!(
                "{id} runs on {runtime} in Lambda; here it runs on Node.js {} ({})",
                found.version,
                found.path.display()
            ));
        }
        let mut path = Vec::new();
        for l in layers {
            path.push(l.join("nodejs/node_modules"));
            path.push(l.join(format!("nodejs/node{major}/node_modules")));
        }
        return Ok(Runner {
            program: found.path,
            args: vec![client.display().to_string()],
            env: vec![("NODE_PATH".into(), join_paths(path)), ("LD_LIBRARY_PATH".into(), lib)],
            warnings,
            spare: false,
        });
    }
    if runtime.starts_with("provided") || runtime == "go1.x" {
        // Lambda looks in the function's code first, then in its layers (/opt).
        let bootstrap = std::iter::once(task_root)
            .chain(layers.iter().map(PathBuf::as_path))
            .map(|d| d.join("bootstrap"))
            .find(|b| b.is_file());
        let Some(bootstrap) = bootstrap else {
            return Err(LocalError::NoBootstrap { id: id.to_string(), dir: task_root.to_path_buf() });
        };
        check_binary(id, &bootstrap)?;
        return Ok(Runner {
            program: bootstrap,
            args: Vec::new(),
            env: vec![("LD_LIBRARY_PATH".into(), lib)],
            warnings,
            spare: false,
        });
    }
    Err(LocalError::Unsupported { id: id.to_string(), runtime: runtime.to_string() })
}

/// A `bootstrap` must be executable, and a binary must be for this machine.
fn check_binary(id: &str, path: &Path) -> Result<(), LocalError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|source| LocalError::Io { what: format!("cannot read {}", path.display()), source })?;
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(LocalError::NotExecutable { id: id.to_string(), path: path.to_path_buf() });
    }
    let mut head = [0u8; 20];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    if n == 20 && head.starts_with(b"\x7fELF") {
        let machine = u16::from_le_bytes([head[18], head[19]]);
        let built = match machine {
            0x3E => Some(Arch::X86_64),
            0xB7 => Some(Arch::Arm64),
            _ => None,
        };
        if let Some(built) = built.filter(|b| *b != host_arch()) {
            return Err(LocalError::WrongArch {
                id: id.to_string(),
                path: path.to_path_buf(),
                built: built.as_str(),
                host: host_arch().as_str(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_runtimes_run_their_bootstrap_and_say_what_is_wrong_with_it() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (code, layer, scripts) = (d.path().join("code"), d.path().join("layer"), d.path().join("scripts"));
        std::fs::create_dir_all(&code).unwrap();
        std::fs::create_dir_all(&layer).unwrap();
        let e = runner("Fn", Some("provided.al2023"), host_arch(), &code, &[], &scripts).unwrap_err();
        assert!(matches!(e, LocalError::NoBootstrap { .. }), "{e}");
        // A layer may bring the bootstrap (Lambda looks in /opt after the code).
        std::fs::write(layer.join("bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(layer.join("bootstrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let r =
            runner("Fn", Some("provided.al2023"), host_arch(), &code, std::slice::from_ref(&layer), &scripts).unwrap();
        assert_eq!(r.program, layer.join("bootstrap"));
        std::fs::write(code.join("bootstrap"), "#!/bin/sh\n").unwrap();
        let e = runner("Fn", Some("provided"), host_arch(), &code, &[], &scripts).unwrap_err();
        assert!(e.to_string().contains("chmod +x"), "{e}");
        // A binary for the other architecture.
        let other = if host_arch() == Arch::X86_64 { 0xB7u16 } else { 0x3E };
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(18, 0);
        elf.extend(other.to_le_bytes());
        std::fs::write(code.join("bootstrap"), &elf).unwrap();
        std::fs::set_permissions(code.join("bootstrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = runner("Fn", Some("provided.al2"), host_arch(), &code, &[], &scripts).unwrap_err();
        assert!(matches!(e, LocalError::WrongArch { .. }), "{e}");
        let e = runner("Fn", Some("java21"), host_arch(), &code, &[], &scripts).unwrap_err();
        assert!(e.to_string().contains("java21"), "{e}");
    }

    #[test]
    fn python_gets_its_client_and_the_layers_on_its_path() {
        let d = tempfile::tempdir().unwrap();
        let (code, layer, scripts) = (d.path().join("code"), d.path().join("layer"), d.path().join("scripts"));
        let r = runner("Fn", Some("python3.11"), host_arch(), &code, std::slice::from_ref(&layer), &scripts).unwrap();
        assert_eq!(r.args[0], "-u");
        assert_eq!(std::fs::read_to_string(&r.args[1]).unwrap(), PYTHON_CLIENT);
        let path = &r.env.iter().find(|(k, _)| k == "PYTHONPATH").unwrap().1;
        assert!(path.starts_with(&code.display().to_string()), "{path}");
        assert!(path.contains(&format!("{}/python", layer.display())), "{path}");
    }
}
