//! The commands that talk to AWS (`deploy`, `sync`, `outputs`, `invoke`, `delete`): each
//! resolves its configuration, builds what it needs, runs on a small async runtime and prints
//! its result. The work itself lives in [`crate::deploy`] and [`crate::sync`].

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use crate::aws::cloudformation::{CfnApi, Change, Event};
use crate::aws::{Aws, AwsError};
use crate::cli::{AwsArgs, DeleteArgs, DeployArgs, InvokeArgs, OutputsArgs, ProjectArgs, SyncArgs};
use crate::config::{self, ProjectConfig, StackConfig};
use crate::deploy::{DeployOutcome, DeployUi};
use crate::engine::{self, BuildOptions, BuildReport, LAMB_DIR};
use crate::output::{Format, bytes, duration, emit};
use crate::project::Project;
use crate::state::StackState;
use crate::sync::{SyncOptions, SyncReport, SyncStatus};
use crate::{Error, load_project_with};

/// Prints a deploy's progress on stderr (events, change sets) and asks on the terminal.
pub struct TermUi {
    pub quiet: bool,
}

impl DeployUi for TermUi {
    fn step(&self, message: &str) {
        if !self.quiet {
            eprintln!("==> {message}");
        }
    }

    fn changes(&self, stack: &str, changes: &[Change]) {
        if self.quiet {
            return;
        }
        eprintln!("change set for {stack}:");
        for c in changes {
            let replace = match c.replacement.as_deref() {
                Some("True") => "  (replacement)",
                Some("Conditional") => "  (may replace)",
                _ => "",
            };
            eprintln!("  {:<8} {:<40} {}{replace}", c.action, c.logical_id, c.resource_type);
        }
    }

    fn event(&self, e: &Event) {
        if self.quiet && !e.status.ends_with("_FAILED") {
            return;
        }
        let reason = e.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
        eprintln!("  {:<28} {:<36} {}{reason}", e.status, e.logical_id, e.resource_type);
    }

    fn confirm(&self, question: &str) -> bool {
        if !std::io::stdin().is_terminal() {
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))
}

/// Project, stack settings and AWS clients for a command.
struct Context {
    project: Project,
    pc: ProjectConfig,
    cfg: StackConfig,
}

fn context(
    project: &ProjectArgs,
    aws: &AwsArgs,
    deploy: Option<&crate::cli::StackDeployArgs>,
    command: &str,
) -> Result<Context, Error> {
    let pc = config::project(project, command)?;
    let cfg = config::stack(&pc, aws, deploy)?;
    let mut pc = pc;
    if cfg.aws.region.is_some() {
        pc.pseudo.region = cfg.aws.region.clone();
    }
    pc.pseudo.stack_name = Some(cfg.stack_name.clone());
    let project = load_project_with(&pc)?;
    Ok(Context { project, pc, cfg })
}

fn build_all(
    project: &Project,
    ids: Vec<String>,
    jobs: usize,
    follow_external_symlinks: bool,
) -> Result<BuildReport, Error> {
    let opts = BuildOptions { ids, force: false, dry_run: false, jobs, follow_external_symlinks };
    Ok(engine::build(project, &opts, &engine::Silent)?)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub fn deploy(args: DeployArgs, quiet: bool) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, Some(&args.deploy), "deploy")?;
    let report = build_all(&ctx.project, Vec::new(), cpus(), false)?;
    let ui = TermUi { quiet: quiet || args.output == Format::Json };
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        crate::deploy::deploy(&aws, &ctx.project, &report, &ctx.cfg, &ctx.pc.root.join(LAMB_DIR), &ui)
            .await
            .map_err(Error::from)
    })?;
    print_deploy(&outcome, args.output);
    Ok(())
}

fn print_deploy(outcome: &DeployOutcome, format: Format) {
    if format == Format::Json {
        emit(&serde_json::to_string_pretty(outcome).unwrap_or_default());
        return;
    }
    if outcome.no_changes {
        emit(&format!("no changes: stack {} is up to date ({})", outcome.stack, outcome.status));
    } else if !outcome.executed {
        emit(&format!("change set for {} created, not executed ({} changes)", outcome.stack, outcome.changes.len()));
    } else {
        emit(&format!("deployed stack {}: {} in {}", outcome.stack, outcome.status, duration(outcome.duration_ms)));
    }
    if !outcome.converged.is_empty() {
        emit(&format!(
            "pushed code CloudFormation left as it was (synced since the last deploy): {}",
            outcome.converged.join(", ")
        ));
    }
    print_outputs(&outcome.outputs);
}

