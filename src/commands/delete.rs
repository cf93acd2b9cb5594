//! `lamb delete`: deletes the stack (following its events) and, when asked, lamb's uploads.

use std::io::IsTerminal;

use super::{TermUi, context, runtime};
use crate::Error;
use crate::aws::Aws;
use crate::aws::cloudformation::CfnApi;
use crate::cli::DeleteArgs;
use crate::deploy::DeployUi;
use crate::engine::LAMB_DIR;
use crate::output::emit;
use crate::state::StackState;

pub fn delete(args: DeleteArgs, quiet: bool) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "delete")?;
    let stack = ctx.cfg.stack_name.clone();
    let ui = TermUi { quiet };
    if !args.yes && !ui.confirm(&format!("Delete stack {stack} and everything in it?")) {
        return Err(Error::Failed(format!(
            "not deleting stack {stack}: {}",
            if std::io::stdin().is_terminal() {
                "not confirmed"
            } else {
                "pass --yes to delete without a terminal to confirm on"
            }
        )));
    }
    let lamb_dir = ctx.pc.root.join(LAMB_DIR);
    let rt = runtime()?;
    rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let st = StackState::load(&lamb_dir, &stack, &aws.region)?;
        match cfn.describe(&stack).await? {
            None => ui.step(&format!("stack {stack} does not exist")),
            Some(_) => {
                let after = cfn.last_event_id(&stack).await?;
                cfn.delete(&stack).await?;
                ui.step(&format!("deleting stack {stack}"));
                let (info, failures) = cfn.follow(&stack, after.as_deref(), |e| ui.event(e)).await?;
                if info.status != "DELETE_COMPLETE" {
                    let reasons: Vec<String> = failures
                        .iter()
                        .map(|e| format!("{}: {}", e.logical_id, e.reason.clone().unwrap_or_default()))
                        .collect();
                    return Err(Error::Failed(format!(
                        "deleting stack {stack} ended {}: {}",
                        info.status,
                        reasons.join("; ")
                    )));
                }
            }
        }
        if args.purge_artifacts {
            let bucket =
                args.s3_bucket.clone().or_else(|| st.bucket.clone()).or_else(|| ctx.pc.samconfig.string("s3_bucket"));
            match bucket {
                Some(bucket) => {
                    let s3 = crate::aws::s3::S3Api { client: aws.s3.clone(), profile: aws.profile.clone() };
                    let n = s3.delete_prefix(&bucket, &format!("{}/", ctx.cfg.prefix.trim_end_matches('/'))).await?;
                    ui.step(&format!("deleted {n} object(s) from s3://{bucket}/{}/", ctx.cfg.prefix));
                }
                None => {
                    return Err(Error::Failed(
                        "--purge-artifacts: no bucket known for this stack; pass --s3-bucket".into(),
                    ));
                }
            }
        }
        let _ = std::fs::remove_file(StackState::path(&lamb_dir, &stack, &aws.region));
        Ok::<_, Error>(())
    })?;
    emit(&format!("deleted stack {stack}"));
    Ok(())
}
