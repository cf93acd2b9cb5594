//! Hot reload for the local servers: lamb's watcher (the same paths, ignore rules and quiet
//! window as `sync --watch`) turns a saved file into an incremental build of what it belongs
//! to, and the functions that run it get the new code for their next request. A build that
//! fails is reported and the last good code keeps serving; a template change reloads the
//! project (and the routes, through `on_project`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::functions::{Functions, Updated};
use super::prepare;
use crate::config::ProjectConfig;
use crate::engine::{self, BuildOptions};
use crate::project::Project;
use crate::watch::{Debouncer, FsEvent, Index, Target, Watcher};

/// What to tell when something changed; the servers print it.
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// The index of what to watch for `project`: its code, its template and config files.
fn index(project: &Project, pc: &ProjectConfig) -> Index {
    let mut config = Vec::new();
    config.extend(pc.samconfig.file.clone());
    Index::new(project, &Default::default(), &config, &[])
}

fn build(project: &Project, ids: Vec<String>) -> Result<prepare::Builds, String> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let opts = BuildOptions { ids, force: false, dry_run: false, jobs, follow_external_symlinks: false };
    engine::build(project, &opts, &engine::Silent).map(|r| prepare::from_report(&r)).map_err(|e| e.to_string())
}

fn tell(updated: &Updated, report: &Report) {
    for w in &updated.warnings {
        report(&format!("warning: {w}"));
    }
    for id in &updated.reloaded {
        report(&format!("reloaded {id}: the next request runs the new code"));
    }
    for (id, why) in &updated.failed {
        report(&format!("error: {id}: {why} (the last good code keeps serving; fix it and save)"));
    }
}

/// Watches the project until the task is dropped. `on_project` gets each good new project
/// (a template change).
pub async fn watch(
    functions: Arc<Functions>,
    pc: ProjectConfig,
    debounce: Duration,
    report: Report,
    on_project: Arc<dyn Fn(Arc<Project>) + Send + Sync>,
) {
    let mut project = functions.project();
    let mut idx = index(&project, &pc);
    let (tx, mut rx) = mpsc::unbounded_channel::<FsEvent>();
    let mut watcher = match Watcher::start(&idx, tx) {
        Ok(w) => w,
        Err(e) => {
            report(&format!("warning: cannot watch the project's files ({e}); code changes need a restart"));
            return;
        }
    };
    let mut debouncer = Debouncer::default();
    loop {
        let next = debouncer.next();
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                let now = Instant::now();
                match ev {
                    FsEvent::Changed { paths, complete } => {
                        let quiet = crate::watch::quiet_for(complete, debounce);
                        for p in paths {
                            watcher.rewatch(&p);
                            for t in idx.classify(&p) {
                                debouncer.event(t, now, quiet);
                            }
                        }
                    }
                    FsEvent::Rescan => debouncer.event(Target::Infra, now, debounce),
                }
            }
            _ = async { tokio::time::sleep_until(next.expect("guarded").into()).await }, if next.is_some() => {
                let due = debouncer.due(Instant::now());
                let infra = due.iter().any(|(t, _)| *t == Target::Infra);
                if infra {
                    let loaded = tokio::task::spawn_blocking({
                        let pc = pc.clone();
                        move || crate::load_project_with(&pc)
                    })
                    .await;
                    match loaded {
                        Ok(Ok(p)) => {
                            let p = Arc::new(p);
                            let built = tokio::task::spawn_blocking({
                                let p = p.clone();
                                move || build(&p, Vec::new())
                            })
                            .await;
                            match built {
                                Ok(Ok(builds)) => {
                                    tell(&functions.update(p.clone(), &builds, None).await, &report);
                                    project = p.clone();
                                    idx = index(&project, &pc);
                                    if let Err(e) = watcher.update(&idx) {
                                        report(&format!("warning: cannot update the watched paths: {e}"));
                                    }
                                    on_project(p);
                                    report("template reloaded");
                                }
                                Ok(Err(e)) => report(&format!("error: the build failed: {e}")),
                                Err(e) => report(&format!("error: the build stopped unexpectedly: {e}")),
                            }
                        }
                        Ok(Err(e)) => report(&format!("error: {e}\n  (still serving the last good template; fix it and save)")),
                        Err(e) => report(&format!("error: loading the template stopped unexpectedly: {e}")),
                    }
                    continue;
                }
                let units: BTreeSet<String> = due
                    .into_iter()
                    .filter_map(|(t, _)| match t {
                        Target::Unit(id) => Some(id),
                        Target::Infra => None,
                    })
                    .collect();
                if units.is_empty() {
                    continue;
                }
                let affected = functions.affected(&units);
                let ids = project.with_layers_of(&affected.iter().cloned().collect::<Vec<_>>());
                let p = project.clone();
                match tokio::task::spawn_blocking(move || build(&p, ids)).await {
                    Ok(Ok(builds)) => tell(&functions.update(project.clone(), &builds, Some(&affected)).await, &report),
                    Ok(Err(e)) => report(&format!("error: the build failed: {e}")),
                    Err(e) => report(&format!("error: the build stopped unexpectedly: {e}")),
                }
            }
        }
    }
}
