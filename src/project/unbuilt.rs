//! Code paths a build step makes. `CodeUri: target/app.jar` or `CodeUri: dist/` name the output
//! of a tool lamb does not run (Maven, Gradle, cargo-lambda, a package.json build script): in a
//! fresh checkout they do not exist yet, which is no mistake in the template. `lamb validate`
//! warns about them; a build, sync or deploy, which need the code, fail naming the step to run.

use std::path::{Component, Path};

/// The output directories build tools write, each with the tools that write it there, told
/// apart by the file that marks their project (looked for next to the output directory).
const OUTPUTS: &[(&str, &[(&str, &str)])] = &[
    ("target", &[("pom.xml", "mvn package"), ("Cargo.toml", "cargo lambda build --release")]),
    (
        "build",
        &[
            ("build.gradle", "gradle build"),
            ("build.gradle.kts", "gradle build"),
            ("package.json", "npm run build"),
            ("Makefile", "make"),
        ],
    ),
    ("dist", &[("package.json", "npm run build"), ("tsconfig.json", "npx tsc"), ("Makefile", "make")]),
    ("out", &[("package.json", "npm run build"), ("tsconfig.json", "npx tsc"), ("Makefile", "make")]),
    ("bin", &[("Makefile", "make")]),
];

/// The step that makes the missing code path `raw` (relative to the template's directory
/// `dir`): the command, with the directory to run it in when that is not `dir`. None when no
/// component of `raw` is a build output directory next to a project file that makes it: then
/// the path is more likely a typo, which stays an error everywhere.
pub fn step_making(dir: &Path, raw: &str) -> Option<String> {
    let parts: Vec<&str> = Path::new(raw)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let Some((_, tools)) = OUTPUTS.iter().find(|(out, _)| out == part) else { continue };
        let base = parts[..i].join("/");
        let Some((_, command)) = tools.iter().find(|(marker, _)| makes(&dir.join(&base), marker)) else {
            continue;
        };
        return Some(if base.is_empty() { format!("`{command}`") } else { format!("`{command}` in `{base}/`") });
    }
    None
}

/// Whether `dir` holds the project file `marker`; for package.json, one with a build script.
fn makes(dir: &Path, marker: &str) -> bool {
    let path = dir.join(marker);
    if marker != "package.json" {
        return path.is_file();
    }
    let Ok(text) = std::fs::read_to_string(&path) else { return false };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["scripts"]["build"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_is_named_by_the_output_directory_and_the_project_file_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("pom.xml", "<project/>");
        write("HelloFn/build.gradle", "");
        write("web/package.json", r#"{"scripts": {"build": "tsc"}}"#);
        write("rs/Cargo.toml", "");
        write("plain/package.json", r#"{"scripts": {"test": "jest"}}"#);
        let step = |raw: &str| step_making(d.path(), raw);
        assert_eq!(step("target/app.jar").as_deref(), Some("`mvn package`"));
        assert_eq!(step("./target/app-1.0.jar").as_deref(), Some("`mvn package`"));
        assert_eq!(step("HelloFn/build/distributions/HelloFn.zip").as_deref(), Some("`gradle build` in `HelloFn/`"));
        assert_eq!(step("web/dist/").as_deref(), Some("`npm run build` in `web/`"));
        assert_eq!(step("rs/target/lambda/fn/").as_deref(), Some("`cargo lambda build --release` in `rs/`"));
        // No build script, no project file, or no output directory: a typo as far as lamb knows.
        assert_eq!(step("plain/dist"), None);
        assert_eq!(step("other/target/app.jar"), None);
        assert_eq!(step("src/hello"), None);
    }
}
