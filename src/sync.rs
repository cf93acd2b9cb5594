//! One `lamb sync` pass: decide between a code push and a CloudFormation deploy (comparing the
//! templates — root and nested, code locations stripped — the parameters and the tags with what
//! the stack runs, on every pass), then push changed code straight to Lambda: layers
//! republished first, each function updated by one task (never two updates in flight for a
//! function), at most `jobs` functions at once, and nothing written for a function whose
//! CodeSha256 (and layers) already match what Lambda reports.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::aws::cloudformation::{CfnApi, StackInfo, StackResource};
use crate::aws::lambda::LambdaApi;
use crate::aws::{Aws, AwsError};
use crate::config::StackConfig;
use crate::deploy::{self, DeployError, DeployOutcome, DeployUi};
use crate::engine::{BuildReport, Kind, Status};
use crate::infra;
use crate::plan::{self, SyncMode};
use crate::project::Project;
use crate::push::{ItemReport, Pusher, SyncStatus, report_of};
use crate::state::{self, InfraRecord, StackState, StateError};

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Full ids to sync; empty means all.
    pub ids: Vec<String>,
    pub code_only: bool,
    /// Skip the first-sync confirmation.
    pub yes: bool,
    pub jobs: usize,
    /// Sync even a stack that looks like production (see [`plan::production_marker`]).
    pub allow_production: bool,
    /// The stack as the caller (the daemon) last read and checked it: used instead of reading
    /// it again while the infrastructure fingerprint is the same and the read is recent; the
    /// caller checks again off the hot path ([`verify`]). With it, what lamb last pushed is
    /// taken as what Lambda runs, so a code push is one `UpdateFunctionCode`.
    pub known: Option<KnownStack>,
}

/// A stack lamb read and found in line with the project's infrastructure.
#[derive(Debug, Clone)]
pub struct KnownStack {
    pub info: StackInfo,
    pub resources: Vec<StackResource>,
    /// The infrastructure fingerprint it was found current for.
    pub fingerprint: String,
    pub read_at: Instant,
}

/// How long a [`KnownStack`] stands in for reading the stack.
pub const KNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl KnownStack {
    /// Whether it stands for `stack` with infrastructure `fingerprint` now.
    fn fits(&self, stack: &str, fingerprint: &str) -> bool {
        self.info.name == stack && self.fingerprint == fingerprint && self.read_at.elapsed() < KNOWN_FOR
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub stack: String,
    /// `code` or `infra`.
    pub mode: &'static str,
    /// Why the infrastructure needed a deploy (deployed, or skipped with --code).
    pub infra_reasons: Vec<String>,
    pub infra_skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployOutcome>,
    pub items: Vec<ItemReport>,
    pub duration_ms: u64,
    /// The stack as this pass knew it, for the next pass (code passes that found the
    /// infrastructure current).
    #[serde(skip)]
    pub known: Option<KnownStack>,
    /// Whether this pass used the caller's [`KnownStack`] instead of reading the stack.
    #[serde(skip)]
    pub used_known: bool,
}

impl SyncReport {
    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| i.status == SyncStatus::Failed)
    }

    pub fn count(&self, s: SyncStatus) -> usize {
        self.items.iter().filter(|i| i.status == s).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    State(#[from] state::StateError),
    /// The full build a deploy needs could not run (its lock or record).
    #[error(transparent)]
    Build(StateError),
    #[error("stack {stack} does not exist; deploy it first with `lamb deploy` (or run `lamb sync` without --code)")]
    NoStack { stack: String },
    #[error(
        "the first sync of stack {stack} needs confirmation: lamb sync updates Lambda code directly, so the stack drifts from its template until the next deploy; run again with --yes to accept"
    )]
    NeedsConfirmation { stack: String },
    #[error("not confirmed; nothing was synced")]
    Declined,
    #[error(
        "stack {stack} looks like production ({why}): lamb sync pushes code around CloudFormation, which is for development stacks; deploy production with `lamb deploy`, or pass --allow-production if this stack is yours to experiment on"
    )]
    Production { stack: String, why: String },
}