fn print_outputs(outputs: &[crate::deploy::OutputRow]) {
    if outputs.is_empty() {
        return;
    }
    emit("outputs:");
    let width = outputs.iter().map(|o| o.key.len()).max().unwrap_or(0);
    for o in outputs {
        emit(&format!("  {:<width$}  {}", o.key, o.value));
    }
}

pub fn sync(args: SyncArgs, global: &crate::cli::GlobalArgs) -> Result<(), Error> {
    let quiet = global.quiet;
    if args.watch {
        return crate::daemon::run(args, global);
    }
    let ctx = context(&args.project, &args.aws, Some(&args.deploy), "sync")?;
    // Before building: what the configuration alone says (the stack's own tags are checked
    // once it is described).
    crate::sync::check_production(
        &ctx.cfg.stack_name,
        ctx.cfg.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ctx.pc.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        args.allow_production,
    )?;
    let ids = args
        .resource_ids
        .iter()
        .map(|id| ctx.project.resolve_id(id).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    let ids = ctx.project.with_layers_of(&ids);
    let report = build_all(&ctx.project, ids.clone(), cpus(), args.follow_external_symlinks)?;
    let full_build = || {
        let opts = BuildOptions {
            ids: Vec::new(),
            force: false,
            dry_run: false,
            jobs: cpus(),
            follow_external_symlinks: args.follow_external_symlinks,
        };
        engine::build(&ctx.project, &opts, &engine::Silent)
    };
    let ui = TermUi { quiet: quiet || args.output == Format::Json };
    let jobs = match args.jobs {
        Some(j) => usize::from(j),
        None => {
            let toml = crate::config::settings::read(&ctx.pc.root)?;
            let flags = crate::config::settings::WatchFlags::default();
            crate::config::settings::resolve(
                &ctx.pc.root,
                &flags,
                &|k| std::env::var(k).ok(),
                &toml,
                &ctx.pc.samconfig,
            )?
            .jobs
        }
    };
    let opts = SyncOptions { ids, code_only: args.code, yes: args.yes, jobs, allow_production: args.allow_production };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        crate::sync::run(&aws, &ctx.project, &report, &full_build, &ctx.cfg, &opts, &ctx.pc.root.join(LAMB_DIR), &ui)
            .await
            .map_err(Error::from)
    })?;
    print_sync(&result, args.output, quiet);
    if result.failed() {
        return Err(Error::Failed(String::new()));
    }
    Ok(())
}

