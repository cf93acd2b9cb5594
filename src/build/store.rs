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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn zip_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.zip"))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The artifact built for `key`, if it is there and intact.
    pub fn get(&self, key: &str) -> Option<Artifact> {
        let artifact: Artifact = state::read_json(&self.meta_path(key)).ok().flatten()?;
        let size = fs::metadata(&artifact.path).ok()?.len();
        (size == artifact.size).then_some(artifact)
    }

    pub fn put_meta(&self, key: &str, artifact: &Artifact) -> Result<(), BuildError> {
        state::write_json(&self.meta_path(key), artifact).map_err(|e: StateError| BuildError::Io {
            what: "cannot record the artifact".into(),
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
