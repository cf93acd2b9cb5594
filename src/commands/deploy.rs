//! `lamb deploy`: build everything, deploy through CloudFormation, print the outcome.

use super::{TermUi, build_all, context, cpus, runtime};
use crate::Error;
use crate::aws::Aws;
use crate::cli::DeployArgs;
use crate::deploy::{DeployOutcome, OutputRow};
use crate::engine::LAMB_DIR;
use crate::output::{Format, duration, emit};

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

pub(super) fn print_deploy(outcome: &DeployOutcome, format: Format) {
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

pub(super) fn print_outputs(outputs: &[OutputRow]) {
    if outputs.is_empty() {
        return;
    }
    emit("outputs:");
    let width = outputs.iter().map(|o| o.key.len()).max().unwrap_or(0);
    for o in outputs {
        emit(&format!("  {:<width$}  {}", o.key, o.value));
    }
}
