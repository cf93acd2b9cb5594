//! `lamb invoke`: runs the deployed function once and prints its answer and log tail.

use super::{context, runtime};
use crate::Error;
use crate::aws::Aws;
use crate::aws::cloudformation::CfnApi;
use crate::cli::InvokeArgs;
use crate::output::{Format, emit};

pub fn invoke(args: InvokeArgs) -> Result<(), Error> {
    let ctx = context(&args.project, &args.aws, None, "remote_invoke")?;
    let id = ctx.project.resolve_id(&args.id).map_err(Error::Usage)?;
    let payload = match &args.event {
        None => b"{}".to_vec(),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::io("cannot read the event from stdin", e))?;
            buf
        }
        Some(p) => {
            std::fs::read(p).map_err(|e| Error::Usage(format!("--event {}: {e}; check the path", p.display())))?
        }
    };
    if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
        return Err(Error::Usage("the event is not valid JSON; fix the file".into()));
    }
    let rt = runtime()?;
    let (status, function_error, body, log) = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
        let resources = cfn.resources(&ctx.cfg.stack_name).await?;
        let physical = crate::deploy::physical_ids(&ctx.project, &resources);
        let name = physical.get(&id).ok_or_else(|| {
            Error::Failed(format!("function {id} is not in stack {}; deploy it with `lamb deploy`", ctx.cfg.stack_name))
        })?;
        let out =
            crate::aws::lambda::LambdaApi::new(aws.lambda.clone(), aws.profile.clone()).invoke(name, payload).await?;
        Ok::<_, Error>((out.status, out.function_error, out.payload, out.log_tail))
    })?;
    if args.output == Format::Json {
        let response: serde_json::Value =
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body.clone()));
        emit(
            &serde_json::json!({"status": status, "function_error": function_error, "response": response, "log": log})
                .to_string(),
        );
    } else {
        emit(&body);
        if let Some(log) = log.as_deref().filter(|l| !l.trim().is_empty()) {
            eprintln!("--- log tail ---\n{}", log.trim_end());
        }
    }
    match function_error {
        Some(kind) => Err(Error::Failed(format!("the function returned an error ({kind}); see its response above"))),
        None => Ok(()),
    }
}
