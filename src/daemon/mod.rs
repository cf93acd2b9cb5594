//! `lamb sync --watch`: an initial sync, then a loop that turns file events into syncs.
//!
//! One event loop owns all state. File events and editor triggers mark functions (or the
//! infrastructure) dirty; a trailing quiet window per target turns bursts into one sync; at
//! most one sync pass runs at a time, so no function ever has two updates in flight, and
//! whatever changes during a pass is picked up by exactly one follow-up pass. A pass builds
//! only the dirty targets and skips any whose build matches what Lambda was last seen running
//! (touches, chmods, editor focus never cause a sync). A template that stops parsing is
//! reported and the last good model stays in use; failures that are AWS's (network, throttling)
//! are retried with backoff.

pub mod ipc;
pub mod lock;
pub mod systemd;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::aws::Aws;
use crate::cli::{AwsArgs, GlobalArgs, ProjectArgs, StackDeployArgs, SyncArgs};
use crate::config::settings::{self, WatchFlags, WatchSettings};
use crate::config::{self, ProjectConfig, StackConfig};
use crate::deploy::DeployUi;
use crate::engine::{self, BuildOptions, BuildReport, LAMB_DIR};
use crate::project::Project;
use crate::state::StackState;
use crate::sync::{SyncOptions, SyncReport, SyncStatus};
use ipc::{Command, Incoming, Response};
use watch::{Debouncer, Index, Target, Watcher};

/// How long a stopping daemon waits for an in-flight pass.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Backoff for retrying a pass AWS failed: doubles from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Everything loaded from the project's files; replaced as a whole on a good reload.
struct Model {
    project: Project,
    pc: ProjectConfig,
    cfg: StackConfig,
    settings: WatchSettings,
    index: Index,
}

/// The arguments a model is (re)loaded from.
struct Source {
    project: ProjectArgs,
    aws: AwsArgs,
    deploy: StackDeployArgs,
    flags: WatchFlags,
}

fn load_model(src: &Source) -> Result<Model, Error> {
    let pc = config::project(&src.project, "sync")?;
    let cfg = config::stack(&pc, &src.aws, Some(&src.deploy))?;
    let mut pc = pc;
    if cfg.aws.region.is_some() {
        pc.pseudo.region = cfg.aws.region.clone();
    }
    pc.pseudo.stack_name = Some(cfg.stack_name.clone());
    let toml = settings::read(&pc.root)?;
    let settings = settings::resolve(&pc.root, &src.flags, &|k| std::env::var(k).ok(), &toml, &pc.samconfig)?;
    let project = crate::load_project_with(&pc)?;
    let mut config_files = vec![pc.root.join(settings::FILE_NAME)];
    config_files.extend(pc.samconfig.file.clone());
    if pc.samconfig.file.is_none() {
        let dir = pc.template.parent().unwrap_or(&pc.root);
        config_files.extend(crate::config::samconfig::NAMES.iter().map(|n| dir.join(n)));
    }
    let index = Index::new(&project, &settings.extra_watch, &config_files, &settings.exclude);
    Ok(Model { project, pc, cfg, settings, index })
}

/// Per function and layer, what `lamb status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UnitStatus {
    pub id: String,
    pub last_sync: Option<u64>,
    pub code_sha256: Option<String>,
    pub duration_ms: Option<u64>,
    /// Time from the first file event of the change to the code being live.
    pub save_to_live_ms: Option<u64>,
    pub last_error: Option<String>,
    pub pending: bool,
}

/// A sync pass to run.
struct Pass {
    ids: BTreeSet<String>,
    infra: bool,
    first_event: HashMap<String, Instant>,
}

/// What a pass came back with.
struct Outcome {
    ids: BTreeSet<String>,
    infra: bool,
    first_event: HashMap<String, Instant>,
    /// Ids whose build matched what Lambda runs: skipped without a call.
    unchanged: Vec<String>,
    result: Result<Option<SyncReport>, String>,
    /// Build failures are the user's to fix (no retry); other failures are retried.
    build_failed: BTreeSet<String>,
    elapsed: Duration,
}

/// Logs each pass's results as plain lines (human) or JSON lines, and deploy progress.
struct DaemonUi {
    json: bool,
}

