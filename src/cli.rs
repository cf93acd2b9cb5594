//! Command-line syntax (clap derive) and nothing else: flags are validated into a
//! [`crate::config`] value before any work starts.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  failure: a build failed, the template or configuration is invalid
  2  usage error: unknown flag, bad --parameter-overrides, unknown --resource-id";

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
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, value_name = "FORMAT")]
    pub log_format: LogFormat,
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
    /// Build the functions and layers whose code changed since the last build
    #[command(after_help = EXIT_CODES)]
    Build(BuildArgs),
    /// Check the template and list its functions and layers
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),
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

#[derive(Debug, Args)]
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
    fn parameter_overrides_take_several_values() {
        let cli = Cli::try_parse_from(["lamb", "build", "--parameter-overrides", "A=1", "B=2", "-r", "Fn"]).unwrap();
        let Command::Build(b) = cli.command else { panic!() };
        assert_eq!(b.project.parameter_overrides, ["A=1", "B=2"]);
        assert_eq!(b.resource_ids, ["Fn"]);
    }
}