/// Refuses a stack that looks like production unless allowed (see [`plan::production_marker`]).
pub fn check_production<'a>(
    stack: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
    allow: bool,
) -> Result<(), SyncError> {
    match plan::production_marker(stack, tags, parameters) {
        Some(why) if !allow => Err(SyncError::Production { stack: stack.to_string(), why }),
        Some(why) => {
            tracing::warn!(stack, "syncing a stack that looks like production ({why}): --allow-production");
            Ok(())
        }
        None => Ok(()),
    }
}

impl SyncError {
    /// Whether the pass may succeed later with nothing changed (see [`AwsError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Aws(e) => e.is_transient(),
            SyncError::Deploy(d) if d.aws().is_some() => d.aws().is_some_and(AwsError::is_transient),
            // Another operation on the stack: it ends by itself.
            SyncError::Deploy(DeployError::StackNotReady { status, .. }) => status.ends_with("_IN_PROGRESS"),
            SyncError::State(_) => true,
            _ => false,
        }
    }
}

/// What the stack runs now, read for [`infra::diff::differences`]: each of the project's
/// stacks' original template (`None` when a nested stack is not in the stack yet).
async fn deployed_templates(
    cfn: &CfnApi,
    project: &Project,
    info: &StackInfo,
    resources: &[StackResource],
) -> Result<HashMap<String, Option<String>>, AwsError> {
    let mut out = HashMap::new();
    for stack in &project.stacks {
        let physical = if stack.path.is_empty() {
            Some(info.id.clone())
        } else {
            resources
                .iter()
                .find(|r| r.logical_id == stack.path && r.resource_type == "AWS::CloudFormation::Stack")
                .map(|r| r.physical_id.clone())
        };
        let text = match physical.filter(|p| !p.is_empty()) {
            Some(physical) => Some(cfn.original_template(&physical).await?),
            None => None,
        };
        out.insert(stack.path.clone(), text);
    }
    Ok(out)
}