fn print_sync(r: &SyncReport, format: Format, quiet: bool) {
    if format == Format::Json {
        emit(&serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    if let Some(d) = &r.deploy {
        print_deploy(d, format);
    }
    let width = r.items.iter().map(|i| i.id.len()).max().unwrap_or(0);
    for i in &r.items {
        if quiet && i.status != SyncStatus::Failed {
            continue;
        }
        let mut line = format!("{:<9} {:<width$}", i.status.as_str(), i.id);
        match i.status {
            SyncStatus::Synced if r.mode == "code" && i.bytes == 0 => {
                line.push_str(&format!("  {:>10}  {:>8}  layers updated", "", duration(i.duration_ms)));
            }
            SyncStatus::Synced if r.mode == "code" => {
                line.push_str(&format!("  {:>10}  {:>8}", bytes(i.bytes), duration(i.duration_ms)));
                if let Some(sha) = &i.code_sha256 {
                    line.push_str(&format!("  CodeSha256 {sha}"));
                }
                if let Some(alias) = &i.alias {
                    line.push_str(&format!("  alias {alias}"));
                }
            }
            SyncStatus::Published => {
                line.push_str(&format!("  {}", i.version_arn.as_deref().unwrap_or_default()));
                if !i.updated_functions.is_empty() {
                    line.push_str(&format!("  (now used by {})", i.updated_functions.join(", ")));
                }
            }
            _ => {}
        }
        if let Some(m) = &i.message {
            line.push_str(&format!("\n    {}", m.replace('\n', "\n    ")));
        }
        emit(line.trim_end());
    }
    if r.infra_skipped {
        eprintln!(
            "note: infrastructure changes not deployed (--code): {}; run `lamb deploy` (or `lamb sync`) to deploy them",
            r.infra_reasons.join("; ")
        );
    }
    if !quiet {
        emit(&format!(
            "{}: {}synced {}, unchanged {}, published {}, failed {} in {}",
            r.stack,
            if r.mode == "infra" { format!("deployed {}, ", r.count(SyncStatus::Deployed)) } else { String::new() },
            r.count(SyncStatus::Synced),
            r.count(SyncStatus::Unchanged),
            r.count(SyncStatus::Published),
            r.count(SyncStatus::Failed),
            duration(r.duration_ms)
        ));
    }
}

#[derive(Serialize)]
struct Endpoint {
    kind: &'static str,
    id: String,
    url: String,
}

/// `Child/` for a resource of a nested stack `Child`, "" for the root stack's.
fn stack_prefix(logical_id: &str) -> &str {
    logical_id.rfind('/').map_or("", |i| &logical_id[..=i])
}

/// Stage names by the logical id of their API, from a processed template: each
/// `AWS::ApiGateway::Stage` or `Deployment` (`RestApiId`) and `AWS::ApiGatewayV2::Stage`
/// (`ApiId`) that names a stage and refers to its API with `Ref`.
fn api_stages(template: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let Ok(doc) = crate::project::template::parse(std::path::Path::new("processed.yaml"), template) else {
        return out;
    };
    let Some(resources) = doc.get("Resources").and_then(|r| r.as_map()) else { return out };
    // A deployment with a StageName creates that stage too; SAM's all say `Stage`, beside the
    // real one, so they count only for an API without Stage resources.
    let mut by_deployment: HashMap<String, Vec<String>> = HashMap::new();
    for res in resources.values() {
        let (key, found) = match res.get("Type").and_then(|t| t.as_str()) {
            Some("AWS::ApiGateway::Stage") => ("RestApiId", &mut out),
            Some("AWS::ApiGateway::Deployment") => ("RestApiId", &mut by_deployment),
            Some("AWS::ApiGatewayV2::Stage") => ("ApiId", &mut out),
            _ => continue,
        };
        let props = res.get("Properties");
        let api = props.and_then(|p| p.get(key)).and_then(|v| match v.as_intrinsic() {
            Some(("Ref", crate::project::value::Value::String(id))) => Some(id.clone()),
            _ => None,
        });
        let name = props.and_then(|p| p.get("StageName")).and_then(|v| v.as_str()).map(str::to_string);
        if let (Some(api), Some(name)) = (api, name) {
            found.entry(api).or_default().push(name);
        }
    }
    for (api, names) in by_deployment {
        out.entry(api).or_insert(names);
    }
    for names in out.values_mut() {
        names.sort();
        names.dedup();
    }
    out
}

pub fn outputs(args: OutputsArgs) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "list")?;
    let rt = runtime()?;
    let (outputs, endpoints) = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let info = cfn.describe(&ctx.cfg.stack_name).await?.ok_or_else(|| {
            Error::Failed(format!("stack {} does not exist; deploy it with `lamb deploy`", ctx.cfg.stack_name))
        })?;
        let resources = cfn.resources(&ctx.cfg.stack_name).await?;
        // Which stages belong to which API: the processed template of each stack says (a
        // stack may hold several APIs, each with its own stages).
        let mut stages: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
        let has_api = |prefix: &str| {
            resources.iter().any(|r| {
                matches!(r.resource_type.as_str(), "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api")
                    && stack_prefix(&r.logical_id) == prefix
            })
        };
        let stacks = std::iter::once((String::new(), ctx.cfg.stack_name.clone())).chain(
            resources
                .iter()
                .filter(|r| r.resource_type == "AWS::CloudFormation::Stack" && !r.physical_id.is_empty())
                .map(|r| (format!("{}/", r.logical_id), r.physical_id.clone())),
        );
        for (prefix, physical) in stacks {
            if has_api(&prefix) {
                let text = cfn.processed_template(&physical).await?;
                stages.insert(prefix, api_stages(&text));
            }
        }
        let mut endpoints = Vec::new();
        for r in &resources {
            let suffix = if aws.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
            let prefix = stack_prefix(&r.logical_id);
            let local = &r.logical_id[prefix.len()..];
            let names = stages.get(prefix).and_then(|m| m.get(local)).cloned().unwrap_or_default();
            let base = format!("https://{}.execute-api.{}.{suffix}", r.physical_id, aws.region);
            match r.resource_type.as_str() {
                "AWS::ApiGateway::RestApi" => {
                    for stage in names {
                        endpoints.push(Endpoint {
                            kind: "rest-api",
                            id: r.logical_id.clone(),
                            url: format!("{base}/{stage}/"),
                        });
                    }
                }
                "AWS::ApiGatewayV2::Api" => {
                    // The `$default` stage (what SAM's HttpApi gets) is served at the root.
                    let mut paths: Vec<String> = names
                        .iter()
                        .map(|s| if s == "$default" { "/".to_string() } else { format!("/{s}/") })
                        .collect();
                    if paths.is_empty() {
                        paths.push("/".into());
                    }
                    for path in paths {
                        endpoints.push(Endpoint {
                            kind: "http-api",
                            id: r.logical_id.clone(),
                            url: format!("{base}{path}"),
                        });
                    }
                }
                "AWS::Lambda::Url" => {
                    let function = r.logical_id.trim_end_matches("Url");
                    if let Some(name) =
                        resources.iter().find(|f| f.logical_id == function).map(|f| f.physical_id.clone())
                        && let Ok(out) = aws.lambda.get_function_url_config().function_name(name).send().await
                    {
                        endpoints.push(Endpoint {
                            kind: "function-url",
                            id: function.to_string(),
                            url: out.function_url().to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok::<_, Error>((info.outputs, endpoints))
    })?;
    let rows: Vec<crate::deploy::OutputRow> = outputs.iter().map(crate::deploy::OutputRow::from).collect();
    if args.output == Format::Json {
        emit(
            &serde_json::to_string_pretty(&serde_json::json!({ "outputs": rows, "endpoints": endpoints }))
                .unwrap_or_default(),
        );
        return Ok(());
    }
    print_outputs(&rows);
    if !endpoints.is_empty() {
        emit("endpoints:");
        for e in &endpoints {
            emit(&format!("  {:<12} {:<24} {}", e.kind, e.id, e.url));
        }
    }
    if rows.is_empty() && endpoints.is_empty() {
        emit(&format!("stack {} has no outputs or endpoints", ctx.cfg.stack_name));
    }
    Ok(())
}

pub fn invoke(args: InvokeArgs) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "remote_invoke")?;
    let id = ctx.project.resolve_id(&args.id).map_err(Error::Usage)?;
    let payload = match &args.event {
        None => b"{}".to_vec(),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::Failed(format!("cannot read the event from stdin: {e}")))?;
            buf
        }
        Some(p) => {
            std::fs::read(p).map_err(|e| Error::Usage(format!("--event {}: {e}; check the path", p.display())))?
        }
    };
    if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
        return Err(Error::Usage("the event is not valid JSON; fix the file".into()));
    }
    let rt = runtime()?;
    let (status, function_error, body, log) = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let resources = cfn.resources(&ctx.cfg.stack_name).await?;
        let physical = crate::deploy::physical_ids(&ctx.project, &resources);
        let name = physical.get(&id).ok_or_else(|| {
            Error::Failed(format!("function {id} is not in stack {}; deploy it with `lamb deploy`", ctx.cfg.stack_name))
        })?;
        let out =
            crate::aws::lambda::LambdaApi::new(aws.lambda.clone(), aws.profile.clone()).invoke(name, payload).await?;
        Ok::<_, Error>((out.status, out.function_error, out.payload, out.log_tail))
    })?;
    if args.output == Format::Json {
        let response: serde_json::Value =
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body.clone()));
        emit(
            &serde_json::json!({"status": status, "function_error": function_error, "response": response, "log": log})
                .to_string(),
        );
    } else {
        emit(&body);
        if let Some(log) = log.as_deref().filter(|l| !l.trim().is_empty()) {
            eprintln!("--- log tail ---\n{}", log.trim_end());
        }
    }
    match function_error {
        Some(kind) => Err(Error::Failed(format!("the function returned an error ({kind}); see its response above"))),
        None => Ok(()),
    }
}

