//! lamb keeps AWS Lambda functions in step with the code on a developer's disk.
//!
//! [`run`] is the whole program; `main.rs` only calls it. Data flows one way, and no module
//! imports one above it: flags become a validated config (`config`), the template becomes a
//! project model (`project`), each function's sources a fingerprint (`fingerprint`); a pure
//! plan (`plan`) decides what to build, and the engine (`engine`) builds (`build`) and packs
//! (`package`) what changed. `push` hands built code to Lambda, `deploy` runs CloudFormation
//! (and pushes what it left alone), `sync` chooses between them for one pass, the daemon
//! (`daemon`) runs passes as files change, and `commands` print what each command did.
//! `init` stands apart: it writes a new project from a template, before any of the above.

#![warn(missing_docs)]

mod aws;
mod build;
mod cli;
mod commands;
mod config;
mod daemon;
mod deploy;
mod engine;
mod fingerprint;
mod infra;
mod init;
mod local;
mod output;
mod package;
mod par;
mod plan;
mod project;
mod push;
mod state;
mod sync;
mod validate;
mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, ColorChoice, Command, GlobalArgs, LogFormat};
use config::ConfigError;
use project::ProjectError;

/// Everything that can end a command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Deploy(#[from] deploy::DeployError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
    #[error(transparent)]
    Lock(#[from] daemon::lock::LockError),
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error(transparent)]
    Guided(#[from] commands::guided::GuidedError),
    #[error(transparent)]
    Init(#[from] init::InitError),
    /// Local I/O that failed outside any one module's work (the terminal, the runtime).
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Usage(String),
    /// The command ran and reported its own failure (a failed build, an invalid resource).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// A local I/O failure, saying what lamb was doing.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Config(c) if c.is_usage() => 2,
            Error::Guided(g) if g.is_usage() => 2,
            Error::Init(i) if i.is_usage() => 2,
            _ => 1,
        }
    }
}

/// Parses the command line, runs the command and returns the exit status.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; every other parse error is a usage error.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let watch = match &cli.command {
        Command::Sync(a) if a.watch => Some(&a.project),
        _ => None,
    };
    init_logging(&cli.global, watch);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Failed(msg)) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// The log format: the flag, else `LAMB_LOG_FORMAT`, else (for the watch daemon) lamb.toml's
/// `[log] format`, else human. A bad value is reported when the settings are resolved.
fn log_format(g: &GlobalArgs, watch: Option<&cli::ProjectArgs>) -> LogFormat {
    if let Some(f) = g.log_format {
        return f;
    }
    let named = std::env::var("LAMB_LOG_FORMAT").ok().or_else(|| {
        let p = watch?;
        let dir = p
            .project_dir
            .clone()
            .or_else(|| p.template_file.as_ref().and_then(|t| t.parent().map(std::path::Path::to_path_buf)))
            .unwrap_or_default();
        config::settings::read(&dir).ok()?.log.format
    });
    match named.as_deref().map(str::trim) {
        Some("json") => LogFormat::Json,
        None | Some("human") => LogFormat::Human,
        Some(other) => {
            eprintln!(
                "warning: log format `{other}` (LAMB_LOG_FORMAT or lamb.toml) is not `human` or `json`; using human"
            );
            LogFormat::Human
        }
    }
}

