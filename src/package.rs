//! Deterministic zips.
//!
//! Lambda identifies code by CodeSha256, the SHA-256 of the zip's bytes, so the same content
//! must always give the same bytes: entries in sorted order, every timestamp 1980-01-01 00:00,
//! modes normalised to 0644 (0755 when executable), no host-specific extra fields, and no
//! directory entries whose order or metadata could vary.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{}: cannot read while packing: {source}; was it deleted or changed during the build? run the build again", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: cannot write the zip: {source}; check free disk space and permissions", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}: changed while it was being packed; lamb builds again from the new content", path.display())]
    Changed { path: PathBuf },
    #[error("{}: not a valid zip ({reason}); rebuild it, or point the code property at a directory", path.display())]
    InvalidZip { path: PathBuf, reason: String },
    #[error("two files map to `{rel}` in the zip; rename one")]
    Duplicate { rel: String },
}

/// One file to put into the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    /// Path inside the zip, `/`-separated.
    pub rel: String,
    pub source: PathBuf,
    pub exec: bool,
    /// The content hash the file had when it was fingerprinted: packing fails if the bytes read
    /// now differ, so a zip never mixes a file's old and new versions under the old key.
    pub expect: Option<[u8; 32]>,
}

/// A packed zip and the numbers Lambda will report for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub path: PathBuf,
    /// SHA-256 of the zip bytes, hex.
    pub sha256: String,
    /// The same digest in the form Lambda's `CodeSha256` uses: base64.
    pub code_sha256: String,
    pub size: u64,
    pub unzipped_size: u64,
    pub files: usize,
}

/// `base64(sha256(bytes))`, as Lambda reports CodeSha256.
pub fn code_sha256(digest: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Packs `entries` into `dest` atomically: a reader never sees a partial zip.
pub fn pack(entries: &[PackEntry], dest: &Path) -> Result<Artifact, PackageError> {
    let mut sorted: Vec<&PackEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.rel.cmp(&b.rel));
    if let Some(w) = sorted.windows(2).find(|w| w[0].rel == w[1].rel) {
        return Err(PackageError::Duplicate { rel: w[0].rel.clone() });
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let werr = |source| PackageError::Write { path: dest.to_path_buf(), source };
    fs::create_dir_all(dir).map_err(werr)?;
    let tmp = tempfile::Builder::new().prefix(".pack-").suffix(".tmp").tempfile_in(dir).map_err(werr)?;
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
    let mut unzipped_size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    for e in &sorted {
        let mut src = File::open(&e.source).map_err(|source| PackageError::Read { path: e.source.clone(), source })?;
        let len = src.metadata().map(|m| m.len()).unwrap_or(0);
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(if e.exec { 0o755 } else { 0o644 })
            .large_file(len >= u32::MAX as u64);
        zip.start_file(e.rel.as_str(), opts).map_err(|e| werr(io::Error::other(e)))?;
        let mut hasher = e.expect.map(|_| Sha256::new());
        loop {
            let n = io::Read::read(&mut src, &mut buf)
                .map_err(|source| PackageError::Read { path: e.source.clone(), source })?;
            if n == 0 {
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            zip.write_all(&buf[..n]).map_err(werr)?;
            unzipped_size += n as u64;
        }
        if let (Some(h), Some(expect)) = (hasher, e.expect)
            && <[u8; 32]>::from(h.finalize()) != expect
        {
            return Err(PackageError::Changed { path: e.source.clone() });
        }
    }
    let mut out = zip.finish().map_err(|e| werr(io::Error::other(e)))?;
    out.flush().map_err(werr)?;
    drop(out);
    tmp.as_file().sync_all().map_err(werr)?;
    let digest = crate::fingerprint::hash_file(tmp.path()).map_err(|e| werr(io::Error::other(e.to_string())))?;
    let size = tmp.as_file().metadata().map_err(werr)?.len();
    tmp.persist(dest).map_err(|e| werr(e.error))?;
    Ok(Artifact {
        path: dest.to_path_buf(),
        sha256: crate::fingerprint::hex(&digest),
        code_sha256: code_sha256(&digest),
        size,
        unzipped_size,
        files: sorted.len(),
    })
}

/// Describes an existing zip (a prebuilt `CodeUri: app.zip`) without repacking it.
pub fn describe_zip(path: &Path) -> Result<Artifact, PackageError> {
    let rerr = |source| PackageError::Read { path: path.to_path_buf(), source };
    let digest = crate::fingerprint::hash_file(path).map_err(|e| rerr(io::Error::other(e.to_string())))?;
    let file = File::open(path).map_err(rerr)?;
    let size = file.metadata().map_err(rerr)?.len();
    let invalid =
        |e: zip::result::ZipError| PackageError::InvalidZip { path: path.to_path_buf(), reason: e.to_string() };
    let mut archive = zip::ZipArchive::new(file).map_err(invalid)?;
    let mut unzipped_size = 0;
    let mut files = 0;
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).map_err(invalid)?;
        if !f.is_dir() {
            files += 1;
            unzipped_size += f.size();
        }
    }
    Ok(Artifact {
        path: path.to_path_buf(),
        sha256: crate::fingerprint::hex(&digest),
        code_sha256: code_sha256(&digest),
        size,
        unzipped_size,
        files,
    })
}

