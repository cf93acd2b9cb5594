//! `BuildMethod: rust-cargolambda`: `cargo lambda build --release` in the code directory, as
//! SAM's rust_cargo builder does it (in the source tree, so cargo's `target/` cache makes the
//! next build incremental), for the function's architecture, with
//! `Metadata.BuildProperties.Binary` picking one binary of a package or workspace. The zip
//! holds the `bootstrap` cargo-lambda leaves in `<lambda-dir>/<binary>/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::{BuildError, Builder, Built, Prepared, tools};
use crate::project::Arch;
use crate::project::value::Value;

pub(super) const INSTALL: &str = "install it with `pip install cargo-lambda` (it brings zig, which it links with) or `cargo install cargo-lambda`, then make sure `cargo-lambda` is on PATH";

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// cargo-lambda's path and version (part of the build key), probed once per process. `cargo
/// lambda` without it on PATH is cargo's "no such command", so look for it first.
pub fn locate() -> Result<(PathBuf, String), BuildError> {
    static FOUND: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    let missing = || BuildError::MissingTool { tool: "cargo-lambda".into(), install: INSTALL.into() };
    let found = FOUND.get_or_init(|| {
        let Some(bin) = on_path("cargo-lambda") else { return Err(String::new()) };
        match tools::run(Command::new("cargo").args(["lambda", "--version"]), "cargo", "install Rust with rustup") {
            Ok(v) => Ok((bin, v.trim().to_string())),
            Err(e) => Err(e.to_string()),
        }
    });
    match found {
        Ok(f) => Ok(f.clone()),
        Err(e) if e.is_empty() => Err(missing()),
        Err(e) => Err(BuildError::Properties(format!("cannot run `cargo lambda --version`: {e}"))),
    }
}

/// The `cargo lambda build` arguments for a target.
pub fn arguments(arch: Arch, binary: Option<&str>, lambda_dir: &Path) -> Vec<String> {
    let mut args = vec!["lambda".to_string(), "build".into(), "--release".into()];
    args.push(match arch {
        Arch::X86_64 => "--x86-64".into(),
        Arch::Arm64 => "--arm64".into(),
    });
    if let Some(b) = binary {
        args.extend(["--bin".into(), b.to_string()]);
    }
    args.extend(["--lambda-dir".into(), lambda_dir.to_string_lossy().into_owned()]);
    args
}

fn binary(props: &Value) -> Option<String> {
    props.get("Binary").and_then(Value::scalar_string).filter(|s| !s.is_empty())
}

pub fn build(b: &Builder, p: &Prepared) -> Result<Built, BuildError> {
    let t = &p.target;
    if !p.files.iter().any(|f| f.rel == "Cargo.toml") {
        return Err(BuildError::Manifest {
            file: t.source.join("Cargo.toml"),
            line: None,
            problem: format!(
                "missing: `{}` has BuildMethod rust-cargolambda, so its CodeUri must be a Cargo package or workspace; point CodeUri at the directory with Cargo.toml",
                t.logical_id
            ),
        });
    }
    let (work, out) = b.work_area(p)?;
    let lambda_dir = work.join("lambda");
    let io = |what: String| move |source| BuildError::Io { what, source };
    let wanted = binary(&t.properties);
    let mut cmd = Command::new("cargo");
    cmd.args(arguments(t.arch, wanted.as_deref(), &lambda_dir)).current_dir(&t.source);
    // Two `cargo lambda build`s sharing a target directory (one package, or members of one
    // workspace): cargo serialises them on its lock, and then cargo-lambda finds "no binaries"
    // for the second. One at a time: cargo uses every core for each anyway.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tools::run(&mut cmd, "cargo", INSTALL).map_err(|e| match e {
        BuildError::ToolFailed { run, .. } => BuildError::ToolFailed {
            run,
            fix: Some(format!("fix the Rust code of `{}` in {}", t.logical_id, t.source.display())),
        },
        other => other,
    })?;
    let mut built: Vec<String> = fs::read_dir(&lambda_dir)
        .map(|r| r.flatten().filter(|e| e.path().join("bootstrap").is_file()))
        .into_iter()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    let name = match (wanted, built.as_slice()) {
        (Some(w), _) => w,
        (None, [one]) => one.clone(),
        (None, []) => String::new(),
        (None, many) => {
            return Err(BuildError::Properties(format!(
                "{} builds {} binaries ({}); say which one `{}` runs with `Metadata: {{BuildProperties: {{Binary: NAME}}}}`",
                t.source.join("Cargo.toml").display(),
                many.len(),
                many.join(", "),
                t.logical_id
            )));
        }
    };
    let from = lambda_dir.join(&name).join("bootstrap");
    if !from.is_file() {
        return Err(BuildError::NoOutput {
            step: "`cargo lambda build` succeeded but".into(),
            fix: format!("check that {} has a binary target", t.source.join("Cargo.toml").display()),
        });
    }
    let to = out.join("bootstrap");
    fs::copy(&from, &to).map_err(io(format!("cannot copy {} to {}", from.display(), to.display())))?;
    let artifact = b.pack_dir(p, &work, &out, || BuildError::NoOutput {
        step: "`cargo lambda build`".into(),
        fix: "check Cargo.toml".into(),
    })?;
    Ok(Built { artifact, deps: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_and_binary_become_cargo_lambda_flags() {
        let dir = Path::new("/w/lambda");
        assert_eq!(
            arguments(Arch::Arm64, Some("api"), dir),
            ["lambda", "build", "--release", "--arm64", "--bin", "api", "--lambda-dir", "/w/lambda"]
        );
        assert_eq!(
            arguments(Arch::X86_64, None, dir),
            ["lambda", "build", "--release", "--x86-64", "--lambda-dir", "/w/lambda"]
        );
        let props: Value = serde_norway::from_str("Binary: api").unwrap();
        assert_eq!(binary(&props).as_deref(), Some("api"));
    }
}
