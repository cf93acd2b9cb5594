//! `lamb deploy`: the whole stack through CloudFormation, as `sam deploy` does it. Package
//! every local code path (deterministic zips, uploaded once under content-addressed keys),
//! point the template at them, then change set → show → (confirm) → execute → follow events →
//! outputs. Nothing already deployed is touched until CloudFormation executes the change set.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::aws::cloudformation::{Change, ChangeSetOutcome, ChangeSetRequest, Event, Output, StackInfo, StackResource};
use crate::aws::s3::S3Api;
use crate::aws::{Aws, AwsError};
use crate::config::StackConfig;
use crate::engine::{BuildReport, Kind, Status};
use crate::infra::{self, Location};
use crate::project::{Project, ProjectError};
use crate::push::{PushError, Pusher, SyncStatus, artifact_key, resolve_bucket};
use crate::state::{self, InfraRecord, LayerRecord, StackState, StateError};

/// Templates larger than this go to CloudFormation through S3.
const MAX_TEMPLATE_BODY: usize = 51_200;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot deploy: {count} function(s) or layer(s) failed to build:\n{details}")]
    Build { count: usize, details: String },
    #[error(transparent)]
    Push(#[from] PushError),
    /// A definition file could not be read.
    #[error(transparent)]
    Definition(#[from] crate::fingerprint::FingerprintError),
    /// Local I/O while packaging (a definition file, a template written for upload).
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("stack {stack} is {status}: {fix}")]
    StackNotReady { stack: String, status: String, fix: String },
    #[error("deploy of stack {stack} failed: the stack is {status}{reasons}")]
    Failed { stack: String, status: String, reasons: String },
    #[error("change set not executed: {0}")]
    Declined(String),
    #[error("stack {stack} is deployed, but bringing its functions' code in line failed:\n{details}")]
    Converge { stack: String, details: String },
}

impl DeployError {
    /// The AWS failure underneath, when there is one.
    pub fn aws(&self) -> Option<&AwsError> {
        match self {
            DeployError::Aws(e) => Some(e),
            DeployError::Push(p) => p.aws(),
            _ => None,
        }
    }
}

