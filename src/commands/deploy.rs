//! `lamb deploy`: build everything, deploy through CloudFormation, print the outcome.

use super::guided::{self, Answers};
use super::{TermUi, build_all, context, cpus, runtime};
use crate::aws::Aws;
use crate::cli::DeployArgs;
use crate::config::samconfig_edit::overrides_string;
use crate::deploy::{DeployOutcome, OutputRow};
use crate::engine::LAMB_DIR;
use crate::output::{Format, duration, emit};
use crate::{Error, config, load_project_with};

pub fn deploy(mut args: DeployArgs, quiet: bool) -> Result<(), Error> {
    let guided = if args.guided { Some(ask(&mut args)?) } else { None };
    let mut ctx = context(&args.project, &args.aws, Some(&args.deploy), "deploy")?;
    if let Some(a) = &guided {
        // Booleans a flag can only turn on: the answers decide, also when they turned one off.
        ctx.cfg.confirm = a.deploy.confirm_changeset;
        ctx.cfg.disable_rollback = a.deploy.disable_rollback;
    }
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

/// `--guided`: asks on the terminal, saves the answers if told to, and turns them into the
/// flags of this deploy.
fn ask(args: &mut DeployArgs) -> Result<Answers, Error> {
    let mut terminal = guided::Terminal::open()?;
    let pc = config::project(&args.project, "deploy")?;
    let project = load_project_with(&pc)?;
    let mut aws = args.aws.clone();
    if aws.stack_name.is_none() && pc.samconfig.string("stack_name").is_none() {
        let dir = pc.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        aws.stack_name = Some(guided::default_stack_name(&dir));
    }
    let cfg = config::stack(&pc, &aws, Some(&args.deploy))?;
    let answers = guided::interview(&mut terminal, &guided::questions(args, &project, &cfg, &pc))?;
    drop(terminal);
    if let Some((file, env)) = &answers.save {
        let path = pc.template.parent().unwrap_or(&pc.root).join(file);
        guided::save(&path, env, &answers)?;
        eprintln!("saved the answers to {} [{env}]; the next `lamb deploy` and `lamb sync` read them", path.display());
        args.project.config_file = Some(path);
        args.project.config_env = env.clone();
    }
    if !answers.secret_parameters.is_empty() {
        eprintln!(
            "not saved (NoEcho): {}; pass them with --parameter-overrides when the stack needs new values",
            answers.secret_parameters.join(", ")
        );
    }
    let d = &answers.deploy;
    args.aws.stack_name = Some(d.stack_name.clone());
    args.aws.region = d.region.clone();
    args.project.parameter_overrides = vec![overrides_string(&d.parameter_overrides)];
    args.project.parameter_overrides.retain(|o| !o.is_empty());
    args.deploy.capabilities = d.capabilities.clone();
    if d.s3_bucket.is_none() && args.deploy.s3_bucket.is_none() {
        args.deploy.resolve_s3 = true;
    }
    Ok(answers)
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
