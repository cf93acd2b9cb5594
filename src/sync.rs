//! One `lamb sync` pass: decide between a code push and a CloudFormation deploy (comparing the
//! templates — root and nested, code locations stripped — the parameters and the tags with what
//! the stack runs, on every pass), then push changed code straight to Lambda: layers
//! republished first, each function updated by one task (never two updates in flight for a
//! function), at most `jobs` functions at once, and nothing written for a function whose
//! CodeSha256 (and layers) already match what Lambda reports.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::aws::cloudformation::{CfnApi, StackInfo, StackResource};
use crate::aws::lambda::{CodeSource, LambdaApi, RemoteFunction, layer_base};
use crate::aws::s3::S3Api;
use crate::aws::{Aws, AwsError};
use crate::config::StackConfig;
use crate::deploy::{self, DeployError, DeployOutcome, DeployUi};
use crate::engine::{ArtifactReport, BuildReport, EngineError, Kind, ResourceReport, Status};
use crate::infra;
use crate::plan::{self, FunctionAction, FunctionState, SyncMode};
use crate::project::{LayerRef, Project, template};
use crate::state::{self, FunctionRecord, InfraRecord, LayerRecord, StackState};

/// Lambda takes zips up to this size in the request itself; larger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1000 * 1000;
/// Above this many functions to read, ListFunctions (50 per call) beats one call each.
const LIST_THRESHOLD: usize = 8;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Changed by a CloudFormation deploy (the pass deployed the infrastructure).
    Deployed,
    Synced,
    Unchanged,
    Published,
    Failed,
    Skipped,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Deployed => "deployed",
            SyncStatus::Synced => "synced",
            SyncStatus::Unchanged => "unchanged",
            SyncStatus::Published => "published",
            SyncStatus::Failed => "failed",
            SyncStatus::Skipped => "skipped",
        }
    }
}

/// The outcome for one function or layer.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    pub id: String,
    pub kind: Kind,
    pub status: SyncStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// Bytes of code pushed (0 when only layers changed).
    pub bytes: u64,
    pub duration_ms: u64,
    /// For layers: the version now in use. For functions: set when their layers changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_arn: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// With AutoPublishAlias: the version published and the alias moved to it (`live:7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// For layers: the functions repointed at the new version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub updated_functions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A failure that may clear up by itself (network, throttling): worth retrying.
    #[serde(skip)]
    pub transient: bool,
}

impl ItemReport {
    fn new(id: &str, kind: Kind, status: SyncStatus) -> Self {
        ItemReport {
            id: id.to_string(),
            kind,
            status,
            physical: None,
            code_sha256: None,
            bytes: 0,
            duration_ms: 0,
            version_arn: None,
            layers: Vec::new(),
            alias: None,
            updated_functions: Vec::new(),
            message: None,
            transient: false,
        }
    }

    fn failed(id: &str, kind: Kind, message: String) -> Self {
        ItemReport { message: Some(message), ..ItemReport::new(id, kind, SyncStatus::Failed) }
    }

    fn failed_with(id: &str, kind: Kind, e: &SyncError) -> Self {
        ItemReport { transient: e.is_transient(), ..ItemReport::failed(id, kind, e.to_string()) }
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
    #[error(transparent)]
    Build(#[from] EngineError),
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
            SyncError::Aws(e) | SyncError::Deploy(DeployError::Aws(e)) => e.is_transient(),
            // Another operation on the stack: it ends by itself.
            SyncError::Deploy(DeployError::StackNotReady { status, .. }) => status.ends_with("_IN_PROGRESS"),
            SyncError::State(_) => true,
            _ => false,
        }
    }
}

/// The account id in a stack ARN (`arn:aws:cloudformation:region:ACCOUNT:stack/...`).
pub fn account_of(stack_id: &str) -> Option<&str> {
    stack_id.split(':').nth(4).filter(|a| !a.is_empty())
}

