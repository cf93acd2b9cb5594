//! A local function's environment, as Lambda gives it: Lambda's own variables, the template's
//! `Environment.Variables` (Globals merged, parameters and pseudo parameters resolved), the
//! overrides of an `--env-vars` file, and credentials for calling AWS (or the emulator).
//! Nothing else of lamb's environment leaks in, as nothing of yours does on Lambda.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;

use super::LocalError;
use crate::project::Function;
use crate::project::value::Value;

/// Lambda's defaults for a function that does not set them.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// The account id local functions see (SAM's too).
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// `--env-vars`: SAM's JSON (`{"Parameters": {...}, "FnId": {...}}`) or a `.env` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOverrides {
    /// For every function.
    pub all: BTreeMap<String, String>,
    /// Per function, by logical id, full id or FunctionName.
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
}

impl EnvOverrides {
    /// Reads `path`: JSON when it parses as a JSON object, else `KEY=VALUE` lines (`.env`).
    pub fn read(path: &Path) -> Result<EnvOverrides, LocalError> {
        let text = std::fs::read_to_string(path).map_err(|source| LocalError::Io {
            what: format!("--env-vars {}: cannot read it", path.display()),
            source,
        })?;
        Self::parse(&text).map_err(|detail| LocalError::EnvVars { path: path.to_path_buf(), detail })
    }

    fn parse(text: &str) -> Result<EnvOverrides, String> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            let mut out = EnvOverrides::default();
            for (key, vars) in doc.as_object().into_iter().flatten() {
                let Some(vars) = vars.as_object() else {
                    return Err(format!(
                        "`{key}` must be an object of variables, like {{\"{key}\": {{\"TABLE\": \"local\"}}}}"
                    ));
                };
                let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
                if key == "Parameters" {
                    out.all = vars;
                } else {
                    out.functions.insert(key.clone(), vars);
                }
            }
            return Ok(out);
        }
        let mut out = EnvOverrides::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: `{line}` is not KEY=VALUE", n + 1));
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            out.all.insert(k.trim().to_string(), v.to_string());
        }
        Ok(out)
    }

    /// The overrides for `f`: everyone's, then its own (its logical id, full id or name).
    fn for_function(&self, f: &Function) -> BTreeMap<String, String> {
        let mut vars = self.all.clone();
        let own = [Some(&f.res.logical_id), Some(&f.res.id), f.function_name.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|k| self.functions.get(k));
        if let Some(own) = own {
            vars.extend(own.clone());
        }
        vars
    }
}

/// A JSON value as an environment variable's text (SAM's rules: booleans lower-case, objects
/// and nulls empty).
fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// What the environment is built from besides the function.
#[derive(Debug, Clone, Default)]
pub struct EnvContext {
    pub region: String,
    /// Credentials to hand to functions: key id, secret, session token.
    pub credentials: Option<(String, String, Option<String>)>,
    /// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` from lamb's environment.
    pub endpoints: Vec<(String, String)>,
    /// The machine's PATH, after the layers' `bin` directories.
    pub path: String,
    pub overrides: EnvOverrides,
}

/// A template variable's value, resolved as far as lamb can without a stack: a reference to a
/// resource (`!Ref Table`, `!GetAtt Table.Arn`, `${Table}` in a `!Sub`) becomes the resource's
/// logical id, and is named in `unresolved`.
pub fn template_value(v: &Value, unresolved: &mut Vec<String>) -> String {
    if let Some(s) = v.scalar_string() {
        return s;
    }
    match v.as_intrinsic() {
        Some(("Ref", Value::String(id))) => {
            unresolved.push(id.clone());
            id.clone()
        }
        Some(("Fn::GetAtt", arg)) => {
            let target = match arg {
                Value::String(s) => s.split('.').next().unwrap_or_default().to_string(),
                Value::Seq(items) => items.first().and_then(Value::as_str).unwrap_or_default().to_string(),
                _ => String::new(),
            };
            unresolved.push(target.clone());
            target
        }
        Some(("Fn::Sub", arg)) => {
            let text = match arg {
                Value::String(s) => s.clone(),
                Value::Seq(items) => items.first().and_then(Value::as_str).unwrap_or_default().to_string(),
                _ => String::new(),
            };
            substitute_references(&text, unresolved)
        }
        _ => String::new(),
    }
}

