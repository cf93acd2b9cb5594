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
use crate::sync::{SyncError, SyncOptions, SyncReport, SyncStatus};
use ipc::{Command, Incoming, Response};
use watch::{Debouncer, FsEvent, Index, Target, Watcher};

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
    check_extra_watch(&project, &settings, &pc.root.join(settings::FILE_NAME))?;
    let mut config_files = vec![pc.root.join(settings::FILE_NAME)];
    config_files.extend(pc.samconfig.file.clone());
    if pc.samconfig.file.is_none() {
        let dir = pc.template.parent().unwrap_or(&pc.root);
        config_files.extend(crate::config::samconfig::NAMES.iter().map(|n| dir.join(n)));
    }
    let index = Index::new(&project, &settings.extra_watch, &config_files, &settings.exclude);
    Ok(Model { project, pc, cfg, settings, index })
}

/// `[functions.<Id>] watch = [...]` must name a function of the template and paths that exist:
/// a typo would otherwise leave shared code silently unwatched.
fn check_extra_watch(project: &Project, settings: &WatchSettings, file: &Path) -> Result<(), Error> {
    let bad =
        |message: String| Error::Config(crate::config::ConfigError::LambToml { file: file.to_path_buf(), message });
    for (id, paths) in &settings.extra_watch {
        if project.resolve_id(id).is_err() {
            let known: Vec<&str> = project.functions.iter().map(|f| f.res.id.as_str()).collect();
            return Err(bad(format!(
                "[functions.{id}]: the template has no function `{id}` (it has {}); fix the name",
                known.join(", ")
            )));
        }
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(bad(format!(
                "[functions.{id}] watch: {} does not exist; create it or fix the path (relative to the project)",
                missing.display()
            )));
        }
    }
    Ok(())
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
    /// Passes are numbered from 1 in the order they start.
    seq: u64,
    ids: BTreeSet<String>,
    infra: bool,
    first_event: HashMap<String, Instant>,
}

/// Why a pass as a whole failed.
#[derive(Debug, Clone)]
struct PassError {
    message: String,
    /// AWS's trouble (network, throttling, expired credentials): retried with backoff.
    /// Anything else is the user's to fix, and is tried again on their next save.
    transient: bool,
}

/// What a pass came back with.
struct Outcome {
    seq: u64,
    /// What the pass was started for.
    ids: BTreeSet<String>,
    infra: bool,
    /// Every id the pass took care of (all of them for an infrastructure pass).
    covered: BTreeSet<String>,
    first_event: HashMap<String, Instant>,
    /// Ids whose build matched what Lambda runs: skipped without a call.
    unchanged: Vec<String>,
    result: Result<Option<SyncReport>, PassError>,
    /// Build failures are the user's to fix: not retried until the next save.
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
        log_json: global.log_format.map(|f| f == crate::cli::LogFormat::Json),
    };
    let src = Source { project: args.project.clone(), aws: args.aws.clone(), deploy: args.deploy.clone(), flags };
    let model = load_model(&src)?;
    crate::sync::check_production(
        &model.cfg.stack_name,
        model.cfg.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        model.pc.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        args.allow_production,
    )?;
    let lamb_dir = model.pc.root.join(LAMB_DIR);
    let _lock = lock::DaemonLock::acquire(&lamb_dir, &model.pc.root).map_err(|e| Error::Failed(e.to_string()))?;
    let json = model.settings.log_json || args.output == crate::output::Format::Json;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))?;
    let aws = rt.block_on(Aws::connect(&model.cfg.aws))?;

    // The first sync of a stack asks on the terminal, before anything is watched or pushed.
    if !args.yes {
        let st = StackState::load(&lamb_dir, &model.cfg.stack_name, &aws.region)?;
        if !st.sync_confirmed {
            let term = crate::commands::TermUi { quiet: false };
            let q = format!(
                "lamb sync updates Lambda code directly: stack {} will drift from its template until the next deploy. Continue?",
                model.cfg.stack_name
            );
            if !term.confirm(&q) {
                return Err(crate::sync::SyncError::NeedsConfirmation { stack: model.cfg.stack_name.clone() }.into());
            }
        }
    }
    let socket = ipc::socket_path(
        &model.pc.root,
        model.settings.socket.as_deref(),
        std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
    );
    let mut daemon = Daemon {
        src,
        model: Arc::new(model),
        aws,
        lamb_dir,
        ui: Arc::new(DaemonUi { json }),
        socket,
        status: BTreeMap::new(),
        last_live: HashMap::new(),
        debouncer: Debouncer::default(),
        waiters: Vec::new(),
        failures: HashMap::new(),
        reported: HashMap::new(),
        notifier: systemd::Notifier::from_env(),
        code_only: args.code,
        follow_external_symlinks: args.follow_external_symlinks,
        allow_production: args.allow_production,
        started: 0,
        passes: 0,
        running: None,
        ready: false,
    };
    let result = rt.block_on(daemon.run());
    // A build still running on a blocking thread (SIGTERM mid-build) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// A client waiting for its trigger's sync (`lamb trigger --wait`).
