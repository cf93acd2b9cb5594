//! Source trees: which files belong to a function's or layer's code, and a content hash over them.
//!
//! The walk is sorted and depends only on relative paths, exec bits and contents, so the same
//! tree hashes the same in any checkout, and touching a file without changing it changes nothing.
//! Files ignored by `.gitignore` (from the project root down) and lamb's default excludes
//! (`.git`, `.lamb`, `__pycache__`, editor swap files, ...) are left out. Symlinks are followed
//! inside the project; one pointing outside it is refused unless the user opts in, since a link
//! to `~/.aws/credentials` must never end up in a zip.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

/// Names and patterns never part of a source tree: VCS and tool directories, bytecode, and the
/// temporary and backup files editors write next to the file being saved.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".aws-sam",
    ".lamb",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    // dotenv files hold secrets; Lambda takes configuration from environment variables.
    ".env",
    ".env.*",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    "*___jb_tmp___",
    "*___jb_old___",
    ".*.kate-swp",
];

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("{}: cannot read: {source}; fix its permissions (chmod u+r) or add it to .gitignore", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{}: the file name is not valid UTF-8; rename it (zip entries and Lambda need UTF-8 names)", path.display())]
    NonUtf8Name { path: PathBuf },
    #[error(
        "{}: symlink points outside the project to {}; lamb will not pack it (it could leak a file such as credentials); copy the file into the project, remove the link, or pass --follow-external-symlinks",
        link.display(), target.display()
    )]
    ExternalSymlink { link: PathBuf, target: PathBuf },
    #[error("{}: symlink does not resolve ({reason}); fix or remove the link", link.display())]
    BrokenSymlink { link: PathBuf, reason: String },
    #[error("{}: symlink loop (it points at {}, a directory that contains it); remove the link", link.display(), target.display())]
    SymlinkLoop { link: PathBuf, target: PathBuf },
    #[error("{}: disappeared while lamb was reading it", path.display())]
    Vanished { path: PathBuf },
    #[error(
        "{}: symlink points at {}, which .gitignore excludes; lamb will not pack ignored files through a link; remove the link or stop ignoring the target",
        link.display(), target.display()
    )]
    IgnoredTarget { link: PathBuf, target: PathBuf },
    #[error(
        "{}: symlink points at {}, which lamb never packs (VCS data, dotenv secrets, editor files: its default excludes); remove the link or copy what the function needs under another name",
        link.display(), target.display()
    )]
    ExcludedTarget { link: PathBuf, target: PathBuf },
    #[error("{}: invalid ignore pattern: {message}; fix the pattern", source_file.display())]
    BadPattern { source_file: PathBuf, message: String },
}

/// How to walk one source directory.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// The project directory: the boundary for symlinks and where `.gitignore` lookup starts.
    pub project_root: PathBuf,
    /// Honour `.gitignore` files. Off for prebuilt directories, which are the artifact itself.
    pub gitignore: bool,
    /// Extra basename patterns to leave out (per build method, e.g. `node_modules`).
    pub extra_excludes: Vec<String>,
    /// Pack the contents of symlinks that point outside the project.
    pub follow_external_symlinks: bool,
    /// Paths (relative to the walked one, `/`-separated) left out: another resource's code
    /// (a directory), or the template a function rooted at the project directory sits next to.
    pub skip_dirs: Vec<String>,
}

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the tree, `/`-separated.
    pub rel: String,
    /// Where to read it (through symlinks).
    pub abs: PathBuf,
    pub exec: bool,
    pub size: u64,
}

/// A hashed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHash {
    pub digest: [u8; 32],
    pub files: usize,
    pub bytes: u64,
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn default_excludes(extra: &[String]) -> Result<GlobSet, FingerprintError> {
    let mut b = GlobSetBuilder::new();
    for pat in DEFAULT_EXCLUDES.iter().copied().chain(extra.iter().map(String::as_str)) {
        let glob = Glob::new(pat).map_err(|e| FingerprintError::BadPattern {
            source_file: PathBuf::from("<excludes>"),
            message: e.to_string(),
        })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| FingerprintError::BadPattern { source_file: PathBuf::from("<excludes>"), message: e.to_string() })
}