pub fn delete(args: DeleteArgs, quiet: bool) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "delete")?;
    let stack = ctx.cfg.stack_name.clone();
    let ui = TermUi { quiet };
    if !args.yes && !ui.confirm(&format!("Delete stack {stack} and everything in it?")) {
        return Err(Error::Failed(format!(
            "not deleting stack {stack}: {}",
            if std::io::stdin().is_terminal() {
                "not confirmed"
            } else {
                "pass --yes to delete without a terminal to confirm on"
            }
        )));
    }
    let lamb_dir = ctx.pc.root.join(LAMB_DIR);
    let rt = runtime()?;
    rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let st = StackState::load(&lamb_dir, &stack, &aws.region)?;
        match cfn.describe(&stack).await? {
            None => ui.step(&format!("stack {stack} does not exist")),
            Some(_) => {
                let after = cfn.last_event_id(&stack).await?;
                cfn.delete(&stack).await?;
                ui.step(&format!("deleting stack {stack}"));
                let (info, failures) = cfn.follow(&stack, after.as_deref(), |e| ui.event(e)).await?;
                if info.status != "DELETE_COMPLETE" {
                    let reasons: Vec<String> = failures
                        .iter()
                        .map(|e| format!("{}: {}", e.logical_id, e.reason.clone().unwrap_or_default()))
                        .collect();
                    return Err(Error::Failed(format!(
                        "deleting stack {stack} ended {}: {}",
                        info.status,
                        reasons.join("; ")
                    )));
                }
            }
        }
        if args.purge_artifacts {
            let bucket =
                args.s3_bucket.clone().or_else(|| st.bucket.clone()).or_else(|| ctx.pc.samconfig.string("s3_bucket"));
            match bucket {
                Some(bucket) => {
                    let s3 = crate::aws::s3::S3Api { client: aws.s3.clone(), profile: aws.profile.clone() };
                    let n = s3.delete_prefix(&bucket, &format!("{}/", ctx.cfg.prefix.trim_end_matches('/'))).await?;
                    ui.step(&format!("deleted {n} object(s) from s3://{bucket}/{}/", ctx.cfg.prefix));
                }
                None => {
                    return Err(Error::Failed(
                        "--purge-artifacts: no bucket known for this stack; pass --s3-bucket".into(),
                    ));
                }
            }
        }
        let _ = std::fs::remove_file(StackState::path(&lamb_dir, &stack, &aws.region));
        Ok::<_, Error>(())
    })?;
    emit(&format!("deleted stack {stack}"));
    Ok(())
}

