//! The dependency cache: installs (pip, npm) kept under `.lamb/deps`, keyed by what decides
//! their result: the manifest files, the local paths they refer to, the runtime and the
//! architecture. Editing code reuses the installed dependencies; editing requirements.txt or
//! package.json reinstalls them for the functions that use that manifest only. Concurrent builds
//! needing the same install wait for one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::BuildError;
use crate::fingerprint::{self, WalkOptions, hex};
use crate::project::Arch;

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
    pub fn get_or_install(
        &self,
        key: &str,
        force: bool,
        install: impl FnOnce(&Path) -> Result<(), BuildError>,
    ) -> Result<(PathBuf, bool), BuildError> {
        let final_dir = self.dir.join(key);
        if !force && final_dir.join(".complete").is_file() {
            return Ok((final_dir, false));
        }
        let cell = {
            let mut map = self.inflight.lock().expect("deps cache lock poisoned");
            map.entry(key.to_string()).or_default().clone()
        };
        // The install this call ran itself, when it failed: its error as it is. Callers that
        // shared another's install get its message.
        let mut own_error = None;
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
            outcome.map_err(|e| {
                let message = e.to_string();
                own_error = Some(e);
                message
            })
        });
        match (result, own_error) {
            (_, Some(e)) => Err(e),
            (Ok(dir), None) => Ok((dir.clone(), ran)),
            (Err(message), None) => Err(BuildError::SharedInstall { message: message.clone() }),
        }
    }
}

/// A dependency manifest's text; `None` when there is none. One that exists but cannot be
/// read as text is an error: building without its dependencies would deploy a broken function.
pub fn read_manifest(path: &Path) -> Result<Option<String>, BuildError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(BuildError::Manifest {
            file: path.to_path_buf(),
            line: None,
            problem: "not UTF-8 text; save it as UTF-8".into(),
        }),
        Err(e) => Err(BuildError::Manifest {
            file: path.to_path_buf(),
            line: None,
            problem: format!("cannot read: {e}; fix its permissions or remove it"),
        }),
    }
}

/// What a dependency install depends on, hashed into its cache key.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(kind: &str, runtime: &str, arch: Arch) -> Self {
        let mut h = Sha256::new();
        // The version changes whenever what an install leaves behind does (v3: pip installs
        // without direct_url.json), so older cached installs are not reused.
        h.update(format!("lamb-deps-v3\0{kind}\0{runtime}\0{}\0", arch.as_str()));
        KeyBuilder(h)
    }

    pub fn bytes(&mut self, label: &str, bytes: &[u8]) {
        self.0.update((label.len() as u64).to_le_bytes());
        self.0.update(label.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Adds a local file or directory a manifest refers to (`./lib`, `-r other.txt`,
    /// `file:../shared`): its content decides the install as much as the manifest does.
    pub fn path(&mut self, path: &Path, project_root: &Path) -> Result<(), BuildError> {
        let label = path.to_string_lossy().into_owned();
        if path.is_dir() {
            let opts = WalkOptions {
                project_root: project_root.to_path_buf(),
                gitignore: true,
                extra_excludes: vec!["node_modules".into(), "build".into(), "*.egg-info".into()],
                follow_external_symlinks: false,
                skip_dirs: Vec::new(),
            };
            let tree = fingerprint::hash_entries(&fingerprint::walk(path, &opts)?, 1)?;
            self.bytes(&label, &tree.digest);
        } else {
            let bytes = fs::read(path).map_err(|e| BuildError::Manifest {
                file: path.to_path_buf(),
                line: None,
                problem: format!("is referenced by a dependency manifest but cannot be read: {e}; fix the reference"),
            })?;
            self.bytes(&label, &bytes);
        }
        Ok(())
    }

    pub fn finish(self, kind: &str) -> String {
        format!("{kind}-{}", &hex(&self.0.finalize())[..24])
    }
}

/// Shared inputs of dependency installs.
pub struct DepsContext<'a> {
    pub cache: &'a DepsCache,
    pub project_root: &'a Path,
    /// Reinstall even when the cache has the install (`lamb build --force`).
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_kind_runtime_arch_and_content() {
        let key = |rt, arch, bytes: &[u8]| {
            let mut k = KeyBuilder::new("python", rt, arch);
            k.bytes("requirements.txt", bytes);
            k.finish("python")
        };
        let base = key("python3.12", Arch::X86_64, b"six==1.16.0\n");
        assert_eq!(base, key("python3.12", Arch::X86_64, b"six==1.16.0\n"));
        assert_ne!(base, key("python3.11", Arch::X86_64, b"six==1.16.0\n"));
        assert_ne!(base, key("python3.12", Arch::Arm64, b"six==1.16.0\n"));
        assert_ne!(base, key("python3.12", Arch::X86_64, b"six==1.17.0\n"));
        assert!(base.starts_with("python-"));
    }

    #[test]
    fn key_follows_referenced_directories() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("lib")).unwrap();
        fs::write(d.path().join("lib/x.py"), "V = 1").unwrap();
        let key = || {
            let mut k = KeyBuilder::new("python", "python3.12", Arch::X86_64);
            k.path(&d.path().join("lib"), d.path()).unwrap();
            k.finish("python")
        };
        let before = key();
        fs::write(d.path().join("lib/x.py"), "V = 2").unwrap();
        assert_ne!(key(), before);
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
                        .get_or_install("k", false, |tmp| {
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
        // A later process finds it complete without running the installer...
        let again = DepsCache::new(d.path().to_path_buf());
        let (_, installed) = again.get_or_install("k", false, |_| panic!("must be cached")).unwrap();
        assert!(!installed);
        // ...unless asked to reinstall.
        let forced = DepsCache::new(d.path().to_path_buf());
        let (_, installed) = forced
            .get_or_install("k", true, |tmp| {
                fs::write(tmp.join("y"), "y").unwrap();
                Ok(())
            })
            .unwrap();
        assert!(installed && d.path().join("k/y").is_file());

        let err = again.get_or_install("bad", false, |_| Err(BuildError::Properties("nope".into()))).unwrap_err();
        assert!(err.to_string().contains("nope"));
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("k")]);
    }
}