/// How the project's infrastructure differs from the stack's: root and nested templates (code
/// locations stripped), parameter values and the configured tags. Empty when they match.
async fn infra_differences(
    cfn: &CfnApi,
    project: &Project,
    info: &StackInfo,
    resources: &[StackResource],
    tags: &[(String, String)],
) -> Result<Vec<String>, AwsError> {
    let mut reasons = Vec::new();
    for stack in &project.stacks {
        let physical = if stack.path.is_empty() {
            Some(info.id.clone())
        } else {
            resources
                .iter()
                .find(|r| r.logical_id == stack.path && r.resource_type == "AWS::CloudFormation::Stack")
                .map(|r| r.physical_id.clone())
        };
        let Some(physical) = physical.filter(|p| !p.is_empty()) else {
            reasons.push(format!("nested stack {} is not in the stack yet", stack.path));
            continue;
        };
        let ids = infra::local_ids(project, stack);
        let local = infra::strip(&stack.file.doc, &ids, &infra::definition_shas(project, stack));
        let deployed_text = cfn.original_template(&physical).await?;
        match template::parse(std::path::Path::new("deployed.yaml"), &deployed_text) {
            Ok(deployed) => {
                let deployed = infra::strip(&deployed, &ids, &HashMap::new());
                if deployed != local {
                    reasons.push(format!(
                        "{} differs from the deployed template: {}",
                        stack.file.path.display(),
                        first_difference(&local, &deployed)
                    ));
                }
            }
            Err(e) => {
                reasons.push(format!("the deployed template of {} cannot be compared ({e})", stack.file.path.display()))
            }
        }
    }
    let deployed: HashMap<&str, &str> = info.parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (k, v) in &project.root_stack().parameters {
        let local = v.as_cfn_string();
        match deployed.get(k.as_str()) {
            Some(&"****") => reasons.push(format!("parameter {k} is NoEcho, so its deployed value cannot be compared")),
            Some(d) if *d == local => {}
            Some(d) => reasons.push(format!("parameter {k} is `{local}` here but `{d}` in the stack")),
            None => reasons.push(format!("parameter {k} is not set in the stack")),
        }
    }
    for (k, v) in tags {
        match info.tags.iter().find(|(tk, _)| tk == k) {
            Some((_, tv)) if tv == v => {}
            Some((_, tv)) => reasons.push(format!("tag {k} is `{v}` here but `{tv}` on the stack")),
            None => reasons.push(format!("tag {k} is not on the stack")),
        }
    }
    Ok(reasons)
}

/// Names the first place where two templates differ, as a path (`Resources.Fn.Properties...`).
fn first_difference(a: &crate::project::value::Value, b: &crate::project::value::Value) -> String {
    fn walk(
        a: &crate::project::value::Value,
        b: &crate::project::value::Value,
        path: &str,
        depth: usize,
    ) -> Option<String> {
        if a == b {
            return None;
        }
        let (Some(am), Some(bm)) = (a.as_map(), b.as_map()) else { return Some(format!("{path} changed")) };
        if depth == 0 {
            return Some(format!("{path} changed"));
        }
        for (k, v) in am {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match bm.get(k) {
                None => return Some(format!("{p} is new")),
                Some(other) => {
                    if let Some(d) = walk(v, other, &p, depth - 1) {
                        return Some(d);
                    }
                }
            }
        }
        bm.keys()
            .find(|k| !am.contains_key(*k))
            .map(|k| if path.is_empty() { format!("{k} was removed") } else { format!("{path}.{k} was removed") })
    }
    walk(a, b, "", 5).unwrap_or_else(|| "the documents differ".into())
}

