//! The artifact store: zips named by their build key under `.lamb/artifacts`, each with a small
//! JSON file describing it. The zip is renamed into place before its description is written, so
//! a description always stands for a complete zip.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::package::Artifact;
use crate::state::{self, StateError};

use super::BuildError;

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Store { dir }
    }

    pub fn zip_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.zip"))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The artifact built for `key`, if it is there and intact. Its zip is the store's own
    /// `<key>.zip`, or `external` for a zip the project ships prebuilt (`CodeUri: app.zip`);
    /// a description naming any other file (a copied `.lamb/`, say) does not count.
    pub fn get(&self, key: &str, external: Option<&Path>) -> Option<Artifact> {
        let mut artifact: Artifact = state::read_json(&self.meta_path(key)).ok().flatten()?;
        let expected = external.map_or_else(|| self.zip_path(key), Path::to_path_buf);
        if artifact.path != expected {
            if external.is_some() {
                return None;
            }
            artifact.path = expected;
        }
        let size = fs::metadata(&artifact.path).ok()?.len();
        (size == artifact.size).then_some(artifact)
    }

    pub fn put_meta(&self, key: &str, artifact: &Artifact) -> Result<(), BuildError> {
        let path = self.meta_path(key);
        state::write_json(&path, artifact).map_err(|e: StateError| BuildError::Io {
            what: format!("cannot record the artifact in {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Deletes artifacts whose key is not in `keep`. Returns how many were removed.
    pub fn retain(&self, keep: &HashSet<String>) -> usize {
        let Ok(read) = fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".zip").or_else(|| name.strip_suffix(".json")) else { continue };
            if !keep.contains(key) && fs::remove_file(e.path()).is_ok() && name.ends_with(".json") {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: PathBuf, size: u64) -> Artifact {
        Artifact { path, sha256: "00".into(), code_sha256: "AA==".into(), size, unzipped_size: 1, files: 1 }
    }

    #[test]
    fn a_description_pointing_elsewhere_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().join("artifacts"));
        fs::create_dir_all(&store.dir).unwrap();
        fs::write(store.zip_path("k"), b"zip!").unwrap();
        // Written by the same project moved elsewhere (`cp -r`): the store's own zip is used.
        store.put_meta("k", &artifact(PathBuf::from("/elsewhere/.lamb/artifacts/k.zip"), 4)).unwrap();
        assert_eq!(store.get("k", None).unwrap().path, store.zip_path("k"));
        // A prebuilt zip must be the one the template names now.
        let zip = d.path().join("app.zip");
        fs::write(&zip, b"zip!").unwrap();
        store.put_meta("z", &artifact(PathBuf::from("/other/app.zip"), 4)).unwrap();
        assert!(store.get("z", Some(&zip)).is_none());
        store.put_meta("z", &artifact(zip.clone(), 4)).unwrap();
        assert_eq!(store.get("z", Some(&zip)).unwrap().path, zip);
        // A zip of the wrong size (truncated) is a miss.
        fs::write(store.zip_path("k"), b"zi").unwrap();
        assert!(store.get("k", None).is_none());
    }
}
