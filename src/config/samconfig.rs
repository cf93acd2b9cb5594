//! `samconfig.toml` / `samconfig.yaml`, read the way SAM CLI reads them: tables
//! `[<env>.<command>.parameters]`, where the command's table overlays `[<env>.global.parameters]`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::ConfigError;

/// File names SAM looks for, in order of preference.
pub const NAMES: &[&str] = &["samconfig.toml", "samconfig.yaml", "samconfig.yml"];

/// The merged parameters of one environment and command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamParams {
    pub file: Option<PathBuf>,
    values: Map<String, Json>,
}

impl SamParams {
    /// A string setting (`stack_name = "x"`).
    pub fn string(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A boolean setting (`resolve_s3 = true`).
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.values.get(key)? {
            Json::Bool(b) => Some(*b),
            Json::String(s) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        }
    }

    /// A setting that SAM accepts as a space-separated string or a list (`capabilities`).
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.values.get(key) {
            Some(Json::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Json::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    /// `parameter_overrides`, in any of the forms SAM accepts.
    pub fn parameter_overrides(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let file = self.file.clone().unwrap_or_default();
        let bad = |message: String| ConfigError::Samconfig { file: file.clone(), message };
        match self.values.get("parameter_overrides") {
            None => Ok(Vec::new()),
            Some(Json::String(s)) => super::overrides::parse(s).map_err(bad),
            Some(Json::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Json::String(s) => out.extend(super::overrides::parse(s).map_err(bad)?),
                        other => {
                            return Err(bad(format!("parameter_overrides has {other}; write each as \"Key=Value\"")));
                        }
                    }
                }
                Ok(out)
            }
            Some(Json::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Json::Null => String::new(),
                        Json::String(s) => s.clone(),
                        Json::Array(items) => items.iter().map(json_scalar).collect::<Vec<_>>().join(","),
                        other => json_scalar(other),
                    };
                    (k.clone(), v)
                })
                .collect()),
            Some(other) => Err(bad(format!("parameter_overrides is {other}; write it as \"Key=Value Key2=Value2\""))),
        }
    }
}

fn json_scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Finds the samconfig file in `dir`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Reads `file` and merges `[env.global.parameters]` with `[env.<command>.parameters]`.
pub fn load(file: &Path, env: &str, command: &str) -> Result<SamParams, ConfigError> {
    let err = |message: String| ConfigError::Samconfig { file: file.to_path_buf(), message };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read it: {e}")))?;
    let is_toml = file.extension().is_some_and(|e| e == "toml");
    let doc: Json = if is_toml {
        let v: toml::Value =
            toml::from_str(&text).map_err(|e| err(format!("invalid TOML: {}", e.to_string().trim())))?;
        serde_json::to_value(v).map_err(|e| err(e.to_string()))?
    } else {
        serde_norway::from_str(&text).map_err(|e| err(format!("invalid YAML: {e}")))?
    };
    let Json::Object(root) = doc else {
        return Err(err("the file must be a table of environments such as [default.deploy.parameters]".into()));
    };
    if !root.get("version").is_some_and(Json::is_number) {
        return Err(err("the `version` key is missing or not a number; add `version = 0.1` at the top".into()));
    }
    let Some(env_table) = root.get(env) else {
        // SAM treats a missing environment as empty, except when one was asked for by name.
        if env != "default" {
            let envs: Vec<&String> = root.keys().filter(|k| *k != "version").collect();
            return Err(err(format!(
                "there is no environment `{env}`; environments in the file: {}",
                envs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        return Ok(SamParams { file: Some(file.to_path_buf()), values: Map::new() });
    };
    let section = |name: &str| -> Result<Map<String, Json>, ConfigError> {
        match env_table.get(name).and_then(|c| c.get("parameters")) {
            None => Ok(Map::new()),
            Some(Json::Object(m)) => Ok(m.clone()),
            Some(_) => Err(err(format!("[{env}.{name}.parameters] must be a table"))),
        }
    };
    let mut values = section("global")?;
    values.extend(section(&command.replace(['-', ' '], "_"))?);
    Ok(SamParams { file: Some(file.to_path_buf()), values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    const TOML: &str = r#"
version = 0.1
[default.global.parameters]
stack_name = "hello"
region = "eu-west-1"
[default.deploy.parameters]
s3_bucket = "bucket"
capabilities = "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
parameter_overrides = "Stage=dev Name='with space'"
[default.sync.parameters]
stack_name = "hello-sync"
parameter_overrides = ["Stage=qa", "ParameterKey=Other,ParameterValue=x"]
[staging.global.parameters]
stack_name = "hello-staging"
"#;

    #[test]
    fn command_overlays_global() {
        let (_d, p) = write("samconfig.toml", TOML);
        let deploy = load(&p, "default", "deploy").unwrap();
        assert_eq!(deploy.string("stack_name").as_deref(), Some("hello"));
        assert_eq!(deploy.string("s3_bucket").as_deref(), Some("bucket"));
        assert_eq!(deploy.list("capabilities"), ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]);
        assert_eq!(
            deploy.parameter_overrides().unwrap(),
            [("Stage".to_string(), "dev".to_string()), ("Name".to_string(), "with space".to_string())]
        );
        let sync = load(&p, "default", "sync").unwrap();
        assert_eq!(sync.string("stack_name").as_deref(), Some("hello-sync"));
        assert_eq!(sync.string("region").as_deref(), Some("eu-west-1"));
        assert_eq!(
            sync.parameter_overrides().unwrap(),
            [("Stage".to_string(), "qa".to_string()), ("Other".to_string(), "x".to_string())]
        );
        let staging = load(&p, "staging", "deploy").unwrap();
        assert_eq!(staging.string("stack_name").as_deref(), Some("hello-staging"));
    }

    #[test]
    fn yaml_form() {
        let (_d, p) = write(
            "samconfig.yaml",
            "version: 0.1\ndefault:\n  global:\n    parameters:\n      stack_name: y\n      parameter_overrides:\n        A: 1\n        B: [x, y]\n",
        );
        let params = load(&p, "default", "build").unwrap();
        assert_eq!(params.string("stack_name").as_deref(), Some("y"));
        assert_eq!(
            params.parameter_overrides().unwrap(),
            [("A".to_string(), "1".to_string()), ("B".to_string(), "x,y".to_string())]
        );
    }

    #[test]
    fn errors_name_the_file_and_fix() {
        let (_d, p) = write("samconfig.toml", "[default.global.parameters]\nstack_name = 'x'\n");
        let msg = load(&p, "default", "build").unwrap_err().to_string();
        assert!(msg.contains("samconfig.toml") && msg.contains("version = 0.1"), "{msg}");
        let (_d, p) = write("samconfig.toml", TOML);
        let msg = load(&p, "prod", "build").unwrap_err().to_string();
        assert!(msg.contains("no environment `prod`") && msg.contains("staging"), "{msg}");
        let (_d, p) = write("samconfig.toml", "version = 0.1\n[default\n");
        assert!(load(&p, "default", "build").unwrap_err().to_string().contains("invalid TOML"));
    }
}
