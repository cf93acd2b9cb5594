//! One build pass over a project: select resources, fingerprint them, plan, build what changed
//! (in parallel, shared code once), record the results and prune what is no longer needed.
//! Every mode (`lamb build`, and later sync and watch) goes through here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::build::{BuildError, Builder, Built, Method, NotBuilt, Prepared, Target};
use crate::plan::{self, BuildAction};
use crate::project::{Arch, Project};
use crate::state::{self, BuildRecord, BuildState, StateError};

/// The project's private directory.
pub const LAMB_DIR: &str = ".lamb";

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Built,
    Cached,
    /// Would be built (`--dry-run`).
    Changed,
    Failed,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Built => "built",
            Status::Cached => "cached",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Function,
    Layer,
}

/// The report line of one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceReport {
    pub id: String,
    pub kind: Kind,
    pub status: Status,
    pub method: Option<String>,
    pub architecture: Arch,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactReport>,
    /// `installed` or `cached` when the build includes dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<&'static str>,
    /// The resource whose build this one shares (same code and settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the resource is declared (`template.yaml:12`).
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactReport {
    pub path: PathBuf,
    pub size: u64,
    pub unzipped_size: u64,
    pub files: usize,
    pub code_sha256: String,
    pub sha256: String,
}

/// The whole pass.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub resources: Vec<ResourceReport>,
    pub duration_ms: u64,
    pub notes: Vec<String>,
}

impl BuildReport {
    pub fn count(&self, status: Status) -> usize {
        self.resources.iter().filter(|r| r.status == status).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Status::Failed) > 0
    }
}

/// Receives progress as resources start and finish (called from build threads).
pub trait Progress: Sync {
    fn started(&self, id: &str, action: &str);
    fn finished(&self, report: &ResourceReport);
}

/// A `Progress` that ignores everything.
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &ResourceReport) {}
}

/// Options of one build pass.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Full ids to build; empty means all.
    pub ids: Vec<String>,
    pub force: bool,
    /// Fingerprint and plan only.
    pub dry_run: bool,
    pub jobs: usize,
    pub follow_external_symlinks: bool,
}