fn build_ignore(root: &Path, file: &Path) -> Result<Option<Gitignore>, FingerprintError> {
    if !file.is_file() {
        return Ok(None);
    }
    let mut b = GitignoreBuilder::new(root);
    if let Some(e) = b.add(file) {
        return Err(FingerprintError::BadPattern { source_file: file.to_path_buf(), message: e.to_string() });
    }
    b.build()
        .map(Some)
        .map_err(|e| FingerprintError::BadPattern { source_file: file.to_path_buf(), message: e.to_string() })
}

fn gitignore_of(dir: &Path) -> Result<Option<Gitignore>, FingerprintError> {
    build_ignore(dir, &dir.join(".gitignore"))
}

/// Where ignore rules start: the enclosing git work tree (so a repository's top-level
/// `.gitignore` applies to a project in a subdirectory), else the project directory.
fn ignore_root(project_root: &Path) -> PathBuf {
    project_root.ancestors().find(|d| d.join(".git").exists()).unwrap_or(project_root).to_path_buf()
}

/// Checks `matchers` (outermost first) the way git does: the deepest match decides.
fn matched(matchers: &[Gitignore], path: &Path, is_dir: bool) -> bool {
    for g in matchers.iter().rev() {
        match g.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

struct Walker<'a> {
    opts: &'a WalkOptions,
    excludes: GlobSet,
    canonical_root: PathBuf,
    /// Where ignore rules start, and its `.git/info/exclude` (lowest precedence).
    ignore_root: PathBuf,
    base_ignores: Vec<Gitignore>,
    /// `.gitignore` matchers from the ignore root down to the directory being walked.
    ignores: Vec<Gitignore>,
    /// Canonical directories on the current path, to catch symlink loops.
    ancestors: Vec<PathBuf>,
    out: Vec<FileEntry>,
}

/// Whether a path anywhere under `ignore_root` is ignored, checking every directory on the way
/// down (git never looks inside an ignored directory); `base` holds `.git/info/exclude`.
fn ignored_below(
    ignore_root: &Path,
    base: &[Gitignore],
    target: &Path,
    is_dir: bool,
) -> Result<bool, FingerprintError> {
    let Ok(rel) = target.strip_prefix(ignore_root) else { return Ok(false) };
    let mut matchers: Vec<Gitignore> = gitignore_of(ignore_root)?.into_iter().collect();
    let mut cur = ignore_root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        cur.push(part);
        let last = i + 1 == parts.len();
        if matched(&matchers, &cur, !last || is_dir) || matched(base, &cur, !last || is_dir) {
            return Ok(true);
        }
        if !last {
            matchers.extend(gitignore_of(&cur)?);
        }
    }
    Ok(false)
}

/// Whether git would ignore `path` in the project at `project_root` (its `.gitignore` files from
/// the work tree's top down, and `.git/info/exclude`), as the walk does. Unreadable or invalid
/// ignore files count as ignoring nothing.
pub fn gitignored(project_root: &Path, path: &Path, is_dir: bool) -> bool {
    let root = ignore_root(project_root);
    let base: Vec<Gitignore> =
        build_ignore(&root, &root.join(".git/info/exclude")).ok().flatten().into_iter().collect();
    ignored_below(&root, &base, path, is_dir).unwrap_or(false)
}

/// Lists the files of `dir`, sorted by relative path.
pub fn walk(dir: &Path, opts: &WalkOptions) -> Result<Vec<FileEntry>, FingerprintError> {
    let canonical_root = opts.project_root.canonicalize().unwrap_or_else(|_| opts.project_root.clone());
    let canonical_dir = dir.canonicalize().map_err(|source| unreadable(dir, source))?;
    let ignore_root = ignore_root(&canonical_root);
    let mut w = Walker {
        opts,
        excludes: default_excludes(&opts.extra_excludes)?,
        canonical_root,
        base_ignores: Vec::new(),
        ignores: Vec::new(),
        ancestors: vec![canonical_dir.clone()],
        out: Vec::new(),
        ignore_root,
    };
    if opts.gitignore {
        w.base_ignores.extend(build_ignore(&w.ignore_root, &w.ignore_root.join(".git/info/exclude"))?);
        // .gitignore files above the tree, from the ignore root down, apply too.
        if let Ok(rel) = canonical_dir.strip_prefix(&w.ignore_root) {
            let mut cur = w.ignore_root.clone();
            let mut above = vec![cur.clone()];
            for c in rel.parent().into_iter().flat_map(Path::components) {
                cur.push(c);
                above.push(cur.clone());
            }
            if rel.as_os_str().is_empty() {
                above.clear();
            }
            for d in above {
                w.ignores.extend(gitignore_of(&d)?);
            }
        }
    }
    w.dir(dir, "")?;
    w.out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(w.out)
}

