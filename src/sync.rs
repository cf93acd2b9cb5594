//! One `lamb sync` pass: decide between a code push and a CloudFormation deploy (comparing the
//! template, code locations stripped, with what the stack runs — on every pass), then push
//! changed code straight to Lambda: layers republished first, each function updated by one task
//! (never two updates in flight for a function), at most `jobs` functions at once, and nothing
//! written for a function whose CodeSha256 already matches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aws::cloudformation::CfnApi;
use crate::aws::lambda::{CodeSource, LambdaApi, RemoteFunction};
use crate::aws::s3::S3Api;
use crate::aws::{Aws, AwsError};
use crate::config::{Bucket, StackConfig};
use crate::deploy::{self, DeployError, DeployOutcome, DeployUi};
use crate::engine::{BuildReport, Kind, ResourceReport};
use crate::infra;
use crate::plan::{self, FunctionAction, FunctionState, SyncMode};
use crate::project::{LayerRef, Project, template};
use crate::state::{self, FunctionRecord, InfraRecord, LayerRecord, StackState};

/// Lambda takes zips up to this size in the request itself; larger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1000 * 1000;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Full ids to sync; empty means all.
    pub ids: Vec<String>,
    pub code_only: bool,
    /// Skip the first-sync confirmation.
    pub yes: bool,
    /// Read every function's state from Lambda rather than trusting lamb's record.
    pub verify: bool,
    pub jobs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Pushed by a CloudFormation deploy (the pass deployed the infrastructure).
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
    pub bytes: u64,
    pub duration_ms: u64,
    /// For layers: the new version and the functions repointed at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_arn: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub updated_functions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    #[error("stack {stack} does not exist; deploy it first with `lamb deploy` (or run `lamb sync` without --code)")]
    NoStack { stack: String },
    #[error(
        "the first sync of stack {stack} needs confirmation: lamb sync updates Lambda code directly, so the stack drifts from its template until the next deploy; run again with --yes to accept"
    )]
    NeedsConfirmation { stack: String },
    #[error("not confirmed; nothing was synced")]
    Declined,
}

