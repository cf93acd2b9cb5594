//! What to watch and what a changed path means: which functions or layers it belongs to, or
//! whether it is the template or configuration (an infrastructure change), and the quiet
//! window that turns a burst of events into one. Pure, so every rule is a unit test; the
//! `notify` glue is in [`Watcher`]. The watch daemon and the local servers' hot reload share it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::fingerprint::DEFAULT_EXCLUDES;
use crate::project::{Code, Project};

/// What a changed path affects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A function's or layer's code (full id).
    Unit(String),
    /// The template, samconfig, lamb.toml or another file the infrastructure depends on.
    Infra,
}

/// What a unit's build leaves out of its code directory beyond the default excludes: the
/// same rules its fingerprint walk follows, so a change there is not a change to the unit.
#[derive(Debug, Clone, Default)]
struct Leaves {
    /// `.gitignore` applies (not for prebuilt directories, which are packed as they are).
    gitignore: bool,
    /// The build method's own excludes (`node_modules`, `.venv`, ...), matched per component.
    names: GlobSet,
    /// Subdirectories that are other code (a function's own layers), relative.
    skip_dirs: Vec<String>,
}

/// One matcher for `patterns`; a pattern that does not parse matches nothing.
fn glob_set<'a>(patterns: impl IntoIterator<Item = &'a str>) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for pat in patterns {
        if let Ok(g) = Glob::new(pat) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// How many entries [`linked_targets`] looks at in one code directory at most.
const LINK_SCAN_LIMIT: usize = 50_000;

/// Where the symlinks under `dir` point, when that is outside `dir` (canonical paths), leaving
/// out what the build leaves out.
fn linked_targets(dir: &Path, leave_out: &GlobSet, excludes: &GlobSet) -> Vec<PathBuf> {
    let Ok(canonical) = dir.canonicalize() else { return Vec::new() };
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > LINK_SCAN_LIMIT {
                return out;
            }
            let name = e.file_name();
            if excludes.is_match(Path::new(&name)) || leave_out.is_match(Path::new(&name)) {
                continue;
            }
            let Ok(ty) = e.file_type() else { continue };
            if ty.is_symlink() {
                if let Ok(target) = e.path().canonicalize()
                    && !target.starts_with(&canonical)
                    && !out.contains(&target)
                {
                    out.push(target);
                }
            } else if ty.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The watch set and the rules that map paths to targets.
#[derive(Debug, Clone)]
pub struct Index {
    root: PathBuf,
    /// Directories watched recursively, with the units whose code they hold and what of it
    /// their builds leave out.
    dirs: Vec<(PathBuf, String, Leaves)>,
    /// Single files, with what they affect (prebuilt zips → their unit; templates → infra).
    files: HashMap<PathBuf, Vec<Target>>,
    excludes: GlobSet,
    /// `--watch-exclude` / lamb.toml patterns, with .gitignore's semantics (a directory
    /// pattern excludes everything below it), rooted at the project.
    user_excludes: Gitignore,
    /// Code paths a build step makes, not made yet (`target/app.jar`): their appearing (or a
    /// directory on the way to them) reloads the template, which then finds the code.
    unbuilt: Vec<PathBuf>,
}

impl Index {
    /// Builds the index for `project`. `extra` maps function ids to extra watched paths (shared
    /// code outside CodeUri); `config_files` are samconfig/lamb.toml paths.
    pub fn new(
        project: &Project,
        extra: &std::collections::BTreeMap<String, Vec<PathBuf>>,
        config_files: &[PathBuf],
        user_excludes: &[String],
    ) -> Index {
        let mut dirs = Vec::new();
        let mut files: HashMap<PathBuf, Vec<Target>> = HashMap::new();
        let mut unbuilt = Vec::new();
        let excludes = glob_set(DEFAULT_EXCLUDES.iter().copied());
        for u in project.units() {
            let r = u.res;
            match &r.code {
                Code::Dir(d) => {
                    let leaves = match crate::build::Target::in_project(project, &u) {
                        Ok(t) => {
                            let opts = t.walk_options(&project.root, false);
                            Leaves {
                                gitignore: opts.gitignore,
                                names: glob_set(opts.extra_excludes.iter().map(String::as_str)),
                                skip_dirs: opts.skip_dirs,
                            }
                        }
                        Err(_) => Leaves::default(),
                    };
                    // Shared code linked in from elsewhere in the project is part of the build
                    // (the walk follows links): watch where the links point, too.
                    for target in linked_targets(d, &leaves.names, &excludes) {
                        if target.is_dir() {
                            dirs.push((target, r.id.clone(), leaves.clone()));
                        } else {
                            files.entry(target).or_default().push(Target::Unit(r.id.clone()));
                        }
                    }
                    dirs.push((d.clone(), r.id.clone(), leaves));
                }
                Code::Zip(z) | Code::File(z) => files.entry(z.clone()).or_default().push(Target::Unit(r.id.clone())),
                Code::Unbuilt { path, .. } => unbuilt.push(path.clone()),
                _ => {}
            }
        }
        for (id, paths) in extra {
            let Ok(id) = project.resolve_id(id) else { continue };
            for p in paths {
                let p = p.canonicalize().unwrap_or_else(|_| p.clone());
                if p.is_dir() {
                    dirs.push((p, id.clone(), Leaves { gitignore: true, ..Leaves::default() }));
                } else {
                    files.entry(p).or_default().push(Target::Unit(id.clone()));
                }
            }
        }
        for s in &project.stacks {
            files.entry(s.file.path.clone()).or_default().push(Target::Infra);
        }
        for d in &project.definitions {
            files.entry(d.path.clone()).or_default().push(Target::Infra);
        }
        for f in config_files {
            files.entry(f.clone()).or_default().push(Target::Infra);
        }
        let mut u = GitignoreBuilder::new(&project.root);
        for pat in user_excludes {
            if let Err(e) = u.add_line(None, pat) {
                tracing::warn!(pattern = %pat, error = %e, "ignoring a watch exclude that is not a valid pattern");
            }
        }
        let user_excludes = u.build().unwrap_or_else(|_| Gitignore::empty());
        Index { root: project.root.clone(), dirs, files, excludes, user_excludes, unbuilt }
    }

    /// Directories to watch recursively (deduplicated, nested ones dropped).
    pub fn recursive(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.dirs.iter().map(|(d, _, _)| d.clone()).collect();
        all.sort();
        all.dedup();
        let mut out: Vec<PathBuf> = Vec::new();
        for d in all {
            if !out.iter().any(|o| d.starts_with(o)) {
                out.push(d);
            }
        }
        out
    }

    /// Directories to watch without recursion: those holding single watched files (watching
    /// the directory, not the file, survives editors that save by renaming a new file over it),
    /// and the parents of recursively watched ones (so a code directory deleted and created
    /// again is noticed and watched again).
    pub fn parents(&self) -> Vec<PathBuf> {
        let recursive = self.recursive();
        let mut out: Vec<PathBuf> = self.files.keys().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
        // The deepest directory on the way to a path not built yet that exists now: each step
        // down is a reload that watches the next one.
        out.extend(
            self.unbuilt.iter().filter_map(|u| u.ancestors().skip(1).find(|a| a.is_dir()).map(Path::to_path_buf)),
        );
        out.extend(recursive.iter().filter_map(|r| r.parent().map(Path::to_path_buf)));
        out.sort();
        out.dedup();
        out.retain(|p| !recursive.iter().any(|r| p.starts_with(r)));
        out
    }

    /// The units and infrastructure a change of `path` affects.
    pub fn classify(&self, path: &Path) -> BTreeSet<Target> {
        let mut out = BTreeSet::new();
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let excluded = rel.components().any(|c| {
            let name = c.as_os_str().to_string_lossy();
            self.excludes.is_match(name.as_ref())
        }) || (path.starts_with(&self.root)
            && self.user_excludes.matched_path_or_any_parents(path, path.is_dir()).is_ignore());
        if let Some(targets) = self.files.get(path) {
            out.extend(targets.iter().cloned());
        }
        if self.unbuilt.iter().any(|u| u.starts_with(path)) {
            out.insert(Target::Infra);
        }
        if excluded {
            return out;
        }
        let is_dir = path.is_dir();
        let mut gitignored = None;
        for (dir, id, leaves) in &self.dirs {
            let Ok(inside) = path.strip_prefix(dir) else { continue };
            if inside.components().any(|c| leaves.names.is_match(c.as_os_str()))
                || leaves.skip_dirs.iter().any(|d| inside.starts_with(d))
            {
                continue;
            }
            // What git ignores is not part of the build (a `dist/`, logs, a local venv).
            if leaves.gitignore
                && *gitignored.get_or_insert_with(|| crate::fingerprint::gitignored(&self.root, path, is_dir))
            {
                continue;
            }
            out.insert(Target::Unit(id.clone()));
        }
        out
    }

    /// Ids of every unit with local code.
    pub fn units(&self) -> BTreeSet<String> {
        self.dirs
            .iter()
            .map(|(_, id, _)| id.clone())
            .chain(self.files.values().flatten().filter_map(|t| match t {
                Target::Unit(id) => Some(id.clone()),
                Target::Infra => None,
            }))
            .collect()
    }
}

/// Trailing-edge debouncing per target: each event pushes the target's deadline back; a
/// target is due once nothing has happened to it for the quiet window.
#[derive(Debug, Default)]
pub struct Debouncer {
    deadlines: HashMap<Target, Instant>,
    /// When the first event of the current burst arrived, per target (for save-to-live times).
    first_seen: HashMap<Target, Instant>,
}

impl Debouncer {
    pub fn event(&mut self, target: Target, now: Instant, quiet: Duration) {
        self.first_seen.entry(target.clone()).or_insert(now);
        self.deadlines.insert(target, now + quiet);
    }

    /// Makes `target` due at once (an editor hook said the file is saved).
    pub fn now(&mut self, target: Target, now: Instant) {
        self.first_seen.entry(target.clone()).or_insert(now);
        self.deadlines.insert(target, now);
    }

    /// The earliest deadline, if any target is waiting.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.values().min().copied()
    }

    /// Removes and returns the targets whose quiet window has passed, with when their burst began.
    pub fn due(&mut self, now: Instant) -> Vec<(Target, Instant)> {
        let due: Vec<Target> = self.deadlines.iter().filter(|(_, d)| **d <= now).map(|(t, _)| t.clone()).collect();
        due.into_iter()
            .map(|t| {
                self.deadlines.remove(&t);
                let first = self.first_seen.remove(&t).unwrap_or(now);
                (t, first)
            })
            .collect()
    }

    pub fn pending(&self) -> BTreeSet<Target> {
        self.deadlines.keys().cloned().collect()
    }

    /// Drops `target` (a function taken out of the template).
    pub fn forget(&mut self, target: &Target) {
        self.deadlines.remove(target);
        self.first_seen.remove(target);
    }
}

/// What the OS watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// Paths that changed. `complete` when the event itself says the new content is whole: a
    /// file renamed over its destination, the way editors save, is one finished write, so it
    /// needs no quiet window to wait for more.
    Changed { paths: Vec<PathBuf>, complete: bool },
    /// Events were lost (queue overflow, watcher error): everything must be looked at again.
    Rescan,
}

