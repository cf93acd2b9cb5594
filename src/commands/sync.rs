//! `lamb sync` (one pass; `--watch` hands over to the daemon): build what is asked, push or
//! deploy, print what happened to each function and layer.

use super::deploy::print_deploy;
use super::{TermUi, build_all, context, cpus, runtime};
use crate::Error;
use crate::aws::Aws;
use crate::cli::SyncArgs;
use crate::engine::{self, BuildOptions, LAMB_DIR};
use crate::output::{Format, bytes, duration, emit};
use crate::push::SyncStatus;
use crate::sync::{SyncOptions, SyncReport};

pub fn sync(args: SyncArgs, global: &crate::cli::GlobalArgs) -> Result<(), Error> {
    let quiet = global.quiet;
    if args.watch {
        return crate::daemon::run(args, global);
    }
    let ctx = context(&args.project, &args.aws, Some(&args.deploy), "sync")?;
    // Before building: what the configuration alone says (the stack's own tags are checked
    // once it is described).
    crate::sync::check_production(
        &ctx.cfg.stack_name,
        ctx.cfg.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ctx.pc.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        args.allow_production,
    )?;
    let ids = args
        .resource_ids
        .iter()
        .map(|id| ctx.project.resolve_id(id).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    let ids = ctx.project.with_layers_of(&ids);
    let report = build_all(&ctx.project, ids.clone(), cpus(), args.follow_external_symlinks)?;
    let full_build = || {
        let opts = BuildOptions {
            ids: Vec::new(),
            force: false,
            dry_run: false,
            jobs: cpus(),
            follow_external_symlinks: args.follow_external_symlinks,
        };
        engine::build(&ctx.project, &opts, &engine::Silent)
    };
    let ui = TermUi { quiet: quiet || args.output == Format::Json };
    let jobs = match args.jobs {
        Some(j) => usize::from(j),
        None => {
            let toml = crate::config::settings::read(&ctx.pc.root)?;
            let flags = crate::config::settings::WatchFlags::default();
            crate::config::settings::resolve(
                &ctx.pc.root,
                &flags,
                &|k| std::env::var(k).ok(),
                &toml,
                &ctx.pc.samconfig,
            )?
            .jobs
        }
    };
    let opts = SyncOptions {
        ids,
        code_only: args.code,
        yes: args.yes,
        jobs,
        allow_production: args.allow_production,
        known: None,
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        crate::sync::run(&aws, &ctx.project, &report, &full_build, &ctx.cfg, &opts, &ctx.pc.root.join(LAMB_DIR), &ui)
            .await
            .map_err(Error::from)
    })?;
    print_sync(&result, args.output, quiet);
    if result.failed() {
        return Err(Error::Failed(String::new()));
    }
    Ok(())
}

fn print_sync(r: &SyncReport, format: Format, quiet: bool) {
    if format == Format::Json {
        emit(&serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    if let Some(d) = &r.deploy {
        print_deploy(d, format);
    }
    let width = r.items.iter().map(|i| i.id.len()).max().unwrap_or(0);
    for i in &r.items {
        if quiet && i.status != SyncStatus::Failed {
            continue;
        }
        let mut line = format!("{:<9} {:<width$}", i.status.as_str(), i.id);
        match i.status {
            SyncStatus::Synced if r.mode == "code" && i.bytes == 0 => {
                line.push_str(&format!("  {:>10}  {:>8}  layers updated", "", duration(i.duration_ms)));
            }
            SyncStatus::Synced if r.mode == "code" => {
                line.push_str(&format!("  {:>10}  {:>8}", bytes(i.bytes), duration(i.duration_ms)));
                if let Some(sha) = &i.code_sha256 {
                    line.push_str(&format!("  CodeSha256 {sha}"));
                }
                if let Some(alias) = &i.alias {
                    line.push_str(&format!("  alias {alias}"));
                }
            }
            SyncStatus::Published => {
                line.push_str(&format!("  {}", i.version_arn.as_deref().unwrap_or_default()));
                if !i.updated_functions.is_empty() {
                    line.push_str(&format!("  (now used by {})", i.updated_functions.join(", ")));
                }
            }
            _ => {}
        }
        if let Some(m) = &i.message {
            line.push_str(&format!("\n    {}", m.replace('\n', "\n    ")));
        }
        emit(line.trim_end());
    }
    if r.infra_skipped {
        eprintln!(
            "note: infrastructure changes not deployed (--code): {}; run `lamb deploy` (or `lamb sync`) to deploy them",
            r.infra_reasons.join("; ")
        );
    }
    if !quiet {
        emit(&format!(
            "{}: {}synced {}, unchanged {}, published {}, failed {} in {}",
            r.stack,
            if r.mode == "infra" { format!("deployed {}, ", r.count(SyncStatus::Deployed)) } else { String::new() },
            r.count(SyncStatus::Synced),
            r.count(SyncStatus::Unchanged),
            r.count(SyncStatus::Published),
            r.count(SyncStatus::Failed),
            duration(r.duration_ms)
        ));
    }
}