impl From<AwsError> for Error {
    fn from(e: AwsError) -> Self {
        Error::Failed(e.to_string())
    }
}

/// The control socket of the project `project` names, looking for the template from `cwd`.
fn socket_of(
    cwd: &std::path::Path,
    project: &ProjectArgs,
    configured: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, ProjectConfig), Error> {
    let pc = config::project_in(cwd, project, "sync", &|k| std::env::var(k).ok())?;
    let toml = crate::config::settings::read(&pc.root)?;
    let configured = configured
        .map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var("LAMB_SOCKET").ok().map(Into::into))
        .or(toml.daemon.socket);
    Ok((crate::daemon::socket_for(&pc.root, configured.as_deref()), pc))
}

fn current_dir() -> Result<std::path::PathBuf, Error> {
    std::env::current_dir().map_err(|e| Error::Failed(format!("cannot determine the current directory: {e}")))
}

/// Where an editor hook's project is: with no `--template-file` or `--project-dir`, the
/// nearest directory at or above the saved file (or the working directory) that holds a
/// template, so a hook works from whatever directory the editor runs it in.
fn hook_dir(cwd: &std::path::Path, args: &crate::cli::TriggerArgs) -> Option<std::path::PathBuf> {
    if args.project.template_file.is_some() || args.project.project_dir.is_some() {
        return Some(cwd.to_path_buf());
    }
    let start = args.paths.first().map(|p| cwd.join(p)).and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    let start = start.unwrap_or_else(|| cwd.to_path_buf());
    start.ancestors().find(|d| crate::project::template::find(d).is_some()).map(std::path::Path::to_path_buf)
}