struct Waiter {
    ids: BTreeSet<String>,
    /// The trigger named a template or config file: it waits for an infrastructure pass.
    infra: bool,
    /// The last pass started when the trigger came: only later passes can carry its change.
    after: u64,
    reply: oneshot::Sender<Response>,
    accepted: Vec<String>,
    items: Vec<serde_json::Value>,
    failed: bool,
}

impl Waiter {
    fn answer(self, error: Option<String>, elapsed: Duration) {
        let response = Response {
            v: ipc::VERSION,
            ok: !self.failed && error.is_none(),
            error,
            accepted: self.accepted,
            result: Some(serde_json::json!({"items": self.items, "duration_ms": elapsed.as_millis() as u64})),
            pid: Some(std::process::id()),
        };
        let _ = self.reply.send(response);
    }
}

/// The key under which a pass-level error is remembered in [`Daemon::reported`].
const PASS_KEY: &str = "<pass>";
const INFRA_SKIPPED_KEY: &str = "<infra skipped>";

struct Daemon {
    src: Source,
    model: Arc<Model>,
    aws: Aws,
    lamb_dir: PathBuf,
    ui: Arc<DaemonUi>,
    socket: PathBuf,
    status: BTreeMap<String, UnitStatus>,
    /// CodeSha256 Lambda was last seen running, per id: the content gate.
    last_live: HashMap<String, String>,
    debouncer: Debouncer,
    waiters: Vec<Waiter>,
    /// Consecutive transient failures per target, for backoff.
    failures: HashMap<Target, u32>,
    /// The error last reported per id (or [`PASS_KEY`]): a failure that persists across
    /// retries is one message, not one per retry.
    reported: HashMap<String, String>,
    notifier: systemd::Notifier,
    code_only: bool,
    follow_external_symlinks: bool,
    allow_production: bool,
    /// The number of the last pass started.
    started: u64,
    passes: u64,
    /// The pass in flight: number, ids, infrastructure.
    running: Option<(u64, BTreeSet<String>, bool)>,
    /// The initial pass is done (and systemd was told).
    ready: bool,
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, Error> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::Failed(format!("cannot install signal handlers: {e}")))
}