/// A read failure: a file gone since it was listed is a race with the user's edits, anything
/// else is a permission (or similar) problem for the user to fix.
fn unreadable(path: &Path, source: std::io::Error) -> FingerprintError {
    if source.kind() == std::io::ErrorKind::NotFound {
        FingerprintError::Vanished { path: path.to_path_buf() }
    } else {
        FingerprintError::Unreadable { path: path.to_path_buf(), source }
    }
}

impl Walker<'_> {
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        matched(&self.ignores, path, is_dir) || matched(&self.base_ignores, path, is_dir)
    }

    fn ignored_anywhere(&self, target: &Path, is_dir: bool) -> Result<bool, FingerprintError> {
        ignored_below(&self.ignore_root, &self.base_ignores, target, is_dir)
    }

    fn dir(&mut self, dir: &Path, rel: &str) -> Result<(), FingerprintError> {
        let pushed = if self.opts.gitignore {
            match gitignore_of(dir)? {
                Some(g) => {
                    self.ignores.push(g);
                    true
                }
                None => false,
            }
        } else {
            false
        };
        let read = fs::read_dir(dir).map_err(|source| unreadable(dir, source))?;
        let mut entries = Vec::new();
        for e in read {
            let e = e.map_err(|source| unreadable(dir, source))?;
            entries.push(e.path());
        }
        entries.sort();
        for path in entries {
            // Excludes and ignore rules match names as bytes: a file left out of the tree may
            // have any name; only what is packed needs a UTF-8 one.
            if self.excludes.is_match(Path::new(path.file_name().unwrap_or_default())) {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Deleted since the directory was listed: it is simply not part of the tree.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(FingerprintError::Unreadable { path, source }),
            };
            if meta.file_type().is_symlink() {
                self.symlink(&path, rel)?;
            } else if meta.is_dir() {
                if !self.ignored(&path, true) {
                    let child_rel = child_rel(rel, &path)?;
                    if !self.opts.skip_dirs.contains(&child_rel) {
                        self.dir(&path, &child_rel)?;
                    }
                }
            } else if meta.is_file() && !self.ignored(&path, false) {
                let child_rel = child_rel(rel, &path)?;
                if self.opts.skip_dirs.contains(&child_rel) {
                    continue;
                }
                self.out.push(FileEntry {
                    rel: child_rel,
                    exec: meta.permissions().mode() & 0o111 != 0,
                    size: meta.len(),
                    abs: path,
                });
            }
            // Sockets, FIFOs and devices are not code: skipped.
        }
        if pushed {
            self.ignores.pop();
        }
        Ok(())
    }

    /// A link in the directory whose relative path is `parent_rel`.
    fn symlink(&mut self, link: &Path, parent_rel: &str) -> Result<(), FingerprintError> {
        let target = match fs::canonicalize(link) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(40) => {
                // ELOOP: the link chain never ends.
                let target = fs::read_link(link).unwrap_or_default();
                return Err(FingerprintError::SymlinkLoop { link: link.to_path_buf(), target });
            }
            Err(e) => return Err(FingerprintError::BrokenSymlink { link: link.to_path_buf(), reason: e.to_string() }),
        };
        if !target.starts_with(&self.canonical_root) && !self.opts.follow_external_symlinks {
            return Err(FingerprintError::ExternalSymlink { link: link.to_path_buf(), target });
        }
        let meta = fs::metadata(&target).map_err(|source| unreadable(link, source))?;
        if self.ignored(link, meta.is_dir()) {
            return Ok(());
        }
        let rel = &child_rel(parent_rel, link)?;
        // What lamb never packs (`.env`, `.git/config`, ...) stays out through a link too.
        let inside = target.strip_prefix(&self.canonical_root).unwrap_or_else(|_| Path::new(""));
        let names = if inside.as_os_str().is_empty() {
            target.file_name().into_iter().collect()
        } else {
            inside.iter().collect::<Vec<_>>()
        };
        if names.iter().any(|n| self.excludes.is_match(Path::new(n))) {
            return Err(FingerprintError::ExcludedTarget { link: link.to_path_buf(), target });
        }
        // The link is part of the tree but what it points at is ignored (a `secrets/` directory,
        // say): packing it would leak what git keeps out.
        if self.opts.gitignore && self.ignored_anywhere(&target, meta.is_dir())? {
            return Err(FingerprintError::IgnoredTarget { link: link.to_path_buf(), target });
        }
        if meta.is_dir() {
            if self.ancestors.iter().any(|a| a == &target) {
                return Err(FingerprintError::SymlinkLoop { link: link.to_path_buf(), target });
            }
            self.ancestors.push(target);
            let result = self.dir(link, rel);
            self.ancestors.pop();
            result
        } else {
            self.out.push(FileEntry {
                rel: rel.to_string(),
                exec: meta.permissions().mode() & 0o111 != 0,
                size: meta.len(),
                abs: link.to_path_buf(),
            });
            Ok(())
        }
    }
}