/// Runs one sync pass over a built project. `full_build` builds every function and layer; it
/// is called when the pass turns into a CloudFormation deploy but `report` covers only some.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    aws: &Aws,
    project: &Project,
    report: &BuildReport,
    full_build: &(dyn Fn() -> Result<BuildReport, EngineError> + Sync),
    cfg: &StackConfig,
    opts: &SyncOptions,
    lamb_dir: &std::path::Path,
    ui: &dyn DeployUi,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let stack = cfg.stack_name.clone();
    let _lock = StackState::lock(lamb_dir, &stack, &aws.region).await?;
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let info = cfn.describe(&stack).await?;
    let no_tags = Vec::new();
    let (remote_tags, remote_params) = info.as_ref().map_or((&no_tags, &no_tags), |i| (&i.tags, &i.parameters));
    check_production(
        &stack,
        cfg.tags.iter().chain(remote_tags).map(|(k, v)| (k.as_str(), v.as_str())),
        remote_params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        opts.allow_production,
    )?;
    let mut st =
        StackState::load(lamb_dir, &stack, &aws.region)?.for_account(info.as_ref().and_then(|i| account_of(&i.id)));
    if let Some(i) = &info {
        deploy::check_updatable(i)?;
    }
    let resources = match &info {
        Some(_) => cfn.resources(&stack).await?,
        None => Vec::new(),
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
    let fingerprint = infra::fingerprint(project, &stack, &cfg.tags);
    let mut infra_reasons = Vec::new();
    if let Some(i) = &info {
        let recorded = st.infra.as_ref().map(|r| (r.fingerprint.as_str(), r.stack_updated.as_str()));
        if plan::infra_known_current(&fingerprint, recorded, &i.updated) {
            tracing::debug!(stack = %stack, "infrastructure matches lamb's last deploy; no template comparison needed");
        } else {
            infra_reasons = infra_differences(&cfn, project, i, &resources, &cfg.tags).await?;
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
                full = tokio::task::block_in_place(full_build)?;
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
    let (swaps, mut layer_items, seen) = pusher.publish_layers(project, report, &physical, &wanted, &mut st).await;

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
    Ok(SyncReport {
        stack,
        mode: "code",
        infra_reasons,
        infra_skipped,
        deploy: None,
        items,
        duration_ms: started.elapsed().as_millis() as u64,
    })
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

fn report_of<'a>(report: &'a BuildReport, id: &str) -> Option<&'a ResourceReport> {
    report.resources.iter().find(|r| r.id == id)
}

/// What a failed or skipped build means for a sync item.
fn not_built(r: &ResourceReport) -> ItemReport {
    let status = if r.status == Status::Failed { SyncStatus::Failed } else { SyncStatus::Skipped };
    ItemReport { message: r.message.clone(), ..ItemReport::new(&r.id, r.kind, status) }
}

/// Pushes code and layers to Lambda. Shared by `sync` and by `deploy`, which converges code
/// CloudFormation left alone (an unchanged template does not revert a sync).
pub struct Pusher<'a> {
    aws: &'a Aws,
    lambda: LambdaApi,
    cfg: &'a StackConfig,
    bucket: Option<String>,
    jobs: usize,
    /// AutoPublishAlias per function id.
    aliases: HashMap<String, String>,
}

/// What Lambda reported per function id.
pub type Remote = HashMap<String, Result<Option<RemoteFunction>, AwsError>>;

impl<'a> Pusher<'a> {
    pub fn new(aws: &'a Aws, cfg: &'a StackConfig, st: &StackState, jobs: usize, project: &Project) -> Self {
        let aliases = project
            .functions
            .iter()
            .filter_map(|f| f.auto_publish_alias.clone().map(|a| (f.res.id.clone(), a)))
            .collect();
        Pusher {
            aws,
            lambda: LambdaApi::new(aws.lambda.clone(), aws.profile.clone()),
            cfg,
            bucket: st.bucket.clone(),
            jobs: jobs.max(1),
            aliases,
        }
    }

