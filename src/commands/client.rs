//! The daemon's clients: `lamb trigger` (editor save hooks) and `lamb status`, which ask the
//! running `lamb sync --watch` over its control socket (and fall back to lamb's record).

use super::{current_dir, runtime};
use crate::Error;
use crate::cli::ProjectArgs;
use crate::config::{self, ProjectConfig};
use crate::daemon::ipc::{StackStatus, StatusDoc, UnitStatus};
use crate::engine::LAMB_DIR;
use crate::output::{Format, duration, emit};
use crate::state::StackState;

/// The control socket of the project `project` names, looking for the template from `cwd`.
fn socket_of(
    cwd: &std::path::Path,
    project: &ProjectArgs,
    configured: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, ProjectConfig), Error> {
    let pc = config::project_in(cwd, project, "sync", &|k| std::env::var(k).ok())?;
    let toml = crate::config::settings::read(&pc.root)?;
    let configured = configured
        .map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var("LAMB_SOCKET").ok().map(Into::into))
        .or(toml.daemon.socket);
    Ok((crate::daemon::ipc::socket_for(&pc.root, configured.as_deref()), pc))
}

/// Where an editor hook's project is: with no `--template-file` or `--project-dir`, the
/// nearest directory at or above the saved file (or the working directory) that holds a
/// template, so a hook works from whatever directory the editor runs it in.
fn hook_dir(cwd: &std::path::Path, args: &crate::cli::TriggerArgs) -> Option<std::path::PathBuf> {
    if args.project.template_file.is_some() || args.project.project_dir.is_some() {
        return Some(cwd.to_path_buf());
    }
    let start = args.paths.first().map(|p| cwd.join(p)).and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    let start = start.unwrap_or_else(|| cwd.to_path_buf());
    start.ancestors().find(|d| crate::project::template::find(d).is_some()).map(std::path::Path::to_path_buf)
}

pub fn trigger(args: crate::cli::TriggerArgs) -> Result<(), Error> {
    let cwd = current_dir()?;
    let Some(dir) = hook_dir(&cwd, &args) else {
        if args.fallback_sync {
            return Err(config::ConfigError::NoTemplate { dir: cwd }.into());
        }
        // A save hook firing for a file outside any lamb project: nothing to do.
        tracing::debug!("no template at or above the saved file; nothing to trigger");
        return Ok(());
    };
    let (socket, pc) = socket_of(&dir, &args.project, args.socket.as_deref())?;
    let paths: Vec<std::path::PathBuf> = args.paths.iter().map(|p| cwd.join(p)).collect();
    let rt = runtime()?;
    let cmd = crate::daemon::ipc::Command::Trigger { paths, wait: args.wait };
    let answer = rt
        .block_on(crate::daemon::ipc::call(&socket, cmd))
        .map_err(|e| Error::io(format!("cannot talk to the daemon at {}", socket.display()), e))?;
    let Some(resp) = answer else {
        if !args.fallback_sync {
            // An editor hook with no daemon running: nothing to do, and nothing to complain about.
            return Ok(());
        }
        let mut argv: Vec<std::ffi::OsString> =
            vec!["lamb".into(), "sync".into(), "--yes".into(), "--template-file".into(), pc.template.clone().into()];
        argv.extend(["--project-dir".into(), pc.root.clone().into()]);
        if args.output == Format::Json {
            argv.extend(["-o".into(), "json".into()]);
        }
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv).map_err(|e| Error::Usage(e.to_string()))?;
        let crate::cli::Command::Sync(sync_args) = cli.command else { unreachable!("parsed a sync command") };
        return super::sync(sync_args, &cli.global);
    };
    if args.output == Format::Json {
        emit(&serde_json::to_string(&resp).unwrap_or_default());
    } else if args.wait {
        let items = resp.result.as_ref().map(|r| r.items.as_slice()).unwrap_or_default();
        for i in items {
            let msg = i.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            emit(&format!("{:<9} {}{msg}", i.status.as_str(), i.id));
        }
        if items.is_empty() && resp.ok {
            emit("nothing to sync");
        }
    }
    match (resp.ok, resp.error) {
        (true, _) => Ok(()),
        (false, Some(e)) => Err(Error::Failed(e)),
        (false, None) => Err(Error::Failed(String::new())),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let (y, m, d) = crate::output::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The region of the one record lamb keeps for `stack`, when there is exactly one.
fn recorded_region(lamb_dir: &std::path::Path, stack: &str) -> Option<String> {
    let suffix = format!("--{stack}.json");
    let regions: Vec<String> = std::fs::read_dir(lamb_dir.join("stacks"))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(&suffix)).map(str::to_string))
        .collect();
    match regions.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

