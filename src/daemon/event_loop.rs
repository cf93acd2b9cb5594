//! The daemon's event loop. It owns all state and turns what happens — file events, editor
//! triggers and status requests on the control socket, passes ending, signals — into the
//! [`Scheduler`]'s decisions, the board's rows and the daemon's output. Passes run as their own
//! tasks; this loop never waits on AWS.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::ipc::{self, Command, DaemonStatus, Incoming, Response, StackStatus, StatusDoc};
use super::model::{Model, Source, load_model};
use super::pass::{Outcome, PassContext, PassError, run_pass};
use super::scheduler::{Due, Scheduler};
use super::status::Board;
use super::systemd;
use super::ui::{DaemonUi, Event};
use super::waiters::{Waiter, Waiters};
use crate::Error;
use crate::aws::Aws;
use crate::engine::Kind;
use crate::push::SyncStatus;
use crate::state::StackState;
use crate::sync::KnownStack;
use crate::watch::{FsEvent, Target, Watcher};

/// How long a stopping daemon waits for an in-flight pass.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The daemon's state, owned by its loop.
pub struct Daemon {
    pub src: Source,
    pub model: Arc<Model>,
    pub aws: Aws,
    pub lamb_dir: PathBuf,
    pub ui: Arc<DaemonUi>,
    pub socket: PathBuf,
    pub notifier: systemd::Notifier,
    pub code_only: bool,
    pub follow_external_symlinks: bool,
    pub allow_production: bool,
    board: Board,
    scheduler: Scheduler,
    waiters: Waiters,
    /// Passes finished.
    passes: u64,
    /// The initial pass is done (and systemd was told).
    ready: bool,
    /// The stack as the last code pass found it: the next pass pushes without reading it.
    known: Option<KnownStack>,
    /// Where checks of `known` made after a pass report (with the pass count they follow).
    verified: Option<mpsc::UnboundedSender<(u64, Option<KnownStack>)>>,
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, Error> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::io("cannot install signal handlers", e))
}

/// A random number for retry jitter: each `RandomState` has fresh random keys, and the clock
/// is mixed in too.
fn random() -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

impl Daemon {
    /// A daemon for `model`, not yet running.
    pub fn new(src: Source, model: Model, aws: Aws, lamb_dir: PathBuf, json: bool, socket: PathBuf) -> Daemon {
        let st = StackState::load(&lamb_dir, &model.cfg.stack_name, &aws.region).ok();
        let board = Board::load(st.as_ref(), model.index.units());
        Daemon {
            src,
            model: Arc::new(model),
            aws,
            lamb_dir,
            ui: Arc::new(DaemonUi { json }),
            socket,
            notifier: systemd::Notifier::from_env(),
            code_only: false,
            follow_external_symlinks: false,
            allow_production: false,
            board,
            scheduler: Scheduler::default(),
            waiters: Waiters::default(),
            passes: 0,
            ready: false,
            known: None,
            verified: None,
        }
    }