impl Daemon {
    async fn run(&mut self) -> Result<(), Error> {
        let listener = ipc::bind(&self.socket, self.model.settings.socket.is_some())
            .await
            .map_err(|e| Error::Failed(format!("cannot listen on {}: {e}", self.socket.display())))?;
        let (ipc_tx, mut ipc_rx) = mpsc::channel::<Incoming>(64);
        let server = tokio::spawn(ipc::serve(listener, ipc_tx));
        // Watching starts before the initial pass: an edit made while it runs gets its own pass.
        let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<FsEvent>();
        let mut watcher = Watcher::start(&self.model.index, fs_tx).map_err(|e| {
            Error::Failed(format!(
                "cannot watch the project's files: {e}; check inotify limits (fs.inotify.max_user_watches)"
            ))
        })?;
        self.load_status();
        let all = self.model.index.units();
        self.started = 1;
        self.running = Some((1, all.clone(), true));
        let first = Pass { seq: 1, ids: all, infra: true, first_event: HashMap::new() };
        let mut in_flight: Option<tokio::task::JoinHandle<Outcome>> =
            Some(tokio::spawn(run_pass(self.context(), first)));

        let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
        let watchdog = systemd::watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        let mut dog = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut reloading = false;
        loop {
            let next = self.debouncer.next();
            tokio::select! {
                Some(ev) = fs_rx.recv() => self.on_fs_event(ev, &mut watcher),
                Some((cmd, reply)) = ipc_rx.recv() => self.handle(cmd, reply),
                // Only while no pass runs: a target that falls due during a pass waits for its
                // end, and a deadline already past would wake this loop at once, forever.
                _ = async { tokio::time::sleep_until(next.expect("guarded").into()).await }, if next.is_some() && in_flight.is_none() => {}
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    match done {
                        Ok(outcome) => self.finish(outcome),
                        Err(e) => self.lost_pass(&e),
                    }
                    if !self.ready {
                        self.ready = true;
                        let summary = self.summary();
                        self.ui.line(
                            &format!("{summary}; Ctrl-C to stop (control socket {})", self.socket.display()),
                            serde_json::json!({"event": "ready", "summary": summary, "socket": self.socket}),
                        );
                        self.notifier.ready(&summary);
                    } else if reloading && !self.debouncer.pending().contains(&Target::Infra) {
                        // After a reload, systemd waits for READY=1 again.
                        reloading = false;
                        self.notifier.ready(&self.summary());
                    } else {
                        self.notifier.status(&self.summary());
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
            if in_flight.is_none()
                && let Some(pass) = self.next_pass(&mut watcher)
            {
                in_flight = Some(tokio::spawn(run_pass(self.context(), pass)));
            }
            // A reload that starts no pass (the template no longer parses) is over too: systemd
            // waits for READY=1 after RELOADING=1.
            if reloading && in_flight.is_none() && !self.debouncer.pending().contains(&Target::Infra) {
                reloading = false;
                self.notifier.ready(&self.summary());
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
                Ok(Err(e)) => self.lost_pass(&e),
                Err(_) => tracing::warn!(
                    "the last sync pass did not finish within {} s; its changes stay pending",
                    STOP_GRACE.as_secs()
                ),
            }
        }
        for w in self.waiters.drain(..) {
            w.answer(Some("the daemon stopped before this change was synced".into()), Duration::ZERO);
        }
        let _ = std::fs::remove_file(&self.socket);
        Ok(())
    }

    /// Marks what changed files belong to as dirty; lost events mark everything.
    fn on_fs_event(&mut self, ev: FsEvent, watcher: &mut Watcher) {
        let now = Instant::now();
        let quiet = Duration::from_millis(self.model.settings.debounce_ms);
        match ev {
            FsEvent::Changed(paths) => {
                for p in paths {
                    // A code directory deleted and created again needs its watch again.
                    watcher.rewatch(&p);
                    for t in self.model.index.classify(&p) {
                        tracing::trace!(path = %p.display(), target = ?t, "change");
                        self.debouncer.event(t, now, quiet);
                    }
                }
            }
            FsEvent::Rescan => {
                for id in self.model.index.units() {
                    self.debouncer.event(Target::Unit(id), now, quiet);
                }
                self.debouncer.event(Target::Infra, now, quiet);
            }
        }
    }

    /// The pass to start now, if anything is due.
    fn next_pass(&mut self, watcher: &mut Watcher) -> Option<Pass> {
        let due = self.debouncer.due(Instant::now());
        if due.is_empty() {
            return None;
        }
        let mut pass = Pass { seq: 0, ids: BTreeSet::new(), infra: false, first_event: HashMap::new() };
        for (t, first) in due {
            match t {
                Target::Unit(id) => {
                    pass.first_event.insert(id.clone(), first);
                    pass.ids.insert(id);
                }
                Target::Infra => pass.infra = true,
            }
        }
        if pass.infra
            && let Err(e) = self.reload(watcher)
        {
            // The template no longer parses: code changes still sync with the last good one.
            pass.infra = false;
            self.answer_infra_waiters(&e);
        }
        if pass.ids.is_empty() && !pass.infra {
            return None;
        }
        self.started += 1;
        pass.seq = self.started;
        for id in &pass.ids {
            if let Some(s) = self.status.get_mut(id) {
                s.pending = true;
            }
        }
        self.running = Some((pass.seq, pass.ids.clone(), pass.infra));
        Some(pass)
    }

    /// What `lamb status` shows before the first pass: lamb's record of earlier syncs.
    fn load_status(&mut self) {
        let st = StackState::load(&self.lamb_dir, &self.model.cfg.stack_name, &self.aws.region).ok();
        for id in self.model.index.units() {
            let record = st.as_ref().and_then(|s| s.functions.get(&id));
            self.status.insert(
                id.clone(),
                UnitStatus {
                    id,
                    last_sync: record.map(|r| r.synced_at),
                    code_sha256: record.map(|r| r.code_sha256.clone()),
                    duration_ms: record.map(|r| r.duration_ms),
                    pending: true,
                    ..Default::default()
                },
            );
        }
    }

    /// A pass task that panicked: a bug in lamb. Its changes are reported as failed (not
    /// retried in a loop) and wait for the next save.
    fn lost_pass(&mut self, e: &tokio::task::JoinError) {
        let Some((seq, ids, infra)) = self.running.take() else { return };
        let covered = if infra { self.model.index.units() } else { ids.clone() };
        self.finish(Outcome {
            seq,
            ids,
            infra,
            covered,
            first_event: HashMap::new(),
            unchanged: Vec::new(),
            result: Err(PassError {
                message: format!("a sync pass stopped unexpectedly ({e}); this is a bug in lamb, please report it"),
                transient: false,
            }),
            build_failed: BTreeSet::new(),
            elapsed: Duration::ZERO,
        });
    }

    /// Reloads the template and settings, and watches what the new template names, before the
    /// pass that deploys it (so edits made meanwhile to new functions are not missed). A
    /// template that no longer parses is reported, and the last good one stays.
    fn reload(&mut self, watcher: &mut Watcher) -> Result<(), String> {
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
                Ok(())
            }
            Err(e) => {
                self.ui.line(
                    &format!("error: {e}\n  (still watching with the last good template; fix it and save)"),
                    serde_json::json!({"event": "template_error", "error": e.to_string()}),
                );
                Err(e.to_string())
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
            allow_production: self.allow_production,
        }
    }

    fn summary(&self) -> String {
        let functions = self.model.project.functions.len();
        let layers = self.model.project.layers.len();
        let last = self
            .status
            .values()
            // This daemon's syncs, and earlier ones with a duration (not a deploy's record).
            .filter(|s| s.last_sync.is_some() && s.duration_ms.is_some_and(|ms| ms > 0))
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
                    // The directory is resolved (a project reached through a symlink), not the
                    // file itself: a symlinked file counts where it is, as the watcher sees it.
                    let p = match (p.parent(), p.file_name()) {
                        (Some(dir), Some(name)) => dir.canonicalize().map(|d| d.join(name)).unwrap_or(p),
                        _ => p,
                    };
                    targets.extend(self.model.index.classify(&p));
                }
                for t in &targets {
                    self.debouncer.now(t.clone(), now);
                }
                let accepted: Vec<String> = targets
                    .iter()
                    .map(|t| match t {
                        Target::Unit(id) => id.clone(),
                        Target::Infra => "<infrastructure>".into(),
                    })
                    .collect();
                if wait && !targets.is_empty() {
                    let ids = targets
                        .iter()
                        .filter_map(|t| match t {
                            Target::Unit(id) => Some(id.clone()),
                            Target::Infra => None,
                        })
                        .collect();
                    self.waiters.push(Waiter {
                        ids,
                        infra: targets.contains(&Target::Infra),
                        after: self.started,
                        reply,
                        accepted,
                        items: Vec::new(),
                        failed: false,
                    });
                } else {
                    let _ = reply.send(Response { accepted, ..ok(None) });
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
                "ready": self.ready,
                "running": self.running.is_some(),
                "infra_pending": pending.contains(&Target::Infra),
                "last_error": self.reported.get(PASS_KEY),
            },
            "stack": {
                "name": self.model.cfg.stack_name,
                "region": self.aws.region,
                "last_infra_deploy": st.as_ref().and_then(|s| s.infra.as_ref()).map(|i| i.deployed_at).filter(|t| *t > 0),
            },
            "functions": units,
        })
    }

    /// Reports an error once until it changes (a network outage is one message, not one per
    /// retry); `key` is an id or [`PASS_KEY`].
    fn report_error(&mut self, key: &str, message: &str, retry: bool) {
        if self.reported.get(key).is_some_and(|m| m == message) {
            tracing::debug!(key, message, "the same error again");
            return;
        }
        self.reported.insert(key.to_string(), message.to_string());
        let next = if retry { "retrying" } else { "save again or run lamb trigger to retry" };
        if key == PASS_KEY {
            self.ui.line(
                &format!("error: {message} (changes stay pending; {next})"),
                serde_json::json!({"event": "error", "error": message, "retry": retry}),
            );
        } else {
            self.ui.line(
                &format!("failed    {key}: {message} ({next})"),
                serde_json::json!({"event": "failed", "id": key, "message": message, "retry": retry}),
            );
        }
    }

    /// Takes in a finished pass: reports it, updates status and the content gate, answers
    /// waiters, and requeues what AWS failed.
    fn finish(&mut self, o: Outcome) {
        self.passes += 1;
        if self.running.as_ref().is_some_and(|(seq, _, _)| *seq == o.seq) {
            self.running = None;
        }
        let now = Instant::now();
        for id in &o.unchanged {
            if let Some(s) = self.status.get_mut(id) {
                s.pending = false;
            }
        }
        let mut items_json = Vec::new();
        match &o.result {
            Ok(Some(report)) => {
                self.reported.remove(PASS_KEY);
                if o.infra {
                    self.failures.remove(&Target::Infra);
                }
                for i in &report.items {
                    let entry = self
                        .status
                        .entry(i.id.clone())
                        .or_insert_with(|| UnitStatus { id: i.id.clone(), ..Default::default() });
                    entry.pending = false;
                    let latency = o.first_event.get(&i.id).map(|t| now.duration_since(*t).as_millis() as u64);
                    match i.status {
                        SyncStatus::Failed => {
                            let message = i.message.clone().unwrap_or_else(|| "failed".into());
                            entry.last_error = Some(message.clone());
                            let retry = i.transient && !o.build_failed.contains(&i.id);
                            self.report_error(&i.id, &message, retry);
                            let target = Target::Unit(i.id.clone());
                            if retry {
                                self.requeue(&target, now);
                            } else {
                                self.failures.remove(&target);
                            }
                        }
                        SyncStatus::Skipped => {}
                        status => {
                            if let Some(sha) = &i.code_sha256 {
                                self.last_live.insert(i.id.clone(), sha.clone());
                            }
                            entry.last_error = None;
                            let synced =
                                matches!(status, SyncStatus::Synced | SyncStatus::Published | SyncStatus::Deployed);
                            if synced {
                                entry.last_sync = Some(crate::state::now_secs());
                                entry.code_sha256 = i.code_sha256.clone();
                                entry.duration_ms = Some(i.duration_ms);
                                entry.save_to_live_ms = latency;
                            }
                            self.failures.remove(&Target::Unit(i.id.clone()));
                            let recovered = self.reported.remove(&i.id).is_some();
                            if synced || recovered {
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
                    let reasons = report.infra_reasons.join("; ");
                    if self.reported.get(INFRA_SKIPPED_KEY) != Some(&reasons) {
                        self.ui.line(
                            &format!("note: infrastructure changes not deployed (--code): {reasons}"),
                            serde_json::json!({"event": "infra_skipped", "reasons": report.infra_reasons}),
                        );
                        self.reported.insert(INFRA_SKIPPED_KEY.into(), reasons);
                    }
                } else if o.infra {
                    self.reported.remove(INFRA_SKIPPED_KEY);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.report_error(PASS_KEY, &e.message, e.transient);
                if e.transient {
                    for id in &o.ids {
                        self.requeue(&Target::Unit(id.clone()), now);
                    }
                    if o.infra {
                        self.requeue(&Target::Infra, now);
                    }
                } else {
                    for id in &o.covered {
                        if let Some(s) = self.status.get_mut(id) {
                            s.pending = false;
                            s.last_error = Some(e.message.clone());
                        }
                    }
                }
            }
        }
        self.answer_waiters(&o, &items_json);
    }

    /// Answers the clients waiting for what `o` carried: passes started before a trigger
    /// came cannot carry its change, so they answer nobody who triggered after them.
    fn answer_waiters(&mut self, o: &Outcome, items: &[serde_json::Value]) {
        let mut still = Vec::new();
        for mut w in std::mem::take(&mut self.waiters) {
            let touched = w.ids.iter().any(|id| o.covered.contains(id)) || (w.infra && o.infra);
            if o.seq <= w.after || !touched {
                still.push(w);
                continue;
            }
            let everything = w.infra && o.infra;
            let mine: Vec<serde_json::Value> = items
                .iter()
                .filter(|i| everything || i["id"].as_str().is_some_and(|id| w.ids.contains(id)))
                .cloned()
                .collect();
            w.failed |= mine.iter().any(|i| i["status"] == "failed");
            w.items.extend(mine);
            for id in o.unchanged.iter().filter(|id| w.ids.contains(*id)) {
                w.items.push(serde_json::json!({"id": id, "status": "unchanged"}));
            }
            w.ids.retain(|id| !o.covered.contains(id));
            if o.infra {
                w.infra = false;
            }
            match &o.result {
                Err(e) => w.answer(Some(e.message.clone()), o.elapsed),
                Ok(_) if w.ids.is_empty() && !w.infra => w.answer(None, o.elapsed),
                Ok(_) => still.push(w),
            }
        }
        self.waiters = still;
    }

    /// The template did not load: clients waiting for an infrastructure pass get that error.
    fn answer_infra_waiters(&mut self, error: &str) {
        let (infra, rest): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut self.waiters).into_iter().partition(|w| w.infra);
        self.waiters = rest;
        for w in infra {
            w.answer(Some(error.to_string()), Duration::ZERO);
        }
    }

    /// Tries `target` again after a backoff that doubles with each consecutive failure.
    fn requeue(&mut self, target: &Target, now: Instant) {
        let n = self.failures.entry(target.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let backoff = RETRY_FIRST.saturating_mul(2u32.saturating_pow((*n - 1).min(16))).min(RETRY_MAX);
        // Jitter, so functions that failed together do not retry in lockstep: random per
        // target and per retry (each RandomState has fresh random keys; the clock is mixed in
        // too), up to a quarter of the backoff, at least 250 ms.
        let jitter = {
            use std::hash::{BuildHasher, Hash, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            target.hash(&mut h);
            n.hash(&mut h);
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()).hash(&mut h);
            let span = 250 + backoff.as_millis() as u64 / 4;
            Duration::from_millis(h.finish() % span)
        };
        self.debouncer.event(target.clone(), now, backoff + jitter);
        if let Target::Unit(id) = target
            && let Some(s) = self.status.get_mut(id)
        {
            s.pending = true;
        }
    }
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
    allow_production: bool,
}

/// Whether a failed sync may succeed later with nothing saved: AWS's trouble, and expired
/// credentials (the user logs in again; no file changes).
fn retry_later(e: &SyncError) -> bool {
    use crate::aws::AwsError;
    use crate::deploy::DeployError;
    e.is_transient()
        || matches!(
            e,
            SyncError::Aws(AwsError::Credentials { .. })
                | SyncError::Deploy(DeployError::Aws(AwsError::Credentials { .. }))
        )
}

/// One pass: build the dirty targets, skip what Lambda already runs, sync the rest.
async fn run_pass(ctx: PassContext, pass: Pass) -> Outcome {
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
        ids: pass.ids.clone(),
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
