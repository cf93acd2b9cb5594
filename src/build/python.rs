//! Python dependencies, installed for Lambda's platform rather than the host's: manylinux wheels
//! for the function's architecture and CPython version (`pip install --platform ...
//! --only-binary=:all:`), so a build on any machine gives the zip Lambda can load. Local
//! requirements (`./lib`, `-e ../shared`) and packages published only as source are built into
//! wheels first; a package that has no wheel for Lambda and is not pure Python is an error
//! naming it.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::deps::{Deps, DepsContext, KeyBuilder};
use super::{BuildError, tools};
use crate::fingerprint::{self, WalkOptions};
use crate::project::Arch;

/// Rounds of "build a missing package from source, then install again".
const SOURCE_BUILD_ROUNDS: usize = 8;

/// A line of requirements.txt that names something on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalRef {
    /// A package directory or archive to build (`./lib`, `-e ../shared`, `file:...`).
    Package { line: usize, path: PathBuf },
    /// A wheel file, installable as is.
    Wheel { line: usize, path: PathBuf },
    /// `-r`/`-c` files and `--find-links` directories: hashed, passed with absolute paths.
    Aux { line: usize, flag: String, path: PathBuf },
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #").or_else(|| line.starts_with('#').then_some(0)) {
        Some(i) => line[..i].trim(),
        None => line.trim(),
    }
}

fn is_path(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.starts_with("file:") || s.starts_with('~')
}

fn resolve(base: &Path, s: &str) -> PathBuf {
    let s = s.strip_prefix("file://").or_else(|| s.strip_prefix("file:")).unwrap_or(s);
    crate::project::normalize(&base.join(s))
}

/// Finds the lines of `text` (a requirements file in `base`) that refer to local paths.
fn local_refs(text: &str, base: &Path) -> Vec<LocalRef> {
    let mut out = Vec::new();
    for (line, raw) in text.lines().enumerate() {
        let l = strip_comment(raw);
        let mut words = l.split_whitespace();
        let Some(first) = words.next() else { continue };
        let (flag, arg) = match first {
            "-r" | "--requirement" | "-c" | "--constraint" | "-f" | "--find-links" | "-e" | "--editable" => {
                (Some(first), words.next().unwrap_or(""))
            }
            f => match f.split_once('=') {
                Some((flag @ ("--requirement" | "--constraint" | "--find-links" | "--editable"), v)) => (Some(flag), v),
                _ => (None, f),
            },
        };
        // `name @ file:///path` direct references.
        let arg = match l.split_once(" @ ") {
            Some((_, url)) if flag.is_none() => url.trim(),
            _ => arg,
        };
        // Requirement and constraint files are always paths; find-links may be a URL.
        let file_flag = matches!(flag, Some("-r" | "--requirement" | "-c" | "--constraint" | "-f" | "--find-links"));
        let url = arg.contains("://") && !arg.starts_with("file:");
        if arg.is_empty() || url || !(is_path(arg) || file_flag) {
            continue;
        }
        let path = resolve(base, arg);
        match flag {
            Some("-r" | "--requirement" | "-c" | "--constraint" | "-f" | "--find-links") => {
                out.push(LocalRef::Aux { line, flag: flag.unwrap_or_default().to_string(), path })
            }
            _ if arg.ends_with(".whl") => out.push(LocalRef::Wheel { line, path }),
            _ => out.push(LocalRef::Package { line, path }),
        }
    }
    out
}

/// What a function's Python dependencies are, decided before any install: the cache key says
/// whether the installed set can be reused.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    req: PathBuf,
    text: String,
    refs: Vec<LocalRef>,
    runtime: String,
    arch: Arch,
}

/// Reads `source`'s requirements.txt (and what it refers to on disk); `None` when it lists
/// nothing.
pub fn plan(source: &Path, runtime: &str, arch: Arch, project_root: &Path) -> Result<Option<Plan>, BuildError> {
    let req = source.join("requirements.txt");
    let Some(text) = super::deps::read_manifest(&req)? else { return Ok(None) };
    if !text.lines().any(|l| !strip_comment(l).is_empty()) {
        return Ok(None);
    }
    let refs = local_refs(&text, source);
    let mut key = KeyBuilder::new("python", runtime, arch);
    key.bytes("requirements.txt", text.as_bytes());
    for r in &refs {
        let (LocalRef::Package { line, path } | LocalRef::Wheel { line, path } | LocalRef::Aux { line, path, .. }) = r;
        key.path(path, project_root).map_err(|e| BuildError::Manifest {
            file: req.clone(),
            line: Some(line + 1),
            problem: e.to_string(),
        })?;
    }
    let key = key.finish("python");
    Ok(Some(Plan { key, req, text, refs, runtime: runtime.to_string(), arch }))
}