/// The relative path of `path` in a directory whose relative path is `parent_rel`.
fn child_rel(parent_rel: &str, path: &Path) -> Result<String, FingerprintError> {
    let Some(name) = path.file_name().unwrap_or_default().to_str() else {
        return Err(FingerprintError::NonUtf8Name { path: path.to_path_buf() });
    };
    Ok(if parent_rel.is_empty() { name.to_string() } else { format!("{parent_rel}/{name}") })
}

/// The entry of a lone file (`CodeUri: src/function.js`): named by its file name, as it sits at
/// the root of its zip.
pub fn file_entry(path: &Path) -> Result<FileEntry, FingerprintError> {
    let meta = fs::metadata(path).map_err(|source| unreadable(path, source))?;
    Ok(FileEntry {
        rel: child_rel("", path)?,
        abs: path.to_path_buf(),
        exec: meta.permissions().mode() & 0o111 != 0,
        size: meta.len(),
    })
}

/// SHA-256 of a file's contents.
pub fn hash_file(path: &Path) -> Result<[u8; 32], FingerprintError> {
    let unreadable = |source| unreadable(path, source);
    let mut f = fs::File::open(path).map_err(unreadable)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Hashes a listed tree: relative path, exec bit and content of every file, in order. Files are
/// read on `threads` threads; the digest does not depend on the thread count.
pub fn hash_entries(entries: &[FileEntry], threads: usize) -> Result<TreeHash, FingerprintError> {
    Ok(hash_entries_with_files(entries, threads)?.0)
}

/// Like [`hash_entries`], also returning each file's content hash (in `entries` order).
pub fn hash_entries_with_files(
    entries: &[FileEntry],
    threads: usize,
) -> Result<(TreeHash, Vec<[u8; 32]>), FingerprintError> {
    let hashes = parallel_hash(entries, threads.max(1))?;
    let mut h = Sha256::new();
    h.update(b"lamb-tree-v1\0");
    let mut bytes = 0;
    for (e, content) in entries.iter().zip(&hashes) {
        h.update((e.rel.len() as u64).to_le_bytes());
        h.update(e.rel.as_bytes());
        h.update([u8::from(e.exec)]);
        h.update(content);
        bytes += e.size;
    }
    Ok((TreeHash { digest: h.finalize().into(), files: entries.len(), bytes }, hashes))
}

fn parallel_hash(entries: &[FileEntry], threads: usize) -> Result<Vec<[u8; 32]>, FingerprintError> {
    let total: u64 = entries.iter().map(|e| e.size).sum();
    // Threads only pay off for real amounts of data.
    let threads = if total < 4 * 1024 * 1024 { 1 } else { threads };
    crate::par::map(entries, threads, |e| hash_file(&e.abs)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn opts(root: &Path) -> WalkOptions {
        WalkOptions {
            project_root: root.to_path_buf(),
            gitignore: true,
            extra_excludes: Vec::new(),
            follow_external_symlinks: false,
            skip_dirs: Vec::new(),
        }
    }

    fn write(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn rels(entries: &[FileEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.rel.as_str()).collect()
    }

    fn tree_hash(dir: &Path, root: &Path) -> TreeHash {
        hash_entries(&walk(dir, &opts(root)).unwrap(), 2).unwrap()
    }

    #[test]
    fn sorted_walk_with_default_excludes_and_gitignore() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        write(&root.join(".gitignore"), "*.log\nbuild/\n");
        let src = root.join("src");
        for f in [
            "b.py",
            "a.py",
            "sub/c.py",
            "x.log",
            "build/out.js",
            "__pycache__/a.pyc",
            ".git/HEAD",
            ".a.py.swp",
            "a.py~",
            "sub/.gitignore",
            "sub/secret.txt",
            ".lamb/state",
        ] {
            write(&src.join(f), f);
        }
        write(&src.join("sub/.gitignore"), "secret.txt\n");
        let entries = walk(&src, &opts(root)).unwrap();
        assert_eq!(rels(&entries), ["a.py", "b.py", "sub/.gitignore", "sub/c.py"]);
        let mut no_git = opts(root);
        no_git.gitignore = false;
        let entries = walk(&src, &no_git).unwrap();
        assert_eq!(
            rels(&entries),
            ["a.py", "b.py", "build/out.js", "sub/.gitignore", "sub/c.py", "sub/secret.txt", "x.log"]
        );
    }

    #[test]
    fn negated_gitignore_patterns_reinclude() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join(".gitignore"), "*.json\n!keep.json\n");
        write(&d.path().join("f/drop.json"), "{}");
        write(&d.path().join("f/keep.json"), "{}");
        assert_eq!(rels(&walk(&d.path().join("f"), &opts(d.path())).unwrap()), ["keep.json"]);
    }

    #[test]
    fn touch_does_not_change_the_hash_but_content_and_exec_bit_do() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("src/app.py");
        write(&f, "print(1)\n");
        let before = tree_hash(&d.path().join("src"), d.path());
        let file = fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
        assert_eq!(tree_hash(&d.path().join("src"), d.path()), before);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        let exec = tree_hash(&d.path().join("src"), d.path());
        assert_ne!(exec, before);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        write(&f, "print(2)\n");
        assert_ne!(tree_hash(&d.path().join("src"), d.path()), before);
    }

    #[test]
    fn same_tree_in_two_places_hashes_the_same() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for root in [a.path(), b.path()] {
            write(&root.join("fn/x/y.txt"), "y");
            write(&root.join("fn/z.txt"), "z");
        }
        assert_eq!(tree_hash(&a.path().join("fn"), a.path()), tree_hash(&b.path().join("fn"), b.path()));
    }

    #[test]
    fn renaming_a_file_changes_the_hash() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("fn/a.txt"), "same");
        let before = tree_hash(&d.path().join("fn"), d.path());
        fs::rename(d.path().join("fn/a.txt"), d.path().join("fn/b.txt")).unwrap();
        assert_ne!(tree_hash(&d.path().join("fn"), d.path()), before);
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..8 {
            write(&d.path().join(format!("fn/{i}.bin")), &"x".repeat(1024 * 1024 + i));
        }
        let entries = walk(&d.path().join("fn"), &opts(d.path())).unwrap();
        assert_eq!(hash_entries(&entries, 1).unwrap(), hash_entries(&entries, 4).unwrap());
    }

    #[test]
    fn symlinks_inside_the_project_are_followed() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("shared/util.py"), "u");
        write(&d.path().join("fn/app.py"), "a");
        symlink(d.path().join("shared"), d.path().join("fn/shared")).unwrap();
        symlink("app.py", d.path().join("fn/alias.py")).unwrap();
        let entries = walk(&d.path().join("fn"), &opts(d.path())).unwrap();
        assert_eq!(rels(&entries), ["alias.py", "app.py", "shared/util.py"]);
    }

    #[test]
    fn symlink_outside_the_project_is_refused_unless_allowed() {
        let outside = tempfile::tempdir().unwrap();
        write(&outside.path().join("credentials"), "aws_secret_access_key=x");
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("fn/app.py"), "a");
        symlink(outside.path().join("credentials"), d.path().join("fn/creds")).unwrap();
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::ExternalSymlink { .. }), "{err}");
        assert!(err.to_string().contains("--follow-external-symlinks"));
        let mut allow = opts(d.path());
        allow.follow_external_symlinks = true;
        assert_eq!(rels(&walk(&d.path().join("fn"), &allow).unwrap()), ["app.py", "creds"]);
    }

    #[test]
    fn symlink_loops_and_dangling_links_are_errors() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("fn/app.py"), "a");
        symlink(d.path().join("fn"), d.path().join("fn/again")).unwrap();
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::SymlinkLoop { .. }), "{err}");

        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("fn/app.py"), "a");
        symlink("a", d.path().join("fn/b")).unwrap();
        symlink("b", d.path().join("fn/a")).unwrap();
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::SymlinkLoop { .. }), "{err}");

        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("fn/app.py"), "a");
        symlink("missing", d.path().join("fn/dangling")).unwrap();
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::BrokenSymlink { .. }), "{err}");
    }

    #[test]
    fn non_utf8_names_are_errors() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname.py");
        write(&d.path().join("fn").join(name), "x");
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::NonUtf8Name { .. }), "{err}");
        assert!(err.to_string().contains("rename it"));
    }

    #[test]
    fn non_utf8_names_that_are_left_out_anyway_are_fine() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join(".gitignore"), "cache/\n*.log\n");
        write(&d.path().join("fn/app.py"), "a");
        write(&d.path().join("fn/cache").join(std::ffi::OsStr::from_bytes(b"\xff\xfe")), "x");
        write(&d.path().join("fn").join(std::ffi::OsStr::from_bytes(b"run\xff.log")), "x");
        write(&d.path().join("fn").join(std::ffi::OsStr::from_bytes(b"app.py\xff~")), "x");
        write(&d.path().join("fn/__pycache__").join(std::ffi::OsStr::from_bytes(b"\xff.pyc")), "x");
        assert_eq!(rels(&walk(&d.path().join("fn"), &opts(d.path())).unwrap()), ["app.py"]);
        // A directory with such a name is reported when it would be walked.
        write(&d.path().join("fn").join(std::ffi::OsStr::from_bytes(b"sub\xff")).join("x.py"), "x");
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::NonUtf8Name { .. }), "{err}");
    }

    #[test]
    fn git_root_gitignore_and_info_exclude_apply_to_a_project_in_a_subdirectory() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        fs::create_dir_all(repo.join(".git/info")).unwrap();
        write(&repo.join(".git/info/exclude"), "*.local\n");
        write(&repo.join(".gitignore"), "*.secret\n");
        let project = repo.join("infra");
        for f in ["fn/app.py", "fn/a.secret", "fn/b.local", "fn/.env", "fn/.env.production"] {
            write(&project.join(f), "x");
        }
        assert_eq!(rels(&walk(&project.join("fn"), &opts(&project)).unwrap()), ["app.py"]);
    }

    #[test]
    fn a_link_to_an_ignored_path_is_refused() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join(".gitignore"), "secrets/\n");
        write(&d.path().join("secrets/prod.env"), "PASSWORD=x");
        write(&d.path().join("fn/app.py"), "a");
        symlink(d.path().join("secrets"), d.path().join("fn/conf")).unwrap();
        let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
        assert!(matches!(err, FingerprintError::IgnoredTarget { .. }), "{err}");
        assert!(err.to_string().contains("which .gitignore excludes"), "{err}");
    }

    #[test]
    fn a_link_to_what_lamb_never_packs_is_refused() {
        // Not in .gitignore, but a default exclude: a dotenv file, git's own config.
        for target in [".env", ".git/config", "fn2/.env.production", "other/__pycache__/m.pyc"] {
            let d = tempfile::tempdir().unwrap();
            write(&d.path().join(target), "SECRET=x");
            write(&d.path().join("fn/app.py"), "a");
            symlink(d.path().join(target), d.path().join("fn/conf")).unwrap();
            let err = walk(&d.path().join("fn"), &opts(d.path())).unwrap_err();
            assert!(matches!(err, FingerprintError::ExcludedTarget { .. }), "{target}: {err}");
            assert!(err.to_string().contains("never packs") && err.to_string().contains("fn/conf"), "{err}");
        }
        // A link to an ordinary file in the project is still followed.
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("shared/util.py"), "u");
        write(&d.path().join("fn/app.py"), "a");
        symlink(d.path().join("shared/util.py"), d.path().join("fn/util.py")).unwrap();
        assert_eq!(rels(&walk(&d.path().join("fn"), &opts(d.path())).unwrap()), ["app.py", "util.py"]);
    }

    #[test]
    fn a_vanished_file_is_a_race_not_a_permission_problem() {
        let d = tempfile::tempdir().unwrap();
        let err = hash_file(&d.path().join("gone.py")).unwrap_err();
        assert!(matches!(err, FingerprintError::Vanished { .. }), "{err}");
        assert!(!err.to_string().contains("chmod"), "{err}");
    }
}
