//! Template `Parameters`: declarations, defaults, overrides and their checks.

use indexmap::{IndexMap, IndexSet};

use super::intrinsics::ParamValue;
use super::value::Value;

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub kind: String,
    pub default: Option<String>,
    pub allowed_values: Vec<String>,
    /// `NoEcho: true`: a secret, not shown when typed or echoed back.
    pub no_echo: bool,
    pub description: Option<String>,
}

impl Parameter {
    fn is_list(&self) -> bool {
        self.kind == "CommaDelimitedList" || self.kind.starts_with("List<")
    }

    /// SSM-backed parameters get their value from Parameter Store at deploy time.
    fn is_ssm(&self) -> bool {
        self.kind.starts_with("AWS::SSM::Parameter::Value<")
    }
}

/// Parses the `Parameters` section. Returns the declarations or a message saying what is wrong.
pub fn declarations(section: Option<&Value>) -> Result<Vec<Parameter>, String> {
    let Some(section) = section else { return Ok(Vec::new()) };
    let Some(map) = section.as_map() else {
        return Err(format!("Parameters must be a map of parameter names, not {}", section.kind()));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, decl) in map {
        let Some(kind) = decl.get("Type").and_then(Value::as_str) else {
            return Err(format!("parameter `{name}` has no Type; add `Type: String` (or another parameter type)"));
        };
        let default = match decl.get("Default") {
            None | Some(Value::Null) => None,
            Some(Value::Seq(items)) => {
                Some(items.iter().filter_map(Value::scalar_string).collect::<Vec<_>>().join(","))
            }
            Some(v) => match v.scalar_string() {
                Some(s) => Some(s),
                None => {
                    return Err(format!("parameter `{name}` has a Default that is {}, not a plain value", v.kind()));
                }
            },
        };
        let allowed_values = decl
            .get("AllowedValues")
            .and_then(Value::as_seq)
            .map(|items| items.iter().filter_map(Value::scalar_string).collect())
            .unwrap_or_default();
        let no_echo = decl.get("NoEcho").and_then(Value::scalar_string).is_some_and(|s| s.eq_ignore_ascii_case("true"));
        let description = decl.get("Description").and_then(Value::scalar_string);
        out.push(Parameter {
            name: name.clone(),
            kind: kind.to_string(),
            default,
            allowed_values,
            no_echo,
            description,
        });
    }
    Ok(out)
}

/// The outcome of resolving parameters against overrides.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Values known locally.
    pub values: IndexMap<String, ParamValue>,
    /// Every declared name, including those whose value only CloudFormation knows.
    pub declared: IndexSet<String>,
    /// Declared parameters with neither a default nor an override.
    pub missing: Vec<String>,
    /// Overrides outside AllowedValues: (name, value, allowed).
    pub disallowed: Vec<(String, String, Vec<String>)>,
    /// Overrides naming a parameter the template does not declare.
    pub unknown_overrides: Vec<String>,
}

/// Resolves each declaration: an override wins over the default. `unknowable` lists parameters
/// whose value is given but cannot be known before deploy (e.g. a nested stack parameter set to
/// `!GetAtt`), which are declared but not missing.
pub fn resolve(decls: &[Parameter], overrides: &IndexMap<String, String>, unknowable: &IndexSet<String>) -> Resolved {
    let mut out = Resolved::default();
    for p in decls {
        out.declared.insert(p.name.clone());
        let value = overrides.get(&p.name).cloned().or_else(|| p.default.clone());
        let Some(value) = value else {
            if !unknowable.contains(&p.name) {
                out.missing.push(p.name.clone());
            }
            continue;
        };
        if !p.allowed_values.is_empty() && !p.allowed_values.contains(&value) {
            out.disallowed.push((p.name.clone(), value.clone(), p.allowed_values.clone()));
        }
        if p.is_ssm() {
            continue;
        }
        let v = if p.is_list() {
            ParamValue::List(if value.is_empty() {
                Vec::new()
            } else {
                value.split(',').map(|s| s.trim().to_string()).collect()
            })
        } else {
            ParamValue::String(value)
        };
        out.values.insert(p.name.clone(), v);
    }
    out.unknown_overrides = overrides.keys().filter(|k| !out.declared.contains(*k)).cloned().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn defaults_overrides_missing_and_lists() {
        let decls = declarations(Some(&yaml(
            "Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}\nDir: {Type: String}\nNets: {Type: CommaDelimitedList, Default: 'a, b'}\nSsm: {Type: 'AWS::SSM::Parameter::Value<String>', Default: /x}\nNeed: {Type: String}\n",
        )))
        .unwrap();
        let overrides = IndexMap::from([
            ("Dir".to_string(), "src".to_string()),
            ("Stage".to_string(), "qa".to_string()),
            ("Other".to_string(), "x".to_string()),
        ]);
        let r = resolve(&decls, &overrides, &IndexSet::new());
        assert_eq!(r.values.get("Dir"), Some(&ParamValue::String("src".into())));
        assert_eq!(r.values.get("Nets"), Some(&ParamValue::List(vec!["a".into(), "b".into()])));
        assert!(r.values.get("Ssm").is_none() && r.declared.contains("Ssm"));
        assert_eq!(r.missing, ["Need"]);
        assert_eq!(
            r.disallowed,
            [("Stage".to_string(), "qa".to_string(), vec!["dev".to_string(), "prod".to_string()])]
        );
        assert_eq!(r.unknown_overrides, ["Other"]);
    }

    #[test]
    fn parameter_without_type_is_an_error() {
        let err = declarations(Some(&yaml("Stage: {Default: dev}"))).unwrap_err();
        assert!(err.contains("`Stage` has no Type"), "{err}");
    }
}