/// Installs the planned dependencies (or finds them in the cache).
pub fn install(ctx: &DepsContext, plan: &Plan) -> Result<Deps, BuildError> {
    let (dir, installed) = ctx.cache.get_or_install(&plan.key, ctx.force, |tmp| {
        pip_install(tmp, &plan.req, &plan.text, &plan.refs, &plan.runtime, plan.arch, ctx.project_root)
    })?;
    Ok(Deps { key: plan.key.clone(), dir: dir.join("site"), installed })
}

/// The `--platform` tags for Lambda's image: Amazon Linux 2023 (glibc 2.34) from python3.12,
/// Amazon Linux 2 (glibc 2.26) before.
fn platforms(runtime: &str, arch: Arch) -> Vec<String> {
    let minor: u32 = runtime.trim_start_matches("python3.").parse().unwrap_or(12);
    let glibc: &[&str] =
        if minor >= 12 { &["2_34", "2_28", "2_26", "2_24", "2_17"] } else { &["2_26", "2_24", "2_17"] };
    let machine = match arch {
        Arch::X86_64 => "x86_64",
        Arch::Arm64 => "aarch64",
    };
    let mut out: Vec<String> = glibc.iter().map(|g| format!("manylinux_{g}_{machine}")).collect();
    out.push(format!("manylinux2014_{machine}"));
    if arch == Arch::X86_64 {
        out.extend(
            ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
                .map(String::from),
        );
    }
    out
}

fn pip(python: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip"])
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(cwd);
    cmd
}

/// Builds a wheel from `spec` (a path or a requirement) into `wheels` with the host's pip.
fn build_wheel(python: &str, tmp: &Path, wheels: &Path, spec: &str) -> Result<Vec<PathBuf>, BuildError> {
    let before: HashSet<PathBuf> = list(wheels);
    let mut cmd = pip(python, tmp);
    cmd.args(["wheel", "--no-deps", "--no-input", "--quiet", "--wheel-dir"]).arg(wheels).arg(spec);
    tools::run(&mut cmd, python, "install Python 3 with pip")?;
    Ok(list(wheels).into_iter().filter(|w| !before.contains(w)).collect())
}

/// A requirements line that says where packages come from (an index, links, trusted hosts).
fn is_index_option(line: &str) -> bool {
    let first = strip_comment(line).split_whitespace().next().unwrap_or("");
    let flag = first.split_once('=').map_or(first, |(f, _)| f);
    matches!(
        flag,
        "-i" | "--index-url" | "--extra-index-url" | "--no-index" | "-f" | "--find-links" | "--trusted-host" | "--pre"
    )
}