pub fn trigger(args: crate::cli::TriggerArgs) -> Result<(), Error> {
    let cwd = current_dir()?;
    let Some(dir) = hook_dir(&cwd, &args) else {
        if args.fallback_sync {
            return Err(config::ConfigError::NoTemplate { dir: cwd }.into());
        }
        // A save hook firing for a file outside any lamb project: nothing to do.
        tracing::debug!("no template at or above the saved file; nothing to trigger");
        return Ok(());
    };
    let (socket, pc) = socket_of(&dir, &args.project, args.socket.as_deref())?;
    let paths: Vec<std::path::PathBuf> = args.paths.iter().map(|p| cwd.join(p)).collect();
    let rt = runtime()?;
    let cmd = crate::daemon::ipc::Command::Trigger { paths, wait: args.wait };
    let answer = rt
        .block_on(crate::daemon::ipc::call(&socket, cmd))
        .map_err(|e| Error::Failed(format!("cannot talk to the daemon at {}: {e}", socket.display())))?;
    let Some(resp) = answer else {
        if !args.fallback_sync {
            // An editor hook with no daemon running: nothing to do, and nothing to complain about.
            return Ok(());
        }
        let mut argv: Vec<std::ffi::OsString> =
            vec!["lamb".into(), "sync".into(), "--yes".into(), "--template-file".into(), pc.template.clone().into()];
        argv.extend(["--project-dir".into(), pc.root.clone().into()]);
        if args.output == Format::Json {
            argv.extend(["-o".into(), "json".into()]);
        }
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv).map_err(|e| Error::Usage(e.to_string()))?;
        let crate::cli::Command::Sync(sync_args) = cli.command else { unreachable!("parsed a sync command") };
        return sync(sync_args, &cli.global);
    };
    if args.output == Format::Json {
        emit(&serde_json::to_string(&resp).unwrap_or_default());
    } else if args.wait {
        let items = resp.result.as_ref().and_then(|r| r["items"].as_array().cloned()).unwrap_or_default();
        for i in &items {
            let msg = i["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default();
            emit(&format!("{:<9} {}{msg}", i["status"].as_str().unwrap_or("?"), i["id"].as_str().unwrap_or("?")));
        }
        if items.is_empty() && resp.ok {
            emit("nothing to sync");
        }
    }
    match (resp.ok, resp.error) {
        (true, _) => Ok(()),
        (false, Some(e)) => Err(Error::Failed(e)),
        (false, None) => Err(Error::Failed(String::new())),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The region of the one record lamb keeps for `stack`, when there is exactly one.
fn recorded_region(lamb_dir: &std::path::Path, stack: &str) -> Option<String> {
    let suffix = format!("--{stack}.json");
    let regions: Vec<String> = std::fs::read_dir(lamb_dir.join("stacks"))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(&suffix)).map(str::to_string))
        .collect();
    match regions.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

pub fn status(args: crate::cli::StatusArgs) -> Result<(), Error> {
    let (socket, pc) = socket_of(&current_dir()?, &args.project, args.socket.as_deref())?;
    let rt = runtime()?;
    // No daemon listening is normal; a socket lamb cannot use (permissions, a daemon that
    // does not answer) is worth saying, and the record below is shown anyway.
    let asked = rt.block_on(async {
        let call = crate::daemon::ipc::call(&socket, crate::daemon::ipc::Command::Status);
        tokio::time::timeout(std::time::Duration::from_secs(5), call)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 5 s")))
    });
    let live = match asked {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!("cannot talk to the daemon at {}: {e}; showing lamb's record instead", socket.display());
            None
        }
    };
    let doc = match live.and_then(|r| r.result) {
        Some(doc) => doc,
        None => {
            // No daemon: what lamb's state says about the stack.
            let stack = args
                .aws
                .stack_name
                .clone()
                .or_else(|| pc.samconfig.string("stack_name"))
                .ok_or(config::ConfigError::NoStackName)?;
            let lamb_dir = pc.root.join(LAMB_DIR);
            let region = args
                .aws
                .region
                .clone()
                .or_else(|| pc.samconfig.string("region"))
                .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
                .or_else(|| {
                    // The AWS profile's region, as the daemon's SDK would find it (no IMDS here).
                    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
                    if let Some(profile) = args.aws.profile.as_deref().or(pc.samconfig.string("profile").as_deref()) {
                        provider = provider.profile_name(profile);
                    }
                    let provider = provider.build();
                    rt.block_on(async { aws_config::meta::region::ProvideRegion::region(&provider).await })
                        .map(|r| r.to_string())
                })
                .or_else(|| recorded_region(&lamb_dir, &stack))
                .unwrap_or_default();
            let st = StackState::load(&lamb_dir, &stack, &region)?;
            let functions: Vec<serde_json::Value> = st
                .functions
                .iter()
                .map(|(id, f)| {
                    serde_json::json!({"id": id, "last_sync": f.synced_at, "code_sha256": f.code_sha256, "duration_ms": f.duration_ms, "last_error": f.error, "pending": false})
                })
                .collect();
            serde_json::json!({
                "daemon": null,
                "stack": {"name": stack, "region": region, "last_infra_deploy": st.infra.as_ref().map(|i| i.deployed_at).filter(|t| *t > 0)},
                "functions": functions,
            })
        }
    };
    if args.output == Format::Json {
        emit(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    match doc["daemon"]["pid"].as_u64() {
        Some(pid) => emit(&format!("daemon: running, pid {pid}, {} passes", doc["daemon"]["passes"])),
        None => emit("daemon: not running (from lamb's record)"),
    }
    let deployed = doc["stack"]["last_infra_deploy"].as_u64().map_or("never by lamb".to_string(), utc);
    emit(&format!(
        "stack {} ({}): last infrastructure deploy {deployed}",
        doc["stack"]["name"].as_str().unwrap_or("?"),
        doc["stack"]["region"].as_str().unwrap_or("?")
    ));
    let items = doc["functions"].as_array().cloned().unwrap_or_default();
    let width = items.iter().filter_map(|i| i["id"].as_str()).map(str::len).max().unwrap_or(0);
    for i in &items {
        let id = i["id"].as_str().unwrap_or("?");
        let mut line = format!("  {id:<width$}");
        if i["pending"] == true {
            line.push_str("  pending");
        }
        match i["last_sync"].as_u64() {
            Some(t) => line.push_str(&format!("  synced {}", utc(t))),
            None => line.push_str("  not synced yet"),
        }
        if let Some(sha) = i["code_sha256"].as_str().filter(|s| !s.is_empty()) {
            line.push_str(&format!("  {sha}"));
        }
        if let Some(ms) = i["duration_ms"].as_u64().filter(|ms| *ms > 0) {
            line.push_str(&format!("  {}", duration(ms)));
        }
        if let Some(e) = i["last_error"].as_str() {
            line.push_str(&format!("\n    last error: {e}"));
        }
        emit(&line);
    }
    Ok(())
}

pub fn service(cmd: crate::cli::ServiceCommand) -> Result<(), Error> {
    use crate::cli::ServiceCommand;
    use crate::daemon::systemd;
    let args = match &cmd {
        ServiceCommand::Install(a) | ServiceCommand::Uninstall(a) | ServiceCommand::Status(a) => a,
    };
    let cwd =
        std::env::current_dir().map_err(|e| Error::Failed(format!("cannot determine the current directory: {e}")))?;
    let dir = cwd.join(args.project_dir.clone().unwrap_or_default());
    let dir =
        dir.canonicalize().map_err(|e| Error::Usage(format!("{}: {e}; pass the project directory", dir.display())))?;
    if crate::project::template::find(&dir).is_none() {
        return Err(Error::Usage(format!(
            "{} has no template.yaml (or .yml/.json); pass the project directory",
            dir.display()
        )));
    }
    let unit = format!("lamb@{}.service", systemd::escape_path(&dir));
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| "/root".into());
    let unit_dir = systemd::unit_dir(&home, std::env::var("XDG_CONFIG_HOME").ok().as_deref());
    let systemctl = |verb: &[&str]| -> Result<String, Error> {
        let out = std::process::Command::new("systemctl").arg("--user").args(verb).output().map_err(|e| {
            Error::Failed(format!(
                "cannot run systemctl ({e}); is this a systemd system? run `systemctl --user {}` yourself",
                verb.join(" ")
            ))
        })?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(Error::Failed(format!("`systemctl --user {}` failed:\n{}", verb.join(" "), text.trim_end())))
        }
    };
    match cmd {
        ServiceCommand::Install(a) => {
            let lamb =
                std::env::current_exe().map_err(|e| Error::Failed(format!("cannot find lamb's own path: {e}")))?;
            let content = systemd::unit_file(&lamb);
            let path = unit_dir.join("lamb@.service");
            let commands =
                ["systemctl --user daemon-reload".to_string(), format!("systemctl --user enable --now {unit}")];
            if a.dry_run {
                emit(&format!("# {}\n{content}", path.display()));
                for c in &commands {
                    emit(c);
                }
                return Ok(());
            }
            if !a.yes {
                let q = format!(
                    "The service will sync {} whenever its files change, without asking (it drifts the stack from its template until the next deploy). Install?",
                    dir.display()
                );
                if !(TermUi { quiet: false }).confirm(&q) {
                    return Err(Error::Failed("not installed; pass --yes to install without a terminal".into()));
                }
            }
            std::fs::create_dir_all(&unit_dir)
                .map_err(|e| Error::Failed(format!("cannot create {}: {e}", unit_dir.display())))?;
            crate::state::write_atomic(&path, content.as_bytes())?;
            emit(&format!("wrote {}", path.display()));
            systemctl(&["daemon-reload"])?;
            systemctl(&["enable", "--now", &unit])?;
            emit(&format!("enabled and started {unit}; follow it with `journalctl --user -u {unit} -f`"));
            Ok(())
        }
        ServiceCommand::Uninstall(a) => {
            if a.dry_run {
                emit(&format!("systemctl --user disable --now {unit}"));
                return Ok(());
            }
            systemctl(&["disable", "--now", &unit])?;
            emit(&format!(
                "stopped and disabled {unit} (the template {} stays for other projects)",
                unit_dir.join("lamb@.service").display()
            ));
            Ok(())
        }
        ServiceCommand::Status(a) => {
            if a.dry_run {
                emit(&format!("systemctl --user status {unit}"));
                return Ok(());
            }
            match systemctl(&["status", "--no-pager", &unit]) {
                Ok(text) => {
                    emit(text.trim_end());
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_the_epoch_and_leap_days() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_795_619_593), "2026-11-25 15:13:13 UTC");
    }

    #[test]
    fn stages_belong_to_the_api_they_name() {
        let processed = r#"{"Resources": {
            "A": {"Type": "AWS::ApiGateway::RestApi"},
            "B": {"Type": "AWS::ApiGateway::RestApi"},
            "AStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "A"}, "StageName": "alpha"}},
            "BDeployment": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": "B"}, "StageName": "Stage"}},
            "BStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "B"}, "StageName": "beta"}},
            "C": {"Type": "AWS::ApiGateway::RestApi"},
            "CDeployment": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": "C"}, "StageName": "v1"}},
            "H": {"Type": "AWS::ApiGatewayV2::Api"},
            "HStage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {"ApiId": {"Ref": "H"}, "StageName": "$default"}},
            "Odd": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": "abc123", "StageName": "x"}}
        }}"#;
        let stages = super::api_stages(processed);
        assert_eq!(stages.get("A").unwrap(), &["alpha"]);
        assert_eq!(stages.get("B").unwrap(), &["beta"]);
        assert_eq!(stages.get("C").unwrap(), &["v1"], "only a deployment names C's stage");
        assert_eq!(stages.get("H").unwrap(), &["$default"]);
        assert_eq!(stages.len(), 4, "{stages:?}");
        assert_eq!(super::stack_prefix("Child/Grand/Api"), "Child/Grand/");
        assert_eq!(super::stack_prefix("Api"), "");
    }
}