    /// Runs until SIGTERM or SIGINT: the initial pass over everything, then whatever changes.
    pub async fn run(&mut self) -> Result<(), Error> {
        let listener = ipc::bind(&self.socket, self.model.settings.socket.is_some())
            .await
            .map_err(|e| Error::io(format!("cannot listen on {}", self.socket.display()), e))?;
        let (ipc_tx, mut ipc_rx) = mpsc::channel::<Incoming>(64);
        let server = tokio::spawn(ipc::serve(listener, ipc_tx));
        // Watching starts before the initial pass: an edit made while it runs gets its own pass.
        let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<FsEvent>();
        let (verified_tx, mut verified_rx) = mpsc::unbounded_channel();
        self.verified = Some(verified_tx);
        let mut watcher = Watcher::start(&self.model.index, fs_tx).map_err(|e| {
            Error::Failed(format!(
                "cannot watch the project's files: {e}; check inotify limits (fs.inotify.max_user_watches)"
            ))
        })?;
        // The initial pass: everything, with the model just loaded.
        let all = Due { ids: self.model.index.units(), infra: true, first_event: Default::default() };
        let first = self.scheduler.start(all).expect("the initial pass covers the infrastructure");
        let mut in_flight = Some(tokio::spawn(run_pass(self.context(), first)));

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
            let wake = self.scheduler.wake_at();
            tokio::select! {
                Some(ev) = fs_rx.recv() => self.on_fs_event(ev, &mut watcher),
                Some((cmd, reply)) = ipc_rx.recv() => self.handle(cmd, reply),
                Some((after, known)) = verified_rx.recv() => {
                    // A pass that finished since has newer knowledge.
                    if after == self.passes {
                        self.known = known;
                    }
                }
                _ = async { tokio::time::sleep_until(wake.expect("guarded").into()).await }, if wake.is_some() => {}
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    match done {
                        Ok(outcome) => self.finish(outcome),
                        Err(e) => self.lost_pass(&e),
                    }
                    if !self.ready {
                        self.ready = true;
                        let summary = self.summary();
                        self.ui.emit(&Event::Ready { summary: &summary, socket: &self.socket });
                        self.notifier.ready(&summary);
                    } else if reloading && !self.scheduler.pending().contains(&Target::Infra) {
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
                    self.scheduler.triggered(Target::Infra, Instant::now());
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
            // Start the next pass when the previous one is done and something is due.
            if in_flight.is_none() {
                in_flight = self.next_pass(&mut watcher);
            }
            // A reload that starts no pass (the template no longer parses) is over too: systemd
            // waits for READY=1 after RELOADING=1.
            if reloading && in_flight.is_none() && !self.scheduler.pending().contains(&Target::Infra) {
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
        self.waiters.stopping();
        let _ = std::fs::remove_file(&self.socket);
        Ok(())
    }

    /// Marks what changed files belong to as dirty; lost events mark everything.
    fn on_fs_event(&mut self, ev: FsEvent, watcher: &mut Watcher) {
        let now = Instant::now();
        let quiet = Duration::from_millis(self.model.settings.debounce_ms);
        match ev {
            FsEvent::Changed { paths, complete } => {
                let quiet = crate::watch::quiet_for(complete, quiet);
                for p in paths {
                    // A code directory deleted and created again needs its watch again.
                    watcher.rewatch(&p);
                    for t in self.model.index.classify(&p) {
                        tracing::trace!(path = %p.display(), target = ?t, "change");
                        self.scheduler.changed(t, now, quiet);
                    }
                }
            }
            FsEvent::Rescan => {
                for id in self.model.index.units() {
                    self.scheduler.changed(Target::Unit(id), now, quiet);
                }
                self.scheduler.changed(Target::Infra, now, quiet);
            }
        }
    }

    /// Starts the pass that is due now, if any. An infrastructure change reloads the template
    /// first; one that no longer parses leaves code changes to sync with the last good model.
    fn next_pass(&mut self, watcher: &mut Watcher) -> Option<tokio::task::JoinHandle<Outcome>> {
        let mut due = self.scheduler.due(Instant::now())?;
        if due.infra
            && let Err(e) = self.reload(watcher)
        {
            due.infra = false;
            self.waiters.infra_failed(&e);
        }
        let pass = self.scheduler.start(due)?;
        for id in &pass.ids {
            self.board.set_pending(id);
        }
        Some(tokio::spawn(run_pass(self.context(), pass)))
    }

    /// A pass task that panicked: a bug in lamb. Its changes are reported as failed (not
    /// retried in a loop) and wait for the next save.
    fn lost_pass(&mut self, e: &tokio::task::JoinError) {
        let Some(pass) = self.scheduler.running().cloned() else { return };
        let covered = if pass.infra { self.model.index.units() } else { pass.ids.clone() };
        self.finish(Outcome {
            seq: pass.seq,
            infra: pass.infra,
            covered,
            first_event: Default::default(),
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
                self.board.keep_only(&known);
                let dropped = self.scheduler.keep_only(&known);
                if !dropped.is_empty() {
                    tracing::debug!(?dropped, "no longer in the template; not synced");
                }
                Ok(())
            }
            Err(e) => {
                let error = e.to_string();
                self.ui.emit(&Event::TemplateError { error: &error });
                Err(error)
            }
        }
    }

    /// Checks the stack again after a pass that pushed without reading it (off the save's
    /// path): what that pass skipped is caught before the next one, which reads everything if
    /// the stack changed.
    fn verify_known(&self) {
        let Some(tx) = self.verified.clone() else { return };
        let (aws, model, lamb_dir, after) = (self.aws.clone(), self.model.clone(), self.lamb_dir.clone(), self.passes);
        tokio::spawn(async move {
            let known = crate::sync::verify(&aws, &model.project, &model.cfg, &lamb_dir).await;
            let _ = tx.send((after, known));
        });
    }

    /// What a pass needs, shared with its task.
    fn context(&self) -> PassContext {
        PassContext {
            model: self.model.clone(),
            aws: self.aws.clone(),
            lamb_dir: self.lamb_dir.clone(),
            ui: self.ui.clone(),
            last_live: self.board.last_live().clone(),
            code_only: self.code_only,
            follow_external_symlinks: self.follow_external_symlinks,
            allow_production: self.allow_production,
            known: self.known.clone(),
        }
    }

    fn summary(&self) -> String {
        let functions = self.model.project.functions.len();
        let layers = self.model.project.layers.len();
        let last = self.board.last_sync().map(|(id, ms)| format!(", last sync {id} {ms} ms")).unwrap_or_default();
        format!("watching {functions} functions and {layers} layers of stack {}{last}", self.model.cfg.stack_name)
    }

    fn handle(&mut self, cmd: Command, reply: oneshot::Sender<Response>) {
        match cmd {
            Command::Ping => {
                let _ = reply.send(Response::ok());
            }
            Command::Status => {
                let _ = reply.send(Response { status: Some(self.status_doc()), ..Response::ok() });
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
                    self.scheduler.triggered(t.clone(), now);
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
                    let infra = targets.contains(&Target::Infra);
                    self.waiters.push(Waiter::new(ids, infra, self.scheduler.last_started(), reply, accepted));
                } else {
                    let _ = reply.send(Response { accepted, ..Response::ok() });
                }
            }
        }
    }

    fn status_doc(&self) -> StatusDoc {
        let pending = self.scheduler.pending();
        let waiting: BTreeSet<String> = pending
            .iter()
            .filter_map(|t| match t {
                Target::Unit(id) => Some(id.clone()),
                Target::Infra => None,
            })
            .collect();
        let st = StackState::load(&self.lamb_dir, &self.model.cfg.stack_name, &self.aws.region).ok();
        StatusDoc {
            daemon: Some(DaemonStatus {
                pid: std::process::id(),
                project: self.model.pc.root.clone(),
                passes: self.passes,
                ready: self.ready,
                running: self.scheduler.running().is_some(),
                infra_pending: pending.contains(&Target::Infra),
                last_error: self.board.pass_error().cloned(),
            }),
            stack: StackStatus {
                name: self.model.cfg.stack_name.clone(),
                region: self.aws.region.clone(),
                last_infra_deploy: st.as_ref().and_then(|s| s.infra.as_ref()).map(|i| i.deployed_at).filter(|t| *t > 0),
            },
            functions: self.board.rows(&waiting),
        }
    }

    /// Takes in a finished pass: reports it, updates the board and the content gate, requeues
    /// what AWS failed, and answers waiters.
    fn finish(&mut self, o: Outcome) {
        self.passes += 1;
        match &o.result {
            // A push that failed for AWS's passing trouble is retried as it was; anything else
            // failed (a function gone, a build): the next pass reads it all.
            Ok(Some(report)) if report.failed() => {
                let transient = |i: &crate::push::ItemReport| i.status != SyncStatus::Failed || i.transient;
                if !report.items.iter().all(transient) {
                    self.known = None;
                }
            }
            Ok(Some(report)) => {
                self.known = report.known.clone();
                if report.used_known {
                    self.verify_known();
                }
            }
            Ok(None) => {}
            Err(_) => self.known = None,
        }
        let now = Instant::now();
        self.board.record(&o, now, &self.ui);
        for target in self.scheduler.finished(o.seq, &o.for_scheduler(), now, &mut random) {
            if let Target::Unit(id) = target {
                self.board.set_pending(&id);
            }
        }
        let project = &self.model.project;
        let kind = |id: &str| if project.layer(id).is_some() { Kind::Layer } else { Kind::Function };
        self.waiters.pass_done(&o, &kind);
    }
}