fn list(dir: &Path) -> HashSet<PathBuf> {
    fs::read_dir(dir).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// Copies a local package's sources (as git would see them) into `to`, so building it does
/// not write `build/` or `*.egg-info` into the user's tree.
fn copy_package(from: &Path, to: &Path, project_root: &Path) -> Result<(), BuildError> {
    let opts = WalkOptions {
        project_root: project_root.to_path_buf(),
        gitignore: true,
        extra_excludes: vec!["build".into(), "*.egg-info".into()],
        follow_external_symlinks: false,
        skip_dirs: Vec::new(),
    };
    for f in fingerprint::walk(from, &opts)? {
        let dst = to.join(&f.rel);
        let io =
            |e| BuildError::Io { what: format!("cannot copy {} to {}", f.abs.display(), dst.display()), source: e };
        fs::create_dir_all(dst.parent().unwrap_or(to)).map_err(io)?;
        fs::copy(&f.abs, &dst).map_err(io)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn pip_install(
    tmp: &Path,
    req: &Path,
    text: &str,
    refs: &[LocalRef],
    runtime: &str,
    arch: Arch,
    project_root: &Path,
) -> Result<(), BuildError> {
    let python = python_for(runtime)?;
    let wheels = tmp.join("wheels");
    let site = tmp.join("site");
    fs::create_dir_all(&wheels)
        .map_err(|e| BuildError::Io { what: format!("cannot create {}", wheels.display()), source: e })?;

    // Rewrite local references: packages become wheels built here, other paths absolute.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (n, r) in refs.iter().enumerate() {
        match r {
            LocalRef::Package { line, path } => {
                let copy = tmp.join("src").join(n.to_string());
                let spec = if path.is_dir() {
                    copy_package(path, &copy, project_root)?;
                    copy
                } else {
                    path.clone()
                };
                let built =
                    build_wheel(&python, tmp, &wheels, &spec.to_string_lossy()).map_err(|e| BuildError::Manifest {
                        file: req.to_path_buf(),
                        line: Some(line + 1),
                        problem: format!("cannot build the local package {}: {e}", path.display()),
                    })?;
                lines[*line] = built.first().map(|w| w.to_string_lossy().into_owned()).unwrap_or_default();
            }
            LocalRef::Wheel { line, path } => lines[*line] = path.to_string_lossy().into_owned(),
            LocalRef::Aux { line, flag, path } => lines[*line] = format!("{flag} {}", path.display()),
        }
    }
    let rewritten = tmp.join("requirements.txt");
    fs::write(&rewritten, lines.join("\n") + "\n")
        .map_err(|e| BuildError::Io { what: format!("cannot write {}", rewritten.display()), source: e })?;

    let version = runtime.trim_start_matches("python");
    let mut built_from_source: Vec<String> = Vec::new();
    for _ in 0..SOURCE_BUILD_ROUNDS {
        let mut cmd = pip(&python, tmp);
        cmd.args(["install", "--no-input", "--no-compile", "--no-warn-script-location", "--quiet", "--upgrade"])
            .args(["--target"])
            .arg(&site)
            .args(["--implementation", "cp", "--python-version", version, "--only-binary=:all:"]);
        for p in platforms(runtime, arch) {
            cmd.args(["--platform", &p]);
        }
        cmd.arg("--find-links").arg(&wheels).arg("-r").arg(&rewritten);
        let run = match tools::run(&mut cmd, &python, "install Python 3 with pip") {
            Ok(_) => {
                // Console scripts carry this machine's interpreter path and Lambda never runs
                // them: leaving them out keeps the zip the same on every machine.
                let _ = fs::remove_dir_all(site.join("bin"));
                forget_origins(&site)?;
                return Ok(());
            }
            Err(BuildError::ToolFailed { run, .. }) => run,
            Err(other) => return Err(other),
        };
        let missing = run
            .output
            .lines()
            .find_map(|l| l.split("No matching distribution found for ").nth(1))
            .map(|s| s.trim().to_string());
        match missing {
            // Published only as source: build it here; a pure-Python wheel installs anywhere.
            Some(spec) if !built_from_source.contains(&spec) => {
                tracing::info!(package = %spec, "no wheel for Lambda's platform; building it from source");
                // From the same index and links the requirements name, as pip would.
                let source_req = tmp.join(format!("source-{}.txt", built_from_source.len()));
                let mut text: Vec<&str> = lines.iter().map(String::as_str).filter(|l| is_index_option(l)).collect();
                text.push(&spec);
                fs::write(&source_req, text.join("\n") + "\n").map_err(|e| BuildError::Io {
                    what: format!("cannot write {}", source_req.display()),
                    source: e,
                })?;
                match build_wheel(&python, tmp, &wheels, &format!("--requirement={}", source_req.display())) {
                    Ok(_) => {}
                    // Not even a source distribution: a typo, or a version that does not exist.
                    Err(BuildError::ToolFailed { run, .. })
                        if run.output.contains("No matching distribution found")
                            || run.output.contains("Could not find a version that satisfies") =>
                    {
                        return Err(BuildError::Manifest {
                            file: req.to_path_buf(),
                            line: None,
                            problem: format!(
                                "`{spec}` is not on the package index (pip finds no version of it at all); check its name and version"
                            ),
                        });
                    }
                    Err(_) => return Err(no_wheel(req, &spec, runtime, arch)),
                }
                built_from_source.push(spec);
            }
            Some(spec) => return Err(no_wheel(req, &spec, runtime, arch)),
            None => {
                return Err(BuildError::InstallFailed {
                    tool: "pip",
                    manifest: req.to_path_buf(),
                    run,
                    fix: "fix requirements.txt (package names and versions) and save again".into(),
                });
            }
        }
    }
    Err(BuildError::Manifest {
        file: req.to_path_buf(),
        line: None,
        problem: format!(
            "more than {SOURCE_BUILD_ROUNDS} packages have no wheel for Lambda; pin versions that publish manylinux wheels"
        ),
    })
}

/// Drops what pip records about where a package came from (PEP 610's `direct_url.json`,
/// with the `file://` path of a local package or wheel and the hash of a wheel built here) and
/// its line in `RECORD`: a path differs between checkouts and a built wheel's hash between
/// builds, and Lambda has no use for either.
fn forget_origins(site: &Path) -> Result<(), BuildError> {
    let io = |what: String| move |source| BuildError::Io { what, source };
    let Ok(entries) = fs::read_dir(site) else { return Ok(()) };
    for e in entries.flatten() {
        let dist = e.path();
        if dist.extension().is_none_or(|x| x != "dist-info") || !dist.join("direct_url.json").exists() {
            continue;
        }
        let url = dist.join("direct_url.json");
        fs::remove_file(&url).map_err(io(format!("cannot remove {}", url.display())))?;
        let record = dist.join("RECORD");
        if let Ok(text) = fs::read_to_string(&record) {
            let kept: String = text
                .lines()
                .filter(|l| !l.split(',').next().is_some_and(|f| f.ends_with(".dist-info/direct_url.json")))
                .map(|l| format!("{l}\n"))
                .collect();
            fs::write(&record, kept).map_err(io(format!("cannot rewrite {}", record.display())))?;
        }
    }
    Ok(())
}

fn no_wheel(req: &Path, spec: &str, runtime: &str, arch: Arch) -> BuildError {
    BuildError::Manifest {
        file: req.to_path_buf(),
        line: None,
        problem: format!(
            "`{spec}` has no wheel for Lambda ({runtime}, manylinux {}) and does not build as pure Python here; pin a version that publishes a manylinux wheel, or build the function with BuildMethod: makefile",
            arch.as_str()
        ),
    }
}

/// A Python 3 with pip to run: `python3.X` for a `python3.X` runtime when it works, else
/// `python3` (which installs for the runtime's version through `--python-version`). Probed
/// once per runtime per process, since pyenv shims, for one, exist but may fail. The probe
/// answers with the interpreter's own path (`sys.executable`), which lamb runs from then on:
/// a pyenv shim runs `pyenv rehash` after every `-m pip`, and concurrent builds' rehashes
/// fail each other's pip with "cannot rehash".
fn python_for(runtime: &str) -> Result<String, BuildError> {
    static FOUND: OnceLock<Mutex<std::collections::HashMap<String, Option<String>>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    if let Some(hit) = found.lock().expect("python probe lock poisoned").get(runtime) {
        return hit.clone().ok_or_else(|| no_python(runtime));
    }
    let choice = [runtime, "python3"].into_iter().find_map(|candidate| {
        let out = Command::new(candidate)
            .args(["-c", "import sys, pip; print(sys.executable)"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(if exe.is_empty() || !Path::new(&exe).is_absolute() { candidate.to_string() } else { exe })
    });
    found.lock().expect("python probe lock poisoned").insert(runtime.to_string(), choice.clone());
    choice.ok_or_else(|| no_python(runtime))
}

fn no_python(runtime: &str) -> BuildError {
    BuildError::MissingTool {
        tool: format!("{runtime} (or python3) with pip"),
        install: format!(
            "install Python 3 and pip (e.g. apt install python3 python3-pip) to build {runtime} dependencies"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_references() {
        let base = Path::new("/p/fn");
        let text = "requests==2.32.3\n./lib  # local\n-e ../shared\n-r more.txt\n--constraint=/abs/c.txt\n./dist/x-1.0-py3-none-any.whl\nname @ file:///opt/pkg\n# ./not-a-ref\n--index-url https://example.com\n";
        assert_eq!(
            local_refs(text, base),
            [
                LocalRef::Package { line: 1, path: "/p/fn/lib".into() },
                LocalRef::Package { line: 2, path: "/p/shared".into() },
                LocalRef::Aux { line: 3, flag: "-r".into(), path: "/p/fn/more.txt".into() },
                LocalRef::Aux { line: 4, flag: "--constraint".into(), path: "/abs/c.txt".into() },
                LocalRef::Wheel { line: 5, path: "/p/fn/dist/x-1.0-py3-none-any.whl".into() },
                LocalRef::Package { line: 6, path: "/opt/pkg".into() },
            ]
        );
    }

    #[test]
    fn platform_tags_follow_the_runtime_image_and_architecture() {
        let al2023 = platforms("python3.12", Arch::Arm64);
        assert!(al2023.contains(&"manylinux_2_34_aarch64".to_string()));
        assert!(al2023.contains(&"manylinux2014_aarch64".to_string()));
        assert!(!al2023.iter().any(|p| p.contains("x86_64")));
        let al2 = platforms("python3.11", Arch::X86_64);
        assert!(!al2.iter().any(|p| p.contains("2_34") || p.contains("2_28")), "AL2 has glibc 2.26: {al2:?}");
        assert!(al2.contains(&"manylinux1_x86_64".to_string()));
    }

    #[test]
    fn pip_runs_the_interpreter_itself_not_a_shim() {
        // On a machine with python3 (every machine lamb's tests run on): the probe answers
        // with the real interpreter, so pip never runs through a pyenv shim's rehash hook.
        let python = python_for("python3.99").expect("python3 with pip");
        assert!(Path::new(&python).is_absolute(), "{python}");
        assert!(!python.contains("/shims/"), "{python}");
    }
}