pub fn status(args: crate::cli::StatusArgs) -> Result<(), Error> {
    let (socket, pc) = socket_of(&current_dir()?, &args.project, args.socket.as_deref())?;
    let rt = runtime()?;
    // No daemon listening is normal; a socket lamb cannot use (permissions, a daemon that
    // does not answer) is worth saying, and the record below is shown anyway.
    let asked = rt.block_on(async {
        let call = crate::daemon::ipc::call(&socket, crate::daemon::ipc::Command::Status);
        tokio::time::timeout(std::time::Duration::from_secs(5), call)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 5 s")))
    });
    let live = match asked {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!("cannot talk to the daemon at {}: {e}; showing lamb's record instead", socket.display());
            None
        }
    };
    let doc = match live.and_then(|r| r.status) {
        Some(doc) => doc,
        // No daemon: what lamb's state says about the stack.
        None => recorded_status(&args, &pc, &rt)?,
    };
    if args.output == Format::Json {
        emit(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    match &doc.daemon {
        Some(d) => emit(&format!("daemon: running, pid {}, {} passes", d.pid, d.passes)),
        None => emit("daemon: not running (from lamb's record)"),
    }
    let deployed = doc.stack.last_infra_deploy.map_or("never by lamb".to_string(), utc);
    emit(&format!("stack {} ({}): last infrastructure deploy {deployed}", doc.stack.name, doc.stack.region));
    let width = doc.functions.iter().map(|i| i.id.len()).max().unwrap_or(0);
    for i in &doc.functions {
        let mut line = format!("  {:<width$}", i.id);
        if i.pending {
            line.push_str("  pending");
        }
        match i.last_sync {
            Some(t) => line.push_str(&format!("  synced {}", utc(t))),
            None => line.push_str("  not synced yet"),
        }
        if let Some(sha) = i.code_sha256.as_deref().filter(|s| !s.is_empty()) {
            line.push_str(&format!("  {sha}"));
        }
        if let Some(ms) = i.duration_ms.filter(|ms| *ms > 0) {
            line.push_str(&format!("  {}", duration(ms)));
        }
        if let Some(e) = &i.last_error {
            line.push_str(&format!("\n    last error: {e}"));
        }
        emit(&line);
    }
    Ok(())
}

/// The status lamb's record gives when no daemon answers.
fn recorded_status(
    args: &crate::cli::StatusArgs,
    pc: &ProjectConfig,
    rt: &tokio::runtime::Runtime,
) -> Result<StatusDoc, Error> {
    let stack = args
        .aws
        .stack_name
        .clone()
        .or_else(|| pc.samconfig.string("stack_name"))
        .ok_or(config::ConfigError::NoStackName)?;
    let lamb_dir = pc.root.join(LAMB_DIR);
    let region = args
        .aws
        .region
        .clone()
        .or_else(|| pc.samconfig.string("region"))
        .or_else(|| {
            // The environment's or the AWS profile's region, as the daemon's SDK would find it.
            let profile = args.aws.profile.clone().or_else(|| pc.samconfig.string("profile"));
            rt.block_on(crate::aws::configured_region(profile.as_deref()))
        })
        .or_else(|| recorded_region(&lamb_dir, &stack))
        .unwrap_or_default();
    let st = StackState::load(&lamb_dir, &stack, &region)?;
    let functions = st
        .functions
        .iter()
        .map(|(id, f)| UnitStatus {
            id: id.clone(),
            last_sync: Some(f.synced_at),
            code_sha256: Some(f.code_sha256.clone()),
            duration_ms: Some(f.duration_ms),
            save_to_live_ms: None,
            last_error: f.error.clone(),
            pending: false,
        })
        .collect();
    let last_infra_deploy = st.infra.as_ref().map(|i| i.deployed_at).filter(|t| *t > 0);
    Ok(StatusDoc { daemon: None, stack: StackStatus { name: stack, region, last_infra_deploy }, functions })
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_the_epoch_and_leap_days() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_795_619_593), "2026-11-25 15:13:13 UTC");
    }
}
