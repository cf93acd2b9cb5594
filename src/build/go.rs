//! `BuildMethod: go1.x` (or Runtime go1.x): `go build` for Linux and the function's
//! architecture, as SAM's go_modules builder does it, in a scratch copy of the sources. The
//! executable is `bootstrap` for a custom runtime (`provided.al2023`, `provided.al2`), else
//! the Handler's name. Settings beyond SAM's, each for one reason: `CGO_ENABLED=0` (a static
//! binary runs on any Lambda image), `-trimpath` and `-buildvcs=false` (no build paths or git
//! state in the binary, so two checkouts give the same zip), `-tags lambda.norpc` for custom
//! runtimes (aws-lambda-go's RPC mode only serves the retired go1.x runtime).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::{BuildError, Builder, Built, Prepared, Target, tools};
use crate::fingerprint::FileEntry;
use crate::project::Arch;

pub(super) const INSTALL: &str = "install Go 1.19 or newer (e.g. `apt install golang-go`, or from go.dev/dl)";

/// The `go` on PATH and its version (part of the build key: another Go compiles other bytes),
/// probed once per process.
pub fn locate() -> Result<(PathBuf, String), BuildError> {
    static VERSION: OnceLock<Result<String, String>> = OnceLock::new();
    let version =
        VERSION.get_or_init(|| match tools::run(Command::new("go").args(["env", "GOVERSION"]), "go", INSTALL) {
            Ok(v) => Ok(v.trim().to_string()),
            Err(BuildError::MissingTool { .. }) => Err(String::new()),
            Err(e) => Err(e.to_string()),
        });
    match version {
        Ok(v) => Ok((PathBuf::from("go"), v.clone())),
        Err(e) if e.is_empty() => Err(BuildError::MissingTool { tool: "go".into(), install: INSTALL.into() }),
        Err(e) => Err(BuildError::Properties(format!("cannot tell which Go is installed: {e}"))),
    }
}

pub fn goarch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// The executable's name: Lambda runs `bootstrap` for a custom runtime, the Handler for go1.x.
pub fn executable(runtime: &str, handler: Option<&str>) -> String {
    match handler {
        Some(h) if runtime == "go1.x" && !h.is_empty() && !h.contains('/') => h.to_string(),
        _ => "bootstrap".to_string(),
    }
}

/// The `go build` arguments for a target.
pub fn arguments(runtime: &str, output: &std::path::Path, package: &str) -> Vec<String> {
    let mut args = vec!["build".to_string(), "-trimpath".into(), "-buildvcs=false".into()];
    if runtime.starts_with("provided") {
        args.extend(["-tags".into(), "lambda.norpc".into()]);
    }
    args.extend(["-o".into(), output.to_string_lossy().into_owned(), package.to_string()]);
    args
}

/// `go build` needs a module: a code directory without go.mod is refused before looking for
/// Go, so the message says what the project lacks rather than what the machine does.
pub fn check_module(t: &Target, files: &[FileEntry]) -> Result<(), BuildError> {
    if files.iter().any(|f| f.rel == "go.mod") {
        return Ok(());
    }
    Err(BuildError::Manifest {
        file: t.source.join("go.mod"),
        line: None,
        problem: format!(
            "missing: `{}` is built with `go build`, which needs a module; run `go mod init <name>` in {}",
            t.logical_id,
            t.source.display()
        ),
    })
}

pub fn build(b: &Builder, p: &Prepared, runtime: &str) -> Result<Built, BuildError> {
    let t = &p.target;
    // As SAM does: the code directory's package, or else the one in the Handler's directory.
    let top_level_go = p.files.iter().any(|f| !f.rel.contains('/') && f.rel.ends_with(".go"));
    let package = match t.handler.as_deref() {
        Some(h) if !top_level_go && p.files.iter().any(|f| f.rel.starts_with(&format!("{h}/"))) => format!("./{h}"),
        _ => ".".to_string(),
    };
    let (work, src, out) = b.scratch(p)?;
    let name = executable(runtime, t.handler.as_deref());
    let mut cmd = Command::new("go");
    cmd.args(arguments(runtime, &out.join(&name), &package))
        .env("GOOS", "linux")
        .env("GOARCH", goarch(t.arch))
        .env("CGO_ENABLED", "0")
        .current_dir(&src);
    tools::run(&mut cmd, "go", INSTALL).map_err(|e| match e {
        BuildError::ToolFailed { run, .. } => BuildError::ToolFailed {
            run,
            fix: Some(format!("fix the Go code of `{}` in {}", t.logical_id, t.source.display())),
        },
        other => other,
    })?;
    let artifact = b.pack_dir(p, &work, &out, || BuildError::NoOutput {
        step: "`go build`".into(),
        fix: "check that the code directory holds a `main` package".into(),
    })?;
    Ok(Built { artifact, deps: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn custom_runtimes_get_bootstrap_and_norpc_go1x_the_handler() {
        assert_eq!(executable("provided.al2023", Some("bootstrap")), "bootstrap");
        assert_eq!(executable("provided.al2", Some("main")), "bootstrap");
        assert_eq!(executable("go1.x", Some("hello")), "hello");
        assert_eq!(executable("go1.x", None), "bootstrap");
        let args = arguments("provided.al2023", Path::new("/out/bootstrap"), ".");
        assert_eq!(
            args,
            ["build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-o", "/out/bootstrap", "."]
        );
        let args = arguments("go1.x", Path::new("/out/hello"), "./hello");
        assert!(!args.contains(&"lambda.norpc".to_string()), "{args:?}");
        assert_eq!(goarch(Arch::Arm64), "arm64");
        assert_eq!(goarch(Arch::X86_64), "amd64");
    }
}
