//! Command-line syntax (clap derive) and nothing else: flags are validated into a
//! [`crate::config`] value before any work starts.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  failure: a build failed, the template or configuration is invalid
  2  usage error: unknown flag, bad --parameter-overrides, unknown --resource-id";

/// Output format for results (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "lamb",
    version,
    about = "Keep AWS Lambda functions in step with the code on your disk",
    long_about = "Keep AWS Lambda functions in step with the code on your disk.\n\nlamb reads a SAM or CloudFormation project (template.yaml, Globals, Parameters, samconfig.toml), builds only what changed into deterministic zips, and pushes them to Lambda.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v info, -vv debug, -vvv trace); LAMB_LOG overrides
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format on stderr [default: LAMB_LOG_FORMAT, then (sync --watch) lamb.toml's [log] format, then human]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// When to use colours
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new project from a built-in app template or a cookiecutter template (asks on a terminal)
    #[command(after_help = EXIT_CODES)]
    Init(InitArgs),
    /// Build the functions and layers whose code changed since the last build
    #[command(after_help = EXIT_CODES)]
    Build(BuildArgs),
    /// Check the template and list its functions and layers
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),
    /// Deploy the whole stack through CloudFormation (package code to S3, change set, events)
    #[command(after_help = EXIT_CODES)]
    Deploy(DeployArgs),
    /// Push changed code straight to Lambda; deploy through CloudFormation only when the template changed
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// Print the stack's outputs and API endpoints
    #[command(after_help = EXIT_CODES)]
    Outputs(OutputsArgs),
    /// List the stack's endpoints, resources or outputs (before a deploy: what the template says)
    #[command(subcommand)]
    List(ListCommand),
    /// Print functions' CloudWatch logs, interleaved by time; --tail follows them
    #[command(after_help = EXIT_CODES)]
    Logs(LogsArgs),
    /// Invoke a deployed function and print its response and log tail
    #[command(after_help = EXIT_CODES)]
    Invoke(InvokeArgs),
    /// Delete the stack (and, with --purge-artifacts, lamb's uploads)
    #[command(after_help = EXIT_CODES)]
    Delete(DeleteArgs),
    /// Tell a running `lamb sync --watch` which files were saved, so it syncs them at once
    #[command(after_help = EXIT_CODES)]
    Trigger(TriggerArgs),
    /// Show what was last synced, per function (from the daemon, or from lamb's state)
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Run `lamb sync --watch` for a project as a systemd user service
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Run functions on this machine, without Docker: invoke once, serve the template's APIs, or the Lambda Invoke API
    #[command(subcommand)]
    Local(LocalCommand),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the project is and how its template is parameterised.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// Template file [default: template.yaml, template.yml or template.json in the project directory]
    #[arg(short = 't', long, value_name = "FILE")]
    pub template_file: Option<PathBuf>,
    /// Project directory: code must live inside it and lamb keeps .lamb/ there [default: the template's directory]
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Template parameter values, as Key=Value (several per flag, quoted values allowed); they override samconfig
    #[arg(long, value_name = "KEY=VALUE", num_args = 1.., action = ArgAction::Append)]
    pub parameter_overrides: Vec<String>,
    /// samconfig file [default: samconfig.toml (or .yaml/.yml) next to the template]
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// samconfig environment to read
    #[arg(long, value_name = "ENV", default_value = "default")]
    pub config_env: String,
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Build only this function or layer (repeatable); a logical id, or Stack/Id in nested stacks
    #[arg(short = 'r', long = "resource-id", value_name = "ID")]
    pub resource_ids: Vec<String>,
    /// Rebuild even what is cached
    #[arg(long)]
    pub force: bool,
    /// Only report what would be built; build nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Parallel builds [default: number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Pack the content of symlinks that point outside the project (refused by default)
    #[arg(long)]
    pub follow_external_symlinks: bool,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