    /// What Lambda runs now for `ids`: many at once through ListFunctions, the rest (few, or
    /// not listed) one by one in parallel.
    async fn remote(&self, physical: &HashMap<String, String>, ids: &[String]) -> Remote {
        let mut out = Remote::new();
        let mut pending: Vec<&String> = ids.iter().filter(|id| physical.contains_key(*id)).collect();
        if pending.len() > LIST_THRESHOLD {
            let names: HashSet<String> = pending.iter().map(|id| physical[*id].clone()).collect();
            match self.lambda.list(&names).await {
                Ok(found) => {
                    pending.retain(|id| match found.get(&physical[*id]) {
                        Some(f) => {
                            out.insert((*id).clone(), Ok(Some(f.clone())));
                            false
                        }
                        None => true,
                    });
                }
                Err(e) => tracing::debug!(error = %e, "ListFunctions failed; reading functions one by one"),
            }
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(self.jobs));
        let mut tasks = tokio::task::JoinSet::new();
        for id in pending {
            let Some(name) = physical.get(id).cloned() else { continue };
            let (lambda, limit, id) = (self.lambda.clone(), limit.clone(), id.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                (id, lambda.get(&name).await)
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((id, r)) => {
                    out.insert(id, r);
                }
                Err(e) => tracing::error!(error = %e, "a Lambda read task failed"),
            }
        }
        // A read that never came back is an error for its function, not "missing".
        for id in ids.iter().filter(|id| physical.contains_key(*id)) {
            out.entry(id.clone())
                .or_insert_with(|| Err(AwsError::Failed("reading the function from Lambda failed".into())));
        }
        out
    }

    /// Publishes the selected layers whose content differs from the versions their functions
    /// use. Returns the swaps (layer ARN without version → new version) and a report per layer.
    async fn publish_layers(
        &self,
        project: &Project,
        report: &BuildReport,
        physical: &HashMap<String, String>,
        wanted: &(dyn Fn(&str) -> bool + Sync),
        st: &mut StackState,
    ) -> (HashMap<String, String>, Vec<ItemReport>, Remote) {
        let mut swaps = HashMap::new();
        let mut items = Vec::new();
        let mut seen = Remote::new();
        for l in project.layers.iter().filter(|l| wanted(&l.res.id)) {
            let Some(r) = report_of(report, &l.res.id) else { continue };
            let Some(a) = &r.artifact else {
                items.push(not_built(r));
                continue;
            };
            let t0 = Instant::now();
            let Some(deployed) =
                st.layers.get(&l.res.id).map(|r| r.version_arn.clone()).or_else(|| physical.get(&l.res.id).cloned())
            else {
                items.push(ItemReport::failed(
                    &l.res.id,
                    Kind::Layer,
                    format!("layer {} is not in stack {}; run `lamb deploy`", l.res.id, self.cfg.stack_name),
                ));
                continue;
            };
            let base = layer_base(&deployed).to_string();
            // The versions of this layer its functions run now decide whether it changed.
            let users: Vec<String> = project
                .functions
                .iter()
                .filter(|f| f.layers.iter().any(|x| matches!(x, LayerRef::Local(id) if *id == l.res.id)))
                .map(|f| f.res.id.clone())
                .collect();
            let remote = self.remote(physical, &users).await;
            let mut in_use: Vec<String> = remote
                .values()
                .filter_map(|r| r.as_ref().ok().and_then(|r| r.as_ref()))
                .flat_map(|f| f.layers.iter().filter(|arn| layer_base(arn) == base).cloned())
                .collect();
            in_use.sort();
            in_use.dedup();
            seen.extend(remote);
            if in_use.is_empty() {
                in_use.push(deployed.clone());
            }
            let mut current = true;
            for arn in &in_use {
                match self.lambda.layer_version_sha(arn).await {
                    Ok(sha) if sha == a.code_sha256 => {}
                    Ok(_) => current = false,
                    Err(e) => {
                        tracing::debug!(layer = %l.res.id, error = %e, "cannot read the layer version; publishing");
                        current = false;
                    }
                }
            }
            if current {
                st.layers.insert(
                    l.res.id.clone(),
                    LayerRecord {
                        version_arn: in_use[0].clone(),
                        code_sha256: a.code_sha256.clone(),
                        published_at: st.layers.get(&l.res.id).map_or(0, |r| r.published_at),
                    },
                );
                items.push(ItemReport {
                    version_arn: Some(in_use[0].clone()),
                    ..ItemReport::new(&l.res.id, Kind::Layer, SyncStatus::Unchanged)
                });
                continue;
            }
            let name = base.rsplit(':').next().unwrap_or(&base).to_string();
            let published = match self.code_source(a).await {
                Ok(code) => self
                    .lambda
                    .publish_layer(&name, &code, &l.compatible_runtimes, Some(l.res.architecture.as_str()))
                    .await
                    .map_err(SyncError::from),
                Err(e) => Err(e),
            };
            match published {
                Ok(arn) => {
                    swaps.insert(base, arn.clone());
                    st.layers.insert(
                        l.res.id.clone(),
                        LayerRecord {
                            version_arn: arn.clone(),
                            code_sha256: a.code_sha256.clone(),
                            published_at: state::now_secs(),
                        },
                    );
                    items.push(ItemReport {
                        version_arn: Some(arn),
                        code_sha256: Some(a.code_sha256.clone()),
                        bytes: a.size,
                        duration_ms: t0.elapsed().as_millis() as u64,
                        ..ItemReport::new(&l.res.id, Kind::Layer, SyncStatus::Published)
                    });
                }
                Err(e) => items.push(ItemReport::failed_with(&l.res.id, Kind::Layer, &e)),
            }
        }
        (swaps, items, seen)
    }

