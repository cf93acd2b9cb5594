//! Saving `lamb deploy --guided`'s answers to samconfig.toml in SAM's own format (`version =
//! 0.1`, `[<env>.deploy.parameters]`), editing the file in place: comments, other
//! environments, other commands' tables and keys lamb does not know are kept, so the same file
//! keeps working with SAM CLI.
//!
//! The stack name, region and parameter overrides are also written to
//! `[<env>.global.parameters]`, which SAM (and lamb) read for every command: the next `lamb
//! sync`, `lamb logs` or `sam sync` finds the stack without flags.

use toml_edit::{DocumentMut, Item, Table, value};

/// What a guided deploy saves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployAnswers {
    pub stack_name: String,
    pub region: Option<String>,
    /// A named bucket; without one, `resolve_s3 = true` (lamb's managed bucket).
    pub s3_bucket: Option<String>,
    pub s3_prefix: String,
    pub confirm_changeset: bool,
    pub capabilities: Vec<String>,
    pub disable_rollback: bool,
    pub parameter_overrides: Vec<(String, String)>,
}

/// `Key="Value" Key2="Value \"quoted\""`, as SAM writes parameter_overrides (and as
/// [`super::overrides::parse`] reads them back).
pub fn overrides_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table at `path` under `doc`, created (implicit, so no empty headers) where missing.
fn table_at<'a>(doc: &'a mut Table, path: &[&str]) -> Result<&'a mut Table, String> {
    let mut t = doc;
    let mut seen = Vec::new();
    for key in path {
        seen.push(*key);
        let item = t.entry(key).or_insert_with(|| {
            let mut new = Table::new();
            new.set_implicit(true);
            Item::Table(new)
        });
        t = item.as_table_mut().ok_or_else(|| {
            format!("`{}` is not a table; rename it or move it, then run --guided again", seen.join("."))
        })?;
    }
    Ok(t)
}