/// Which AWS account, region and stack.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Stack name [default: stack_name in samconfig]
    #[arg(long, value_name = "NAME")]
    pub stack_name: Option<String>,
    /// AWS region [default: region in samconfig, then AWS_REGION / the profile's region]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile from ~/.aws/config [default: profile in samconfig, then AWS_PROFILE]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// How a CloudFormation deploy is made.
#[derive(Debug, Clone, Args)]
pub struct StackDeployArgs {
    /// S3 bucket for packaged code [default: s3_bucket in samconfig]
    #[arg(long, value_name = "BUCKET", conflicts_with = "resolve_s3")]
    pub s3_bucket: Option<String>,
    /// Prefix of uploaded objects [default: s3_prefix in samconfig, then the stack name]
    #[arg(long, value_name = "PREFIX")]
    pub s3_prefix: Option<String>,
    /// Use (and create once per account and region) lamb's managed artifact bucket
    #[arg(long)]
    pub resolve_s3: bool,
    /// CloudFormation capabilities [default: capabilities in samconfig, then CAPABILITY_IAM CAPABILITY_AUTO_EXPAND]
    #[arg(long, value_name = "CAPABILITY", num_args = 1..)]
    pub capabilities: Vec<String>,
    /// Stack tags as Key=Value [default: tags in samconfig]
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    pub tags: Vec<String>,
    /// Create the change set and show it, but do not execute it
    #[arg(long)]
    pub no_execute_changeset: bool,
    /// Ask before executing the change set
    #[arg(long)]
    pub confirm_changeset: bool,
    /// Keep what was created or updated when the deploy fails, instead of rolling back [default: disable_rollback in samconfig]
    #[arg(long)]
    pub disable_rollback: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub deploy: StackDeployArgs,
    /// Ask for the stack name, region, parameters and deploy settings (current values as defaults), save them to samconfig.toml, then deploy
    #[arg(short, long)]
    pub guided: bool,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub deploy: StackDeployArgs,
    /// Only push code: never deploy through CloudFormation (reports what it skipped)
    #[arg(long)]
    pub code: bool,
    /// Sync only this function or layer (repeatable)
    #[arg(short = 'r', long = "resource-id", value_name = "ID")]
    pub resource_ids: Vec<String>,
    /// Do not ask before the first sync of a stack (sync updates code outside CloudFormation)
    #[arg(short, long)]
    pub yes: bool,
    /// Functions updated at once [default: 8, or jobs in lamb.toml / LAMB_JOBS]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// Keep running: sync again whenever a function's files, the template or the config change
    #[arg(short, long)]
    pub watch: bool,
    /// With --watch: quiet time after the last change before syncing [default: 20, or lamb.toml]
    #[arg(long, value_name = "MS", requires = "watch")]
    pub debounce_ms: Option<u64>,
    /// With --watch: ignore changes to paths matching this glob (repeatable)
    #[arg(long, value_name = "GLOB", requires = "watch")]
    pub watch_exclude: Vec<String>,
    /// With --watch: the control socket for `lamb trigger` and `lamb status` [default: $XDG_RUNTIME_DIR/lamb/<project>.sock]
    #[arg(long, value_name = "PATH", requires = "watch")]
    pub socket: Option<PathBuf>,
    /// Pack the content of symlinks that point outside the project (refused by default)
    #[arg(long)]
    pub follow_external_symlinks: bool,
    /// Sync a stack whose name, Environment/Env/Stage tag or parameter says prod, production or live (refused by default)
    #[arg(long)]
    pub allow_production: bool,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

/// Output format of `lamb list` (SAM's names: table or json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    #[value(alias = "human")]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Every function and API: its stage URLs or function URL, and the API's paths and methods
    #[command(after_help = EXIT_CODES)]
    Endpoints(ListArgs),
    /// Every resource of the stack with its physical id (`-` for what is not deployed)
    #[command(after_help = EXIT_CODES)]
    Resources(ListArgs),
    /// The deployed stack's outputs
    #[command(name = "stack-outputs", after_help = EXIT_CODES)]
    StackOutputs(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table, value_name = "FORMAT")]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this function's logs (repeatable; SAM's `-n/--name` works too) [default: every function of the stack]
    #[arg(short = 'r', long = "resource-id", value_name = "ID", short_alias = 'n', alias = "name")]
    pub resource_ids: Vec<String>,
    /// Keep printing new events as they arrive (polls every second); Ctrl-C stops
    #[arg(long)]
    pub tail: bool,
    /// Events from this long ago (30s, 10m, 2h, 1d; `5mins ago`) or this time (2026-01-31T12:00:00Z) on; SAM's `--start-time` works too
    #[arg(long, value_name = "AGE|TIME", default_value = "10m", short_alias = 's', alias = "start-time")]
    pub since: String,
    /// Only events matching this CloudWatch Logs filter pattern (e.g. ERROR, or '"request id"')
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Result format on stdout (json: one document; with --tail, one event object per line)
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function: its logical id in the template (or Stack/Id in nested stacks)
    pub id: String,
    /// File with the event JSON (`-` for stdin) [default: {}]
    #[arg(short, long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Build a function and run it once: its response on stdout, its log on stderr
    #[command(after_help = EXIT_CODES)]
    Invoke(LocalInvokeArgs),
    /// Serve the template's API Gateway routes and function URLs, with hot reload
    #[command(name = "start-api", after_help = EXIT_CODES)]
    StartApi(StartApiArgs),
    /// Serve Lambda's Invoke API, so the AWS CLI and SDKs call local functions
    #[command(name = "start-lambda", after_help = EXIT_CODES)]
    StartLambda(StartLambdaArgs),
    /// Print a sample event (SERVICE EVENT [--key value ...]) to pipe into `local invoke -e -`
    #[command(name = "generate-event", after_help = EXIT_CODES)]
    GenerateEvent(GenerateEventArgs),
}