    /// Brings `targets` in line with the build: reads what Lambda runs (unless `known` has it
    /// already), then updates code that differs and swaps layer versions in `swaps`. Functions
    /// outside `wanted` are only repointed at new layer versions, never given new code.
    #[allow(clippy::too_many_arguments)]
    pub async fn push(
        &self,
        report: &BuildReport,
        physical: &HashMap<String, String>,
        targets: &[String],
        wanted: &(dyn Fn(&str) -> bool + Sync),
        swaps: &HashMap<String, String>,
        known: Remote,
        st: &mut StackState,
    ) -> Vec<ItemReport> {
        let mut items = Vec::new();
        let readable: Vec<String> = targets
            .iter()
            .filter(|id| !known.contains_key(*id))
            .filter(|id| !wanted(id) || report_of(report, id).is_some_and(|r| r.artifact.is_some()))
            .cloned()
            .collect();
        let mut remote = self.remote(physical, &readable).await;
        remote.extend(known);
        let limit = Arc::new(tokio::sync::Semaphore::new(self.jobs));
        let mut tasks = tokio::task::JoinSet::new();
        // Functions with an update task that has not reported back.
        let mut spawned = std::collections::BTreeSet::new();
        for id in targets {
            let selected = wanted(id);
            let built = if selected { report_of(report, id) } else { None };
            if let Some(r) = built
                && r.artifact.is_none()
            {
                items.push(not_built(r));
                continue;
            }
            let artifact = built.and_then(|r| r.artifact.clone());
            let remote_fn = match remote.get(id) {
                Some(Err(e)) => {
                    items.push(ItemReport {
                        transient: e.is_transient(),
                        ..ItemReport::failed(id, Kind::Function, e.to_string())
                    });
                    continue;
                }
                Some(Ok(r)) => r.as_ref(),
                None => None,
            };
            let state_in = FunctionState {
                local_sha: artifact.as_ref().map(|a| a.code_sha256.as_str()),
                remote: remote_fn.map(|rf| (rf.code_sha256.as_str(), rf.layers.as_slice())),
            };
            let action = plan::function_action(&state_in, swaps);
            tracing::debug!(function = %id, ?action, "planned");
            let name = physical.get(id).cloned();
            match action {
                FunctionAction::Unchanged | FunctionAction::NotBuilt => {
                    if let (Some(phys), Some(rf)) = (&name, remote_fn) {
                        record(st, id, phys, &rf.code_sha256, 0, None);
                    }
                    if selected {
                        items.push(ItemReport {
                            physical: name,
                            code_sha256: remote_fn.map(|r| r.code_sha256.clone()),
                            ..ItemReport::new(id, Kind::Function, SyncStatus::Unchanged)
                        });
                    }
                }
                FunctionAction::Missing => {
                    let msg = match &name {
                        Some(p) => format!(
                            "function {p} no longer exists in Lambda: it was deleted outside CloudFormation, which still lists it and will not recreate it by itself; `lamb delete` the stack and `lamb deploy` it again (or give {id} a new logical id, so that CloudFormation creates a new function)"
                        ),
                        None => format!(
                            "function {id} is not in stack {}; deploy it with `lamb deploy`",
                            self.cfg.stack_name
                        ),
                    };
                    items.push(ItemReport::failed(id, Kind::Function, msg));
                }
                FunctionAction::Update { code, layers } => {
                    let name = name.unwrap_or_default();
                    // Lambda said an update is still running: no new one until it is done.
                    let busy = remote_fn.is_some_and(|r| {
                        r.last_update_status.as_deref() == Some("InProgress") || r.state.as_deref() == Some("Pending")
                    });
                    let (this, limit, id) = (self.clone_parts(), limit.clone(), id.clone());
                    let artifact = if code { artifact } else { None };
                    let alias = self.aliases.get(&id).cloned();
                    spawned.insert(id.clone());
                    tasks.spawn(async move {
                        let _permit = limit.acquire().await;
                        let t0 = Instant::now();
                        let mut result = this.update_function(&name, busy, artifact.as_ref(), layers.as_deref()).await;
                        // AutoPublishAlias: a new version of what now runs, and the alias on it.
                        let mut moved = None;
                        if let (Ok(live), Some(alias)) = (&result, &alias) {
                            let published = async {
                                let version = this.lambda.publish_version(&name, live).await?;
                                this.lambda.point_alias(&name, alias, &version).await?;
                                Ok::<_, AwsError>(format!("{alias}:{version}"))
                            };
                            match published.await {
                                Ok(v) => moved = Some(v),
                                Err(e) => result = Err(e.into()),
                            }
                        }
                        let mut it = ItemReport::new(&id, Kind::Function, SyncStatus::Synced);
                        it.physical = Some(name);
                        it.duration_ms = t0.elapsed().as_millis() as u64;
                        it.layers = layers.unwrap_or_default();
                        it.alias = moved;
                        match result {
                            Ok(live) => {
                                it.bytes = artifact.as_ref().map_or(0, |a| a.size);
                                it.code_sha256 = Some(live);
                            }
                            Err(e) => {
                                it.status = SyncStatus::Failed;
                                it.message = Some(e.to_string());
                                it.transient = e.is_transient();
                            }
                        }
                        it
                    });
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            let it = match done {
                Ok(it) => it,
                Err(e) => {
                    tracing::error!(error = %e, "a Lambda update task failed");
                    continue;
                }
            };
            spawned.remove(&it.id);
            if let Some(phys) = &it.physical {
                match (&it.code_sha256, it.status) {
                    (Some(live), SyncStatus::Synced) => record(st, &it.id, phys, live, it.duration_ms, None),
                    // A failed push keeps the last known code: it is not what Lambda runs.
                    _ => {
                        if let Some(prev) = st.functions.get_mut(&it.id) {
                            prev.error = it.message.clone();
                        }
                    }
                }
            }
            items.push(it);
        }
        // A task that died (a bug) leaves its function unsynced: say so, never "all done".
        for id in spawned {
            items.push(ItemReport::failed(
                &id,
                Kind::Function,
                "the update stopped unexpectedly (see the log); run the sync again".into(),
            ));
        }
        items
    }

    /// The parts of a pusher a spawned task needs.
    fn clone_parts(&self) -> TaskPusher {
        TaskPusher {
            aws: self.aws.clone(),
            lambda: self.lambda.clone(),
            cfg: self.cfg.clone(),
            bucket: self.bucket.clone(),
        }
    }

    async fn code_source(&self, a: &ArtifactReport) -> Result<CodeSource, SyncError> {
        self.clone_parts().code_source(a).await
    }
}

fn record(st: &mut StackState, id: &str, physical: &str, sha: &str, duration_ms: u64, error: Option<String>) {
    let changed =
        st.functions.get(id).is_none_or(|r| r.code_sha256 != sha || r.physical != physical || r.error.is_some());
    if changed {
        st.functions.insert(
            id.to_string(),
            FunctionRecord {
                physical: physical.to_string(),
                code_sha256: sha.to_string(),
                via: "sync".into(),
                synced_at: state::now_secs(),
                duration_ms,
                error,
            },
        );
    }
}

/// What one update task owns.
struct TaskPusher {
    aws: Aws,
    lambda: LambdaApi,
    cfg: StackConfig,
    bucket: Option<String>,
}

impl TaskPusher {
    /// How to hand a zip to Lambda: in the request when small enough, else through S3.
    async fn code_source(&self, a: &ArtifactReport) -> Result<CodeSource, SyncError> {
        if a.size <= DIRECT_UPLOAD_LIMIT {
            let bytes = tokio::fs::read(&a.path)
                .await
                .map_err(|e| AwsError::Failed(format!("cannot read {}: {e}", a.path.display())))?;
            return Ok(CodeSource::Zip(bytes));
        }
        let st = StackState { bucket: self.bucket.clone(), ..Default::default() };
        let bucket = deploy::resolve_bucket(&self.aws, &self.cfg, &st).await.map_err(|e| match e {
            DeployError::NoBucket => SyncError::Aws(AwsError::Failed(format!(
                "the zip is {} MB, over Lambda's {} MB limit for direct uploads; pass --s3-bucket NAME or --resolve-s3 so lamb can upload it through S3",
                a.size / 1_000_000,
                DIRECT_UPLOAD_LIMIT / 1_000_000
            ))),
            other => other.into(),
        })?;
        let key = deploy::artifact_key(&self.cfg.prefix, &a.sha256, "zip");
        let s3 = S3Api { client: self.aws.s3.clone(), profile: self.aws.profile.clone() };
        s3.upload_if_missing(&bucket, &key, &a.path).await?;
        Ok(CodeSource::S3 { bucket, key })
    }

    /// Points a function at new layers and/or pushes its new code, then checks that Lambda runs
    /// exactly the zip lamb built; `busy` (Lambda last reported an update in progress) waits
    /// for that update to finish first. Returns the CodeSha256 Lambda reports.
    async fn update_function(
        &self,
        name: &str,
        busy: bool,
        artifact: Option<&ArtifactReport>,
        layers: Option<&[String]>,
    ) -> Result<String, SyncError> {
        if busy {
            tracing::info!(function = name, "an update is in progress; waiting for it to finish");
            self.lambda.wait_updated(name, crate::aws::lambda::UPDATE_TIMEOUT).await?;
        }
        if let Some(layers) = layers {
            self.lambda.set_layers(name, layers).await?;
        }
        let Some(a) = artifact else {
            return Ok(self.lambda.wait_updated(name, crate::aws::lambda::UPDATE_TIMEOUT).await?.code_sha256);
        };
        let code = self.code_source(a).await?;
        let live = self.lambda.update_code(name, &code).await?;
        if live != a.code_sha256 {
            return Err(AwsError::Failed(format!(
                "after the update Lambda reports CodeSha256 `{live}` for {name}, not `{}` (the zip lamb built); the upload did not take, run lamb sync again",
                a.code_sha256
            ))
            .into());
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_from_stack_arn() {
        assert_eq!(account_of("arn:aws:cloudformation:us-east-1:123456789012:stack/app/abc"), Some("123456789012"));
        assert_eq!(account_of("app"), None);
    }

    #[test]
    fn first_difference_names_the_path() {
        let a: crate::project::value::Value =
            serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 3}\n").unwrap();
        let b: crate::project::value::Value =
            serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 5}\n").unwrap();
        assert_eq!(first_difference(&a, &b), "Resources.Fn.Properties.Timeout changed");
        let c: crate::project::value::Value =
            serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 3}\n  New: {Type: X}\n").unwrap();
        assert_eq!(first_difference(&c, &a), "Resources.New is new");
        assert_eq!(first_difference(&a, &c), "Resources.New was removed");
    }
}
