//! Turning flags, samconfig and the environment into one validated configuration. Nothing
//! downstream sees clap types or reads samconfig itself.

pub mod logs;
pub mod overrides;
pub mod samconfig;
pub mod samconfig_edit;
pub mod settings;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::aws::AwsOptions;
use crate::cli::{AwsArgs, ProjectArgs, StackDeployArgs};
use crate::project::intrinsics::Pseudo;
use crate::project::template;
use samconfig::SamParams;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {message}", file.display())]
    Samconfig { file: PathBuf, message: String },
    #[error("--template-file {}: no such file; check the path", path.display())]
    TemplateMissing { path: PathBuf },
    #[error("--config-file {}: no such file; check the path", path.display())]
    SamconfigMissing { path: PathBuf },
    #[error("--project-dir {}: {reason}", path.display())]
    ProjectDir { path: PathBuf, reason: String },
    #[error("--parameter-overrides: {0}")]
    Overrides(String),
    #[error(
        "no template found in {}; looked for template.yaml, template.yml and template.json; run lamb in the project directory or pass --template-file",
        dir.display()
    )]
    NoTemplate { dir: PathBuf },
    #[error("cannot determine the current directory: {0}")]
    Cwd(std::io::Error),
    #[error("no stack name: pass --stack-name, or set stack_name in samconfig.toml")]
    NoStackName,
    #[error("--tags: {0}")]
    Tags(String),
    #[error("{}: {message}", file.display())]
    LambToml { file: PathBuf, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("--since `{value}`: {reason}")]
    Since { value: String, reason: String },
}

impl ConfigError {
    /// Errors in what the user typed are usage errors (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ConfigError::TemplateMissing { .. }
                | ConfigError::SamconfigMissing { .. }
                | ConfigError::ProjectDir { .. }
                | ConfigError::Overrides(_)
                | ConfigError::Since { .. }
        )
    }
}

/// Where the project is and how to parameterise its template.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// Project directory (canonical): code must live inside, `.lamb/` is kept here.
    pub root: PathBuf,
    /// The template (absolute).
    pub template: PathBuf,
    pub overrides: IndexMap<String, String>,
    pub samconfig: SamParams,
    pub pseudo: Pseudo,
}

/// Resolves project flags for `command` (the samconfig section to read).
pub fn project(args: &ProjectArgs, command: &str) -> Result<ProjectConfig, ConfigError> {
    let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
    project_in(&cwd, args, command, &|k| std::env::var(k).ok())
}

