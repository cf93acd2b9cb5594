//! Java functions with a `build.gradle` or `build.gradle.kts` (Runtime java*, or `BuildMethod:
//! java21` and the like), as SAM's java_gradle builder does it: the project's Gradle wrapper
//! (`gradlew` in the code directory or a parent up to the project root) or else `gradle` on
//! PATH runs `build` in the code directory, so a multi-project build finds its settings and
//! Gradle's own caches make the next build incremental; `build/` and `.gradle/` are not part of
//! the code. An init script of lamb's adds one task to the function's project that copies its
//! main classes and resources to the artifact's top and its runtime classpath jars to `lib/`,
//! which is what Lambda's Java runtime puts on the classpath.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildError, Builder, Built, Prepared, tools};

pub(super) const INSTALL: &str = "add the Gradle wrapper to the project (`gradle wrapper`, then commit gradlew and gradle/wrapper/), or install Gradle and a JDK for the function's Java version";

/// The task the init script adds, and the properties that tell it where.
const TASK: &str = "lambArtifacts";

/// lamb's init script: in the project whose directory is `lambProject`, once the `java` plugin
/// is applied, a task that runs `build` and then syncs the main output and the runtime
/// classpath into `lambArtifacts` (classes at the top, jars in `lib/`).
const INIT_SCRIPT: &str = r#"// Written by lamb for one build: copies what Lambda runs out of the function's project.
def lambProject = gradle.startParameter.projectProperties['lambProject']
def lambArtifacts = gradle.startParameter.projectProperties['lambArtifacts']
allprojects { p ->
    if (p.projectDir.canonicalPath != lambProject) {
        return
    }
    p.plugins.withId('java') {
        def lambConfigure = { Sync t ->
            t.dependsOn 'build'
            t.into lambArtifacts
            t.from p.sourceSets.main.output
            t.into('lib') { spec -> spec.from p.configurations.runtimeClasspath }
        }
        // Lazily where Gradle can (4.9 and later), else the older eager way.
        if (p.tasks.metaClass.respondsTo(p.tasks, 'register', String, Class, Action)) {
            p.tasks.register('lambArtifacts', Sync, lambConfigure as Action)
        } else {
            p.task('lambArtifacts', type: Sync).configure(lambConfigure)
        }
    }
}
"#;

/// The Gradle to run for a project in `source`: the nearest `gradlew` from `source` up to
/// `project_root` (SAM's order), else `gradle` on PATH.
pub fn wrapper(source: &Path, project_root: &Path) -> Option<PathBuf> {
    let mut dir = Some(source);
    while let Some(d) = dir {
        let w = d.join("gradlew");
        if w.is_file() {
            return Some(w);
        }
        if d == project_root {
            break;
        }
        dir = d.parent();
    }
    None
}

/// Which Gradle builds `source` and what identifies it for the build key: the wrapper with
/// the distribution it downloads, or the `gradle` on PATH (resolved, so another install is
/// another key).
pub fn locate(source: &Path, project_root: &Path) -> Result<(PathBuf, String), BuildError> {
    if let Some(w) = wrapper(source, project_root) {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&w).map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o111 == 0 {
            return Err(BuildError::Properties(format!(
                "{} is not executable; `chmod +x {}` (and commit it so, e.g. `git update-index --chmod=+x gradlew`)",
                w.display(),
                w.display()
            )));
        }
        let props = w.parent().map(|d| d.join("gradle/wrapper/gradle-wrapper.properties"));
        let dist = props
            .and_then(|p| fs::read_to_string(p).ok())
            .and_then(|t| t.lines().find(|l| l.starts_with("distributionUrl")).map(str::to_string))
            .unwrap_or_default();
        return Ok((w.clone(), format!("{} {dist}", w.display())));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let gradle = std::env::split_paths(&path).map(|d| d.join("gradle")).find(|p| p.is_file());
    match gradle {
        Some(g) => {
            let id = fs::canonicalize(&g).unwrap_or_else(|_| g.clone()).display().to_string();
            Ok((g, id))
        }
        None => Err(BuildError::MissingTool { tool: "gradle".into(), install: INSTALL.into() }),
    }
}