/// Reads the deployed (original) template and says how it differs from the project, code
/// locations aside. Empty when they match.
async fn infra_differences(
    cfn: &CfnApi,
    project: &Project,
    stack: &str,
    params: &[(String, String)],
) -> Result<Vec<String>, AwsError> {
    let mut reasons = Vec::new();
    let root = project.root_stack();
    let deployed_text = cfn.original_template(stack).await?;
    let ids = infra::local_ids(project, root);
    let local = infra::strip(&root.file.doc, &ids);
    match template::parse(std::path::Path::new("deployed.yaml"), &deployed_text) {
        Ok(deployed) => {
            let deployed = infra::strip(&deployed, &ids);
            if deployed != local {
                reasons.push(format!(
                    "{} differs from the deployed template: {}",
                    root.file.path.display(),
                    first_difference(&local, &deployed)
                ));
            }
        }
        Err(e) => reasons.push(format!("the deployed template cannot be compared ({e})")),
    }
    let deployed_params: HashMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (k, v) in &root.parameters {
        let local = match v {
            crate::project::intrinsics::ParamValue::String(s) => s.clone(),
            crate::project::intrinsics::ParamValue::List(items) => items.join(","),
        };
        match deployed_params.get(k.as_str()) {
            Some(&"****") => {} // NoEcho: CloudFormation never shows it
            Some(d) if *d == local => {}
            Some(d) => reasons.push(format!("parameter {k} is `{local}` here but `{d}` in the stack")),
            None => reasons.push(format!("parameter {k} is not set in the stack")),
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

/// Runs one sync pass over an already built project.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    aws: &Aws,
    project: &Project,
    report: &BuildReport,
    cfg: &StackConfig,
    opts: &SyncOptions,
    lamb_dir: &std::path::Path,
    ui: &dyn DeployUi,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let stack = cfg.stack_name.clone();
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let lambda = LambdaApi::new(aws.lambda.clone(), aws.profile.clone());
    let mut st = StackState::load(lamb_dir, &stack, &aws.region)?;

    let info = cfn.describe(&stack).await?;
    if let Some(i) = &info {
        deploy::check_updatable(i)?;
    }
    let wanted = |id: &str| opts.ids.is_empty() || opts.ids.iter().any(|w| w == id);
    // lamb's record of the stack holds while nobody else has updated the stack since.
    let trusted =
        !opts.verify && info.as_ref().zip(st.infra.as_ref()).is_some_and(|(i, r)| r.stack_updated == i.updated);
    let recorded_all =
        project.functions.iter().filter(|f| wanted(&f.res.id)).all(|f| st.functions.contains_key(&f.res.id))
            && project.layers.iter().filter(|l| wanted(&l.res.id)).all(|l| st.layers.contains_key(&l.res.id));
    let physical: HashMap<String, String> = if trusted && recorded_all {
        st.functions.iter().map(|(id, r)| (id.clone(), r.physical.clone())).collect()
    } else if info.is_some() {
        deploy::physical_ids(project, &cfn.resources(&stack).await?)
    } else {
        HashMap::new()
    };
    let missing: Vec<String> = project
        .functions
        .iter()
        .filter(|f| wanted(&f.res.id) && report_of(report, &f.res.id).is_some_and(|r| r.artifact.is_some()))
        .filter(|f| !physical.contains_key(&f.res.id))
        .map(|f| f.res.id.clone())
        .collect();

    // Infrastructure: known current from lamb's own record, else compared with the stack.
    let fingerprint = infra::fingerprint(project, &stack, &cfg.tags);
    let mut infra_reasons = Vec::new();
    if let Some(i) = &info {
        let recorded = st.infra.as_ref().map(|r| (r.fingerprint.as_str(), r.stack_updated.as_str()));
        if plan::infra_known_current(&fingerprint, recorded, &i.updated) {
            tracing::debug!(stack = %stack, "infrastructure matches lamb's last deploy; no template comparison needed");
        } else {
            infra_reasons = infra_differences(&cfn, project, &stack, &i.parameters).await?;
            tracing::debug!(stack = %stack, reasons = ?infra_reasons, "compared the template with the deployed one");
            if infra_reasons.is_empty() {
                st.infra = Some(InfraRecord {
                    fingerprint: fingerprint.clone(),
                    stack_updated: i.updated.clone(),
                    deployed_at: state::now_secs(),
                    duration_ms: 0,
                });
                st.save(lamb_dir)?;
            }
        }
    }
    let mode = plan::sync_mode(info.is_some(), infra_reasons, &missing, opts.code_only);
    let (infra_reasons, infra_skipped) = match mode {
        SyncMode::Infra(reasons) => {
            ui.step(&format!("infrastructure changed ({}); deploying through CloudFormation", reasons.join("; ")));
            let outcome = deploy::deploy(aws, project, report, cfg, lamb_dir, ui).await?;
            let st = StackState::load(lamb_dir, &stack, &aws.region)?;
            let items = report
                .resources
                .iter()
                .filter(|r| wanted(&r.id))
                .map(|r| ItemReport {
                    id: r.id.clone(),
                    kind: r.kind,
                    status: if r.artifact.is_some() { SyncStatus::Deployed } else { SyncStatus::Skipped },
                    physical: st.functions.get(&r.id).map(|f| f.physical.clone()),
                    code_sha256: r.artifact.as_ref().map(|a| a.code_sha256.clone()),
                    bytes: r.artifact.as_ref().map_or(0, |a| a.size),
                    duration_ms: 0,
                    version_arn: st.layers.get(&r.id).map(|l| l.version_arn.clone()),
                    updated_functions: Vec::new(),
                    message: r.message.clone(),
                })
                .collect();
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

    let mut items: Vec<ItemReport> = Vec::new();

    // Layers first: publish changed ones, remember old version → new version.
    let mut swaps: HashMap<String, String> = HashMap::new();
    for l in project.layers.iter().filter(|l| wanted(&l.res.id)) {
        let Some(r) = report_of(report, &l.res.id) else { continue };
        let t0 = Instant::now();
        let Some(a) = &r.artifact else {
            items.push(item(r, SyncStatus::Skipped, None, r.message.clone()));
            continue;
        };
        let current = st.layers.get(&l.res.id).cloned();
        if current.as_ref().is_some_and(|c| c.code_sha256 == a.code_sha256) {
            items.push(item(r, SyncStatus::Unchanged, current.map(|c| c.version_arn), None));
            continue;
        }
        let Some(old_arn) = current.map(|c| c.version_arn).or_else(|| physical.get(&l.res.id).cloned()) else {
            items.push(item(
                r,
                SyncStatus::Failed,
                None,
                Some(format!("layer {} is not in stack {stack}; run `lamb deploy`", l.res.id)),
            ));
            continue;
        };
        let base = crate::aws::lambda::layer_base(&old_arn).to_string();
        let name = base.rsplit(':').next().unwrap_or(&base).to_string();
        let code = match code_source(aws, cfg, &st, a.size, &a.path, &a.sha256).await {
            Ok(c) => c,
            Err(e) => {
                items.push(item(r, SyncStatus::Failed, None, Some(e.to_string())));
                continue;
            }
        };
        match lambda.publish_layer(&name, &code, &l.compatible_runtimes, Some(l.res.architecture.as_str())).await {
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
                let mut it = item(r, SyncStatus::Published, Some(arn), None);
                it.duration_ms = t0.elapsed().as_millis() as u64;
                items.push(it);
            }
            Err(e) => items.push(item(r, SyncStatus::Failed, None, Some(e.to_string()))),
        }
    }

    // What Lambda runs now, read only where lamb's record cannot answer: a changed build, a
    // stack someone else updated, or a republished layer (which may touch functions outside
    // --resource-id).
    let read: Vec<String> = project
        .functions
        .iter()
        .filter(|f| {
            let local = report_of(report, &f.res.id).and_then(|r| r.artifact.as_ref()).map(|a| a.code_sha256.as_str());
            let recorded = st.functions.get(&f.res.id).map(|r| r.code_sha256.as_str());
            (wanted(&f.res.id) || !swaps.is_empty())
                && plan::needs_remote_read(local, recorded, trusted, !swaps.is_empty())
        })
        .map(|f| f.res.id.clone())
        .collect();
    let remote = fetch_remote(&lambda, &physical, &read, opts.jobs).await;

    // Functions: one task each, bounded.
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let layer_users: Vec<String> =
        if swaps.is_empty() { Vec::new() } else { project.functions.iter().map(|f| f.res.id.clone()).collect() };
    for f in &project.functions {
        let id = f.res.id.clone();
        let selected = wanted(&id);
        if !selected && !layer_users.contains(&id) {
            continue;
        }
        let Some(r) = report_of(report, &id) else { continue };
        if !read.contains(&id) {
            // lamb's record says Lambda runs exactly this build: nothing to read or write.
            if selected {
                let failed = r.status == crate::engine::Status::Failed;
                let status = match (&r.artifact, failed) {
                    (_, true) => SyncStatus::Failed,
                    (Some(_), false) => SyncStatus::Unchanged,
                    (None, false) => SyncStatus::Skipped,
                };
                let mut it = item(r, status, None, r.message.clone());
                it.physical = physical.get(&id).cloned();
                items.push(it);
            }
            continue;
        }
        let remote_fn: Option<&RemoteFunction> = remote.get(&id).and_then(|r| r.as_ref().ok()).and_then(|r| r.as_ref());
        if let Some(Err(e)) = remote.get(&id) {
            items.push(item(r, SyncStatus::Failed, None, Some(e.to_string())));
            continue;
        }
        let local_sha = if selected {
            r.artifact.as_ref().map(|a| a.code_sha256.as_str())
        } else {
            remote_fn.map(|rf| rf.code_sha256.as_str())
        };
        let state_in =
            FunctionState { local_sha, remote: remote_fn.map(|rf| (rf.code_sha256.as_str(), rf.layers.as_slice())) };
        let action = plan::function_action(&state_in, &swaps);
        tracing::debug!(function = %id, ?action, "planned");
        let physical_name = physical.get(&id).cloned();
        match action {
            FunctionAction::Unchanged => {
                // Lambda already runs this build: remember that, so the next pass need not ask.
                if let (Some(phys), Some(sha)) = (&physical_name, local_sha) {
                    let rec = st.functions.entry(id.clone()).or_insert_with(|| FunctionRecord {
                        physical: phys.clone(),
                        code_sha256: String::new(),
                        via: "sync".into(),
                        synced_at: state::now_secs(),
                        duration_ms: 0,
                        error: None,
                    });
                    rec.code_sha256 = sha.to_string();
                    rec.error = None;
                }
                if selected {
                    let mut it = item(r, SyncStatus::Unchanged, None, None);
                    it.physical = physical_name;
                    items.push(it);
                }
            }
            FunctionAction::NotBuilt => items.push(item(
                r,
                if r.message.is_some() && r.status == crate::engine::Status::Failed {
                    SyncStatus::Failed
                } else {
                    SyncStatus::Skipped
                },
                None,
                r.message.clone(),
            )),
            FunctionAction::Missing => {
                let msg = match (&physical_name, opts.code_only) {
                    (Some(p), _) => format!(
                        "function {p} no longer exists in Lambda (deleted outside lamb?); run `lamb deploy` to recreate it"
                    ),
                    (None, true) => format!(
                        "function {id} is not in stack {stack} yet; deploy it with `lamb deploy` (--code never deploys)"
                    ),
                    (None, false) => format!("function {id} is not in stack {stack}; run `lamb deploy`"),
                };
                items.push(item(r, SyncStatus::Failed, None, Some(msg)));
            }
            FunctionAction::Update { code, layers } => {
                let name = physical_name.clone().unwrap_or_default();
                let art = r.artifact.clone();
                let (lambda, limit, aws, cfg, st) =
                    (lambda.clone(), limit.clone(), aws.clone(), cfg.clone(), st.clone());
                let mut base = item(r, SyncStatus::Synced, None, None);
                base.physical = physical_name;
                tasks.spawn(async move {
                    let _permit = limit.acquire().await;
                    let t0 = Instant::now();
                    let result = update_function(
                        &lambda,
                        &aws,
                        &cfg,
                        &st,
                        &name,
                        code.then_some(art).flatten().as_ref(),
                        layers.as_deref(),
                    )
                    .await;
                    base.duration_ms = t0.elapsed().as_millis() as u64;
                    match result {
                        Ok(sha) => {
                            base.code_sha256 = Some(sha);
                            if !code {
                                base.bytes = 0;
                            }
                        }
                        Err(e) => {
                            base.status = SyncStatus::Failed;
                            base.message = Some(e.to_string());
                        }
                    }
                    base
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        let it = done.map_err(|e| AwsError::Failed(format!("sync task failed: {e}")))?;
        let now = state::now_secs();
        if let Some(phys) = &it.physical {
            let record = FunctionRecord {
                physical: phys.clone(),
                code_sha256: it.code_sha256.clone().unwrap_or_default(),
                via: "sync".into(),
                synced_at: now,
                duration_ms: it.duration_ms,
                error: it.message.clone(),
            };
            if it.status == SyncStatus::Synced || !st.functions.contains_key(&it.id) {
                st.functions.insert(it.id.clone(), record);
            } else if let Some(prev) = st.functions.get_mut(&it.id) {
                prev.error = it.message.clone();
            }
        }
        // A layer swap on a function outside --resource-id is reported on the layer.
        if !wanted(&it.id) {
            for l in items.iter_mut().filter(|i| i.kind == Kind::Layer && i.status == SyncStatus::Published) {
                l.updated_functions.push(it.id.clone());
            }
            continue;
        }
        items.push(it);
    }
    // Layers report every function repointed at them.
    for f in project.functions.iter() {
        let uses: Vec<String> =
            f.layers.iter().filter_map(|l| if let LayerRef::Local(id) = l { Some(id.clone()) } else { None }).collect();
        for l in items
            .iter_mut()
            .filter(|i| i.kind == Kind::Layer && i.status == SyncStatus::Published && uses.contains(&i.id))
        {
            if !l.updated_functions.contains(&f.res.id) {
                l.updated_functions.push(f.res.id.clone());
            }
        }
    }
    st.save(lamb_dir)?;
    let order: HashMap<&str, usize> = report.resources.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
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

fn report_of<'a>(report: &'a BuildReport, id: &str) -> Option<&'a ResourceReport> {
    report.resources.iter().find(|r| r.id == id)
}

fn item(r: &ResourceReport, status: SyncStatus, version_arn: Option<String>, message: Option<String>) -> ItemReport {
    ItemReport {
        id: r.id.clone(),
        kind: r.kind,
        status,
        physical: None,
        code_sha256: r.artifact.as_ref().map(|a| a.code_sha256.clone()),
        bytes: if status == SyncStatus::Synced || status == SyncStatus::Published {
            r.artifact.as_ref().map_or(0, |a| a.size)
        } else {
            0
        },
        duration_ms: 0,
        version_arn,
        updated_functions: Vec::new(),
        message,
    }
}

type Remote = HashMap<String, Result<Option<RemoteFunction>, AwsError>>;

async fn fetch_remote(lambda: &LambdaApi, physical: &HashMap<String, String>, ids: &[String], jobs: usize) -> Remote {
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let Some(name) = physical.get(id).cloned() else { continue };
        let (lambda, limit, id) = (lambda.clone(), limit.clone(), id.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            (id, lambda.get(&name).await)
        });
    }
    let mut out = HashMap::new();
    while let Some(Ok((id, r))) = tasks.join_next().await {
        out.insert(id, r);
    }
    out
}

/// How to hand a zip to Lambda: in the request when small enough, else through S3.
async fn code_source(
    aws: &Aws,
    cfg: &StackConfig,
    st: &StackState,
    size: u64,
    path: &std::path::Path,
    sha256: &str,
) -> Result<CodeSource, SyncError> {
    if size <= DIRECT_UPLOAD_LIMIT {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| AwsError::Failed(format!("cannot read {}: {e}", path.display())))?;
        return Ok(CodeSource::Zip(bytes));
    }
    let bucket = match (&cfg.bucket, &st.bucket) {
        (Bucket::Unset, Some(b)) => b.clone(),
        (Bucket::Unset, None) => {
            return Err(AwsError::Failed(format!(
                "the zip is {} MB, over Lambda's {} MB limit for direct uploads; pass --s3-bucket NAME or --resolve-s3 so lamb can upload it through S3",
                size / 1_000_000,
                DIRECT_UPLOAD_LIMIT / 1_000_000
            ))
            .into());
        }
        _ => deploy::resolve_bucket(aws, cfg, st).await?,
    };
    let key = deploy::artifact_key(&cfg.prefix, sha256, "zip");
    let s3 = S3Api { client: aws.s3.clone(), profile: aws.profile.clone() };
    s3.upload_if_missing(&bucket, &key, path).await?;
    Ok(CodeSource::S3 { bucket, key })
}

/// Points a function at new layers and/or pushes its new code, then checks that Lambda runs
/// exactly the zip lamb built.
async fn update_function(
    lambda: &LambdaApi,
    aws: &Aws,
    cfg: &StackConfig,
    st: &StackState,
    name: &str,
    artifact: Option<&crate::engine::ArtifactReport>,
    layers: Option<&[String]>,
) -> Result<String, SyncError> {
    if let Some(layers) = layers {
        lambda.set_layers(name, layers).await?;
    }
    let Some(a) = artifact else {
        return Ok(lambda.wait_updated(name, Duration::from_secs(60)).await?.code_sha256);
    };
    let code = code_source(aws, cfg, st, a.size, &a.path, &a.sha256).await?;
    let live = lambda.update_code(name, &code).await?;
    if live != a.code_sha256 {
        return Err(AwsError::Failed(format!(
            "after the update Lambda reports CodeSha256 `{live}` for {name}, not `{}` (the zip lamb built); the upload did not take, run lamb sync again",
            a.code_sha256
        ))
        .into());
    }
    Ok(live)
}
