//! `lamb sync --watch`: an initial sync, then a loop that turns file events into syncs.
//!
//! One event loop ([`event_loop`]) owns all state. File events and editor triggers mark
//! functions (or the infrastructure) dirty; the [`scheduler`] turns bursts into one sync per
//! target after a quiet window, runs at most one pass at a time (so no function ever has two
//! updates in flight, and whatever changes during a pass is picked up by exactly one follow-up
//! pass) and retries AWS's failures with backoff. A [`pass`] builds only the dirty targets and
//! skips any whose build matches what Lambda was last seen running (touches, chmods, editor
//! focus never cause a sync). A template that stops parsing is reported and the last good
//! [`model`] stays in use.

mod event_loop;
pub mod ipc;
pub mod lock;
mod model;
mod pass;
mod scheduler;
mod status;
pub mod systemd;
mod ui;
mod waiters;

use std::time::Duration;

use crate::Error;
use crate::aws::Aws;
use crate::cli::{GlobalArgs, SyncArgs};
use crate::config::settings::WatchFlags;
use crate::engine::LAMB_DIR;
use crate::state::StackState;
use event_loop::Daemon;
use model::{Source, load_model};

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
    let _lock = lock::DaemonLock::acquire(&lamb_dir, &model.pc.root)?;
    let json = model.settings.log_json || args.output == crate::output::Format::Json;
    let rt = crate::par::runtime().map_err(|e| Error::io("cannot start the async runtime", e))?;
    let aws = rt.block_on(Aws::connect(&model.cfg.aws))?;

    // The first sync of a stack asks on the terminal, before anything is watched or pushed.
    if !args.yes {
        let st = StackState::load(&lamb_dir, &model.cfg.stack_name, &aws.region)?;
        if !st.sync_confirmed {
            let q = format!(
                "lamb sync updates Lambda code directly: stack {} will drift from its template until the next deploy. Continue?",
                model.cfg.stack_name
            );
            if !crate::output::confirm(&q) {
                return Err(crate::sync::SyncError::NeedsConfirmation { stack: model.cfg.stack_name.clone() }.into());
            }
        }
    }
    let socket = ipc::socket_for(&model.pc.root, model.settings.socket.as_deref());
    let mut daemon = Daemon::new(src, model, aws, lamb_dir, json, socket);
    daemon.code_only = args.code;
    daemon.follow_external_symlinks = args.follow_external_symlinks;
    daemon.allow_production = args.allow_production;
    let result = rt.block_on(daemon.run());
    // A build still running on a blocking thread (SIGTERM mid-build) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}
