//! A function's or layer's code as Lambda sees it: lamb's built zip unpacked once into
//! `.lamb/local/code/<sha256>/` (content-addressed, so an unchanged build is never unpacked
//! again, and a warm process keeps its directory while a new build gets another).

use std::fs;
use std::path::{Path, PathBuf};

use super::LocalError;
use crate::package::PackageError;

/// Unpacks `zip` (whose content hash is `sha256`) under `dir`, unless it is there already;
/// returns the directory.
pub fn unpacked(zip: &Path, sha256: &str, dir: &Path) -> Result<PathBuf, LocalError> {
    let target = dir.join(sha256);
    if target.join(".complete").is_file() {
        return Ok(target);
    }
    let io = |what: String| move |source| LocalError::Io { what, source };
    fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let tmp = dir.join(format!(".tmp-{sha256}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let result = unpack_into(zip, &tmp);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::write(tmp.join(".complete"), b"").map_err(io(format!("cannot write in {}", tmp.display())))?;
    let _ = fs::remove_dir_all(&target);
    fs::rename(&tmp, &target).map_err(io(format!("cannot move the unpacked code to {}", target.display())))?;
    Ok(target)
}

fn unpack_into(zip: &Path, out: &Path) -> Result<(), LocalError> {
    crate::package::unpack(zip, out).map_err(|e| match e {
        PackageError::Write { path, source } => {
            LocalError::Io { what: format!("cannot write {}", path.display()), source }
        }
        PackageError::InvalidZip { reason: detail, .. } => LocalError::Artifact { path: zip.to_path_buf(), detail },
        other => LocalError::Artifact { path: zip.to_path_buf(), detail: other.to_string() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{PackEntry, pack};

    #[test]
    fn a_zip_is_unpacked_once_with_its_modes() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("lib")).unwrap();
        fs::write(src.join("bootstrap"), "#!/bin/sh\n").unwrap();
        fs::write(src.join("lib/a.txt"), "a").unwrap();
        let entries = vec![
            PackEntry { rel: "bootstrap".into(), source: src.join("bootstrap"), exec: true, expect: None },
            PackEntry { rel: "lib/a.txt".into(), source: src.join("lib/a.txt"), exec: false, expect: None },
        ];
        let zip = d.path().join("a.zip");
        let artifact = pack(&entries, &zip).unwrap();
        let cache = d.path().join("cache");
        let dir = unpacked(&zip, &artifact.sha256, &cache).unwrap();
        assert_eq!(fs::read_to_string(dir.join("lib/a.txt")).unwrap(), "a");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(dir.join("bootstrap")).unwrap().permissions().mode() & 0o111, 0o111);
        // Unpacked once: a second call finds it (even with the zip gone).
        fs::remove_file(&zip).unwrap();
        assert_eq!(unpacked(&zip, &artifact.sha256, &cache).unwrap(), dir);
        let e = unpacked(&zip, "other", &cache).unwrap_err().to_string();
        assert!(e.contains("a.zip"), "{e}");
    }
}
