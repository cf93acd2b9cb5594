//! The commands that talk to AWS or to the watch daemon, one file per family: each resolves
//! its configuration, builds what it needs, runs on a small async runtime and prints its
//! result. The work itself lives in [`crate::deploy`], [`crate::sync`] and [`crate::daemon`].

mod client;
mod delete;
mod deploy;
mod endpoints;
pub(crate) mod guided;
mod init;
mod invoke;
mod list;
mod local;
mod logs;
mod outputs;
mod service;
mod sync;

pub use client::{status, trigger};
pub use delete::delete;
pub use deploy::deploy;
pub use init::init;
pub use invoke::invoke;
pub use list::list;
pub use local::local;
pub use logs::logs;
pub use outputs::outputs;
pub use service::service;
pub use sync::sync;

use crate::Error;
use crate::aws::cloudformation::{Change, Event};
use crate::cli::{AwsArgs, ProjectArgs};
use crate::config::{self, ProjectConfig, StackConfig};
use crate::deploy::DeployUi;
use crate::engine::{self, BuildOptions, BuildReport};
use crate::load_project_with;
use crate::project::Project;

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
        crate::output::confirm(question)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    crate::par::runtime().map_err(|e| Error::io("cannot start the async runtime", e))
}

fn current_dir() -> Result<std::path::PathBuf, Error> {
    std::env::current_dir().map_err(|e| Error::io("cannot determine the current directory", e))
}

/// Project, stack settings and AWS clients for a command.
pub(crate) struct Context {
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
    let (pc, cfg) = config::project_and_stack(project, aws, deploy, command)?;
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