/// [`project`] with the working directory and environment passed in, for tests.
pub fn project_in(
    cwd: &Path,
    args: &ProjectArgs,
    command: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProjectConfig, ConfigError> {
    let project_dir = match &args.project_dir {
        Some(d) => {
            let d = cwd.join(d);
            if !d.is_dir() {
                return Err(ConfigError::ProjectDir { path: d, reason: "not a directory; check the path".into() });
            }
            Some(d.canonicalize().map_err(|e| ConfigError::ProjectDir { path: d.clone(), reason: e.to_string() })?)
        }
        None => None,
    };
    let search_dir = project_dir.clone().unwrap_or_else(|| cwd.to_path_buf());

    // samconfig next to an explicit template, else in the directory searched for one.
    let template_given = args.template_file.as_ref().map(|t| cwd.join(t));
    if let Some(t) = &template_given
        && !t.is_file()
    {
        return Err(ConfigError::TemplateMissing { path: t.clone() });
    }
    let config_dir =
        template_given.as_ref().and_then(|t| t.parent().map(Path::to_path_buf)).unwrap_or_else(|| search_dir.clone());
    let samconfig_file = match &args.config_file {
        Some(f) => {
            let f = config_dir.join(f);
            if !f.is_file() {
                return Err(ConfigError::SamconfigMissing { path: f });
            }
            Some(f)
        }
        None => samconfig::find(&config_dir),
    };
    let sam = match &samconfig_file {
        Some(f) => samconfig::load(f, &args.config_env, command)?,
        None => SamParams::default(),
    };

    let template = match template_given {
        Some(t) => t,
        None => match sam.string("template_file") {
            Some(t) => {
                let p = config_dir.join(&t);
                if !p.is_file() {
                    return Err(ConfigError::Samconfig {
                        file: samconfig_file.clone().unwrap_or_default(),
                        message: format!("template_file `{t}` does not exist; fix the path"),
                    });
                }
                p
            }
            None => template::find(&search_dir).ok_or_else(|| ConfigError::NoTemplate { dir: search_dir.clone() })?,
        },
    };
    let template = crate::project::normalize(&template);
    let root = match project_dir {
        Some(d) => d,
        None => {
            let dir = template.parent().unwrap_or(Path::new("/"));
            dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
        }
    };

    let mut overrides: IndexMap<String, String> = sam.parameter_overrides()?.into_iter().collect();
    for raw in &args.parameter_overrides {
        for (k, v) in overrides::parse(raw).map_err(ConfigError::Overrides)? {
            overrides.insert(k, v);
        }
    }

    let region = sam.string("region").or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
    let pseudo = Pseudo { region, stack_name: sam.string("stack_name"), account_id: None };
    Ok(ProjectConfig { root, template, overrides, samconfig: sam, pseudo })
}

/// Where packaged code goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bucket {
    Named(String),
    /// lamb's managed bucket, `lamb-artifacts-<account>-<region>`, created on first use.
    Managed,
    /// Not configured: fine for code syncs of small zips; a deploy says how to set one.
    Unset,
}

/// The capabilities a deploy grants when none are configured: what SAM templates need for the
/// roles they generate and for nested applications.
pub const DEFAULT_CAPABILITIES: &[&str] = &["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"];

/// Which stack, where, and how to deploy it.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub stack_name: String,
    pub aws: AwsOptions,
    pub bucket: Bucket,
    pub prefix: String,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub execute: bool,
    pub confirm: bool,
    /// Keep what a failed deploy made instead of rolling it back.
    pub disable_rollback: bool,
}

/// Resolves stack flags over the samconfig section the project config was read with.
pub fn stack(pc: &ProjectConfig, aws: &AwsArgs, deploy: Option<&StackDeployArgs>) -> Result<StackConfig, ConfigError> {
    let sam = &pc.samconfig;
    let stack_name = aws.stack_name.clone().or_else(|| sam.string("stack_name")).ok_or(ConfigError::NoStackName)?;
    let aws_opts = AwsOptions {
        region: aws.region.clone().or_else(|| sam.string("region")),
        profile: aws.profile.clone().or_else(|| sam.string("profile")),
    };
    let d = deploy.cloned();
    let bucket = match d.as_ref().and_then(|d| d.s3_bucket.clone()).or_else(|| sam.string("s3_bucket")) {
        Some(b) => Bucket::Named(b),
        None if d.as_ref().is_some_and(|d| d.resolve_s3) || sam.flag("resolve_s3") == Some(true) => Bucket::Managed,
        None => Bucket::Unset,
    };
    let prefix = d
        .as_ref()
        .and_then(|d| d.s3_prefix.clone())
        .or_else(|| sam.string("s3_prefix"))
        .unwrap_or_else(|| stack_name.clone());
    let flag_caps: Vec<String> = d
        .as_ref()
        .map(|d| d.capabilities.iter().flat_map(|c| c.split_whitespace().map(String::from)).collect())
        .unwrap_or_default();
    let capabilities = if !flag_caps.is_empty() {
        flag_caps
    } else if !sam.list("capabilities").is_empty() {
        sam.list("capabilities")
    } else {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    };
    let tags = match d.as_ref().map(|d| d.tags.join(" ")).filter(|t| !t.is_empty()).or_else(|| sam.string("tags")) {
        Some(t) => overrides::parse_tags(&t).map_err(ConfigError::Tags)?,
        None => Vec::new(),
    };
    let no_execute =
        d.as_ref().is_some_and(|d| d.no_execute_changeset) || sam.flag("no_execute_changeset") == Some(true);
    let confirm = d.as_ref().is_some_and(|d| d.confirm_changeset) || sam.flag("confirm_changeset") == Some(true);
    let disable_rollback = d.as_ref().is_some_and(|d| d.disable_rollback) || sam.flag("disable_rollback") == Some(true);
    Ok(StackConfig {
        stack_name,
        aws: aws_opts,
        bucket,
        prefix,
        capabilities,
        tags,
        execute: !no_execute,
        confirm,
        disable_rollback,
    })
}

