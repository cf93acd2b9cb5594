//! What the daemon works from: the project, its settings and the watch index, loaded from the
//! project's files as one [`Model`] and replaced as a whole on a good reload.

use std::path::Path;

use crate::Error;
use crate::cli::{AwsArgs, ProjectArgs, StackDeployArgs};
use crate::config::settings::{self, WatchFlags, WatchSettings};
use crate::config::{self, ProjectConfig, StackConfig};
use crate::project::Project;
use crate::watch::Index;

/// Everything loaded from the project's files; replaced as a whole on a good reload.
pub struct Model {
    pub project: Project,
    pub pc: ProjectConfig,
    pub cfg: StackConfig,
    pub settings: WatchSettings,
    pub index: Index,
}

/// The arguments a model is (re)loaded from.
pub struct Source {
    pub project: ProjectArgs,
    pub aws: AwsArgs,
    pub deploy: StackDeployArgs,
    pub flags: WatchFlags,
}

pub fn load_model(src: &Source) -> Result<Model, Error> {
    let (pc, cfg) = config::project_and_stack(&src.project, &src.aws, Some(&src.deploy), "sync")?;
    let toml = settings::read(&pc.root)?;
    let settings = settings::resolve(&pc.root, &src.flags, &|k| std::env::var(k).ok(), &toml, &pc.samconfig)?;
    let project = crate::load_project_with(&pc)?;
    check_extra_watch(&project, &settings, &pc.root.join(settings::FILE_NAME))?;
    let mut config_files = vec![pc.root.join(settings::FILE_NAME)];
    config_files.extend(pc.samconfig.file.clone());
    if pc.samconfig.file.is_none() {
        let dir = pc.template.parent().unwrap_or(&pc.root);
        config_files.extend(crate::config::samconfig::NAMES.iter().map(|n| dir.join(n)));
    }
    let index = Index::new(&project, &settings.extra_watch, &config_files, &settings.exclude);
    Ok(Model { project, pc, cfg, settings, index })
}

/// `[functions.<Id>] watch = [...]` must name a function of the template and paths that exist:
/// a typo would otherwise leave shared code silently unwatched.
fn check_extra_watch(project: &Project, settings: &WatchSettings, file: &Path) -> Result<(), Error> {
    let bad =
        |message: String| Error::Config(crate::config::ConfigError::LambToml { file: file.to_path_buf(), message });
    for (id, paths) in &settings.extra_watch {
        if project.resolve_id(id).is_err() {
            let known: Vec<&str> = project.functions.iter().map(|f| f.res.id.as_str()).collect();
            return Err(bad(format!(
                "[functions.{id}]: the template has no function `{id}` (it has {}); fix the name",
                known.join(", ")
            )));
        }
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(bad(format!(
                "[functions.{id}] watch: {} does not exist; create it or fix the path (relative to the project)",
                missing.display()
            )));
        }
    }
    Ok(())
}