/// Runs one sync pass over a built project. `full_build` builds every function and layer; it
/// is called when the pass turns into a CloudFormation deploy but `report` covers only some.
///
/// A pass that pushed on what lamb knew of the stack ([`SyncOptions::known`]) and had a push
/// fail for a reason other than AWS's passing trouble (a function gone, a stack emptied) runs
/// again reading everything, so it catches in the same pass what reading first would have.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    aws: &Aws,
    project: &Project,
    report: &BuildReport,
    full_build: &(dyn Fn() -> Result<BuildReport, StateError> + Sync),
    cfg: &StackConfig,
    opts: &SyncOptions,
    lamb_dir: &std::path::Path,
    ui: &dyn DeployUi,
) -> Result<SyncReport, SyncError> {
    let first = run_once(aws, project, report, full_build, cfg, opts, opts.known.as_ref(), lamb_dir, ui).await;
    match &first {
        Ok(r) if r.used_known && r.items.iter().any(|i| i.status == SyncStatus::Failed && !i.transient) => {
            tracing::info!(stack = %cfg.stack_name, "a push on what lamb knew of the stack failed; reading it again");
            run_once(aws, project, report, full_build, cfg, opts, None, lamb_dir, ui).await
        }
        _ => first,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_once(
    aws: &Aws,
    project: &Project,
    report: &BuildReport,
    full_build: &(dyn Fn() -> Result<BuildReport, StateError> + Sync),
    cfg: &StackConfig,
    opts: &SyncOptions,
    known: Option<&KnownStack>,
    lamb_dir: &std::path::Path,
    ui: &dyn DeployUi,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let stack = cfg.stack_name.clone();
    let _lock = StackState::lock(lamb_dir, &stack, &aws.region).await?;
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let fingerprint = infra::fingerprint(project, &stack, &cfg.tags);
    let trusted = known.filter(|k| k.fits(&stack, &fingerprint));
    let info = match trusted {
        Some(k) => Some(k.info.clone()),
        None => cfn.describe(&stack).await?,
    };
    let no_tags = Vec::new();
    let (remote_tags, remote_params) = info.as_ref().map_or((&no_tags, &no_tags), |i| (&i.tags, &i.parameters));
    check_production(
        &stack,
        cfg.tags.iter().chain(remote_tags).map(|(k, v)| (k.as_str(), v.as_str())),
        remote_params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        opts.allow_production,
    )?;
    let mut st = StackState::load(lamb_dir, &stack, &aws.region)?
        .for_account(info.as_ref().and_then(|i| crate::aws::account_of(&i.id)));
    if let Some(i) = &info {
        deploy::check_updatable(i)?;
    }
    let resources = match (&info, trusted) {
        (_, Some(k)) => k.resources.clone(),
        (Some(_), None) => cfn.resources(&stack).await?,
        (None, None) => Vec::new(),
    };
    let physical = deploy::physical_ids(project, &resources);
    let wanted = |id: &str| opts.ids.is_empty() || opts.ids.iter().any(|w| w == id);
    let missing: Vec<String> = project
        .functions
        .iter()
        .filter(|f| wanted(&f.res.id) && report_of(report, &f.res.id).is_some_and(|r| r.artifact.is_some()))
        .filter(|f| !physical.contains_key(&f.res.id))
        .map(|f| f.res.id.clone())
        .collect();

    // Infrastructure: known current while lamb's record matches the project and nobody has
    // updated the stack since; otherwise compared with what the stack runs.
    let mut infra_reasons = Vec::new();
    if let Some(i) = info.as_ref().filter(|_| trusted.is_none()) {
        let recorded = st.infra.as_ref().map(|r| (r.fingerprint.as_str(), r.stack_updated.as_str()));
        if plan::infra_known_current(&fingerprint, recorded, &i.updated) {
            tracing::debug!(stack = %stack, "infrastructure matches lamb's last deploy; no template comparison needed");
        } else {
            let templates = deployed_templates(&cfn, project, i, &resources).await?;
            let deployed = infra::diff::Deployed { templates: &templates, parameters: &i.parameters, tags: &i.tags };
            infra_reasons = infra::diff::differences(project, &deployed, &cfg.tags);
            tracing::debug!(stack = %stack, reasons = ?infra_reasons, "compared the project with the deployed stack");
            if infra_reasons.is_empty() {
                // Found current, not deployed: the last deploy's time and duration stay.
                let (deployed_at, duration_ms) = st.infra.as_ref().map_or((0, 0), |r| (r.deployed_at, r.duration_ms));
                st.infra = Some(InfraRecord {
                    fingerprint: fingerprint.clone(),
                    stack_updated: i.updated.clone(),
                    deployed_at,
                    duration_ms,
                });
                st.save(lamb_dir)?;
            }
        }
    }
    // Functions deployed through CodeDeploy (DeploymentPreference) take new code only from
    // CloudFormation: a change to one is an infrastructure change.
    let mut gated = Vec::new();
    let lambda = LambdaApi::new(aws.lambda.clone(), aws.profile.clone());
    for f in project.functions.iter().filter(|f| f.deployment_preference && wanted(&f.res.id)) {
        let (Some(a), Some(name)) =
            (report_of(report, &f.res.id).and_then(|r| r.artifact.as_ref()), physical.get(&f.res.id))
        else {
            continue;
        };
        if lambda.get(name).await?.is_some_and(|remote| remote.code_sha256 != a.code_sha256) {
            infra_reasons.push(format!(
                "function {} has a DeploymentPreference, so its new code is deployed by CloudFormation (CodeDeploy)",
                f.res.id
            ));
            gated.push(f.res.id.clone());
        }
    }
    let (infra_reasons, infra_skipped) = match plan::sync_mode(info.is_some(), infra_reasons, &missing, opts.code_only)
    {
        SyncMode::Infra(reasons) => {
            ui.step(&format!("infrastructure changed ({}); deploying through CloudFormation", reasons.join("; ")));
            // A deploy ships every function: build the ones this pass did not.
            let covers_all = project.code_resources().all(|r| report_of(report, &r.id).is_some());
            let full;
            let report = if covers_all {
                report
            } else {
                full = tokio::task::block_in_place(full_build).map_err(SyncError::Build)?;
                &full
            };
            drop(_lock);
            let outcome = deploy::deploy(aws, project, report, cfg, lamb_dir, ui).await?;
            let items = deployed_items(report, &outcome, &wanted);
            return Ok(SyncReport {
                stack,
                mode: "infra",
                infra_reasons: reasons,
                infra_skipped: false,
                deploy: Some(outcome),
                items,
                duration_ms: started.elapsed().as_millis() as u64,
                known: None,
                used_known: false,
            });
        }
        SyncMode::CodeSkippingInfra(reasons) => {
            if info.is_none() {
                return Err(SyncError::NoStack { stack });
            }
            (reasons, true)
        }
        SyncMode::Code => (Vec::new(), false),
    };

    if !st.sync_confirmed {
        if !opts.yes {
            let q = format!(
                "lamb sync updates Lambda code directly: stack {stack} will drift from its template until the next deploy. Continue?"
            );
            if !ui.confirm(&q) {
                return Err(if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    SyncError::Declined
                } else {
                    SyncError::NeedsConfirmation { stack }
                });
            }
        }
        st.sync_confirmed = true;
        st.save(lamb_dir)?;
    }

    let pusher = Pusher::new(aws, cfg, &st, opts.jobs, project);
    let mut items = Vec::new();

    // Layers first: a changed layer is published and its users repointed.
    let trust_records = trusted.is_some();
    let (swaps, mut layer_items, mut seen) =
        pusher.publish_layers(project, report, &physical, &wanted, trust_records, &mut st).await;
    if trust_records && swaps.is_empty() {
        // What lamb pushed last is what Lambda runs: no read before the push.
        for (id, f) in crate::push::recorded(&st, &physical) {
            seen.entry(id).or_insert(f);
        }
    }

    // Functions: the selected ones, plus every user of a republished layer.
    let users: HashSet<String> =
        if swaps.is_empty() { HashSet::new() } else { project.functions.iter().map(|f| f.res.id.clone()).collect() };
    let targets: Vec<String> = project
        .functions
        .iter()
        .map(|f| f.res.id.clone())
        .filter(|id| (wanted(id) || users.contains(id)) && !gated.contains(id))
        .collect();
    for id in &gated {
        items.push(ItemReport {
            message: Some("DeploymentPreference: its code goes through CloudFormation; run `lamb deploy`".into()),
            ..ItemReport::new(id, Kind::Function, SyncStatus::Skipped)
        });
    }
    let pushed = pusher.push(report, &physical, &targets, &wanted, &swaps, seen, &mut st).await;
    for l in layer_items.iter_mut().filter(|l| l.status == SyncStatus::Published) {
        let arn = l.version_arn.clone().unwrap_or_default();
        l.updated_functions = pushed
            .iter()
            .filter(|f| f.status == SyncStatus::Synced && f.layers.contains(&arn))
            .map(|f| f.id.clone())
            .collect();
    }
    items.extend(pushed.into_iter().filter(|i| wanted(&i.id) || i.status == SyncStatus::Failed));
    items.extend(layer_items);
    st.save(lamb_dir)?;
    let order: HashMap<&str, usize> = project.code_resources().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    items.sort_by_key(|i| order.get(i.id.as_str()).copied().unwrap_or(usize::MAX));
    let known = match (trusted, info) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(info)) if !infra_skipped => {
            Some(KnownStack { info, resources, fingerprint, read_at: Instant::now() })
        }
        _ => None,
    };
    Ok(SyncReport {
        stack,
        mode: "code",
        infra_reasons,
        infra_skipped,
        deploy: None,
        items,
        duration_ms: started.elapsed().as_millis() as u64,
        known,
        used_known: trust_records,
    })
}

