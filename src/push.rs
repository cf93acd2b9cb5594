//! Pushing built code to Lambda: layers republished first, each function updated by one task
//! (never two updates in flight for a function), at most `jobs` functions at once, nothing
//! written for a function whose CodeSha256 (and layers) already match what Lambda reports, and
//! every update waited for and checked. Shared by `sync` (a code pass) and `deploy` (which
//! converges code CloudFormation left alone); below both, so neither imports the other.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::aws::lambda::{CodeSource, LambdaApi, RemoteFunction, layer_base};
use crate::aws::s3::S3Api;
use crate::aws::{Aws, AwsError};
use crate::config::{Bucket, StackConfig};
use crate::engine::{ArtifactReport, BuildReport, Kind, ResourceReport, Status};
use crate::plan::{self, FunctionAction, FunctionState};
use crate::project::{LayerRef, Project};
use crate::state::{self, FunctionRecord, LayerRecord, StackState};

/// Lambda takes zips up to this size in the request itself; larger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1000 * 1000;
/// Above this many functions to read, ListFunctions (50 per call) beats one call each.
const LIST_THRESHOLD: usize = 8;

/// Why a push of one function or layer failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "no S3 bucket for packaged code: pass --s3-bucket NAME, set s3_bucket in samconfig.toml, or pass --resolve-s3 to let lamb create and use lamb-artifacts-<account>-<region>"
    )]
    NoBucket,
    #[error(
        "the zip is {mb} MB, over Lambda's {limit} MB limit for direct uploads; pass --s3-bucket NAME or --resolve-s3 so lamb can upload it through S3",
        limit = DIRECT_UPLOAD_LIMIT / 1_000_000
    )]
    TooBigWithoutBucket { mb: u64 },
    #[error(
        "AWS did not say which account these credentials belong to (GetCallerIdentity returned no account), so lamb cannot name its artifact bucket; pass --s3-bucket NAME"
    )]
    NoAccount,
    #[error("{}: cannot read the built zip: {source}; run the sync again (lamb rebuilds a missing artifact)", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error(
        "after the update Lambda reports CodeSha256 `{live}` for {name}, not `{built}` (the zip lamb built); the upload did not take, run lamb sync again"
    )]
    NotApplied { name: String, live: String, built: String },
}