/// What a deploy shows as it goes.
pub trait DeployUi: Sync {
    fn step(&self, message: &str);
    fn changes(&self, stack: &str, changes: &[Change]);
    fn event(&self, event: &Event);
    /// Asks a yes/no question; false when nobody can answer.
    fn confirm(&self, question: &str) -> bool;
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployOutcome {
    pub stack: String,
    pub status: String,
    pub changes: Vec<ChangeRow>,
    pub no_changes: bool,
    pub executed: bool,
    pub uploaded: usize,
    pub already_uploaded: usize,
    pub outputs: Vec<OutputRow>,
    /// Functions whose code (or layers) lamb pushed after CloudFormation left them different
    /// from the build, e.g. code synced since the last deploy and reverted locally.
    pub converged: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputRow {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
}

impl From<&Output> for OutputRow {
    fn from(o: &Output) -> Self {
        OutputRow { key: o.key.clone(), value: o.value.clone(), description: o.description.clone() }
    }
}

/// Physical ids of the project's functions and layers in a deployed stack. SAM gives a layer's
/// LayerVersion resource the layer's logical id plus a content hash.
pub fn physical_ids(project: &Project, resources: &[StackResource]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for u in project.units() {
        let ty = if u.is_layer { "AWS::Lambda::LayerVersion" } else { "AWS::Lambda::Function" };
        let found = resources.iter().find(|r| {
            r.resource_type == ty
                && (r.logical_id == u.res.id
                    || (u.is_layer
                        && r.logical_id
                            .strip_prefix(u.res.id.as_str())
                            .is_some_and(|rest| rest.len() == 10 && rest.chars().all(|c| c.is_ascii_hexdigit()))))
        });
        if let Some(r) = found.filter(|r| !r.physical_id.is_empty()) {
            out.insert(u.res.id.clone(), r.physical_id.clone());
        }
    }
    out
}

/// Fails with every build failure listed, when there is one.
pub fn require_built(report: &BuildReport) -> Result<(), DeployError> {
    let failed: Vec<String> = report
        .resources
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| format!("  {} ({}): {}", r.id, r.location, r.message.as_deref().unwrap_or("failed")))
        .collect();
    if failed.is_empty() { Ok(()) } else { Err(DeployError::Build { count: failed.len(), details: failed.join("\n") }) }
}

/// Deploys `project` (already built into `report`) as `cfg.stack_name`.
pub async fn deploy(
    aws: &Aws,
    project: &Project,
    report: &BuildReport,
    cfg: &StackConfig,
    lamb_dir: &std::path::Path,
    ui: &dyn DeployUi,
) -> Result<DeployOutcome, DeployError> {
    let started = Instant::now();
    project.check_parameters()?;
    require_built(report)?;
    let cfn = crate::aws::cloudformation::CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let s3 = S3Api { client: aws.s3.clone(), profile: aws.profile.clone() };
    let stack = &cfg.stack_name;
    let _lock = StackState::lock(lamb_dir, stack, &aws.region).await?;

    // Refuse states CloudFormation would refuse, with the way out, before uploading anything.
    let existing = cfn.describe(stack).await?;
    let mut st = StackState::load(lamb_dir, stack, &aws.region)?
        .for_account(existing.as_ref().and_then(|s| crate::aws::account_of(&s.id)));
    let create = match &existing {
        None => true,
        Some(s) if s.status == "REVIEW_IN_PROGRESS" => true,
        Some(s) => {
            check_updatable(s)?;
            false
        }
    };

    let bucket = resolve_bucket(aws, cfg, &st).await?;
    st.bucket = Some(bucket.clone());

    // Upload each distinct artifact once; keys are content hashes, so existing ones are skipped.
    let mut by_sha: HashMap<String, PathBuf> = HashMap::new();
    for r in &report.resources {
        if let Some(a) = &r.artifact {
            by_sha.entry(a.sha256.clone()).or_insert_with(|| a.path.clone());
        }
    }
    ui.step(&format!("packaging {} artifact(s) to s3://{bucket}/{}/", by_sha.len(), cfg.prefix));
    let (mut uploaded, mut already) = upload_all(&s3, &bucket, &cfg.prefix, by_sha).await?;
    // Definition files (an Api's OpenAPI document, a state machine's ASL) go up the same way.
    let mut definitions: HashMap<String, Location> = HashMap::new();
    for d in &project.definitions {
        let sha = crate::fingerprint::hash_file(&d.path)?;
        let ext = d.path.extension().and_then(|e| e.to_str()).unwrap_or("yaml");
        let key = artifact_key(&cfg.prefix, &crate::fingerprint::hex(&sha), ext);
        if s3.upload_if_missing(&bucket, &key, &d.path).await? {
            uploaded += 1;
        } else {
            already += 1;
        }
        definitions.insert(d.id.clone(), Location::S3 { bucket: bucket.clone(), key });
    }

    // Point every stack's template at S3, children first so parents can point at them.
    let mut nested_urls: HashMap<String, String> = HashMap::new();
    let mut root_body = String::new();
    for stack_model in project.stacks.iter().rev() {
        let prefix = if stack_model.path.is_empty() { String::new() } else { format!("{}/", stack_model.path) };
        let mut locations: HashMap<String, Location> = HashMap::new();
        for r in &report.resources {
            let Some(logical) = r.id.strip_prefix(&prefix).filter(|l| !l.contains('/')) else { continue };
            if let Some(a) = &r.artifact {
                locations.insert(
                    logical.to_string(),
                    Location::S3 { bucket: bucket.clone(), key: artifact_key(&cfg.prefix, &a.sha256, "zip") },
                );
            }
        }
        for (id, location) in &definitions {
            if let Some(logical) = id.strip_prefix(&prefix).filter(|l| !l.contains('/')) {
                locations.insert(logical.to_string(), location.clone());
            }
        }
        for n in &project.nested {
            if let (Some(logical), Some(url)) =
                (n.id.strip_prefix(&prefix).filter(|l| !l.contains('/')), nested_urls.get(&n.id))
            {
                locations.insert(logical.to_string(), Location::Url(url.clone()));
            }
        }
        let packaged = infra::package(&stack_model.file.doc, &locations);
        let body = serde_json::to_string_pretty(&packaged.to_json()).unwrap_or_default();
        if stack_model.path.is_empty() {
            root_body = body;
        } else {
            let url = upload_template(&s3, aws, &bucket, &cfg.prefix, &body).await?;
            nested_urls.insert(stack_model.path.clone(), url);
        }
    }
    let (template_body, template_url) = if root_body.len() > MAX_TEMPLATE_BODY {
        (None, Some(upload_template(&s3, aws, &bucket, &cfg.prefix, &root_body).await?))
    } else {
        (Some(root_body), None)
    };

    let parameters: Vec<(String, String)> =
        project.root_stack().parameters.iter().map(|(k, v)| (k.clone(), v.as_cfn_string())).collect();
    let request = ChangeSetRequest {
        stack: stack.clone(),
        name: format!(
            "lamb-{}-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()),
            std::process::id()
        ),
        create,
        template_body,
        template_url,
        parameters,
        capabilities: cfg.capabilities.clone(),
        tags: cfg.tags.clone(),
    };
    ui.step(&format!("creating change set for stack {stack} ({})", if create { "new stack" } else { "update" }));
    let fingerprint = infra::fingerprint(project, stack, &cfg.tags);
    let id = match cfn.create_change_set(&request).await {
        Ok(id) => id,
        // Some CloudFormation implementations refuse an empty change set outright.
        Err(AwsError::Service { message, .. }) if crate::aws::cloudformation::is_no_changes(&message) => {
            return finish_unchanged(
                aws,
                &cfn,
                project,
                report,
                cfg,
                lamb_dir,
                st,
                fingerprint,
                uploaded,
                already,
                started,
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let changes = match cfn.wait_change_set(stack, &id).await? {
        ChangeSetOutcome::NoChanges => {
            return finish_unchanged(
                aws,
                &cfn,
                project,
                report,
                cfg,
                lamb_dir,
                st,
                fingerprint,
                uploaded,
                already,
                started,
            )
            .await;
        }
        ChangeSetOutcome::Ready(changes) => changes,
    };
    ui.changes(stack, &changes);
    let rows: Vec<ChangeRow> = changes
        .iter()
        .map(|c| ChangeRow {
            action: c.action.clone(),
            logical_id: c.logical_id.clone(),
            resource_type: c.resource_type.clone(),
            replacement: c.replacement.clone(),
        })
        .collect();
    if !cfg.execute {
        ui.step(&format!("change set {id} created and not executed (--no-execute-changeset)"));
        return Ok(DeployOutcome {
            stack: stack.clone(),
            status: existing.map(|s| s.status).unwrap_or_else(|| "REVIEW_IN_PROGRESS".into()),
            changes: rows,
            no_changes: false,
            executed: false,
            uploaded,
            already_uploaded: already,
            outputs: Vec::new(),
            converged: Vec::new(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    if cfg.confirm && !ui.confirm(&format!("Deploy this change set to stack {stack}?")) {
        let _ = cfn.delete_change_set(stack, &id).await;
        let why = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            "the change set was not confirmed; nothing was deployed"
        } else {
            "--confirm-changeset needs a terminal to ask on; run it in one, or leave out --confirm-changeset"
        };
        return Err(DeployError::Declined(why.into()));
    }
    let after = cfn.last_event_id(stack).await?;
    cfn.execute_change_set(stack, &id, cfg.disable_rollback).await?;
    ui.step(&format!("executing change set; following stack {stack}"));
    let (info, failures) = cfn.follow(stack, after.as_deref(), |e| ui.event(e)).await?;
    if !matches!(info.status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE") {
        let mut reasons: Vec<String> = failures
            .iter()
            .filter(|e| e.reason.as_deref().is_some_and(|r| !r.contains("cancelled")))
            .map(|e| format!("\n  {} ({}): {}", e.logical_id, e.resource_type, e.reason.as_deref().unwrap_or_default()))
            .collect();
        if reasons.is_empty()
            && let Some(r) = &info.status_reason
        {
            reasons.push(format!("\n  {r}"));
        }
        if cfg.disable_rollback && info.status.ends_with("_FAILED") {
            reasons.push(format!(
                "\n  rollback is disabled, so what was made is kept: fix the template and deploy again, or roll back with `aws cloudformation rollback-stack --stack-name {stack}`"
            ));
        }
        return Err(DeployError::Failed {
            stack: stack.clone(),
            status: info.status.clone(),
            reasons: reasons.concat(),
        });
    }
    let converged = record(aws, &cfn, project, report, cfg, lamb_dir, &mut st, &info, fingerprint, started).await?;
    Ok(DeployOutcome {
        stack: stack.clone(),
        status: info.status.clone(),
        changes: rows,
        no_changes: false,
        executed: true,
        uploaded,
        already_uploaded: already,
        outputs: info.outputs.iter().map(OutputRow::from).collect(),
        converged,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Stack states that cannot take an update, and what to do about each.
pub fn check_updatable(s: &StackInfo) -> Result<(), DeployError> {
    let fix = match s.status.as_str() {
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => {
            "its creation failed and it cannot be updated; delete it (`lamb delete`) and deploy again"
        }
        "UPDATE_ROLLBACK_FAILED" => {
            "continue the rollback first (`aws cloudformation continue-update-rollback --stack-name NAME`, or in the console), then deploy again"
        }
        "DELETE_FAILED" => "finish deleting it in the CloudFormation console, then deploy again",
        _ if s.busy() => "another operation is running on it; wait for it to finish and run lamb again",
        _ => return Ok(()),
    };
    Err(DeployError::StackNotReady {
        stack: s.name.clone(),
        status: s.status.clone(),
        fix: fix.replace("NAME", &s.name),
    })
}

#[allow(clippy::too_many_arguments)]
async fn finish_unchanged(
    aws: &Aws,
    cfn: &crate::aws::cloudformation::CfnApi,
    project: &Project,
    report: &BuildReport,
    cfg: &StackConfig,
    lamb_dir: &std::path::Path,
    mut st: StackState,
    fingerprint: String,
    uploaded: usize,
    already: usize,
    started: Instant,
) -> Result<DeployOutcome, DeployError> {
    let info = cfn.describe(&cfg.stack_name).await?.unwrap_or_default();
    let converged = record(aws, cfn, project, report, cfg, lamb_dir, &mut st, &info, fingerprint, started).await?;
    Ok(DeployOutcome {
        stack: cfg.stack_name.clone(),
        status: info.status.clone(),
        changes: Vec::new(),
        no_changes: true,
        executed: false,
        uploaded,
        already_uploaded: already,
        outputs: info.outputs.iter().map(OutputRow::from).collect(),
        converged,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// After CloudFormation is done: brings every function's code and layers in line with the
/// build (CloudFormation leaves alone what its template did not change, such as code a sync
/// pushed since), then records what is deployed. Returns the functions lamb had to push.
#[allow(clippy::too_many_arguments)]
async fn record(
    aws: &Aws,
    cfn: &crate::aws::cloudformation::CfnApi,
    project: &Project,
    report: &BuildReport,
    cfg: &StackConfig,
    lamb_dir: &std::path::Path,
    st: &mut StackState,
    info: &StackInfo,
    fingerprint: String,
    started: Instant,
) -> Result<Vec<String>, DeployError> {
    let resources = cfn.resources(&st.stack_name).await?;
    let physical = physical_ids(project, &resources);
    let now = state::now_secs();
    // Every function uses the layer versions this deploy made.
    let mut swaps = HashMap::new();
    for r in report.resources.iter().filter(|r| r.kind == Kind::Layer) {
        let (Some(a), Some(version)) = (&r.artifact, physical.get(&r.id)) else { continue };
        swaps.insert(crate::aws::lambda::layer_base(version).to_string(), version.clone());
        st.layers.insert(
            r.id.clone(),
            LayerRecord { version_arn: version.clone(), code_sha256: a.code_sha256.clone(), published_at: now },
        );
    }
    let functions: Vec<String> =
        report.resources.iter().filter(|r| r.kind == Kind::Function).map(|r| r.id.clone()).collect();
    let pusher = Pusher::new(aws, cfg, st, 8, project);
    let items = pusher.push(report, &physical, &functions, &|_| true, &swaps, Default::default(), st).await;
    for f in st.functions.values_mut().filter(|f| f.via == "sync") {
        f.via = "deploy".into();
    }
    let failed: Vec<String> = items
        .iter()
        .filter(|i| {
            i.status == SyncStatus::Failed && report.resources.iter().any(|r| r.id == i.id && r.artifact.is_some())
        })
        .map(|i| format!("  {}: {}", i.id, i.message.as_deref().unwrap_or("failed")))
        .collect();
    if failed.is_empty() {
        st.infra = Some(InfraRecord {
            fingerprint,
            stack_updated: info.updated.clone(),
            deployed_at: now,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    st.save(lamb_dir)?;
    if !failed.is_empty() {
        return Err(DeployError::Converge { stack: st.stack_name.clone(), details: failed.join("\n") });
    }
    Ok(items.into_iter().filter(|i| i.status == SyncStatus::Synced).map(|i| i.id).collect())
}

async fn upload_all(
    s3: &S3Api,
    bucket: &str,
    prefix: &str,
    by_sha: HashMap<String, PathBuf>,
) -> Result<(usize, usize), DeployError> {
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (sha, path) in by_sha {
        let (s3, bucket, key, limit) =
            (s3.clone(), bucket.to_string(), artifact_key(prefix, &sha, "zip"), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            s3.upload_if_missing(&bucket, &key, &path).await
        });
    }
    let (mut uploaded, mut already) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.map_err(|e| AwsError::Failed(format!("upload task failed: {e}")))? {
            Ok(true) => uploaded += 1,
            Ok(false) => already += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((uploaded, already))
}

async fn upload_template(s3: &S3Api, aws: &Aws, bucket: &str, prefix: &str, body: &str) -> Result<String, DeployError> {
    use sha2::{Digest, Sha256};
    let sha = crate::fingerprint::hex(&Sha256::digest(body.as_bytes()));
    let key = artifact_key(prefix, &sha, "template");
    if !s3.exists(bucket, &key).await? {
        let io = |source| DeployError::Io { what: "cannot write the packaged template to a temp file".into(), source };
        let tmp = tempfile::NamedTempFile::new().map_err(io)?;
        std::fs::write(tmp.path(), body).map_err(io)?;
        s3.upload(bucket, &key, tmp.path()).await?;
    }
    Ok(aws.s3_url(bucket, &key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{LoadOptions, intrinsics::Pseudo};

    fn res(logical: &str, ty: &str, physical: &str) -> StackResource {
        StackResource {
            logical_id: logical.into(),
            physical_id: physical.into(),
            resource_type: ty.into(),
            status: "CREATE_COMPLETE".into(),
        }
    }

    #[test]
    fn physical_ids_follow_sams_layer_naming() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::fs::write(
            d.path().join("template.yaml"),
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: a.b, Runtime: python3.12}\n  Layer:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: src}\n  LayerTwo:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: src}\n",
        )
        .unwrap();
        let root = d.path().canonicalize().unwrap();
        let project = crate::project::load(&LoadOptions {
            template: root.join("template.yaml"),
            root: root.clone(),
            overrides: Default::default(),
            pseudo: Pseudo::default(),
        })
        .unwrap();
        let resources = [
            res("Fn", "AWS::Lambda::Function", "stack-Fn-ABC"),
            res("FnRole", "AWS::IAM::Role", "role"),
            res("LayerTwo3f9a0c1b2d", "AWS::Lambda::LayerVersion", "arn:aws:lambda:r:1:layer:two:1"),
            res("Layer0123456789", "AWS::Lambda::LayerVersion", "arn:aws:lambda:r:1:layer:one:4"),
        ];
        let ids = physical_ids(&project, &resources);
        assert_eq!(ids.get("Fn").map(String::as_str), Some("stack-Fn-ABC"));
        assert_eq!(ids.get("Layer").map(String::as_str), Some("arn:aws:lambda:r:1:layer:one:4"));
        assert_eq!(ids.get("LayerTwo").map(String::as_str), Some("arn:aws:lambda:r:1:layer:two:1"));
    }

    #[test]
    fn stack_states_that_cannot_update_say_what_to_do() {
        let s = |status: &str| StackInfo { name: "app".into(), status: status.into(), ..Default::default() };
        assert!(check_updatable(&s("UPDATE_COMPLETE")).is_ok());
        assert!(check_updatable(&s("UPDATE_ROLLBACK_COMPLETE")).is_ok());
        let e = check_updatable(&s("ROLLBACK_COMPLETE")).unwrap_err().to_string();
        assert!(e.contains("lamb delete"), "{e}");
        let e = check_updatable(&s("UPDATE_ROLLBACK_FAILED")).unwrap_err().to_string();
        assert!(e.contains("continue-update-rollback --stack-name app"), "{e}");
        let e = check_updatable(&s("UPDATE_IN_PROGRESS")).unwrap_err().to_string();
        assert!(e.contains("wait for it to finish"), "{e}");
    }
}