/// Reads the stack again and says whether it is still as lamb left it: the check a pass that
/// used a [`KnownStack`] skipped, made after it (off the save's path). `None` when the stack
/// changed, is gone or is not updatable: the next pass reads and compares everything.
pub async fn verify(aws: &Aws, project: &Project, cfg: &StackConfig, lamb_dir: &std::path::Path) -> Option<KnownStack> {
    let stack = &cfg.stack_name;
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let read_at = Instant::now();
    let info = cfn.describe(stack).await.ok()??;
    deploy::check_updatable(&info).ok()?;
    let st = StackState::load(lamb_dir, stack, &aws.region).ok()?;
    let fingerprint = infra::fingerprint(project, stack, &cfg.tags);
    let recorded = st.infra.as_ref().map(|r| (r.fingerprint.as_str(), r.stack_updated.as_str()));
    if !plan::infra_known_current(&fingerprint, recorded, &info.updated) {
        tracing::info!(stack = %stack, "the stack changed since lamb last read it; the next pass compares it again");
        return None;
    }
    let resources = cfn.resources(stack).await.ok()?;
    Some(KnownStack { info, resources, fingerprint, read_at })
}

/// Report items after a CloudFormation deploy: what the change set or lamb's code push
/// touched is `deployed`, the rest `unchanged`; nothing when the change set was not executed.
fn deployed_items(
    report: &BuildReport,
    outcome: &DeployOutcome,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<ItemReport> {
    let changed: HashSet<&str> = outcome
        .changes
        .iter()
        .map(|c| c.logical_id.as_str())
        .chain(outcome.converged.iter().map(String::as_str))
        .collect();
    report
        .resources
        .iter()
        .filter(|r| wanted(&r.id))
        .map(|r| {
            let status = if !outcome.executed && !outcome.no_changes {
                SyncStatus::Skipped
            } else if r.status == Status::Failed {
                SyncStatus::Failed
            } else if r.artifact.is_none() {
                SyncStatus::Skipped
            } else if changed.contains(r.id.as_str())
                || changed.iter().any(|c| r.kind == Kind::Layer && c.starts_with(r.id.as_str()))
            {
                SyncStatus::Deployed
            } else {
                SyncStatus::Unchanged
            };
            let message = match status {
                SyncStatus::Skipped if !outcome.executed && !outcome.no_changes => {
                    Some("the change set was not executed".to_string())
                }
                _ => r.message.clone(),
            };
            ItemReport {
                code_sha256: r.artifact.as_ref().map(|a| a.code_sha256.clone()),
                bytes: if status == SyncStatus::Deployed { r.artifact.as_ref().map_or(0, |a| a.size) } else { 0 },
                message,
                ..ItemReport::new(&r.id, r.kind, status)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FunctionRecord;

    fn known(read_ago: std::time::Duration) -> KnownStack {
        KnownStack {
            info: StackInfo { name: "app".into(), ..Default::default() },
            resources: Vec::new(),
            fingerprint: "fp".into(),
            read_at: Instant::now() - read_ago,
        }
    }

    #[test]
    fn a_known_stack_stands_in_only_for_the_same_stack_and_infrastructure_while_recent() {
        let k = known(std::time::Duration::from_secs(1));
        assert!(k.fits("app", "fp"));
        assert!(!k.fits("other", "fp"), "another stack");
        assert!(!k.fits("app", "fp2"), "the template's infrastructure changed");
        assert!(!known(KNOWN_FOR + std::time::Duration::from_secs(1)).fits("app", "fp"), "read too long ago");
    }

    #[test]
    fn recorded_code_stands_for_what_lambda_runs_for_the_same_physical_function() {
        let mut st = StackState::default();
        let rec = |physical: &str, error: Option<&str>| FunctionRecord {
            physical: physical.into(),
            code_sha256: format!("sha-{physical}"),
            via: "sync".into(),
            synced_at: 0,
            duration_ms: 0,
            error: error.map(str::to_string),
        };
        st.functions.insert("A".into(), rec("app-A-1", None));
        st.functions.insert("B".into(), rec("app-B-1", Some("cannot reach AWS")));
        st.functions.insert("C".into(), rec("app-C-1", None));
        let physical: HashMap<String, String> =
            [("A", "app-A-1"), ("B", "app-B-1"), ("C", "app-C-2")].map(|(a, b)| (a.into(), b.into())).into();
        let r = crate::push::recorded(&st, &physical);
        let sha =
            |id: &str| r.get(id).and_then(|f| f.as_ref().ok()).and_then(|f| f.as_ref()).map(|f| f.code_sha256.clone());
        assert_eq!(sha("A").as_deref(), Some("sha-app-A-1"));
        // After a failed push the record keeps the code last known live.
        assert_eq!(sha("B").as_deref(), Some("sha-app-B-1"));
        // Replaced by another physical function since: not known.
        assert_eq!(sha("C"), None);
    }
}