/// What every local command takes: the project, where AWS calls from functions go, overrides.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Region functions see (AWS_REGION) [default: region in samconfig, then AWS_REGION / the profile's region, then us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile whose credentials functions get [default: profile in samconfig, then AWS_PROFILE]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Environment variables for functions: SAM's JSON ({"Parameters": {...}, "FnId": {...}}) or a .env file
    #[arg(short = 'n', long, value_name = "FILE")]
    pub env_vars: Option<PathBuf>,
    /// Use the last build as it is (fails for what was never built)
    #[arg(long)]
    pub no_build: bool,
}

#[derive(Debug, Args)]
pub struct LocalInvokeArgs {
    /// The function: its logical id (or Stack/Id in nested stacks) [default: the template's only function]
    pub id: Option<String>,
    /// File with the event JSON, `-` for stdin [default: {}]
    #[arg(short, long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    #[command(flatten)]
    pub local: LocalArgs,
}

/// Where a local server listens and how many processes a function may have.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub host: String,
    /// Warm processes per function at most; more concurrent requests wait
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub warm_instances: u16,
    /// Quiet window after a file change before rebuilding (ms)
    #[arg(long, default_value_t = 20, value_name = "MS")]
    pub debounce_ms: u64,
    /// Do not watch the code: serve the code as built at start
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Debug, Args)]
pub struct StartApiArgs {
    /// Port to listen on
    #[arg(short, long, default_value_t = 3000)]
    pub port: u16,
    /// Directory of static files served at / (when it exists)
    #[arg(short = 's', long, default_value = "public", value_name = "DIR")]
    pub static_dir: PathBuf,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub local: LocalArgs,
}

#[derive(Debug, Args)]
pub struct StartLambdaArgs {
    /// Port to listen on
    #[arg(short, long, default_value_t = 3001)]
    pub port: u16,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub local: LocalArgs,
}

