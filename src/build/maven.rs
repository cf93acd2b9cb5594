//! Java functions with a `pom.xml` (Runtime java*, or `BuildMethod: java21` and the like): as
//! SAM's java_maven builder does it, `mvn clean install` in a scratch copy of the sources, then
//! the runtime dependencies copied out (`dependency:copy-dependencies`, scope runtime, group id
//! prefixed); the zip holds the compiled classes at its top and the dependency jars in `lib/`,
//! which is what Lambda's Java runtime puts on the classpath.

use std::process::Command;

use super::{BuildError, Builder, Built, Prepared, tools};

pub(super) const INSTALL: &str =
    "install Maven and a JDK for the function's Java version (e.g. `apt install maven default-jdk-headless`)";

fn mvn(src: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("mvn");
    cmd.args(["--batch-mode", "--quiet", "-Dstyle.color=never"]).args(args).current_dir(src);
    cmd
}

pub fn build(b: &Builder, p: &Prepared) -> Result<Built, BuildError> {
    let t = &p.target;
    let pom = t.source.join("pom.xml");
    if !p.files.iter().any(|f| f.rel == "pom.xml") {
        return Err(BuildError::Manifest {
            file: pom,
            line: None,
            problem: format!(
                "missing: lamb builds `{}` with Maven, which needs a pom.xml in its CodeUri; point CodeUri at the Maven project (a Gradle project builds with BuildMethod makefile), or at a built .jar",
                t.logical_id
            ),
        });
    }
    let (work, src, out) = b.scratch(p)?;
    let failed = |e: BuildError| match e {
        BuildError::ToolFailed { run, .. } => BuildError::InstallFailed {
            tool: "maven",
            manifest: pom.clone(),
            run,
            fix: format!("fix the pom.xml or the Java code of `{}` and save again", t.logical_id),
        },
        other => other,
    };
    tools::run(&mut mvn(&src, &["clean", "install"]), "mvn", INSTALL).map_err(failed)?;
    let copy = ["dependency:copy-dependencies", "-DincludeScope=runtime", "-Dmdep.prependGroupId=true"];
    tools::run(&mut mvn(&src, &copy), "mvn", INSTALL).map_err(failed)?;
    let classes = src.join("target/classes");
    if !classes.is_dir() {
        return Err(BuildError::NoOutput {
            step: "`mvn clean install` made no target/classes, and".into(),
            fix: "check that pom.xml builds a jar with the function's classes".into(),
        });
    }
    // Onto the empty artifacts directory: the classes become the zip's top.
    std::fs::rename(&classes, &out)
        .map_err(|source| BuildError::Io { what: format!("cannot move {}", classes.display()), source })?;
    let deps = src.join("target/dependency");
    if deps.is_dir() {
        std::fs::rename(&deps, out.join("lib"))
            .map_err(|source| BuildError::Io { what: format!("cannot move {}", deps.display()), source })?;
    }
    let artifact = b.pack_dir(p, &work, &out, || BuildError::NoOutput {
        step: "`mvn clean install`".into(),
        fix: "check that pom.xml compiles the function's classes".into(),
    })?;
    Ok(Built { artifact, deps: None })
}