struct Item {
    id: String,
    kind: Kind,
    architecture: Arch,
    location: String,
    target: Result<Target, NotBuilt>,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Builds the selected resources of `project`.
pub fn build(project: &Project, opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildReport, StateError> {
    let started = Instant::now();
    let lamb_dir = project.root.join(LAMB_DIR);
    ensure_lamb_dir(&lamb_dir)?;
    let _lock = state::Lock::acquire(&lamb_dir.join("build.lock"), || {
        tracing::info!("waiting for another lamb build in this project to finish");
    })?;
    sweep_leftovers(&lamb_dir);
    let state_path = lamb_dir.join("build.json");
    let loaded = BuildState::load(&state_path)?;
    let mut state = loaded.clone();

    let hash_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let builder = Builder::new(&project.root, &lamb_dir, opts.follow_external_symlinks, hash_threads);
    let wanted = |id: &str| opts.ids.is_empty() || opts.ids.iter().any(|w| w == id);

    let items: Vec<Item> = project
        .units()
        .filter(|u| wanted(&u.res.id))
        .map(|u| Item {
            id: u.res.id.clone(),
            kind: if u.is_layer { Kind::Layer } else { Kind::Function },
            architecture: u.res.architecture,
            location: u.res.location(),
            target: Target::in_project(project, &u),
        })
        .collect();

    let report_of = |item: &Item, status: Status, duration_ms: u64, message: Option<String>| ResourceReport {
        id: item.id.clone(),
        kind: item.kind,
        status,
        method: item.target.as_ref().ok().map(|t| t.method.name().to_string()),
        architecture: item.architecture,
        duration_ms,
        artifact: None,
        deps: None,
        shared_with: None,
        message,
        location: item.location.clone(),
    };

    // Fingerprint everything that can be built.
    let jobs = opts.jobs.max(1);
    let prepared: Vec<Option<(Result<Prepared, BuildError>, u64)>> = crate::par::map(&items, jobs, |item| {
        let target = item.target.as_ref().ok()?;
        let t0 = Instant::now();
        Some((builder.prepare(target.clone()), ms(t0)))
    });

    let mut reports: Vec<Option<ResourceReport>> = vec![None; items.len()];
    let mut keyed: Vec<(String, String)> = Vec::new();
    let mut by_id: HashMap<String, (usize, Prepared, u64)> = HashMap::new();
    for (i, (item, prep)) in items.iter().zip(prepared).enumerate() {
        match (&item.target, prep) {
            (Err(NotBuilt::Skip(why)), _) => reports[i] = Some(report_of(item, Status::Skipped, 0, Some(why.clone()))),
            (Err(NotBuilt::Error(why)), _) => reports[i] = Some(report_of(item, Status::Failed, 0, Some(why.clone()))),
            (Ok(_), Some((Err(e), took))) => {
                reports[i] = Some(report_of(item, Status::Failed, took, Some(e.to_string())))
            }
            (Ok(_), Some((Ok(p), took))) => {
                keyed.push((item.id.clone(), p.key.clone()));
                by_id.insert(item.id.clone(), (i, p, took));
            }
            (Ok(_), None) => unreachable!("buildable items are always prepared"),
        }
    }
    for r in reports.iter().flatten() {
        progress.finished(r);
    }

    // What the store already holds, looked up once per key.
    let mut stored: HashMap<String, crate::package::Artifact> = HashMap::new();
    for (id, key) in &keyed {
        let target = &by_id[id].1.target;
        let external = (target.method == Method::Zip).then_some(target.source.as_path());
        if !stored.contains_key(key)
            && let Some(a) = builder.store.get(key, external)
        {
            stored.insert(key.clone(), a);
        }
    }
    let groups = plan::plan_builds(&keyed, |k| stored.contains_key(k), opts.force);

    if opts.dry_run {
        for g in &groups {
            let cached = (g.action == BuildAction::Cached).then(|| stored.get(&g.key)).flatten();
            for member in &g.members {
                let (i, _, took) = &by_id[member];
                let item = &items[*i];
                let status = if cached.is_some() { Status::Cached } else { Status::Changed };
                let mut r = report_of(item, status, *took, None);
                r.artifact = cached.map(artifact_report);
                if member != &g.representative {
                    r.shared_with = Some(g.representative.clone());
                }
                progress.finished(&r);
                reports[*i] = Some(r);
            }
        }
        return Ok(finish(project, reports, started, progress));
    }

    // Build the groups that need it.
    let outcomes: Vec<(Result<Built, BuildError>, Option<Prepared>, u64)> = crate::par::map(&groups, jobs, |g| {
        let (_, p, hash_ms) = &by_id[&g.representative];
        let t0 = Instant::now();
        if g.action == BuildAction::Cached {
            let artifact = stored[&g.key].clone();
            let prev_deps =
                state.resources.get(&g.representative).filter(|r| r.key == g.key).and_then(|r| r.deps.clone());
            let deps = prev_deps.map(|key| crate::build::Deps { key, dir: PathBuf::new(), installed: false });
            return (Ok(Built { artifact, deps }), None, hash_ms + ms(t0));
        }
        progress.started(&g.representative, "building");
        let (result, rebuilt) = builder.build_fresh(p, opts.force);
        (result, rebuilt, hash_ms + ms(t0))
    });

    let built_at = state::now_secs();
    for (g, (result, rebuilt, took)) in groups.iter().zip(outcomes) {
        let key = rebuilt.as_ref().map_or(g.key.clone(), |p| p.key.clone());
        for member in &g.members {
            let (i, p, _) = &by_id[member];
            let item = &items[*i];
            let mut r = report_of(item, Status::Failed, took, None);
            if member != &g.representative {
                r.shared_with = Some(g.representative.clone());
            }
            match &result {
                Ok(b) => {
                    r.status = if g.action == BuildAction::Cached { Status::Cached } else { Status::Built };
                    r.deps = b.deps.as_ref().map(|d| if d.installed { "installed" } else { "cached" });
                    r.artifact = Some(artifact_report(&b.artifact));
                    let unchanged = state.resources.get(member).is_some_and(|old| old.key == key);
                    if r.status == Status::Built || !unchanged {
                        let record = BuildRecord {
                            key: key.clone(),
                            method: p.target.method.name().to_string(),
                            artifact: b.artifact.path.clone(),
                            code_sha256: b.artifact.code_sha256.clone(),
                            size: b.artifact.size,
                            unzipped_size: b.artifact.unzipped_size,
                            deps: b.deps.as_ref().map(|d| d.key.clone()),
                            built_at,
                            duration_ms: took,
                        };
                        state.resources.insert(member.clone(), record);
                    }
                }
                Err(e) => r.message = Some(e.to_string()),
            }
            progress.finished(&r);
            reports[*i] = Some(r);
        }
    }

    // Forget resources that left the template, then prune what no record refers to.
    if opts.ids.is_empty() {
        let present: HashSet<&str> = project.code_resources().map(|r| r.id.as_str()).collect();
        state.resources.retain(|id, _| present.contains(id.as_str()));
    }
    // A pass that changed nothing leaves the file (and its mtime) alone.
    if state != loaded {
        state::write_json(&state_path, &state)?;
    }
    let keep: HashSet<String> = state.resources.values().map(|r| r.key.clone()).collect();
    let pruned = builder.store.retain(&keep);
    let keep_deps: HashSet<String> = state.resources.values().filter_map(|r| r.deps.clone()).collect();
    prune_deps(builder.deps.dir(), &keep_deps);
    if pruned > 0 {
        tracing::debug!(pruned, "removed artifacts no longer referenced");
    }

    Ok(finish(project, reports, started, progress))
}

fn finish(
    project: &Project,
    reports: Vec<Option<ResourceReport>>,
    started: Instant,
    progress: &dyn Progress,
) -> BuildReport {
    let notes = project.notes.iter().map(ToString::to_string).collect();
    let mut resources: Vec<ResourceReport> =
        reports.into_iter().map(|r| r.expect("every resource has a report")).collect();
    for r in refuse_oversized(project, &mut resources) {
        progress.finished(r);
    }
    BuildReport { resources, duration_ms: ms(started), notes }
}

/// Lambda's limit on a function's unzipped code plus all its layers.
pub const UNZIPPED_LIMIT: u64 = 262_144_000;

/// A function whose code and layers unzip to more than Lambda accepts fails here, with the
/// sizes, so nothing that Lambda would reject is ever uploaded.
/// Returns the reports it failed.
fn refuse_oversized<'r>(project: &Project, resources: &'r mut [ResourceReport]) -> Vec<&'r ResourceReport> {
    let unzipped = |resources: &[ResourceReport], id: &str| {
        resources.iter().find(|r| r.id == id).and_then(|r| r.artifact.as_ref()).map(|a| a.unzipped_size)
    };
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1_000_000.0);
    let mut verdicts = Vec::new();
    for r in resources.iter() {
        let Some(own) = r.artifact.as_ref().map(|a| a.unzipped_size) else { continue };
        let layers: Vec<(String, u64)> = match r.kind {
            Kind::Layer => Vec::new(),
            Kind::Function => project
                .functions
                .iter()
                .find(|f| f.res.id == r.id)
                .map(|f| {
                    f.layers
                        .iter()
                        .filter_map(|l| match l {
                            crate::project::LayerRef::Local(id) => unzipped(resources, id).map(|s| (id.clone(), s)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        let total = own + layers.iter().map(|(_, s)| s).sum::<u64>();
        if total > UNZIPPED_LIMIT {
            let with = if layers.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = layers.iter().map(|(id, s)| format!("{id} {}", mb(*s))).collect();
                format!(" with its layers ({}), {} in all,", list.join(", "), mb(total))
            };
            verdicts.push((
                r.id.clone(),
                format!(
                    "unzipped it is {}{with} over Lambda's limit of {} (262,144,000 bytes) for a function and its layers; nothing was uploaded. Leave out what it does not need at run time (tests, data, dev dependencies), or use a container image (PackageType: Image)",
                    mb(own),
                    mb(UNZIPPED_LIMIT)
                ),
            ));
        }
    }
    let mut failed = Vec::new();
    for r in resources.iter_mut() {
        if let Some((_, message)) = verdicts.iter().find(|(id, _)| *id == r.id) {
            r.status = Status::Failed;
            r.artifact = None;
            r.message = Some(message.clone());
            failed.push(&*r);
        }
    }
    failed
}

fn artifact_report(a: &crate::package::Artifact) -> ArtifactReport {
    ArtifactReport {
        path: a.path.clone(),
        size: a.size,
        unzipped_size: a.unzipped_size,
        files: a.files,
        code_sha256: a.code_sha256.clone(),
        sha256: a.sha256.clone(),
    }
}

/// Creates `.lamb/` with a `.gitignore` that keeps it out of git without touching the user's.
fn ensure_lamb_dir(dir: &Path) -> Result<(), StateError> {
    let gi = dir.join(".gitignore");
    if !gi.is_file() {
        state::write_atomic(&gi, b"# lamb's build cache and state; safe to delete\n*\n")?;
    }
    Ok(())
}

/// Removes what a killed build left behind: scratch directories, half-installed dependencies
/// and half-written zips. Called with the build lock held, so nothing else is using them.
fn sweep_leftovers(lamb_dir: &Path) {
    let _ = std::fs::remove_dir_all(lamb_dir.join("work"));
    for sub in ["deps", "artifacts"] {
        let Ok(read) = std::fs::read_dir(lamb_dir.join(sub)) else { continue };
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            } else if name.starts_with(".pack-") || name.starts_with(".state-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Removes dependency installs that no recorded build uses.
fn prune_deps(dir: &Path, keep: &HashSet<String>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // In-flight installs (`.tmp-*`) belong to a running build.
        if !name.starts_with('.') && !keep.contains(&name) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
