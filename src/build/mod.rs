//! Building one resource: fingerprint its sources, and if no artifact exists for that
//! fingerprint, produce its files (copying sources, installing dependencies, or running make)
//! and pack them into a deterministic zip in the artifact store.

mod cargo_lambda;
pub mod deps;
mod dotnet;
mod esbuild;
mod go;
mod gradle;
mod maven;
pub mod method;
mod node;
mod python;
mod ruby;
pub mod store;
pub mod tools;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::fingerprint::{self, FileEntry, FingerprintError, TreeHash, WalkOptions};
use crate::package::{self, Artifact, PackEntry, PackageError};
use crate::project::value::Value;
use crate::project::{Arch, Code, Project, Unit};
pub use deps::{Deps, DepsCache, DepsContext};
pub use method::{Method, NotBuilt};
pub use store::Store;

/// Bump when the way artifacts are made changes, so old cache entries are not reused.
const BUILD_KEY_VERSION: u32 = 1;
/// How often a build starts over because its sources changed underneath it.
const RACE_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A build tool ran and failed.
    #[error("`{}` failed ({}):\n{}{}", run.command, run.status, run.output, fix.as_deref().map(|f| format!("\n{f}")).unwrap_or_default())]
    ToolFailed { run: Box<ToolRun>, fix: Option<String> },
    /// A dependency install (pip, npm) failed for a manifest.
    #[error("{tool} could not install {} (`{}`, {}):\n{}\n{fix}", manifest.display(), run.command, run.status, run.output)]
    InstallFailed { tool: &'static str, manifest: PathBuf, run: Box<ToolRun>, fix: String },
    #[error("`{tool}` is not installed or not on PATH; {install}")]
    MissingTool { tool: String, install: String },
    /// A dependency manifest, or what it points at, is wrong.
    #[error("{}{}: {problem}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Manifest { file: PathBuf, line: Option<usize>, problem: String },
    /// Another build's install of the same dependencies failed.
    #[error("(shared install) {message}")]
    SharedInstall { message: String },
    /// `Metadata.BuildProperties` that the build method cannot use.
    #[error("{0}")]
    Properties(String),
    /// A makefile build without a Makefile.
    #[error("BuildMethod makefile needs a Makefile in {} with a `{target}` target; add one", dir.display())]
    NoMakefile { dir: PathBuf, target: String },
    /// The build ran and made nothing to pack.
    #[error("{step} put no files in its output; {fix}")]
    NoOutput { step: String, fix: String },
    /// Custom-runtime code without a runnable `bootstrap`.
    #[error("{}: {problem}", dir.display())]
    Bootstrap { dir: PathBuf, problem: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// A build tool that ran and failed: its command line, exit status and the tail of its output.
#[derive(Debug)]
pub struct ToolRun {
    pub command: String,
    pub status: String,
    pub output: String,
}

impl BuildError {
    /// A file changed between fingerprinting and packing: worth one more try.
    pub fn is_race(&self) -> bool {
        match self {
            BuildError::Package(PackageError::Changed { .. })
            | BuildError::Fingerprint(FingerprintError::Vanished { .. }) => true,
            // Gone since it was listed; a permission problem stays one however often it is read.
            BuildError::Package(PackageError::Read { source, .. }) => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// One thing to build: a function's or layer's code with its method and settings.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub logical_id: String,
    pub is_layer: bool,
    pub source: PathBuf,
    pub arch: Arch,
    pub method: Method,
    pub properties: Value,
    /// A custom runtime's code packed as is: Lambda runs its `bootstrap`, so one must be
    /// there, executable (unless a layer may bring it).
    pub needs_bootstrap: bool,
    /// Directories under the source that are other resources' code (a function's layers):
    /// relative paths, left out of the walk.
    pub skip_dirs: Vec<String>,
    /// A function's Handler: esbuild's entry point when BuildProperties name none, and the
    /// executable a `go1.x` function's build is named after.
    pub handler: Option<String>,
}

impl Target {
    /// The build target for a function or layer, or why there is none.
    pub fn of(unit: &Unit) -> Result<Target, NotBuilt> {
        let Unit { res, runtime, handler, is_layer, has_layers } = *unit;
        let method = method::select(res, runtime, is_layer)?;
        let needs_bootstrap = matches!(method, Method::Prebuilt | Method::File)
            && !is_layer
            && !has_layers
            && !res.build.skip_build
            && runtime.is_some_and(|r| r.starts_with("provided"));
        let source = match &res.code {
            Code::Dir(p) | Code::Zip(p) | Code::File(p) => p.clone(),
            _ => unreachable!("method::select only succeeds for local code"),
        };
        Ok(Target {
            id: res.id.clone(),
            logical_id: res.logical_id.clone(),
            is_layer,
            source,
            arch: res.architecture,
            method,
            properties: res.build.properties.clone(),
            needs_bootstrap,
            skip_dirs: Vec::new(),
            handler: handler.map(str::to_string),
        })
    }

    /// The build target for `unit` of `project`: as [`Target::of`], with the directories of a
    /// function's own layers inside its code left out of it.
    pub fn in_project(project: &Project, unit: &Unit) -> Result<Target, NotBuilt> {
        let mut t = Target::of(unit)?;
        if !unit.is_layer {
            t.skip_dirs = project.layer_dirs_under(&unit.res.id, &t.source);
        }
        t.skip_dirs.extend(project.infra_files_under(&t.source));
        Ok(t)
    }

    /// Patterns left out of the source tree for this method, beyond the defaults.
    pub fn walk_options(&self, project_root: &Path, follow_external_symlinks: bool) -> WalkOptions {
        let (gitignore, extra): (bool, &[&str]) = match self.method {
            // SAM's python builder leaves out virtualenvs and tool caches.
            Method::Python { .. } => {
                (true, &[".venv", "venv", ".env", ".mypy_cache", ".pytest_cache", ".tox", ".nox", "*.egg-info"])
            }
            // Dependencies come from the install, never from the source tree.
            Method::Nodejs { .. } | Method::Esbuild { .. } => (true, &["node_modules"]),
            Method::Makefile | Method::Go { .. } => (true, &[]),
            // Build output: cargo lambda, Gradle and dotnet build in the source tree; a Maven
            // build in the tree would leave one behind.
            Method::CargoLambda | Method::Maven { .. } => (true, &["target"]),
            Method::Gradle { .. } => (true, &["build", ".gradle"]),
            Method::Dotnet { .. } => (true, &["bin", "obj"]),
            // Gems come from the install; a local bundler config would point it elsewhere.
            Method::Ruby { .. } => (true, &[".bundle"]),
            // A prebuilt directory is the artifact: its files are packed even if gitignored
            // (build outputs usually are).
            Method::Prebuilt | Method::Zip | Method::File => (false, &[]),
        };
        // A local `bundle install --path vendor/bundle`: the host's gems, not the build's.
        let gems = matches!(self.method, Method::Ruby { .. }).then(|| "vendor/bundle".to_string());
        WalkOptions {
            project_root: project_root.to_path_buf(),
            gitignore,
            extra_excludes: extra.iter().map(|s| s.to_string()).collect(),
            follow_external_symlinks,
            skip_dirs: self.skip_dirs.iter().cloned().chain(gems).collect(),
        }
    }
}

/// What a target's dependencies are, known before installing them.
#[derive(Debug, Clone)]
pub enum DepsPlan {
    Python(python::Plan),
    Nodejs(node::Plan),
}

impl DepsPlan {
    pub fn key(&self) -> &str {
        match self {
            DepsPlan::Python(p) => &p.key,
            DepsPlan::Nodejs(p) => &p.key,
        }
    }
}

/// A target with its fingerprint.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub target: Target,
    pub files: Vec<FileEntry>,
    pub hashes: Vec<[u8; 32]>,

    /// Dependencies to include; their key covers manifests and local packages outside the tree.
    pub deps: Option<DepsPlan>,
    /// The build tool's path and version when it decides the artifact (esbuild, go,
    /// cargo-lambda, ruby).
    pub tool: Option<(PathBuf, String)>,
    /// The cache key: the tree plus every build setting that changes the artifact.
    pub key: String,
}

/// Result of building a prepared target.
#[derive(Debug, Clone)]
pub struct Built {
    pub artifact: Artifact,
    pub deps: Option<Deps>,
}

/// Builds targets into the artifact store. Shared by all build threads.
pub struct Builder {
    pub project_root: PathBuf,
    pub work_dir: PathBuf,
    pub deps: DepsCache,
    pub store: Store,
    pub follow_external_symlinks: bool,
    pub hash_threads: usize,
}

impl Builder {
    /// Creates a builder keeping its files under `lamb_dir` (the project's `.lamb`).
    pub fn new(project_root: &Path, lamb_dir: &Path, follow_external_symlinks: bool, hash_threads: usize) -> Self {
        Builder {
            project_root: project_root.to_path_buf(),
            work_dir: lamb_dir.join("work"),
            deps: DepsCache::new(lamb_dir.join("deps")),
            store: Store::new(lamb_dir.join("artifacts")),
            follow_external_symlinks,
            hash_threads,
        }
    }

    /// Walks and hashes the target's sources and derives its cache key, reading again when a
    /// file vanishes mid-walk (an editor saving, a `git checkout`).
    pub fn prepare(&self, target: Target) -> Result<Prepared, BuildError> {
        let mut attempt = 0;
        loop {
            match self.prepare_once(target.clone()) {
                Err(e) if e.is_race() && attempt < RACE_RETRIES => {
                    attempt += 1;
                    tracing::debug!(resource = %target.id, error = %e, "sources changed while reading them; reading again");
                }
                other => return other,
            }
        }
    }

    /// Builds `p`; when a file changes between fingerprinting and packing, fingerprints again
    /// and builds the new content. Returns the result and, if it had to, the new fingerprint.
    pub fn build_fresh(&self, p: &Prepared, force: bool) -> (Result<Built, BuildError>, Option<Prepared>) {
        let mut result = self.build(p, force);
        let mut latest = None;
        let mut attempt = 0;
        while let Err(e) = &result {
            if !e.is_race() || attempt >= RACE_RETRIES {
                break;
            }
            attempt += 1;
            tracing::info!(resource = %p.target.id, error = %e, "sources changed during the build; building again");
            match self.prepare(p.target.clone()) {
                Ok(fresh) => {
                    result = self.build(&fresh, force);
                    latest = Some(fresh);
                }
                Err(e) => result = Err(e),
            }
        }
        (result, latest)
    }

    fn prepare_once(&self, target: Target) -> Result<Prepared, BuildError> {
        let (files, hashes, tree) = if target.method == Method::Zip {
            let meta = fs::metadata(&target.source)
                .map_err(|source| FingerprintError::Unreadable { path: target.source.clone(), source })?;
            let files =
                vec![FileEntry { rel: "code.zip".into(), abs: target.source.clone(), exec: false, size: meta.len() }];
            let (tree, hashes) = fingerprint::hash_entries_with_files(&files, 1)?;
            (files, hashes, tree)
        } else if target.method == Method::File {
            let files = vec![fingerprint::file_entry(&target.source)?];
            if target.needs_bootstrap {
                check_bootstrap(&target, &files)?;
            }
            let (tree, hashes) = fingerprint::hash_entries_with_files(&files, 1)?;
            (files, hashes, tree)
        } else {
            let opts = target.walk_options(&self.project_root, self.follow_external_symlinks);
            let files = fingerprint::walk(&target.source, &opts)?;
            if target.needs_bootstrap {
                check_bootstrap(&target, &files)?;
            }
            let (tree, hashes) = fingerprint::hash_entries_with_files(&files, self.hash_threads)?;
            (files, hashes, tree)
        };
        let deps = match &target.method {
            Method::Python { runtime } => {
                python::plan(&target.source, runtime, target.arch, &self.project_root)?.map(DepsPlan::Python)
            }
            Method::Nodejs { runtime } | Method::Esbuild { runtime } => {
                node::plan(&target.source, runtime, target.arch, &self.project_root)?.map(DepsPlan::Nodejs)
            }
            _ => None,
        };
        let tool = match &target.method {
            Method::Esbuild { .. } => Some(esbuild::locate(&target.source, &self.project_root)?),
            Method::Go { .. } => {
                go::check_module(&target, &files)?;
                Some(go::locate()?)
            }
            Method::CargoLambda => Some(cargo_lambda::locate()?),
            Method::Gradle { .. } => Some(gradle::locate(&target.source, &self.project_root)?),
            Method::Dotnet { .. } => Some(dotnet::locate()?),
            // Without a Gemfile the sources are the artifact: no Ruby needed.
            Method::Ruby { .. } if files.iter().any(|f| f.rel == "Gemfile") => Some(ruby::locate()?),
            _ => None,
        };
        let key = build_key(&target, &tree, deps.as_ref().map(DepsPlan::key), tool.as_ref().map(|(_, v)| v.as_str()));
        Ok(Prepared { target, files, hashes, deps, tool, key })
    }

    fn deps_context(&self, force: bool) -> DepsContext<'_> {
        DepsContext { cache: &self.deps, project_root: &self.project_root, force }
    }

    /// Produces the artifact for `p` (the caller has checked the store first). `force` also
    /// reinstalls dependencies.
    pub fn build(&self, p: &Prepared, force: bool) -> Result<Built, BuildError> {
        let t = &p.target;
        let mut entries: BTreeMap<String, PackEntry> = BTreeMap::new();
        let mut deps = None;
        let source_prefix = match (&t.method, t.is_layer) {
            (Method::Python { .. }, true) => "python/",
            (Method::Nodejs { .. }, true) => "nodejs/",
            (Method::Ruby { .. }, true) => ruby::LAYER_SOURCES,
            _ => "",
        };
        match &t.method {
            Method::Zip => {
                let artifact = package::describe_zip(&t.source)?;
                if artifact.sha256 != fingerprint::hex(&p.hashes[0]) {
                    return Err(PackageError::Changed { path: t.source.clone() }.into());
                }
                self.store.put_meta(&p.key, &artifact)?;
                return Ok(Built { artifact, deps: None });
            }
            Method::Prebuilt | Method::File => {}
            Method::Python { .. } | Method::Nodejs { .. } => {
                let ctx = self.deps_context(force);
                let (installed, prefix) = match &p.deps {
                    Some(DepsPlan::Python(plan)) => (Some(python::install(&ctx, plan)?), source_prefix.to_string()),
                    Some(DepsPlan::Nodejs(plan)) => {
                        (Some(node::install(&ctx, plan)?), format!("{source_prefix}node_modules/"))
                    }
                    None => (None, String::new()),
                };
                if let Some(d) = &installed {
                    add_tree(&mut entries, &d.dir, &prefix)?;
                }
                deps = installed;
            }
            Method::Makefile => return self.make(p),
            Method::Esbuild { .. } => return self.esbuild(p, force),
            Method::Go { runtime } => return go::build(self, p, runtime),
            Method::CargoLambda => return cargo_lambda::build(self, p),
            Method::Maven { .. } => return maven::build(self, p),
            Method::Gradle { .. } => return gradle::build(self, p),
            Method::Dotnet { .. } => return dotnet::build(self, p),
            Method::Ruby { runtime } => {
                if let Some((_, host_abi)) = &p.tool {
                    return ruby::build(self, p, runtime, host_abi);
                }
            }
        }
        for (f, h) in p.files.iter().zip(&p.hashes) {
            let rel = format!("{source_prefix}{}", f.rel);
            entries.insert(rel.clone(), PackEntry { rel, source: f.abs.clone(), exec: f.exec, expect: Some(*h) });
        }
        let entries: Vec<PackEntry> = entries.into_values().collect();
        let artifact = package::pack(&entries, &self.store.zip_path(&p.key))?;
        self.store.put_meta(&p.key, &artifact)?;
        Ok(Built { artifact, deps })
    }

    /// esbuild over a scratch copy of the sources, with the npm dependencies on NODE_PATH.
    fn esbuild(&self, p: &Prepared, force: bool) -> Result<Built, BuildError> {
        let missing = || BuildError::MissingTool { tool: "esbuild".into(), install: esbuild::INSTALL.into() };
        let (bin, _) = p.tool.clone().ok_or_else(missing)?;
        let deps = match &p.deps {
            Some(DepsPlan::Nodejs(plan)) => Some(node::install(&self.deps_context(force), plan)?),
            _ => None,
        };
        // The esbuild the function's own dependencies brought, else one on PATH.
        let bin = if bin.as_os_str().is_empty() {
            deps.as_ref()
                .and_then(|d| esbuild::in_dependencies(&d.dir, p.target.arch))
                .or_else(|| esbuild::find(&p.target.source, &self.project_root))
                .ok_or_else(missing)?
        } else {
            bin
        };
        let (work, src, out) = self.scratch(p)?;
        esbuild::bundle(
            &bin,
            &src,
            &p.target.properties,
            p.target.handler.as_deref(),
            deps.as_ref().map(|d| d.dir.as_path()),
            &out,
        )?;
        let artifact = self.pack_dir(p, &work, &out, || BuildError::NoOutput {
            step: "esbuild".into(),
            fix: "check EntryPoints".into(),
        })?;
        Ok(Built { artifact, deps })
    }

    /// A fresh work directory for `p` with an empty artifacts directory in it: (work,
    /// artifacts). For tools that build in the code directory itself.
    fn work_area(&self, p: &Prepared) -> Result<(PathBuf, PathBuf), BuildError> {
        let work = self.work_dir.join(&p.key[..16]);
        let _ = fs::remove_dir_all(&work);
        let artifacts = work.join("artifacts");
        fs::create_dir_all(&artifacts)
            .map_err(|source| BuildError::Io { what: format!("cannot create {}", artifacts.display()), source })?;
        Ok((work, artifacts))
    }

    /// A fresh scratch directory with a verified copy of the sources: (work, src, artifacts).
    fn scratch(&self, p: &Prepared) -> Result<(PathBuf, PathBuf, PathBuf), BuildError> {
        let (work, artifacts) = self.work_area(p)?;
        let src = work.join("src");
        for (f, h) in p.files.iter().zip(&p.hashes) {
            copy_verified(&f.abs, &src.join(&f.rel), f.exec, h)?;
        }
        Ok((work, src, artifacts))
    }

    /// Packs everything a tool wrote to `out`, then removes the scratch directory.
    fn pack_dir(
        &self,
        p: &Prepared,
        work: &Path,
        out: &Path,
        empty: impl FnOnce() -> BuildError,
    ) -> Result<Artifact, BuildError> {
        let opts = WalkOptions {
            project_root: work.to_path_buf(),
            gitignore: false,
            extra_excludes: Vec::new(),
            follow_external_symlinks: self.follow_external_symlinks,
            skip_dirs: Vec::new(),
        };
        let files = fingerprint::walk(out, &opts)?;
        if files.is_empty() {
            return Err(empty());
        }
        let entries: Vec<PackEntry> =
            files.into_iter().map(|f| PackEntry { rel: f.rel, source: f.abs, exec: f.exec, expect: None }).collect();
        let artifact = package::pack(&entries, &self.store.zip_path(&p.key))?;
        self.store.put_meta(&p.key, &artifact)?;
        let _ = fs::remove_dir_all(work);
        Ok(artifact)
    }

    /// `make build-<LogicalId>` in a scratch copy of the sources, as SAM's makefile builder
    /// does, then packs whatever the target put in `$ARTIFACTS_DIR`.
    fn make(&self, p: &Prepared) -> Result<Built, BuildError> {
        let t = &p.target;
        let makefile =
            ["Makefile", "makefile", "GNUmakefile"].into_iter().find(|m| p.files.iter().any(|f| f.rel == *m));
        let Some(makefile) = makefile else {
            return Err(BuildError::NoMakefile { dir: t.source.clone(), target: format!("build-{}", t.logical_id) });
        };
        let (work, src, artifacts) = self.scratch(p)?;
        let target = format!("build-{}", t.logical_id);
        let mut cmd = Command::new("make");
        cmd.arg("--makefile").arg(src.join(makefile)).arg(&target).env("ARTIFACTS_DIR", &artifacts).current_dir(&src);
        tools::run(&mut cmd, "make", "install make (e.g. apt install make)").map_err(|e| match e {
            BuildError::ToolFailed { run, .. } => {
                let fix = if run.output.contains(&format!("No rule to make target '{target}'")) {
                    format!("add a `{target}:` target to {}", t.source.join(makefile).display())
                } else {
                    format!("fix the `{target}` target in {}", t.source.join(makefile).display())
                };
                BuildError::ToolFailed { run, fix: Some(fix) }
            }
            other => other,
        })?;
        let empty = || BuildError::NoOutput {
            step: format!("`make {target}` succeeded but"),
            fix: "copy the build output to $ARTIFACTS_DIR (e.g. `cp bootstrap $(ARTIFACTS_DIR)/`)".into(),
        };
        let artifact = self.pack_dir(p, &work, &artifacts, empty)?;
        Ok(Built { artifact, deps: None })
    }
}

/// A custom runtime's directory without a runnable `bootstrap` is source code, not a build:
/// packing it would deploy a function that cannot start.
fn check_bootstrap(t: &Target, files: &[FileEntry]) -> Result<(), BuildError> {
    let how = format!(
        "let lamb build it: `Metadata: {{BuildMethod: rust-cargolambda}}` (runs `cargo lambda build`) or `{{BuildMethod: go1.x}}` on `{}`; or build it first; or add `Metadata: {{BuildMethod: makefile}}` with a `build-{}` target that puts `bootstrap` in $ARTIFACTS_DIR",
        t.logical_id, t.logical_id
    );
    match files.iter().find(|f| f.rel == "bootstrap") {
        Some(f) if f.exec => Ok(()),
        Some(f) => Err(BuildError::Bootstrap {
            dir: t.source.clone(),
            problem: format!(
                "`bootstrap` is not executable, and Lambda runs it to start a custom runtime; `chmod +x {}`",
                f.abs.display()
            ),
        }),
        None => Err(BuildError::Bootstrap {
            dir: t.source.clone(),
            problem: format!(
                "a custom runtime's code needs an executable `bootstrap` at its top, and there is none ({} files); {how}",
                files.len()
            ),
        }),
    }
}

/// The cache key of a target: its tree and every setting that changes the artifact.
fn build_key(t: &Target, tree: &TreeHash, deps: Option<&str>, tool: Option<&str>) -> String {
    let settings = serde_json::json!({
        "v": BUILD_KEY_VERSION,
        "method": t.method,
        "arch": t.arch,
        "layer": t.is_layer,
        "properties": t.properties.canonical_json(),
        // Make targets are per logical id, so two functions sharing a directory differ.
        "make_target": (t.method == Method::Makefile).then_some(&t.logical_id),
        // A go1.x function's executable is named after its Handler.
        "handler": matches!(t.method, Method::Go { .. }).then_some(&t.handler),
        "deps": deps,
        "tool": tool,
        // Without EntryPoints, the Handler picks what esbuild bundles.
        "entry_handler": (matches!(t.method, Method::Esbuild { .. }) && !esbuild::has_entry_points(&t.properties))
            .then_some(t.handler.as_deref()),
    });
    let mut h = Sha256::new();
    h.update(settings.to_string().as_bytes());
    h.update(tree.digest);
    fingerprint::hex(&h.finalize())
}

/// Adds every file under `dir` (dependencies) at `prefix`.
fn add_tree(entries: &mut BTreeMap<String, PackEntry>, dir: &Path, prefix: &str) -> Result<(), BuildError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let opts = WalkOptions {
        project_root: dir.to_path_buf(),
        gitignore: false,
        extra_excludes: Vec::new(),
        follow_external_symlinks: true,
        skip_dirs: Vec::new(),
    };
    for f in fingerprint::walk(dir, &opts)? {
        let rel = format!("{prefix}{}", f.rel);
        entries.insert(rel.clone(), PackEntry { rel, source: f.abs, exec: f.exec, expect: None });
    }
    Ok(())
}

/// Copies a source file into a scratch directory, checking it still has the fingerprinted
/// content.
fn copy_verified(from: &Path, to: &Path, exec: bool, expect: &[u8; 32]) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = fs::read(from).map_err(|source| PackageError::Read { path: from.to_path_buf(), source })?;
    if <[u8; 32]>::from(Sha256::digest(&bytes)) != *expect {
        return Err(PackageError::Changed { path: from.to_path_buf() }.into());
    }
    let io = |source| BuildError::Io { what: format!("cannot write {}", to.display()), source };
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    fs::write(to, &bytes).map_err(io)?;
    fs::set_permissions(to, fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 })).map_err(io)?;
    Ok(())
}