impl DeployUi for DaemonUi {
    fn step(&self, message: &str) {
        tracing::info!("{message}");
    }

    fn changes(&self, stack: &str, changes: &[crate::aws::cloudformation::Change]) {
        for c in changes {
            tracing::info!(stack, action = %c.action, resource = %c.logical_id, r#type = %c.resource_type, "change");
        }
    }

    fn event(&self, e: &crate::aws::cloudformation::Event) {
        if e.status.ends_with("_FAILED") {
            tracing::warn!(resource = %e.logical_id, status = %e.status, reason = e.reason.as_deref().unwrap_or(""), "stack event");
        } else {
            tracing::info!(resource = %e.logical_id, status = %e.status, "stack event");
        }
    }

    fn confirm(&self, _question: &str) -> bool {
        false
    }
}

impl DaemonUi {
    fn line(&self, text: &str, value: serde_json::Value) {
        if self.json {
            crate::output::emit(&value.to_string());
        } else {
            crate::output::emit(text);
        }
    }
}

/// Runs `lamb sync --watch` until SIGTERM/SIGINT.
pub fn run(args: SyncArgs, global: &GlobalArgs) -> Result<(), Error> {
    let flags = WatchFlags {
        debounce_ms: args.debounce_ms,
        exclude: args.watch_exclude.clone(),
        jobs: args.jobs.map(usize::from),
        socket: args.socket.clone(),
        log_json: (global.log_format == crate::cli::LogFormat::Json).then_some(true),
    };
    let src = Source { project: args.project.clone(), aws: args.aws.clone(), deploy: args.deploy.clone(), flags };
    let model = load_model(&src)?;
    let lamb_dir = model.pc.root.join(LAMB_DIR);
    let _lock = lock::DaemonLock::acquire(&lamb_dir, &model.pc.root).map_err(|e| Error::Failed(e.to_string()))?;
    let json = model.settings.log_json || args.output == crate::output::Format::Json;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async move {
        let aws = Aws::connect(&model.cfg.aws).await?;
        let mut daemon = Daemon {
            src,
            model: Arc::new(model),
            aws,
            lamb_dir,
            ui: Arc::new(DaemonUi { json }),
            status: BTreeMap::new(),
            last_live: HashMap::new(),
            debouncer: Debouncer::default(),
            waiters: Vec::new(),
            failures: HashMap::new(),
            last_error: None,
            notifier: systemd::Notifier::from_env(),
            code_only: args.code,
            follow_external_symlinks: args.follow_external_symlinks,
            yes: args.yes,
            passes: 0,
        };
        daemon.run().await
    })
}

/// A client waiting for the sync of some ids (`lamb trigger --wait`).
struct Waiter {
    ids: BTreeSet<String>,
    reply: oneshot::Sender<Response>,
    items: Vec<serde_json::Value>,
    failed: bool,
}

struct Daemon {
    src: Source,
    model: Arc<Model>,
    aws: Aws,
    lamb_dir: PathBuf,
    ui: Arc<DaemonUi>,
    status: BTreeMap<String, UnitStatus>,
    /// CodeSha256 Lambda was last seen running, per id: the content gate.
    last_live: HashMap<String, String>,
    debouncer: Debouncer,
    waiters: Vec<Waiter>,
    /// Consecutive failed passes per id, for backoff.
    failures: HashMap<String, u32>,
    /// The last pass-level error, reported once until it changes.
    last_error: Option<String>,
    notifier: systemd::Notifier,
    code_only: bool,
    follow_external_symlinks: bool,
    yes: bool,
    passes: u64,
}