/// The Gradle command line for a build of the project in `source` into `artifacts`.
pub fn arguments(init: &Path, source: &Path, artifacts: &Path) -> Vec<String> {
    vec![
        "--quiet".into(),
        "--console=plain".into(),
        "--init-script".into(),
        init.display().to_string(),
        format!("-PlambProject={}", source.display()),
        format!("-PlambArtifacts={}", artifacts.display()),
        TASK.into(),
    ]
}

pub fn build(b: &Builder, p: &Prepared) -> Result<Built, BuildError> {
    let t = &p.target;
    let (gradle, _) =
        p.tool.clone().ok_or_else(|| BuildError::MissingTool { tool: "gradle".into(), install: INSTALL.into() })?;
    let (work, out) = b.work_area(p)?;
    let io = |what: String| move |source| BuildError::Io { what, source };
    let init = work.join("lamb-init.gradle");
    fs::write(&init, INIT_SCRIPT).map_err(io(format!("cannot write {}", init.display())))?;
    // Gradle compares the project's canonical directory.
    let source = fs::canonicalize(&t.source).map_err(io(format!("cannot read {}", t.source.display())))?;
    let mut cmd = Command::new(&gradle);
    cmd.args(arguments(&init, &source, &out)).current_dir(&source);
    tools::run(&mut cmd, "gradle", INSTALL).map_err(|e| match e {
        BuildError::ToolFailed { run, .. } => {
            let fix = if run.output.contains(&format!("'{TASK}' not found")) {
                format!(
                    "apply the `java` plugin in {}'s build file (plugins {{ id 'java' }}), so it has classes for Lambda",
                    source.display()
                )
            } else {
                format!("fix the Gradle build or the Java code of `{}` in {} and save again", t.logical_id, source.display())
            };
            BuildError::ToolFailed { run, fix: Some(fix) }
        }
        other => other,
    })?;
    let artifact = b.pack_dir(p, &work, &out, || BuildError::NoOutput {
        step: "`gradle build`".into(),
        fix: "check that the project compiles the function's classes (src/main/java)".into(),
    })?;
    Ok(Built { artifact, deps: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_wrapper_up_to_the_project_root_wins() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("app");
        let func = root.join("functions/hello");
        fs::create_dir_all(&func).unwrap();
        assert_eq!(wrapper(&func, &root), None);
        // A wrapper above the project root is another project's.
        fs::write(d.path().join("gradlew"), "").unwrap();
        assert_eq!(wrapper(&func, &root), None);
        fs::write(root.join("gradlew"), "").unwrap();
        assert_eq!(wrapper(&func, &root), Some(root.join("gradlew")));
        fs::write(func.join("gradlew"), "").unwrap();
        assert_eq!(wrapper(&func, &root), Some(func.join("gradlew")));
    }

    #[test]
    fn the_wrapper_and_its_distribution_identify_the_build() {
        let d = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(d.path().join("gradle/wrapper")).unwrap();
        fs::write(d.path().join("gradlew"), "").unwrap();
        let Err(BuildError::Properties(msg)) = locate(d.path(), d.path()) else { panic!("a wrapper that cannot run") };
        assert!(msg.contains("chmod +x"), "{msg}");
        fs::set_permissions(d.path().join("gradlew"), fs::Permissions::from_mode(0o755)).unwrap();
        let props = d.path().join("gradle/wrapper/gradle-wrapper.properties");
        fs::write(&props, "distributionBase=GRADLE_USER_HOME\ndistributionUrl=https\\://x/gradle-8.10-bin.zip\n")
            .unwrap();
        let (bin, id) = locate(d.path(), d.path()).unwrap();
        assert_eq!(bin, d.path().join("gradlew"));
        assert!(id.ends_with("distributionUrl=https\\://x/gradle-8.10-bin.zip"), "{id}");
        fs::write(&props, "distributionUrl=https\\://x/gradle-8.11-bin.zip\n").unwrap();
        assert_ne!(locate(d.path(), d.path()).unwrap().1, id);
    }

    #[test]
    fn the_task_is_told_which_project_and_where_to_put_the_artifact() {
        let args = arguments(Path::new("/w/init.gradle"), Path::new("/p/hello"), Path::new("/w/out"));
        assert_eq!(
            args,
            [
                "--quiet",
                "--console=plain",
                "--init-script",
                "/w/init.gradle",
                "-PlambProject=/p/hello",
                "-PlambArtifacts=/w/out",
                "lambArtifacts"
            ]
        );
        assert!(INIT_SCRIPT.contains(&format!("register('{TASK}', Sync")));
    }
}
