//! `lamb outputs`: a stack's outputs and the endpoints of its APIs and function URLs.

use super::deploy::print_outputs;
use super::endpoints::endpoints;
use super::{context, runtime};
use crate::Error;
use crate::aws::Aws;
use crate::aws::cloudformation::CfnApi;
use crate::cli::OutputsArgs;
use crate::deploy::OutputRow;
use crate::output::{Format, emit};

pub fn outputs(args: OutputsArgs) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "list")?;
    let rt = runtime()?;
    let (outputs, endpoints) = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let info = cfn.describe(&ctx.cfg.stack_name).await?.ok_or_else(|| {
            Error::Failed(format!("stack {} does not exist; deploy it with `lamb deploy`", ctx.cfg.stack_name))
        })?;
        let resources = cfn.resources(&ctx.cfg.stack_name).await?;
        let endpoints = endpoints(&aws, &cfn, &ctx.cfg.stack_name, &resources).await?;
        Ok::<_, Error>((info.outputs, endpoints))
    })?;
    let rows: Vec<OutputRow> = outputs.iter().map(OutputRow::from).collect();
    if args.output == Format::Json {
        emit(
            &serde_json::to_string_pretty(&serde_json::json!({ "outputs": rows, "endpoints": endpoints }))
                .unwrap_or_default(),
        );
        return Ok(());
    }
    print_outputs(&rows);
    if !endpoints.is_empty() {
        emit("endpoints:");
        for e in &endpoints {
            emit(&format!("  {:<12} {:<24} {}", e.kind, e.id, e.url));
        }
    }
    if rows.is_empty() && endpoints.is_empty() {
        emit(&format!("stack {} has no outputs or endpoints", ctx.cfg.stack_name));
    }
    Ok(())
}