impl Daemon {
    async fn run(&mut self) -> Result<(), Error> {
        let socket = ipc::socket_path(
            &self.model.pc.root,
            self.model.settings.socket.as_deref(),
            std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
        );
        let listener = ipc::bind(&socket)
            .await
            .map_err(|e| Error::Failed(format!("cannot listen on {}: {e}", socket.display())))?;
        let (ipc_tx, mut ipc_rx) = mpsc::channel::<Incoming>(64);
        let server = tokio::spawn(ipc::serve(listener, ipc_tx));

        // The initial pass: everything, asking on the terminal if this is the stack's first sync.
        let all: BTreeSet<String> = self.model.index.units();
        for id in &all {
            self.status.entry(id.clone()).or_insert_with(|| UnitStatus { id: id.clone(), ..Default::default() });
        }
        if !self.yes {
            let st = StackState::load(&self.lamb_dir, &self.model.cfg.stack_name, &self.aws.region)?;
            if !st.sync_confirmed {
                let term = crate::commands::TermUi { quiet: false };
                let q = format!(
                    "lamb sync updates Lambda code directly: stack {} will drift from its template until the next deploy. Continue?",
                    self.model.cfg.stack_name
                );
                if !term.confirm(&q) {
                    return Err(
                        crate::sync::SyncError::NeedsConfirmation { stack: self.model.cfg.stack_name.clone() }.into()
                    );
                }
            }
        }
        self.yes = true;
        let first = Pass { ids: all.clone(), infra: true, first_event: HashMap::new() };
        let outcome = run_pass(self.context(), first).await;
        if let Err(e) = &outcome.result
            && e.contains("needs confirmation")
        {
            return Err(Error::Failed(e.clone()));
        }
        self.finish(outcome);

        let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
        let mut watcher = Watcher::start(&self.model.index, fs_tx.clone()).map_err(|e| {
            Error::Failed(format!(
                "cannot watch the project's files: {e}; check inotify limits (fs.inotify.max_user_watches)"
            ))
        })?;
        let summary = self.summary();
        self.ui.line(
            &format!("{summary}; Ctrl-C to stop (control socket {})", socket.display()),
            serde_json::json!({"event": "ready", "summary": summary, "socket": socket}),
        );
        self.notifier.ready(&summary);

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io_err)?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(io_err)?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(io_err)?;
        let watchdog = systemd::watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        let mut dog = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));

        let mut in_flight: Option<tokio::task::JoinHandle<Outcome>> = None;
        let mut reloading = false;
        loop {
            let next = self.debouncer.next();
            tokio::select! {
                Some(paths) = fs_rx.recv() => {
                    let now = Instant::now();
                    let quiet = Duration::from_millis(self.model.settings.debounce_ms);
                    for p in paths {
                        for t in self.model.index.classify(&p) {
                            tracing::trace!(path = %p.display(), target = ?t, "change");
                            self.debouncer.event(t, now, quiet);
                        }
                    }
                }
                Some((cmd, reply)) = ipc_rx.recv() => self.handle(cmd, reply),
                _ = async { tokio::time::sleep_until(next.expect("guarded").into()).await }, if next.is_some() => {}
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    match done {
                        Ok(outcome) => {
                            self.finish(outcome);
                            // After a reload, systemd waits for READY=1 again.
                            if reloading && !self.debouncer.pending().contains(&Target::Infra) {
                                reloading = false;
                                self.notifier.ready(&self.summary());
                            } else {
                                self.notifier.status(&self.summary());
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "a sync pass panicked; its changes stay pending"),
                    }
                }
                _ = dog.tick(), if watchdog.is_some() => self.notifier.notify("WATCHDOG=1"),
                _ = hup.recv() => {
                    self.notifier.reloading();
                    reloading = true;
                    tracing::info!("SIGHUP: reloading the template and settings");
                    self.debouncer.now(Target::Infra, Instant::now());
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
            // Start the next pass when the previous one is done and something is due.
            if in_flight.is_none() {
                let due = self.debouncer.due(Instant::now());
                if !due.is_empty() {
                    let mut pass = Pass { ids: BTreeSet::new(), infra: false, first_event: HashMap::new() };
                    for (t, first) in due {
                        match t {
                            Target::Unit(id) => {
                                pass.first_event.insert(id.clone(), first);
                                pass.ids.insert(id);
                            }
                            Target::Infra => pass.infra = true,
                        }
                    }
                    if pass.infra && !self.reload(&mut watcher) {
                        // The template no longer parses: code changes still sync with the last good one.
                        pass.infra = false;
                    }
                    for id in &pass.ids {
                        if let Some(s) = self.status.get_mut(id) {
                            s.pending = true;
                        }
                    }
                    if !pass.ids.is_empty() || pass.infra {
                        in_flight = Some(tokio::spawn(run_pass(self.context(), pass)));
                    }
                }
            }
        }

        // Stopping: no more events or requests; let an in-flight upload finish (bounded).
        tracing::info!("stopping");
        self.notifier.stopping();
        drop(watcher);
        server.abort();
        if let Some(pass) = in_flight {
            match tokio::time::timeout(STOP_GRACE, pass).await {
                Ok(Ok(outcome)) => self.finish(outcome),
                Ok(Err(e)) => tracing::error!(error = %e, "the last sync pass failed while stopping"),
                Err(_) => tracing::warn!(
                    "the last sync pass did not finish within {} s; its changes stay pending",
                    STOP_GRACE.as_secs()
                ),
            }
        }
        let _ = std::fs::remove_file(&socket);
        Ok(())
    }

    /// Reloads the template and settings, and watches what the new template names, before the
    /// pass that deploys it (so edits made meanwhile to new functions are not missed). A
    /// template that no longer parses is reported, and the last good one stays.
    fn reload(&mut self, watcher: &mut Watcher) -> bool {
        match load_model(&self.src) {
            Ok(m) => {
                self.model = Arc::new(m);
                if let Err(e) = watcher.update(&self.model.index) {
                    tracing::warn!(error = %e, "cannot update the watched paths");
                }
                let known = self.model.index.units();
                for id in &known {
                    self.status
                        .entry(id.clone())
                        .or_insert_with(|| UnitStatus { id: id.clone(), ..Default::default() });
                }
                self.status.retain(|id, _| known.contains(id));
                true
            }
            Err(e) => {
                tracing::error!("{e}");
                self.ui.line(
                    &format!("error: {e}\n  (still watching with the last good template; fix it and save)"),
                    serde_json::json!({"event": "template_error", "error": e.to_string()}),
                );
                false
            }
        }
    }

    /// What a pass needs, shared with its task.
    fn context(&self) -> PassContext {
        PassContext {
            model: self.model.clone(),
            aws: self.aws.clone(),
            lamb_dir: self.lamb_dir.clone(),
            ui: self.ui.clone(),
            last_live: self.last_live.clone(),
            code_only: self.code_only,
            follow_external_symlinks: self.follow_external_symlinks,
        }
    }

    fn summary(&self) -> String {
        let functions = self.model.project.functions.len();
        let layers = self.model.project.layers.len();
        let last = self
            .status
            .values()
            .filter(|s| s.last_sync.is_some())
            .max_by_key(|s| s.last_sync)
            .map(|s| format!(", last sync {} {} ms", s.id, s.duration_ms.unwrap_or(0)))
            .unwrap_or_default();
        format!("watching {functions} functions and {layers} layers of stack {}{last}", self.model.cfg.stack_name)
    }

    fn handle(&mut self, cmd: Command, reply: oneshot::Sender<Response>) {
        let ok = |result: Option<serde_json::Value>| Response {
            v: ipc::VERSION,
            ok: true,
            pid: Some(std::process::id()),
            result,
            ..Default::default()
        };
        match cmd {
            Command::Ping => {
                let _ = reply.send(ok(None));
            }
            Command::Status => {
                let _ = reply.send(ok(Some(self.status_doc())));
            }
            Command::Trigger { paths, wait } => {
                let now = Instant::now();
                let mut targets = BTreeSet::new();
                if paths.is_empty() {
                    targets.extend(self.model.index.units().into_iter().map(Target::Unit));
                }
                for p in paths {
                    let p = p.canonicalize().unwrap_or(p);
                    targets.extend(self.model.index.classify(&p));
                }
                for t in &targets {
                    self.debouncer.now(t.clone(), now);
                }
                let ids: BTreeSet<String> = targets
                    .iter()
                    .filter_map(|t| match t {
                        Target::Unit(id) => Some(id.clone()),
                        Target::Infra => None,
                    })
                    .collect();
                let mut response = ok(None);
                response.accepted = targets
                    .iter()
                    .map(|t| match t {
                        Target::Unit(id) => id.clone(),
                        Target::Infra => "<infrastructure>".into(),
                    })
                    .collect();
                if wait && !ids.is_empty() {
                    self.waiters.push(Waiter { ids, reply, items: Vec::new(), failed: false });
                } else {
                    let _ = reply.send(response);
                }
            }
        }
    }

    fn status_doc(&self) -> serde_json::Value {
        let pending = self.debouncer.pending();
        let units: Vec<UnitStatus> = self
            .status
            .values()
            .map(|s| {
                let mut s = s.clone();
                s.pending |= pending.contains(&Target::Unit(s.id.clone()));
                s
            })
            .collect();
        let st = StackState::load(&self.lamb_dir, &self.model.cfg.stack_name, &self.aws.region).ok();
        serde_json::json!({
            "daemon": {
                "pid": std::process::id(),
                "project": self.model.pc.root,
                "passes": self.passes,
                "infra_pending": pending.contains(&Target::Infra),
            },
            "stack": {
                "name": self.model.cfg.stack_name,
                "region": self.aws.region,
                "last_infra_deploy": st.as_ref().and_then(|s| s.infra.as_ref()).map(|i| i.deployed_at),
            },
            "functions": units,
        })
    }

    /// Takes in a finished pass: reports it, updates status and the content gate, answers
    /// waiters, and requeues what AWS failed.
    fn finish(&mut self, o: Outcome) {
        self.passes += 1;
        let now = Instant::now();
        for id in &o.unchanged {
            if let Some(s) = self.status.get_mut(id) {
                s.pending = false;
            }
        }
        let mut items_json = Vec::new();
        match &o.result {
            Ok(Some(report)) => {
                self.last_error = None;
                for i in &report.items {
                    let entry = self
                        .status
                        .entry(i.id.clone())
                        .or_insert_with(|| UnitStatus { id: i.id.clone(), ..Default::default() });
                    entry.pending = false;
                    let latency = o.first_event.get(&i.id).map(|t| now.duration_since(*t).as_millis() as u64);
                    match i.status {
                        SyncStatus::Failed => {
                            entry.last_error = i.message.clone();
                            let retry = !o.build_failed.contains(&i.id);
                            self.ui.line(
                                &format!("failed    {}: {}{}", i.id, i.message.as_deref().unwrap_or("failed"), if retry { " (retrying)" } else { "" }),
                                serde_json::json!({"event": "failed", "id": i.id, "message": i.message, "retry": retry}),
                            );
                            if retry {
                                self.requeue(&i.id, now);
                            }
                        }
                        SyncStatus::Skipped => {}
                        status => {
                            if let Some(sha) = &i.code_sha256 {
                                self.last_live.insert(i.id.clone(), sha.clone());
                            }
                            self.failures.remove(&i.id);
                            entry.last_error = None;
                            if matches!(status, SyncStatus::Synced | SyncStatus::Published | SyncStatus::Deployed) {
                                entry.last_sync = Some(crate::state::now_secs());
                                entry.code_sha256 = i.code_sha256.clone();
                                entry.duration_ms = Some(i.duration_ms);
                                entry.save_to_live_ms = latency;
                                let live = latency.map(|l| format!("  save→live {l} ms")).unwrap_or_default();
                                self.ui.line(
                                    &format!("{:<9} {}  {}{live}", status.as_str(), i.id, crate::output::bytes(i.bytes)),
                                    serde_json::json!({"event": status.as_str(), "id": i.id, "bytes": i.bytes, "code_sha256": i.code_sha256, "duration_ms": i.duration_ms, "save_to_live_ms": latency}),
                                );
                            }
                        }
                    }
                    items_json.push(serde_json::to_value(i).unwrap_or_default());
                }
                if report.infra_skipped {
                    self.ui.line(
                        &format!(
                            "note: infrastructure changes not deployed (--code): {}",
                            report.infra_reasons.join("; ")
                        ),
                        serde_json::json!({"event": "infra_skipped", "reasons": report.infra_reasons}),
                    );
                }
            }
            Ok(None) => {}
            Err(e) => {
                // Reported once until it changes: a network outage is one message, not one per pass.
                if self.last_error.as_deref() != Some(e.as_str()) {
                    tracing::error!("sync failed: {e}; changes stay pending and are retried");
                    self.ui.line(
                        &format!("error: {e} (changes stay pending; retrying)"),
                        serde_json::json!({"event": "error", "error": e}),
                    );
                    self.last_error = Some(e.clone());
                }
                for id in &o.ids {
                    self.requeue(id, now);
                }
                if o.infra {
                    self.debouncer.event(Target::Infra, now, RETRY_FIRST);
                }
            }
        }
        // Answer the clients that waited for these ids.
        let covered: BTreeSet<String> = o.ids.iter().cloned().chain(o.unchanged.iter().cloned()).collect();
        let mut still = Vec::new();
        for mut w in self.waiters.drain(..) {
            let mine: Vec<serde_json::Value> =
                items_json.iter().filter(|i| i["id"].as_str().is_some_and(|id| w.ids.contains(id))).cloned().collect();
            w.failed |= mine.iter().any(|i| i["status"] == "failed") || o.result.is_err();
            w.items.extend(mine);
            for id in o.unchanged.iter().filter(|id| w.ids.contains(*id)) {
                w.items.push(serde_json::json!({"id": id, "status": "unchanged"}));
            }
            w.ids.retain(|id| !covered.contains(id));
            if w.ids.is_empty() || o.result.is_err() {
                let response = Response {
                    v: ipc::VERSION,
                    ok: !w.failed,
                    error: o.result.as_ref().err().cloned(),
                    result: Some(serde_json::json!({"items": w.items, "duration_ms": o.elapsed.as_millis() as u64})),
                    pid: Some(std::process::id()),
                    ..Default::default()
                };
                let _ = w.reply.send(response);
            } else {
                still.push(w);
            }
        }
        self.waiters = still;
    }

    fn requeue(&mut self, id: &str, now: Instant) {
        let n = self.failures.entry(id.to_string()).or_insert(0);
        *n += 1;
        let backoff = (RETRY_FIRST * 2u32.saturating_pow(*n - 1)).min(RETRY_MAX);
        // Jitter, so many functions retrying do not hit AWS in lockstep.
        let jitter = Duration::from_millis(u64::from(std::process::id() ^ (*n * 7919)) % 250);
        self.debouncer.event(Target::Unit(id.to_string()), now, backoff + jitter);
        if let Some(s) = self.status.get_mut(id) {
            s.pending = true;
        }
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::Failed(format!("cannot install signal handlers: {e}"))
}

/// What a pass task owns.
struct PassContext {
    model: Arc<Model>,
    aws: Aws,
    lamb_dir: PathBuf,
    ui: Arc<DaemonUi>,
    last_live: HashMap<String, String>,
    code_only: bool,
    follow_external_symlinks: bool,
}

/// One pass: reload the template if it changed, build the dirty targets, skip what Lambda
/// already runs, sync the rest.
async fn run_pass(ctx: PassContext, pass: Pass) -> Outcome {
    let started = Instant::now();
    let model = ctx.model.clone();
    let mut ids = pass.ids.clone();
    if pass.infra {
        // An infrastructure pass deploys every function: all of them are part of it.
        ids.extend(model.index.units());
    }
    let infra = pass.infra;
    let wanted: Vec<String> = ids.iter().filter(|id| model.project.resolve_id(id).is_ok()).cloned().collect();
    let build_ids = if infra { Vec::new() } else { model.project.with_layers_of(&wanted) };
    let outcome = |result, unchanged, build_failed| Outcome {
        ids: pass.ids.clone(),
        infra: pass.infra,
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
        Ok(Err(e)) => return outcome(Err(e.to_string()), Vec::new(), BTreeSet::new()),
        Err(e) => return outcome(Err(format!("the build failed: {e}")), Vec::new(), BTreeSet::new()),
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
    .map_err(|e| e.to_string());
    outcome(result, unchanged, build_failed)
}

fn build(
    project: &Project,
    ids: Vec<String>,
    follow_external_symlinks: bool,
) -> Result<BuildReport, engine::EngineError> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    engine::build(
        project,
        &BuildOptions { ids, force: false, dry_run: false, jobs, follow_external_symlinks },
        &engine::Silent,
    )
}

/// The socket path for a project directory, as `lamb trigger` and `lamb status` find it.
pub fn socket_for(root: &Path, configured: Option<&Path>) -> PathBuf {
    ipc::socket_path(root, configured, std::env::var("XDG_RUNTIME_DIR").ok().as_deref())
}