/// The quiet window a change waits out: none for a complete one (see [`FsEvent::Changed`]).
pub fn quiet_for(complete: bool, window: std::time::Duration) -> std::time::Duration {
    if complete { std::time::Duration::ZERO } else { window }
}

/// The OS watcher, rebuilt whenever the watch set changes.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Vec<(PathBuf, bool)>,
}

impl Watcher {
    /// Starts watching `index`'s paths, sending what changed to `tx`.
    pub fn start(index: &Index, tx: tokio::sync::mpsc::UnboundedSender<FsEvent>) -> Result<Watcher, notify::Error> {
        let inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) if ev.need_rescan() => {
                let _ = tx.send(FsEvent::Rescan);
            }
            // Reads and opens change nothing.
            Ok(ev) if matches!(ev.kind, notify::EventKind::Access(_)) => {}
            Ok(ev) => {
                use notify::event::{ModifyKind, RenameMode};
                let complete =
                    matches!(ev.kind, notify::EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)));
                let _ = tx.send(FsEvent::Changed { paths: ev.paths, complete });
            }
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error; looking at every function again");
                let _ = tx.send(FsEvent::Rescan);
            }
        })?;
        let mut w = Watcher { inner, watched: Vec::new() };
        w.update(index)?;
        Ok(w)
    }

    /// Watches exactly `index`'s paths (functions added or removed from the template start or
    /// stop being watched).
    pub fn update(&mut self, index: &Index) -> Result<(), notify::Error> {
        use notify::{RecursiveMode, Watcher as _};
        let mut wanted: Vec<(PathBuf, bool)> = index.recursive().into_iter().map(|p| (p, true)).collect();
        wanted.extend(index.parents().into_iter().map(|p| (p, false)));
        for (p, _) in self.watched.iter().filter(|w| !wanted.contains(w)) {
            let _ = self.inner.unwatch(p);
        }
        for (p, recursive) in wanted.iter().filter(|w| !self.watched.contains(w)) {
            let mode = if *recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
            if let Err(e) = self.inner.watch(p, mode) {
                tracing::warn!(path = %p.display(), error = %e, "cannot watch; changes there will be missed until it exists");
            }
        }
        self.watched = wanted;
        Ok(())
    }

    /// Watches `dir` again if it is one of the recursively watched directories: after it was
    /// deleted and created again, the OS watch on it is gone.
    pub fn rewatch(&mut self, dir: &Path) {
        use notify::{RecursiveMode, Watcher as _};
        if self.watched.iter().any(|(p, recursive)| *recursive && p == dir) && dir.is_dir() {
            let _ = self.inner.unwatch(dir);
            if let Err(e) = self.inner.watch(dir, RecursiveMode::Recursive) {
                tracing::warn!(path = %dir.display(), error = %e, "cannot watch again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{LoadOptions, intrinsics::Pseudo};

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let d = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let root = d.path().canonicalize().unwrap();
        let p = crate::project::load(&LoadOptions {
            template: root.join("template.yaml"),
            root: root.clone(),
            overrides: Default::default(),
            pseudo: Pseudo::default(),
        })
        .unwrap();
        (d, p)
    }

    const T: &str = "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function: {Runtime: python3.12, Handler: a.h}\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p, DefinitionUri: api.yaml}\n  A:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src/a}\n  A2:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src/a}\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src/b}\n  Z:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dist/z.zip}\n  L:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: layer}\n";

    fn fixture() -> (tempfile::TempDir, Project) {
        project(&[
            ("template.yaml", T),
            ("api.yaml", "openapi: 3.0.1"),
            ("src/a/x.py", ""),
            ("src/b/y.py", ""),
            ("dist/z.zip", "PK"),
            ("layer/l.py", ""),
            ("shared/s.py", ""),
        ])
    }

    fn units(set: &BTreeSet<Target>) -> Vec<String> {
        set.iter()
            .map(|t| match t {
                Target::Unit(id) => id.clone(),
                Target::Infra => "<infra>".into(),
            })
            .collect()
    }

    #[test]
    fn code_at_the_project_root_and_a_lone_file_code_uri() {
        let (_d, p) = project(&[
            (
                "template.yaml",
                "Transform: AWS::Serverless-2016-10-31\nResources:\n  Root:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: app.h, Runtime: python3.12}\n  One:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src/function.js, Handler: function.h, Runtime: nodejs20.x}\n",
            ),
            ("app.py", ""),
            ("src/function.js", ""),
            ("src/other.js", ""),
        ]);
        let root = p.root.clone();
        let idx = Index::new(&p, &Default::default(), &[], &[]);
        // The template is infrastructure only, though it sits in Root's code directory.
        assert_eq!(units(&idx.classify(&root.join("template.yaml"))), ["<infra>"]);
        // lamb's own state and SAM's build directory are never a change to Root.
        assert!(idx.classify(&root.join(".lamb/stacks/x.json")).is_empty());
        assert!(idx.classify(&root.join(".aws-sam/build/Root/app.py")).is_empty());
        assert_eq!(units(&idx.classify(&root.join("app.py"))), ["Root"]);
        // SAM packs the whole directory: a file under src/ is Root's code too.
        assert_eq!(units(&idx.classify(&root.join("src/function.js"))), ["One", "Root"]);
        assert_eq!(units(&idx.classify(&root.join("src/other.js"))), ["Root"]);
    }

    #[test]
    fn code_a_build_step_makes_is_watched_for_until_it_appears() {
        let (_d, p) = project(&[
            (
                "template.yaml",
                "Transform: AWS::Serverless-2016-10-31\nResources:\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: target/app.jar, Handler: a.App::handle, Runtime: java21}\n",
            ),
            ("pom.xml", ""),
        ]);
        let root = p.root.clone();
        assert!(matches!(p.functions[0].res.code, Code::Unbuilt { .. }));
        let idx = Index::new(&p, &Default::default(), &[], &[]);
        // `target/` does not exist yet: its parent is watched, and making it reloads.
        assert!(idx.parents().contains(&root), "{:?}", idx.parents());
        assert_eq!(units(&idx.classify(&root.join("target"))), ["<infra>"]);
        assert_eq!(units(&idx.classify(&root.join("target/app.jar"))), ["<infra>"]);
        assert!(idx.classify(&root.join("target/classes/A.class")).is_empty());
        std::fs::create_dir(root.join("target")).unwrap();
        assert!(idx.parents().contains(&root.join("target")), "{:?}", idx.parents());
    }

    #[test]
    fn paths_map_to_their_functions_layers_and_the_template() {
        let (_d, p) = fixture();
        let root = p.root.clone();
        let extra = std::collections::BTreeMap::from([("B".to_string(), vec![root.join("shared")])]);
        let idx = Index::new(&p, &extra, &[root.join("samconfig.toml")], &[]);
        assert_eq!(units(&idx.classify(&root.join("src/a/x.py"))), ["A", "A2"], "shared CodeUri: both");
        assert_eq!(units(&idx.classify(&root.join("src/b/new/deep.py"))), ["B"]);
        assert_eq!(units(&idx.classify(&root.join("shared/s.py"))), ["B"], "extra watch paths");
        assert_eq!(units(&idx.classify(&root.join("dist/z.zip"))), ["Z"]);
        assert_eq!(units(&idx.classify(&root.join("layer/l.py"))), ["L"]);
        assert_eq!(units(&idx.classify(&root.join("template.yaml"))), ["<infra>"]);
        assert_eq!(units(&idx.classify(&root.join("samconfig.toml"))), ["<infra>"]);
        assert_eq!(units(&idx.classify(&root.join("api.yaml"))), ["<infra>"], "definition files");
        assert!(idx.classify(&root.join("README.md")).is_empty());
        assert!(idx.recursive().contains(&root.join("src/a")));
        assert!(idx.parents().contains(&root), "the template's directory, not recursively");
    }

    #[test]
    fn lambs_own_files_editor_droppings_and_user_excludes_are_ignored() {
        let (_d, p) = fixture();
        let root = p.root.clone();
        let idx = Index::new(
            &p,
            &Default::default(),
            &[],
            &["*.log".to_string(), "src/b/tmp/**".to_string(), "generated".to_string()],
        );
        for ignored in [
            ".lamb/build.json",
            "src/a/.x.py.swp",
            "src/a/x.py~",
            "src/a/__pycache__/x.pyc",
            "src/a/.git/HEAD",
            "src/a/debug.log",
            "src/b/tmp/t.py",
            "src/a/4913",
            "src/a/generated/out.py",
        ] {
            assert!(idx.classify(&root.join(ignored)).is_empty(), "{ignored}");
        }
        assert_eq!(units(&idx.classify(&root.join("src/b/keep.py"))), ["B"]);
    }

    #[test]
    fn what_a_build_leaves_out_is_not_a_change() {
        let (_d, p) = project(&[
            (
                "template.yaml",
                "Transform: AWS::Serverless-2016-10-31\nResources:\n  Py:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: py, Runtime: python3.12, Handler: a.h}\n  Node:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: node, Runtime: nodejs20.x, Handler: a.h}\n  Pre:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: pre, Runtime: provided.al2023, Handler: bootstrap}\n",
            ),
            (".gitignore", "dist/\n*.log\n"),
            ("py/a.py", ""),
            ("py/.gitignore", "scratch.txt\n"),
            ("node/a.js", ""),
            ("pre/bootstrap", ""),
        ]);
        let root = p.root.clone();
        let idx = Index::new(&p, &Default::default(), &[], &[]);
        for ignored in [
            "py/dist/out.py",
            "py/run.log",
            "py/scratch.txt",
            "py/.venv/lib/site.py",
            "node/node_modules/x/index.js",
            "node/debug.log",
        ] {
            assert!(idx.classify(&root.join(ignored)).is_empty(), "{ignored}");
        }
        assert_eq!(units(&idx.classify(&root.join("py/a.py"))), ["Py"]);
        assert_eq!(units(&idx.classify(&root.join("node/lib/x.js"))), ["Node"]);
        // A prebuilt directory is packed as it is, gitignored build output included.
        assert_eq!(units(&idx.classify(&root.join("pre/dist/bootstrap.bin"))), ["Pre"]);
        assert_eq!(units(&idx.classify(&root.join("pre/app.log"))), ["Pre"]);
    }

    #[test]
    fn a_layer_inside_its_functions_code_is_the_layers_change_only() {
        let (_d, p) = project(&[
            (
                "template.yaml",
                "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: app, Runtime: python3.12, Handler: a.h, Layers: [!Ref Lib]}\n  Lib:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: app/lib}\n",
            ),
            ("app/a.py", ""),
            ("app/lib/l.py", ""),
        ]);
        let root = p.root.clone();
        let idx = Index::new(&p, &Default::default(), &[], &[]);
        assert_eq!(units(&idx.classify(&root.join("app/lib/l.py"))), ["Lib"], "the function's zip leaves it out");
        assert_eq!(units(&idx.classify(&root.join("app/a.py"))), ["Fn"]);
    }

    #[test]
    fn debouncing_waits_for_quiet_and_keeps_the_first_event_time() {
        let mut d = Debouncer::default();
        let t0 = Instant::now();
        let a = Target::Unit("A".into());
        d.event(a.clone(), t0, Duration::from_millis(20));
        d.event(a.clone(), t0 + Duration::from_millis(15), Duration::from_millis(20));
        assert!(d.due(t0 + Duration::from_millis(25)).is_empty(), "the second event pushed the deadline back");
        assert_eq!(d.next(), Some(t0 + Duration::from_millis(35)));
        let due = d.due(t0 + Duration::from_millis(35));
        assert_eq!(due, [(a.clone(), t0)]);
        assert!(d.next().is_none());
        d.now(a.clone(), t0 + Duration::from_millis(40));
        assert_eq!(d.due(t0 + Duration::from_millis(40)).len(), 1, "a trigger is due at once");
    }
}