/// Unpacks the zip at `path` into `out` with its files' modes. Names that would leave `out`
/// (`../x`, `/abs`) are refused, not followed.
pub fn unpack(path: &Path, out: &Path) -> Result<(), PackageError> {
    use std::io::Read;
    let invalid = |reason: String| PackageError::InvalidZip { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|source| PackageError::Read { path: path.to_path_buf(), source })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid(e.to_string()))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| invalid(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(invalid(format!("entry `{}` points outside the directory", entry.name().unwrap_or_default())));
        };
        let to = out.join(rel);
        let werr = |source| PackageError::Write { path: to.clone(), source };
        if entry.is_dir() {
            fs::create_dir_all(&to).map_err(werr)?;
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(werr)?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| invalid(e.to_string()))?;
        fs::write(&to, &bytes).map_err(werr)?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&to, fs::Permissions::from_mode(mode & 0o777)).map_err(werr)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(dir: &Path, files: &[(&str, &str, bool)]) -> Vec<PackEntry> {
        files
            .iter()
            .map(|(rel, text, exec)| {
                let p = dir.join(rel.replace('/', "_"));
                fs::write(&p, text).unwrap();
                PackEntry { rel: rel.to_string(), source: p, exec: *exec, expect: None }
            })
            .collect()
    }

    #[test]
    fn same_content_same_bytes_regardless_of_order_and_mtime() {
        let d = tempfile::tempdir().unwrap();
        let e = entries(
            d.path(),
            &[("b.txt", "bbb", false), ("a/x.py", "print(1)", false), ("bootstrap", "#!/bin/sh", true)],
        );
        let one = pack(&e, &d.path().join("one.zip")).unwrap();
        for entry in &e {
            let f = File::options().write(true).open(&entry.source).unwrap();
            f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600)).unwrap();
        }
        let mut reversed = e.clone();
        reversed.reverse();
        let two = pack(&reversed, &d.path().join("two.zip")).unwrap();
        assert_eq!(fs::read(&one.path).unwrap(), fs::read(&two.path).unwrap());
        assert_eq!(one.code_sha256, two.code_sha256);
        assert_eq!(one.unzipped_size, 3 + 8 + 9);
    }

    #[test]
    fn entries_are_sorted_with_fixed_times_and_normalised_modes() {
        let d = tempfile::tempdir().unwrap();
        let e =
            entries(d.path(), &[("z.txt", "z", false), ("bootstrap", "#!/bin/sh\n", true), ("a/b.txt", "b", false)]);
        fs::set_permissions(&e[0].source, fs::Permissions::from_mode(0o600)).unwrap();
        let art = pack(&e, &d.path().join("out.zip")).unwrap();
        let mut z = zip::ZipArchive::new(File::open(&art.path).unwrap()).unwrap();
        let names: Vec<String> = (0..z.len()).map(|i| z.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(names, ["a/b.txt", "bootstrap", "z.txt"]);
        for i in 0..z.len() {
            let f = z.by_index(i).unwrap();
            assert_eq!(f.last_modified(), Some(DateTime::default()));
            let name = f.name().unwrap().to_string();
            let mode = f.unix_mode().unwrap() & 0o777;
            assert_eq!(mode, if name == "bootstrap" { 0o755 } else { 0o644 }, "{name}");
            assert!(f.extra_data().is_none_or(|x| x.is_empty()), "{name} has extra fields");
        }
    }

    #[test]
    fn code_sha256_is_base64_of_the_zip_digest() {
        let d = tempfile::tempdir().unwrap();
        let e = entries(d.path(), &[("a", "a", false)]);
        let art = pack(&e, &d.path().join("a.zip")).unwrap();
        let digest = crate::fingerprint::hash_file(&art.path).unwrap();
        assert_eq!(art.code_sha256, base64::engine::general_purpose::STANDARD.encode(digest));
        assert_eq!(art.size, fs::metadata(&art.path).unwrap().len());
        assert_eq!(describe_zip(&art.path).unwrap(), art);
    }

    #[test]
    fn a_file_changed_since_fingerprinting_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut e = entries(d.path(), &[("a", "old", false)]);
        e[0].expect = Some(crate::fingerprint::hash_file(&e[0].source).unwrap());
        let ok = pack(&e, &d.path().join("ok.zip"));
        assert!(ok.is_ok());
        fs::write(&e[0].source, "new").unwrap();
        let dest = d.path().join("changed.zip");
        assert!(matches!(pack(&e, &dest), Err(PackageError::Changed { .. })));
        assert!(!dest.exists());
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut e = entries(d.path(), &[("a", "a", false)]);
        e.push(e[0].clone());
        assert!(matches!(pack(&e, &d.path().join("a.zip")), Err(PackageError::Duplicate { .. })));
    }

    #[test]
    fn a_file_deleted_before_packing_is_a_read_error_and_leaves_no_zip() {
        let d = tempfile::tempdir().unwrap();
        let e = entries(d.path(), &[("a", "a", false), ("b", "b", false)]);
        fs::remove_file(&e[1].source).unwrap();
        let dest = d.path().join("out.zip");
        let err = pack(&e, &dest).unwrap_err();
        assert!(matches!(err, PackageError::Read { .. }), "{err}");
        assert!(!dest.exists());
        let leftovers: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".pack-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
