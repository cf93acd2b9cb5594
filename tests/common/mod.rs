//! Test helpers: throwaway projects in temp dirs, running the real `lamb` binary on them, and
//! the AWS emulator.
#![allow(dead_code)]

pub mod daemon;
pub mod emulator;
pub mod faults;
pub mod server;
pub mod terminal;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn lamb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lamb")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A project in a temp dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn empty() -> Self {
        Project { dir: tempfile::tempdir().unwrap() }
    }

    /// A copy of `examples/<name>`, without any `.lamb/` a local run left there.
    pub fn example(name: &str) -> Self {
        let p = Project::empty();
        copy_tree(&repo_root().join("examples").join(name), p.path());
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file; one named `bootstrap` is made executable, as a custom runtime's build
    /// leaves it (Lambda refuses to start one that is not).
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        if p.file_name().is_some_and(|n| n == "bootstrap") {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Runs lamb in the project directory.
    pub fn lamb(&self, args: &[&str]) -> Run {
        self.lamb_env(args, &[])
    }

    /// Runs lamb in the project directory with extra environment (the emulator's).
    pub fn lamb_env(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut cmd = Command::new(lamb_bin());
        cmd.args(args).current_dir(self.path()).env_remove("LAMB_LOG").env_remove("AWS_PROFILE").env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    }

    /// `lamb build -o json`, parsed; the result is checked to match `expect_ok`.
    pub fn build_json(&self, extra: &[&str]) -> (serde_json::Value, Run) {
        let mut args = vec!["build", "-o", "json"];
        args.extend_from_slice(extra);
        let run = self.lamb(&args);
        let v: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): stdout={} stderr={}", run.stdout, run.stderr));
        (v, run)
    }
}

/// Status of each resource in a build report, by id.
pub fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect()
}

pub fn status_of(report: &serde_json::Value, id: &str) -> String {
    resource(report, id)["status"].as_str().unwrap().to_string()
}

pub fn resource<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report}"))
}

pub fn code_sha(report: &serde_json::Value, id: &str) -> String {
    resource(report, id)["artifact"]["code_sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no artifact"))
        .to_string()
}

/// The names and unix modes of the entries of a zip.
pub fn zip_entries(path: &Path) -> Vec<(String, u32)> {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let f = z.by_index(i).unwrap();
            (f.name().unwrap().to_string(), f.unix_mode().unwrap_or(0) & 0o777)
        })
        .collect()
}

pub fn zip_names(path: &Path) -> Vec<String> {
    zip_entries(path).into_iter().map(|(n, _)| n).collect()
}

pub fn artifact_path(report: &serde_json::Value, id: &str) -> PathBuf {
    PathBuf::from(resource(report, id)["artifact"]["path"].as_str().unwrap())
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Copies a directory tree, keeping exec bits, leaving out `.lamb`.
pub fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == ".lamb" || name == "node_modules" {
            continue;
        }
        let dst = to.join(&name);
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Every process below `pid` (its children, theirs, ...), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let children = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// Sets every file's mtime under `dir` to now+1h without changing content.
pub fn touch_all(dir: &Path) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".lamb" {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            touch_all(&e.path());
        } else if ft.is_file() {
            fs::File::options().write(true).open(e.path()).unwrap().set_modified(later).unwrap();
        }
    }
}

/// Writes a minimal pure-Python wheel `name-version-py3-none-any.whl` into `dir`, so tests can
/// exercise pip without the network.
pub fn make_wheel(dir: &Path, name: &str, version: &str) -> PathBuf {
    use std::io::Write;
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let info = format!("{name}-{version}.dist-info");
    let files = [
        (format!("{name}/__init__.py"), format!("VERSION = '{version}'\n")),
        (format!("{info}/METADATA"), format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: lamb-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".into(),
        ),
    ];
    let mut record = String::new();
    for (n, text) in &files {
        z.start_file(n.as_str(), opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
        record.push_str(&format!("{n},,\n"));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    z.start_file(format!("{info}/RECORD"), opts).unwrap();
    z.write_all(record.as_bytes()).unwrap();
    z.finish().unwrap();
    path
}