/// The project and stack settings of a command that works on a stack, with the template's
/// pseudo parameters (`AWS::Region`, `AWS::StackName`) taken from them.
pub fn project_and_stack(
    project_args: &ProjectArgs,
    aws: &AwsArgs,
    deploy: Option<&StackDeployArgs>,
    command: &str,
) -> Result<(ProjectConfig, StackConfig), ConfigError> {
    let mut pc = project(project_args, command)?;
    let cfg = stack(&pc, aws, deploy)?;
    if cfg.aws.region.is_some() {
        pc.pseudo.region = cfg.aws.region.clone();
    }
    pc.pseudo.stack_name = Some(cfg.stack_name.clone());
    Ok((pc, cfg))
}

/// [`project_and_stack`] for a command that also works without a stack (it then shows what the
/// template alone says): no stack name configured is `None`, not an error.
pub fn project_and_optional_stack(
    project_args: &ProjectArgs,
    aws: &AwsArgs,
    command: &str,
) -> Result<(ProjectConfig, Option<StackConfig>), ConfigError> {
    match project_and_stack(project_args, aws, None, command) {
        Ok((pc, cfg)) => Ok((pc, Some(cfg))),
        Err(ConfigError::NoStackName) => Ok((project(project_args, command)?, None)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ProjectArgs {
        ProjectArgs {
            template_file: None,
            project_dir: None,
            parameter_overrides: Vec::new(),
            config_file: None,
            config_env: "default".into(),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn finds_template_and_samconfig_and_merges_overrides() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::write(root.join("template.yml"), "Resources: {}").unwrap();
        std::fs::write(
            root.join("samconfig.toml"),
            "version = 0.1\n[default.global.parameters]\nstack_name = 's'\nregion = 'eu-west-1'\n[default.build.parameters]\nparameter_overrides = 'A=1 B=2'\n",
        )
        .unwrap();
        let mut a = args();
        a.parameter_overrides = vec!["B=3 C='x y'".into()];
        let c = project_in(&root, &a, "build", &no_env).unwrap();
        assert_eq!(c.template, root.join("template.yml"));
        assert_eq!(c.root, root);
        let o: Vec<(&str, &str)> = c.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(o, [("A", "1"), ("B", "3"), ("C", "x y")]);
        assert_eq!(c.pseudo.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.pseudo.stack_name.as_deref(), Some("s"));
    }

    #[test]
    fn template_in_a_subdirectory_sets_the_root_and_samconfig_location() {
        let d = tempfile::tempdir().unwrap();
        let cwd = d.path().canonicalize().unwrap();
        std::fs::create_dir(cwd.join("infra")).unwrap();
        std::fs::write(cwd.join("infra/t.yaml"), "Resources: {}").unwrap();
        std::fs::write(cwd.join("infra/samconfig.toml"), "version = 0.1\n[default.global.parameters]\nregion = 'r1'\n")
            .unwrap();
        let mut a = args();
        a.template_file = Some("infra/t.yaml".into());
        let c = project_in(&cwd, &a, "build", &|k| (k == "AWS_REGION").then(|| "env-region".to_string())).unwrap();
        assert_eq!(c.root, cwd.join("infra"));
        assert_eq!(c.pseudo.region.as_deref(), Some("r1"), "samconfig wins over the environment");
        a.project_dir = Some(".".into());
        assert_eq!(project_in(&cwd, &a, "build", &no_env).unwrap().root, cwd);
    }

    #[test]
    fn stack_settings_from_flags_over_samconfig() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::write(root.join("template.yaml"), "Resources: {}").unwrap();
        std::fs::write(
            root.join("samconfig.toml"),
            "version = 0.1\n[default.global.parameters]\nstack_name = 's'\nregion = 'eu-west-1'\n[default.deploy.parameters]\nresolve_s3 = true\ncapabilities = 'CAPABILITY_NAMED_IAM'\ntags = 'team=core'\nconfirm_changeset = true\n",
        )
        .unwrap();
        let pc = project_in(&root, &args(), "deploy", &no_env).unwrap();
        let aws = AwsArgs { stack_name: None, region: None, profile: None };
        let c = stack(&pc, &aws, None).unwrap();
        assert_eq!(c.stack_name, "s");
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.bucket, Bucket::Managed);
        assert_eq!(c.prefix, "s");
        assert_eq!(c.capabilities, ["CAPABILITY_NAMED_IAM"]);
        assert_eq!(c.tags, [("team".to_string(), "core".to_string())]);
        assert!(c.confirm && c.execute && !c.disable_rollback);
        let flags = StackDeployArgs {
            s3_bucket: Some("mine".into()),
            s3_prefix: Some("p".into()),
            resolve_s3: false,
            capabilities: vec!["CAPABILITY_IAM".into()],
            tags: vec!["a=1".into()],
            no_execute_changeset: true,
            confirm_changeset: false,
            disable_rollback: true,
        };
        let aws =
            AwsArgs { stack_name: Some("other".into()), region: Some("us-west-2".into()), profile: Some("dev".into()) };
        let c = stack(&pc, &aws, Some(&flags)).unwrap();
        assert_eq!(
            (c.stack_name.as_str(), c.aws.region.as_deref(), c.aws.profile.as_deref()),
            ("other", Some("us-west-2"), Some("dev"))
        );
        assert_eq!(c.bucket, Bucket::Named("mine".into()));
        assert_eq!(
            (c.prefix.as_str(), c.capabilities.clone(), c.execute, c.disable_rollback),
            ("p", vec!["CAPABILITY_IAM".to_string()], false, true)
        );
        // Nothing configured: defaults, and a clear error for the stack name.
        let bare = tempfile::tempdir().unwrap();
        std::fs::write(bare.path().join("template.yaml"), "Resources: {}").unwrap();
        let pc = project_in(bare.path(), &args(), "deploy", &no_env).unwrap();
        let aws = AwsArgs { stack_name: None, region: None, profile: None };
        assert!(matches!(stack(&pc, &aws, None), Err(ConfigError::NoStackName)));
        let aws = AwsArgs { stack_name: Some("x".into()), region: None, profile: None };
        let c = stack(&pc, &aws, None).unwrap();
        assert_eq!(c.bucket, Bucket::Unset);
        assert_eq!(c.capabilities, DEFAULT_CAPABILITIES);
    }

    #[test]
    fn usage_errors() {
        let d = tempfile::tempdir().unwrap();
        let mut a = args();
        a.template_file = Some("nope.yaml".into());
        let e = project_in(d.path(), &a, "build", &no_env).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("nope.yaml"), "{e}");
        let e = project_in(d.path(), &args(), "build", &no_env).unwrap_err();
        assert!(matches!(e, ConfigError::NoTemplate { .. }) && e.to_string().contains("--template-file"), "{e}");
        std::fs::write(d.path().join("template.yaml"), "Resources: {}").unwrap();
        let mut a = args();
        a.parameter_overrides = vec!["oops".into()];
        let e = project_in(d.path(), &a, "build", &no_env).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("--parameter-overrides: `oops` is not Key=Value"), "{e}");
        let mut a = args();
        a.config_file = Some("other.toml".into());
        assert!(project_in(d.path(), &a, "build", &no_env).unwrap_err().is_usage());
    }
}