/// `${Name}` and `${Name.Attr}` left in a `!Sub` after parameters were resolved: each becomes
/// `Name`; `${!Literal}` stays `${Literal}`.
fn substitute_references(text: &str, unresolved: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str(&format!("${{{literal}}}"));
        } else {
            let id = name.split('.').next().unwrap_or(name);
            unresolved.push(id.to_string());
            out.push_str(id);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Everything a function process of `f` gets, in the order it is set (later wins): Lambda's
/// variables, the template's, then `--env-vars`. `task_root` is where its code is; `extra`
/// are the runtime's own (`PYTHONPATH`, `NODE_PATH`, `LD_LIBRARY_PATH`).
pub fn environment(
    f: &Function,
    handler: &str,
    task_root: &Path,
    ctx: &EnvContext,
    extra: &[(String, String)],
    unresolved: &mut Vec<String>,
) -> Vec<(String, String)> {
    let name = f.function_name.clone().unwrap_or_else(|| f.res.logical_id.clone());
    let memory = f.memory_size.unwrap_or(DEFAULT_MEMORY_MB);
    let timeout = f.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let runtime = f.runtime.clone().unwrap_or_else(|| "provided".into());
    let mut vars: IndexMap<String, String> = IndexMap::new();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_string(), v);
    };
    set("PATH", ctx.path.clone());
    set("LANG", "en_US.UTF-8".into());
    set("TZ", ":UTC".into());
    set("LAMBDA_TASK_ROOT", task_root.display().to_string());
    set("LAMBDA_RUNTIME_DIR", task_root.display().to_string());
    set("_HANDLER", handler.to_string());
    set("AWS_LAMBDA_FUNCTION_NAME", name.clone());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout.to_string());
    set("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"));
    set("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST".into());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}"));
    set("AWS_REGION", ctx.region.clone());
    set("AWS_DEFAULT_REGION", ctx.region.clone());
    set("AWS_SAM_LOCAL", "true".into());
    set("AWS_LAMBDA_LOCAL", "lamb".into());
    if let Some((key, secret, token)) = &ctx.credentials {
        set("AWS_ACCESS_KEY_ID", key.clone());
        set("AWS_SECRET_ACCESS_KEY", secret.clone());
        if let Some(t) = token {
            set("AWS_SESSION_TOKEN", t.clone());
        }
    }
    for (k, v) in &ctx.endpoints {
        set(k, v.clone());
    }
    for (k, v) in extra {
        set(k, v.clone());
    }
    for (k, v) in &f.environment {
        set(k, template_value(v, unresolved));
    }
    for (k, v) in ctx.overrides.for_function(f) {
        set(&k, v);
    }
    vars.into_iter().collect()
}

/// The variables `--env-vars` sets for `f` that its template does not declare (SAM ignores
/// those; lamb passes them and says so).
pub fn undeclared_overrides(f: &Function, overrides: &EnvOverrides) -> Vec<String> {
    overrides.for_function(f).into_keys().filter(|k| !f.environment.contains_key(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_files_in_both_formats() {
        let json = r#"{"Parameters": {"STAGE": "local", "DEBUG": true}, "Hello": {"TABLE": "t1", "N": 3, "X": null}}"#;
        let o = EnvOverrides::parse(json).unwrap();
        assert_eq!(o.all.get("DEBUG").map(String::as_str), Some("true"));
        assert_eq!(o.functions["Hello"]["N"], "3");
        assert_eq!(o.functions["Hello"]["X"], "");
        let e = EnvOverrides::parse(r#"{"Hello": "x"}"#).unwrap_err();
        assert!(e.contains("`Hello` must be an object"), "{e}");
        let dotenv = "# comment\nexport A=1\nB = \"two words\"\nC='3'\n\n";
        let o = EnvOverrides::parse(dotenv).unwrap();
        assert_eq!(o.all, [("A", "1"), ("B", "two words"), ("C", "3")].map(|(k, v)| (k.into(), v.into())).into());
        assert!(EnvOverrides::parse("JUSTAWORD\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn resource_references_become_logical_ids() {
        let mut unresolved = Vec::new();
        let v: Value = serde_norway::from_str("!Ref Table").unwrap();
        assert_eq!(template_value(&v, &mut unresolved), "Table");
        let v: Value = serde_norway::from_str("!GetAtt Queue.Arn").unwrap();
        assert_eq!(template_value(&v, &mut unresolved), "Queue");
        let v: Value = serde_norway::from_str("!Sub 'https://${Api}.x/${Stage.Name}/${!Literal}'").unwrap();
        assert_eq!(template_value(&v, &mut unresolved), "https://Api.x/Stage/${Literal}");
        assert_eq!(unresolved, ["Table", "Queue", "Api", "Stage"]);
        assert_eq!(template_value(&Value::from("plain"), &mut unresolved), "plain");
    }
}