/// `text` (the current file, or None for a new one) with `answers` saved in environment `env`.
/// An error is the reason the file cannot be edited (it does not parse: line and column).
pub fn save_deploy(text: Option<&str>, env: &str, answers: &DeployAnswers) -> Result<String, String> {
    let mut doc: DocumentMut = match text {
        Some(t) => t.parse().map_err(|e: toml_edit::TomlError| e.to_string().trim().to_string())?,
        None => DocumentMut::new(),
    };
    if !doc.contains_key("version") {
        // SAM's first key; a new file starts with it.
        let mut with_version = DocumentMut::new();
        with_version["version"] = value(0.1);
        for (k, v) in doc.iter() {
            with_version.insert(k, v.clone());
        }
        doc = with_version;
    }
    let overrides = overrides_string(&answers.parameter_overrides);
    let root = doc.as_table_mut();
    let deploy = table_at(root, &[env, "deploy", "parameters"])?;
    deploy.set_implicit(false);
    deploy["stack_name"] = value(&answers.stack_name);
    match &answers.s3_bucket {
        Some(b) => {
            deploy["s3_bucket"] = value(b);
            deploy.remove("resolve_s3");
        }
        None => {
            deploy["resolve_s3"] = value(true);
            deploy.remove("s3_bucket");
        }
    }
    deploy["s3_prefix"] = value(&answers.s3_prefix);
    match &answers.region {
        Some(r) => deploy["region"] = value(r),
        None => drop(deploy.remove("region")),
    }
    deploy["confirm_changeset"] = value(answers.confirm_changeset);
    deploy["capabilities"] = value(answers.capabilities.join(" "));
    deploy["disable_rollback"] = value(answers.disable_rollback);
    if overrides.is_empty() {
        deploy.remove("parameter_overrides");
    } else {
        deploy["parameter_overrides"] = value(&overrides);
    }
    let global = table_at(root, &[env, "global", "parameters"])?;
    global.set_implicit(false);
    global["stack_name"] = value(&answers.stack_name);
    if let Some(r) = &answers.region {
        global["region"] = value(r);
    }
    if overrides.is_empty() {
        global.remove("parameter_overrides");
    } else {
        global["parameter_overrides"] = value(&overrides);
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::samconfig;

    fn answers() -> DeployAnswers {
        DeployAnswers {
            stack_name: "hello-app".into(),
            region: Some("eu-west-1".into()),
            s3_bucket: None,
            s3_prefix: "hello-app".into(),
            confirm_changeset: true,
            capabilities: vec!["CAPABILITY_IAM".into()],
            disable_rollback: false,
            parameter_overrides: vec![("Stage".into(), "dev".into()), ("Greeting".into(), "say \"hi\"".into())],
        }
    }

    fn read_back(text: &str, env: &str, command: &str) -> samconfig::SamParams {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("samconfig.toml");
        std::fs::write(&f, text).unwrap();
        samconfig::load(&f, env, command).unwrap()
    }

    #[test]
    fn a_new_file_is_sams_format_and_reads_back_for_deploy_and_sync() {
        let text = save_deploy(None, "default", &answers()).unwrap();
        assert!(text.starts_with("version = 0.1\n"), "{text}");
        assert!(
            text.contains("[default.deploy.parameters]\nstack_name = \"hello-app\"\nresolve_s3 = true\n"),
            "{text}"
        );
        assert!(text.contains("capabilities = \"CAPABILITY_IAM\""), "{text}");
        assert!(!text.contains("[default]\n") && !text.contains("[default.deploy]\n"), "{text}");
        let deploy = read_back(&text, "default", "deploy");
        assert_eq!(deploy.string("stack_name").as_deref(), Some("hello-app"));
        assert_eq!(deploy.flag("resolve_s3"), Some(true));
        assert_eq!(deploy.flag("confirm_changeset"), Some(true));
        assert_eq!(deploy.flag("disable_rollback"), Some(false));
        assert_eq!(deploy.list("capabilities"), ["CAPABILITY_IAM"]);
        let want = vec![("Stage".to_string(), "dev".to_string()), ("Greeting".to_string(), "say \"hi\"".to_string())];
        assert_eq!(deploy.parameter_overrides().unwrap(), want);
        let sync = read_back(&text, "default", "sync");
        assert_eq!(sync.string("stack_name").as_deref(), Some("hello-app"));
        assert_eq!(sync.string("region").as_deref(), Some("eu-west-1"));
        assert_eq!(sync.parameter_overrides().unwrap(), want);
    }

    #[test]
    fn comments_other_environments_and_unknown_keys_are_kept() {
        let before = "version = 0.1\n# team settings\n[default.global.parameters]\nbeta_features = true # keep me\n\n[default.build.parameters]\ncached = true\n\n[prod.deploy.parameters]\nstack_name = \"prod-app\"\n\n[default.deploy.parameters]\nstack_name = \"old\"\ns3_bucket = \"my-bucket\"\nimage_repositories = []\n";
        let mut a = answers();
        a.s3_bucket = Some("my-bucket".into());
        a.parameter_overrides.clear();
        let after = save_deploy(Some(before), "default", &a).unwrap();
        for kept in [
            "# team settings",
            "beta_features = true # keep me",
            "[default.build.parameters]\ncached = true",
            "[prod.deploy.parameters]\nstack_name = \"prod-app\"",
            "image_repositories = []",
            "s3_bucket = \"my-bucket\"",
        ] {
            assert!(after.contains(kept), "{kept} in\n{after}");
        }
        assert!(!after.contains("\"old\"") && !after.contains("resolve_s3") && !after.contains("parameter_overrides"));
        assert_eq!(read_back(&after, "prod", "deploy").string("stack_name").as_deref(), Some("prod-app"));
        // Another environment gets its own tables.
        let staged = save_deploy(Some(&after), "staging", &answers()).unwrap();
        assert!(staged.contains("[staging.deploy.parameters]"), "{staged}");
        assert_eq!(read_back(&staged, "default", "deploy").string("stack_name").as_deref(), Some("hello-app"));
        assert_eq!(read_back(&staged, "staging", "sync").string("stack_name").as_deref(), Some("hello-app"));
    }

    #[test]
    fn a_file_that_does_not_parse_is_not_rewritten_and_the_error_says_where() {
        let err = save_deploy(Some("version = 0.1\n[default.deploy.parameters\n"), "default", &answers()).unwrap_err();
        assert!(err.contains("line 2") && err.contains("column"), "{err}");
        let err = save_deploy(Some("version = 0.1\ndefault = 3\n"), "default", &answers()).unwrap_err();
        assert!(err.contains("`default` is not a table"), "{err}");
    }
}