#[derive(Debug, Args)]
pub struct GenerateEventArgs {
    /// The event source: apigateway, s3, sqs, sns, dynamodb, eventbridge, cloudwatch
    pub service: Option<String>,
    /// The event: e.g. aws-proxy, http-api-proxy, put, receive-message, notification, update, event, scheduled-event
    pub event: Option<String>,
    /// Values to put in the event, as --key value (e.g. --path users --method POST --body '{}')
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "--KEY VALUE")]
    pub values: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Also delete the code lamb uploaded for this stack from S3
    #[arg(long)]
    pub purge_artifacts: bool,
    /// S3 bucket of the uploads (with --purge-artifacts) [default: the one lamb last used]
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The saved files [default: every function and layer]
    pub paths: Vec<PathBuf>,
    /// Wait until the sync finished; print its result and exit 1 if it failed
    #[arg(long)]
    pub wait: bool,
    /// With no daemon running, run a one-shot `lamb sync --yes` instead of doing nothing
    #[arg(long)]
    pub fallback_sync: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The daemon's control socket [default: the project's]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The daemon's control socket [default: the project's]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write lamb@.service under ~/.config/systemd/user and enable it for the project
    Install(ServiceArgs),
    /// Stop and disable the project's service
    Uninstall(ServiceArgs),
    /// Show the project's service (systemctl --user status)
    Status(ServiceArgs),
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The project directory [default: the current directory]
    pub project_dir: Option<PathBuf>,
    /// Print the unit file and the commands instead of running them
    #[arg(long)]
    pub dry_run: bool,
    /// Install without asking (the service syncs without asking, as `lamb sync --yes` does)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project name: the directory and the stack name
    #[arg(short, long, value_name = "NAME")]
    pub name: Option<String>,
    /// Lambda runtime (python3.13, nodejs22.x, provided.al2023, ...)
    #[arg(short, long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Built-in app template: hello-world, sqs, scheduled, step-functions (nodejs: also NAME-typescript; SAM's names too)
    #[arg(long, value_name = "TEMPLATE")]
    pub app_template: Option<String>,
    /// Instruction set of the functions
    #[arg(short, long, value_name = "ARCH", value_parser = ["x86_64", "arm64"])]
    pub architecture: Option<String>,
    /// Dependency manager: pip, npm, cargo (Rust) or mod (Go); needed for provided.* runtimes
    #[arg(short, long, value_name = "MANAGER", value_parser = ["pip", "npm", "cargo", "mod"])]
    pub dependency_manager: Option<String>,
    /// Directory to create the project in
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,
    /// A cookiecutter template of your own: a directory or a .zip
    #[arg(short, long, value_name = "DIR|ZIP", conflicts_with_all = ["runtime", "app_template", "dependency_manager"])]
    pub location: Option<PathBuf>,
    /// Values over the template's cookiecutter.json, as a JSON object
    #[arg(long, value_name = "JSON")]
    pub extra_context: Option<String>,
    /// Never ask: fail naming the flags that are missing
    #[arg(long)]
    pub no_interactive: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub output: Format,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn logs_take_sams_flag_names_too() {
        let cli =
            Cli::try_parse_from(["lamb", "logs", "-n", "A", "--name", "B", "-r", "C", "--start-time", "5mins ago"])
                .unwrap();
        let Command::Logs(l) = cli.command else { panic!() };
        assert_eq!(l.resource_ids, ["A", "B", "C"]);
        assert_eq!(l.since, "5mins ago");
    }

    #[test]
    fn parameter_overrides_take_several_values() {
        let cli = Cli::try_parse_from(["lamb", "build", "--parameter-overrides", "A=1", "B=2", "-r", "Fn"]).unwrap();
        let Command::Build(b) = cli.command else { panic!() };
        assert_eq!(b.project.parameter_overrides, ["A=1", "B=2"]);
        assert_eq!(b.resource_ids, ["Fn"]);
    }
}
