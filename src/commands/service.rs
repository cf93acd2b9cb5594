//! `lamb service install|uninstall|status`: the watch daemon as a systemd user service.

use super::TermUi;
use crate::Error;
use crate::deploy::DeployUi;
use crate::output::emit;

pub fn service(cmd: crate::cli::ServiceCommand) -> Result<(), Error> {
    use crate::cli::ServiceCommand;
    use crate::daemon::systemd;
    let args = match &cmd {
        ServiceCommand::Install(a) | ServiceCommand::Uninstall(a) | ServiceCommand::Status(a) => a,
    };
    let cwd = super::current_dir()?;
    let dir = cwd.join(args.project_dir.clone().unwrap_or_default());
    let dir =
        dir.canonicalize().map_err(|e| Error::Usage(format!("{}: {e}; pass the project directory", dir.display())))?;
    if crate::project::template::find(&dir).is_none() {
        return Err(Error::Usage(format!(
            "{} has no template.yaml (or .yml/.json); pass the project directory",
            dir.display()
        )));
    }
    let unit = format!("lamb@{}.service", systemd::escape_path(&dir));
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| "/root".into());
    let unit_dir = systemd::unit_dir(&home, std::env::var("XDG_CONFIG_HOME").ok().as_deref());
    let systemctl = |verb: &[&str]| -> Result<String, Error> {
        let out = std::process::Command::new("systemctl").arg("--user").args(verb).output().map_err(|e| {
            Error::Failed(format!(
                "cannot run systemctl ({e}); is this a systemd system? run `systemctl --user {}` yourself",
                verb.join(" ")
            ))
        })?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(Error::Failed(format!("`systemctl --user {}` failed:\n{}", verb.join(" "), text.trim_end())))
        }
    };
    match cmd {
        ServiceCommand::Install(a) => {
            let lamb = std::env::current_exe().map_err(|e| Error::io("cannot find lamb's own path", e))?;
            let content = systemd::unit_file(&lamb);
            let path = unit_dir.join("lamb@.service");
            let commands =
                ["systemctl --user daemon-reload".to_string(), format!("systemctl --user enable --now {unit}")];
            if a.dry_run {
                emit(&format!("# {}\n{content}", path.display()));
                for c in &commands {
                    emit(c);
                }
                return Ok(());
            }
            if !a.yes {
                let q = format!(
                    "The service will sync {} whenever its files change, without asking (it drifts the stack from its template until the next deploy). Install?",
                    dir.display()
                );
                if !(TermUi { quiet: false }).confirm(&q) {
                    return Err(Error::Failed("not installed; pass --yes to install without a terminal".into()));
                }
            }
            std::fs::create_dir_all(&unit_dir)
                .map_err(|e| Error::io(format!("cannot create {}", unit_dir.display()), e))?;
            crate::state::write_atomic(&path, content.as_bytes())?;
            emit(&format!("wrote {}", path.display()));
            systemctl(&["daemon-reload"])?;
            systemctl(&["enable", "--now", &unit])?;
            emit(&format!("enabled and started {unit}; follow it with `journalctl --user -u {unit} -f`"));
            Ok(())
        }
        ServiceCommand::Uninstall(a) => {
            if a.dry_run {
                emit(&format!("systemctl --user disable --now {unit}"));
                return Ok(());
            }
            systemctl(&["disable", "--now", &unit])?;
            emit(&format!(
                "stopped and disabled {unit} (the template {} stays for other projects)",
                unit_dir.join("lamb@.service").display()
            ));
            Ok(())
        }
        ServiceCommand::Status(a) => {
            if a.dry_run {
                emit(&format!("systemctl --user status {unit}"));
                return Ok(());
            }
            match systemctl(&["status", "--no-pager", &unit]) {
                Ok(text) => {
                    emit(text.trim_end());
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }
}
