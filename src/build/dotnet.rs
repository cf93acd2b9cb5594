//! .NET functions (Runtime dotnet*, or `BuildMethod: dotnet8` and the like), as SAM's
//! dotnet_clipackage builder does it: `dotnet lambda package` (the Amazon.Lambda.Tools global
//! tool) in the code directory, for Linux on the function's architecture (`--runtime
//! linux-x64|linux-arm64` through `--msbuild-parameters`); its zip is unpacked and packed
//! again the way lamb packs every artifact, so equal content gives an equal CodeSha256.
//! MSBuild's `bin/` and `obj/` in the code directory are not part of the code.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::{BuildError, Builder, Built, Prepared, tools};
use crate::project::Arch;

pub(super) const INSTALL: &str = "install the .NET SDK of the function's runtime (dot.net/download), then Amazon.Lambda.Tools with `dotnet tool install -g Amazon.Lambda.Tools`";
const INSTALL_TOOLS: &str =
    "install it with `dotnet tool install -g Amazon.Lambda.Tools` and make sure ~/.dotnet/tools is on PATH";

/// What the probe for .NET found.
enum Probe {
    Found(String),
    Missing { tool: &'static str, install: &'static str },
    Broken(String),
}

/// The .NET SDK's version (part of the build key), after checking that `dotnet lambda` runs;
/// probed once per process.
pub fn locate() -> Result<(PathBuf, String), BuildError> {
    static FOUND: OnceLock<Probe> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let version = match tools::run(Command::new("dotnet").arg("--version"), "dotnet", INSTALL) {
            Ok(v) => v.trim().to_string(),
            Err(BuildError::MissingTool { .. }) => return Probe::Missing { tool: "dotnet", install: INSTALL },
            Err(e) => return Probe::Broken(e.to_string()),
        };
        match tools::run(Command::new("dotnet").args(["lambda", "--help"]), "dotnet", INSTALL) {
            Ok(_) => Probe::Found(version),
            Err(_) => Probe::Missing { tool: "Amazon.Lambda.Tools", install: INSTALL_TOOLS },
        }
    });
    match found {
        Probe::Found(v) => Ok((PathBuf::from("dotnet"), v.clone())),
        Probe::Missing { tool, install } => {
            Err(BuildError::MissingTool { tool: tool.to_string(), install: install.to_string() })
        }
        Probe::Broken(e) => Err(BuildError::Properties(format!("cannot tell which .NET SDK is installed: {e}"))),
    }
}

/// The `dotnet lambda package` arguments for a build into `package`.
pub fn arguments(arch: Arch, package: &std::path::Path) -> Vec<String> {
    let rid = match arch {
        Arch::X86_64 => "linux-x64",
        Arch::Arm64 => "linux-arm64",
    };
    vec![
        "lambda".into(),
        "package".into(),
        "--output-package".into(),
        package.display().to_string(),
        "--msbuild-parameters".into(),
        format!("--runtime {rid}"),
    ]
}

pub fn build(b: &Builder, p: &Prepared) -> Result<Built, BuildError> {
    let t = &p.target;
    if !p.files.iter().any(|f| f.rel.ends_with(".csproj") || f.rel.ends_with(".fsproj")) {
        return Err(BuildError::Manifest {
            file: t.source.clone(),
            line: None,
            problem: format!(
                "no .csproj or .fsproj in the code directory of `{}`; point CodeUri at the directory of the function's project",
                t.logical_id
            ),
        });
    }
    let (work, out) = b.work_area(p)?;
    let io = |what: String| move |source| BuildError::Io { what, source };
    let package = work.join("package.zip");
    let mut cmd = Command::new("dotnet");
    cmd.args(arguments(t.arch, &package)).current_dir(&t.source);
    tools::run(&mut cmd, "dotnet", INSTALL).map_err(|e| match e {
        BuildError::ToolFailed { run, .. } => BuildError::ToolFailed {
            run,
            fix: Some(format!(
                "fix the .NET project or code of `{}` in {} and save again",
                t.logical_id,
                t.source.display()
            )),
        },
        other => other,
    })?;
    crate::package::unpack(&package, &out)?;
    fs::remove_file(&package).map_err(io(format!("cannot remove {}", package.display())))?;
    let artifact = b.pack_dir(p, &work, &out, || BuildError::NoOutput {
        step: "`dotnet lambda package`".into(),
        fix: "check the project file".into(),
    })?;
    Ok(Built { artifact, deps: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_architecture_picks_the_runtime_identifier() {
        assert_eq!(
            arguments(Arch::Arm64, Path::new("/w/p.zip")),
            ["lambda", "package", "--output-package", "/w/p.zip", "--msbuild-parameters", "--runtime linux-arm64"]
        );
        assert_eq!(arguments(Arch::X86_64, Path::new("/w/p.zip"))[5], "--runtime linux-x64");
    }
}
