//! One sync pass, run as its own task: build the targets that fell due, skip those whose build
//! Lambda already runs (the content gate), and sync the rest through [`crate::sync`].

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::Model;
use super::scheduler::{ItemOutcome, ItemResult, Planned};
use super::ui::DaemonUi;
use crate::aws::Aws;
use crate::engine::{self, BuildOptions, BuildReport};
use crate::project::Project;
use crate::push::SyncStatus;
use crate::sync::{SyncError, SyncOptions, SyncReport};

/// Why a pass as a whole failed.
#[derive(Debug, Clone)]
pub struct PassError {
    pub message: String,
    /// AWS's trouble (network, throttling, expired credentials): retried with backoff.
    /// Anything else is the user's to fix, and is tried again on their next save.
    pub transient: bool,
}

/// What a pass came back with.
pub struct Outcome {
    pub seq: u64,
    pub infra: bool,
    /// Every id the pass took care of (all of them for an infrastructure pass).
    pub covered: BTreeSet<String>,
    pub first_event: HashMap<String, Instant>,
    /// Ids whose build matched what Lambda runs: skipped without a call.
    pub unchanged: Vec<String>,
    pub result: Result<Option<SyncReport>, PassError>,
    /// Build failures are the user's to fix: not retried until the next save.
    pub build_failed: BTreeSet<String>,
    pub elapsed: Duration,
}

impl Outcome {
    /// What the scheduler needs to know of this pass.
    pub fn for_scheduler(&self) -> super::scheduler::PassResult {
        use super::scheduler::PassResult;
        match &self.result {
            Ok(None) => PassResult::Nothing,
            Ok(Some(report)) => PassResult::Items(
                report
                    .items
                    .iter()
                    .map(|i| ItemOutcome {
                        id: i.id.clone(),
                        result: match i.status {
                            SyncStatus::Failed => ItemResult::Failed {
                                transient: i.transient,
                                build_failed: self.build_failed.contains(&i.id),
                            },
                            SyncStatus::Skipped => ItemResult::Skipped,
                            _ => ItemResult::Done,
                        },
                    })
                    .collect(),
            ),
            Err(e) => PassResult::Failed { transient: e.transient },
        }
    }
}

/// What a pass task owns.
pub struct PassContext {
    pub model: Arc<Model>,
    pub aws: Aws,
    pub lamb_dir: PathBuf,
    pub ui: Arc<DaemonUi>,
    pub last_live: HashMap<String, String>,
    pub code_only: bool,
    pub follow_external_symlinks: bool,
    pub allow_production: bool,
    /// The stack as the last pass found it (see [`crate::sync::KnownStack`]).
    pub known: Option<crate::sync::KnownStack>,
}

/// Whether a failed sync may succeed later with nothing saved: AWS's trouble, and expired
/// credentials (the user logs in again; no file changes).
fn retry_later(e: &SyncError) -> bool {
    use crate::aws::AwsError;
    let aws = match e {
        SyncError::Aws(a) => Some(a),
        SyncError::Deploy(d) => d.aws(),
        _ => None,
    };
    e.is_transient() || matches!(aws, Some(AwsError::Credentials { .. }))
}

/// One pass: build the dirty targets, skip what Lambda already runs, sync the rest.
pub async fn run_pass(ctx: PassContext, pass: Planned) -> Outcome {
    let started = Instant::now();
    let model = ctx.model.clone();
    let infra = pass.infra;
    let mut covered = pass.ids.clone();
    if infra {
        // An infrastructure pass deploys every function: all of them are part of it.
        covered.extend(model.index.units());
    }
    let wanted: Vec<String> = covered.iter().filter(|id| model.project.resolve_id(id).is_ok()).cloned().collect();
    let build_ids = if infra { Vec::new() } else { model.project.with_layers_of(&wanted) };
    let outcome = |result, unchanged, build_failed| Outcome {
        seq: pass.seq,
        infra,
        covered: covered.clone(),
        first_event: pass.first_event.clone(),
        unchanged,
        result,
        build_failed,
        elapsed: started.elapsed(),
    };
    if wanted.is_empty() && !infra {
        return outcome(Ok(None), Vec::new(), BTreeSet::new());
    }
    let (m, follow) = (model.clone(), ctx.follow_external_symlinks);
    let built = tokio::task::spawn_blocking(move || build(&m.project, build_ids, follow)).await;
    let report = match built {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return outcome(Err(PassError { message: e.to_string(), transient: false }), Vec::new(), BTreeSet::new());
        }
        Err(e) => {
            let message = format!("the build stopped unexpectedly: {e}");
            return outcome(Err(PassError { message, transient: false }), Vec::new(), BTreeSet::new());
        }
    };
    let build_failed: BTreeSet<String> =
        report.resources.iter().filter(|r| r.status == engine::Status::Failed).map(|r| r.id.clone()).collect();
    // The content gate: a build Lambda already runs needs no sync at all.
    let mut unchanged = Vec::new();
    let mut sync_ids = Vec::new();
    for id in &wanted {
        let sha = report
            .resources
            .iter()
            .find(|r| &r.id == id)
            .and_then(|r| r.artifact.as_ref())
            .map(|a| a.code_sha256.clone());
        match (sha, ctx.last_live.get(id)) {
            (Some(sha), Some(live)) if &sha == live && !infra => unchanged.push(id.clone()),
            _ => sync_ids.push(id.clone()),
        }
    }
    if sync_ids.is_empty() && !infra {
        tracing::debug!(?unchanged, "content unchanged; nothing to sync");
        return outcome(Ok(None), unchanged, build_failed);
    }
    let opts = SyncOptions {
        ids: if infra { Vec::new() } else { model.project.with_layers_of(&sync_ids) },
        code_only: ctx.code_only,
        yes: true,
        jobs: model.settings.jobs,
        allow_production: ctx.allow_production,
        known: ctx.known.clone(),
    };
    let (m, follow) = (model.clone(), ctx.follow_external_symlinks);
    let full_build = move || build(&m.project, Vec::new(), follow);
    let result = crate::sync::run(
        &ctx.aws,
        &model.project,
        &report,
        &full_build,
        &model.cfg,
        &opts,
        &ctx.lamb_dir,
        ctx.ui.as_ref(),
    )
    .await
    .map(Some)
    .map_err(|e| PassError { transient: retry_later(&e), message: e.to_string() });
    outcome(result, unchanged, build_failed)
}

fn build(
    project: &Project,
    ids: Vec<String>,
    follow_external_symlinks: bool,
) -> Result<BuildReport, crate::state::StateError> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    engine::build(
        project,
        &BuildOptions { ids, force: false, dry_run: false, jobs, follow_external_symlinks },
        &engine::Silent,
    )
}