impl PushError {
    /// Whether the push may succeed later with nothing changed (see [`AwsError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, PushError::Aws(e) if e.is_transient())
    }

    /// The AWS failure underneath, when there is one.
    pub fn aws(&self) -> Option<&AwsError> {
        match self {
            PushError::Aws(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// With AutoPublishAlias: the version published and the alias moved to it (`live:7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// For layers: the functions repointed at the new version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updated_functions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A failure that may clear up by itself (network, throttling): worth retrying.
    #[serde(skip)]
    pub transient: bool,
}

impl ItemReport {
    pub(crate) fn new(id: &str, kind: Kind, status: SyncStatus) -> Self {
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

    pub(crate) fn failed(id: &str, kind: Kind, message: String) -> Self {
        ItemReport { message: Some(message), ..ItemReport::new(id, kind, SyncStatus::Failed) }
    }

    fn failed_with(id: &str, kind: Kind, e: &PushError) -> Self {
        ItemReport { transient: e.is_transient(), ..ItemReport::failed(id, kind, e.to_string()) }
    }
}

/// The artifact bucket to use, creating lamb's managed one on first use.
pub async fn resolve_bucket(aws: &Aws, cfg: &StackConfig, state: &StackState) -> Result<String, PushError> {
    match &cfg.bucket {
        Bucket::Named(b) => Ok(b.clone()),
        // Not configured for this command: the bucket the last deploy of this stack used.
        Bucket::Unset => state.bucket.clone().ok_or(PushError::NoBucket),
        Bucket::Managed => {
            // The account decides the bucket's name: asked every time, so a profile switch
            // never sends code to another account's bucket.
            let sts = aws_sdk_sts::Client::new(&aws.sts_config);
            let who = sts.get_caller_identity().send().await.map_err(|e| aws.err("GetCallerIdentity", e))?;
            let account = who.account().filter(|a| !a.is_empty()).ok_or(PushError::NoAccount)?;
            let bucket = format!("lamb-artifacts-{account}-{}", aws.region);
            let s3 = S3Api { client: aws.s3.clone(), profile: aws.profile.clone() };
            if s3.ensure_bucket(&bucket, &aws.region).await? {
                tracing::info!(bucket, "created lamb's artifact bucket");
            }
            Ok(bucket)
        }
    }
}

/// The content-addressed key of an uploaded artifact.
pub fn artifact_key(prefix: &str, sha256: &str, ext: &str) -> String {
    format!("{}/{sha256}.{ext}", prefix.trim_end_matches('/'))
}

pub(crate) fn report_of<'a>(report: &'a BuildReport, id: &str) -> Option<&'a ResourceReport> {
    report.resources.iter().find(|r| r.id == id)
}

/// What a failed or skipped build means for a sync item.
pub(crate) fn not_built(r: &ResourceReport) -> ItemReport {
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

/// The error of a function CloudFormation lists and Lambda does not have.
fn deleted_outside(physical: &str, id: &str) -> String {
    format!(
        "function {physical} no longer exists in Lambda: it was deleted outside CloudFormation, which still lists it and will not recreate it by itself; `lamb delete` the stack and `lamb deploy` it again (or give {id} a new logical id, so that CloudFormation creates a new function)"
    )
}

/// What Lambda reported per function id.
pub type Remote = HashMap<String, Result<Option<RemoteFunction>, AwsError>>;

/// What lamb last pushed or found live, per function of `physical`, taken as what Lambda runs
/// (settled, with the layers lamb does not track left empty): used instead of reading each
/// function while lamb knows the stack is as it left it. After a failed push the record keeps
/// the code last known live; a function that has since become another physical function is
/// not known this way.
pub fn recorded(st: &StackState, physical: &HashMap<String, String>) -> Remote {
    st.functions
        .iter()
        .filter(|(id, r)| physical.get(*id) == Some(&r.physical))
        .map(|(id, r)| {
            let f = RemoteFunction {
                name: r.physical.clone(),
                arn: String::new(),
                code_sha256: r.code_sha256.clone(),
                last_update_status: Some("Successful".into()),
                state: Some("Active".into()),
                layers: Vec::new(),
                log_group: None,
            };
            (id.clone(), Ok(Some(f)))
        })
        .collect()
}

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
    /// With `trust_records`, a layer whose build is the one lamb last published or found is
    /// current without asking Lambda.
    pub async fn publish_layers(
        &self,
        project: &Project,
        report: &BuildReport,
        physical: &HashMap<String, String>,
        wanted: &(dyn Fn(&str) -> bool + Sync),
        trust_records: bool,
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
            if let Some(rec) = st.layers.get(&l.res.id).filter(|r| trust_records && r.code_sha256 == a.code_sha256) {
                items.push(ItemReport {
                    version_arn: Some(rec.version_arn.clone()),
                    ..ItemReport::new(&l.res.id, Kind::Layer, SyncStatus::Unchanged)
                });
                continue;
            }
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
                    .map_err(PushError::from),
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
                        Some(p) => deleted_outside(p, id),
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
                            // Pushed without reading it first: a function deleted outside
                            // CloudFormation is found by the push itself.
                            Err(PushError::Aws(e)) if e.is_not_found() => {
                                it.status = SyncStatus::Failed;
                                it.message = Some(deleted_outside(it.physical.as_deref().unwrap_or_default(), &id));
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

    async fn code_source(&self, a: &ArtifactReport) -> Result<CodeSource, PushError> {
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
    async fn code_source(&self, a: &ArtifactReport) -> Result<CodeSource, PushError> {
        if a.size <= DIRECT_UPLOAD_LIMIT {
            let bytes =
                tokio::fs::read(&a.path).await.map_err(|source| PushError::Read { path: a.path.clone(), source })?;
            return Ok(CodeSource::Zip(bytes));
        }
        let st = StackState { bucket: self.bucket.clone(), ..Default::default() };
        let bucket = resolve_bucket(&self.aws, &self.cfg, &st).await.map_err(|e| match e {
            PushError::NoBucket => PushError::TooBigWithoutBucket { mb: a.size / 1_000_000 },
            other => other,
        })?;
        let key = artifact_key(&self.cfg.prefix, &a.sha256, "zip");
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
    ) -> Result<String, PushError> {
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
            return Err(PushError::NotApplied { name: name.to_string(), live, built: a.code_sha256.clone() });
        }
        Ok(live)
    }
}