/// Logging on stderr. `watch` is the project of a `sync --watch` daemon, whose default level is
/// info: a service's log is where its deploys and retries are read.
fn init_logging(g: &GlobalArgs, watch: Option<&cli::ProjectArgs>) {
    use tracing_subscriber::EnvFilter;
    let level = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 if watch.is_some() => "info",
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // The SDK's own debug logs show request headers (session tokens among them): they stay
    // at warn unless LAMB_LOG asks for them explicitly.
    let default = format!(
        "{level},aws_smithy_runtime=warn,aws_smithy_http_client=warn,aws_config=warn,aws_sigv4=warn,hyper=warn,hyper_util=warn,rustls=warn"
    );
    // Even when LAMB_LOG asks for everything, the SDK's trace lines stay out: they print the
    // resolved credentials (the SDK redacts the secret, but not the key id; its debug lines do
    // too) and full requests.
    const SDK_CAP: &str = "aws_smithy_runtime=info,aws_sigv4=debug,aws_config=debug,aws_credential_types=debug";
    let filter = match std::env::var("LAMB_LOG") {
        Ok(user) if !user.trim().is_empty() => EnvFilter::try_new(format!("{user},{SDK_CAP}")).unwrap_or_else(|e| {
            eprintln!("warning: LAMB_LOG `{user}` is not a valid filter ({e}); using the default");
            EnvFilter::new(&default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Under systemd (JOURNAL_STREAM set) journald stamps every line itself.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let _ = match log_format(g, watch) {
        LogFormat::Json if journald => builder.json().without_time().try_init(),
        LogFormat::Json => builder.json().try_init(),
        // Under systemd (JOURNAL_STREAM set) journald adds its own timestamps and shows no
        // colours; lamb's human format has no timestamps either way.
        LogFormat::Human => builder
            .without_time()
            .with_target(false)
            .with_ansi(color(g.color) && std::io::stderr().is_terminal() && !journald)
            .try_init(),
    };
}

/// With `-o json`, a command that fails before producing its document still prints one, so a
/// program reading stdout always gets JSON: `{"error": "...", "exit_code": N}`.
fn json_errors(format: output::Format, run: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    let result = run();
    if let (output::Format::Json, Err(e)) = (format, &result)
        && !matches!(e, Error::Failed(_))
    {
        output::emit(&serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() }).to_string());
    }
    result
}

/// Resolves the project flags for `command` and loads the template.
fn load_project(args: &cli::ProjectArgs, command: &str) -> Result<project::Project, Error> {
    load_project_with(&config::project(args, command)?)
}

pub(crate) fn load_project_with(pc: &config::ProjectConfig) -> Result<project::Project, Error> {
    Ok(project::load(&project::LoadOptions {
        template: pc.template.clone(),
        root: pc.root.clone(),
        overrides: pc.overrides.clone(),
        pseudo: pc.pseudo.clone(),
    })?)
}

fn dispatch(cli: Cli) -> Result<(), Error> {
    let use_color = color(cli.global.color);
    match cli.command {
        Command::Init(args) => commands::init(args),
        Command::Build(args) => json_errors(args.output, || {
            let project = load_project(&args.project, "build")?;
            if let Some(w) = project.parameter_warning() {
                tracing::warn!("{w}");
            }
            let ids = args
                .resource_ids
                .iter()
                .map(|id| project.resolve_id(id).map_err(Error::Usage))
                .collect::<Result<Vec<_>, _>>()?;
            let jobs =
                args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()), usize::from);
            let opts = engine::BuildOptions {
                ids: project.with_layers_of(&ids),
                force: args.force,
                dry_run: args.dry_run,
                jobs,
                follow_external_symlinks: args.follow_external_symlinks,
            };
            let width = project.code_resources().map(|r| r.id.len()).max().unwrap_or(0);
            let printer = output::Printer::new(args.output, use_color, cli.global.quiet, width);
            let report = engine::build(&project, &opts, &printer)?;
            printer.finish(&report);
            if report.failed() {
                return Err(Error::Failed(String::new()));
            }
            Ok(())
        }),
        Command::Validate(args) => json_errors(args.output, || {
            let project = load_project(&args.project, "validate")?;
            validate::print(&project, args.output)
        }),
        Command::Deploy(args) => {
            let format = args.output;
            json_errors(format, || commands::deploy(args, cli.global.quiet))
        }
        Command::Sync(args) => {
            let format = args.output;
            json_errors(format, || commands::sync(args, &cli.global))
        }
        Command::Trigger(args) => commands::trigger(args),
        Command::Status(args) => {
            let format = args.output;
            json_errors(format, || commands::status(args))
        }
        Command::Service(cmd) => commands::service(cmd),
        Command::Local(cmd) => commands::local(cmd),
        Command::Outputs(args) => {
            let format = args.output;
            json_errors(format, || commands::outputs(args))
        }
        Command::List(cmd) => {
            let (cli::ListCommand::Endpoints(a) | cli::ListCommand::Resources(a) | cli::ListCommand::StackOutputs(a)) =
                &cmd;
            let format = if a.output == cli::ListFormat::Json { output::Format::Json } else { output::Format::Human };
            json_errors(format, || commands::list(cmd))
        }
        Command::Logs(args) => {
            let format = args.output;
            json_errors(format, || commands::logs(args))
        }
        Command::Invoke(args) => {
            let format = args.output;
            json_errors(format, || commands::invoke(args))
        }
        Command::Delete(args) => commands::delete(args, cli.global.quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lamb", &mut std::io::stdout());
            Ok(())
        }
    }
}
