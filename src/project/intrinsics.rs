//! Evaluation of CloudFormation intrinsic functions, as far as they can be known before deploy.
//!
//! lamb needs the concrete value of a handful of properties (CodeUri, Runtime, BuildMethod, ...)
//! that users write with `!Ref Param`, `!Sub`, `!If` on a condition, `!FindInMap` and friends.
//! Everything that only exists after deploy (`!GetAtt`, `!Ref` of a resource, `!ImportValue`)
//! is left in place unevaluated, so a caller can tell "resolved" from "known only to AWS".

use std::cell::RefCell;
use std::collections::HashMap;

use indexmap::IndexMap;

use super::value::Value;

/// A resolved parameter value: lists for `CommaDelimitedList` and `List<...>` types.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    String(String),
    List(Vec<String>),
}

impl ParamValue {
    /// The value as CloudFormation takes it in a parameter: lists comma-joined.
    pub fn as_cfn_string(&self) -> String {
        match self {
            ParamValue::String(s) => s.clone(),
            ParamValue::List(items) => items.join(","),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            ParamValue::String(s) => Value::String(s.clone()),
            ParamValue::List(items) => Value::Seq(items.iter().map(|s| Value::from(s.as_str())).collect()),
        }
    }
}

/// Values of pseudo parameters that are known locally.
#[derive(Debug, Clone, Default)]
pub struct Pseudo {
    pub region: Option<String>,
    pub stack_name: Option<String>,
    pub account_id: Option<String>,
}

/// The template's pseudo parameters, all of which are valid `Ref` targets.
pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// What an evaluation failed on. The caller adds the file and resource.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}

/// Everything an intrinsic may refer to.
pub struct Scope<'a> {
    pub parameters: &'a IndexMap<String, ParamValue>,
    pub conditions: &'a IndexMap<String, Value>,
    pub mappings: &'a IndexMap<String, Value>,
    pub pseudo: &'a Pseudo,
    /// Declared parameters with no value: referring to one is an error saying how to give it.
    pub missing: &'a [String],
    condition_cache: RefCell<HashMap<String, Option<bool>>>,
}

impl<'a> Scope<'a> {
    pub fn new(
        parameters: &'a IndexMap<String, ParamValue>,
        conditions: &'a IndexMap<String, Value>,
        mappings: &'a IndexMap<String, Value>,
        pseudo: &'a Pseudo,
    ) -> Self {
        Scope { parameters, conditions, mappings, pseudo, missing: &[], condition_cache: RefCell::default() }
    }

    /// Names the parameters that have no value.
    pub fn with_missing(mut self, missing: &'a [String]) -> Self {
        self.missing = missing;
        self
    }

    /// Evaluates everything that can be known locally. `Ok(None)` means `AWS::NoValue`: the
    /// property is to be treated as absent.
    pub fn eval(&self, v: &Value) -> Result<Option<Value>, EvalError> {
        if let Some((name, arg)) = v.as_intrinsic() {
            return self.eval_intrinsic(v, name, arg);
        }
        match v {
            Value::Map(m) => {
                let mut out = IndexMap::with_capacity(m.len());
                for (k, item) in m {
                    if let Some(item) = self.eval(item)? {
                        out.insert(k.clone(), item);
                    }
                }
                Ok(Some(Value::Map(out)))
            }
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(item) = self.eval(item)? {
                        out.push(item);
                    }
                }
                Ok(Some(Value::Seq(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Evaluates `v` and returns its string value, or `None` when it cannot be known before
    /// deploy (or is `AWS::NoValue`).
    #[cfg(test)]
    pub fn eval_string(&self, v: &Value) -> Result<Option<String>, EvalError> {
        Ok(self.eval(v)?.and_then(|v| v.scalar_string()))
    }

    fn eval_intrinsic(&self, whole: &Value, name: &str, arg: &Value) -> Result<Option<Value>, EvalError> {
        match name {
            "Ref" => self.eval_ref(whole, arg),
            "Fn::If" => {
                let [cond, yes, no] = args::<3>(name, arg)?;
                let Some(cond) = cond.as_str() else {
                    return err("Fn::If needs a condition name as its first argument");
                };
                match self.condition(cond)? {
                    Some(true) => self.eval(yes),
                    Some(false) => self.eval(no),
                    None => Ok(Some(whole.clone())),
                }
            }
            "Fn::Sub" => self.eval_sub(whole, arg),
            "Fn::Join" => {
                let [sep, list] = args::<2>(name, arg)?;
                let sep = self.eval(sep)?.and_then(|s| s.scalar_string());
                let list = self.eval(list)?;
                let (Some(sep), Some(Value::Seq(items))) = (sep, list) else {
                    return Ok(Some(whole.clone()));
                };
                let parts: Option<Vec<String>> = items.iter().map(Value::scalar_string).collect();
                Ok(Some(parts.map_or_else(|| whole.clone(), |p| Value::String(p.join(&sep)))))
            }
            "Fn::Select" => {
                let [index, list] = args::<2>(name, arg)?;
                let index = self.eval(index)?.and_then(|i| i.scalar_string());
                let list = self.eval(list)?;
                let (Some(index), Some(Value::Seq(items))) = (index, list) else {
                    return Ok(Some(whole.clone()));
                };
                let Ok(i) = index.parse::<usize>() else {
                    return err(format!("Fn::Select index `{index}` is not a number"));
                };
                match items.get(i) {
                    Some(item) => Ok(Some(item.clone())),
                    None => err(format!("Fn::Select index {i} is out of range for a list of {}", items.len())),
                }
            }
            "Fn::Split" => {
                let [sep, s] = args::<2>(name, arg)?;
                let sep = self.eval(sep)?.and_then(|s| s.scalar_string());
                let s = self.eval(s)?.and_then(|s| s.scalar_string());
                match (sep, s) {
                    (Some(sep), Some(s)) if !sep.is_empty() => {
                        Ok(Some(Value::Seq(s.split(sep.as_str()).map(Value::from).collect())))
                    }
                    _ => Ok(Some(whole.clone())),
                }
            }
            "Fn::FindInMap" => {
                let items = arg.as_seq().filter(|s| s.len() == 3 || s.len() == 4);
                let Some(items) = items else {
                    return err("Fn::FindInMap needs [MapName, TopLevelKey, SecondLevelKey]");
                };
                let mut keys = Vec::with_capacity(3);
                for item in &items[..3] {
                    match self.eval(item)?.and_then(|k| k.scalar_string()) {
                        Some(k) => keys.push(k),
                        None => return Ok(Some(whole.clone())),
                    }
                }
                let found = self.mappings.get(&keys[0]).and_then(|m| m.get(&keys[1])).and_then(|m| m.get(&keys[2]));
                match found {
                    Some(v) => self.eval(v),
                    None => err(format!(
                        "Fn::FindInMap: no entry `{}` / `{}` / `{}` in Mappings; add it or fix the keys",
                        keys[0], keys[1], keys[2]
                    )),
                }
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => match self.condition_expr(whole)? {
                Some(b) => Ok(Some(Value::Bool(b))),
                None => Ok(Some(whole.clone())),
            },
            "Fn::Base64" => match self.eval(arg)?.and_then(|s| s.scalar_string()) {
                Some(s) => {
                    use base64::Engine as _;
                    Ok(Some(Value::String(base64::engine::general_purpose::STANDARD.encode(s))))
                }
                None => Ok(Some(whole.clone())),
            },
            // GetAtt, ImportValue, GetAZs, Cidr, Transform, ...: known only to CloudFormation.
            _ => Ok(Some(whole.clone())),
        }
    }

    fn eval_ref(&self, whole: &Value, arg: &Value) -> Result<Option<Value>, EvalError> {
        let Some(target) = arg.as_str() else {
            return err(format!("Ref needs a name, not {}", arg.kind()));
        };
        if let Some(p) = self.parameters.get(target) {
            return Ok(Some(p.to_value()));
        }
        if self.missing.iter().any(|m| m == target) {
            return err(format!(
                "parameter `{target}` has no value; give it a Default, or pass --parameter-overrides {target}=... (or set it in parameter_overrides in samconfig.toml)"
            ));
        }
        let known = match target {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => self.pseudo.region.clone(),
            "AWS::StackName" => self.pseudo.stack_name.clone(),
            "AWS::AccountId" => self.pseudo.account_id.clone(),
            "AWS::Partition" => Some(partition(self.pseudo.region.as_deref()).to_string()),
            "AWS::URLSuffix" => Some(url_suffix(self.pseudo.region.as_deref()).to_string()),
            _ => None,
        };
        Ok(Some(known.map_or_else(|| whole.clone(), Value::String)))
    }

    fn eval_sub(&self, whole: &Value, arg: &Value) -> Result<Option<Value>, EvalError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Seq(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Value::String(s), Value::Map(m)) => (s.as_str(), Some(m)),
                _ => return err("Fn::Sub with a list needs [String, {Var: Value}]"),
            },
            _ => return err(format!("Fn::Sub needs a string or [String, Map], not {}", arg.kind())),
        };
        let mut out = String::with_capacity(text.len());
        for piece in sub_pieces(text) {
            match piece {
                SubPiece::Text(t) => out.push_str(t),
                SubPiece::Var(name) => {
                    let value = match vars.and_then(|m| m.get(name)) {
                        Some(v) => self.eval(v)?.and_then(|v| v.scalar_string()),
                        None if name.contains('.') => None,
                        None => {
                            let r = Value::Map(IndexMap::from([("Ref".to_string(), Value::from(name))]));
                            self.eval(&r)?.and_then(|v| v.scalar_string())
                        }
                    };
                    match value {
                        Some(v) => out.push_str(&v),
                        None => return Ok(Some(whole.clone())),
                    }
                }
            }
        }
        Ok(Some(Value::String(out)))
    }

    /// The value of a named condition; `None` when it depends on something unknown locally.
    pub fn condition(&self, name: &str) -> Result<Option<bool>, EvalError> {
        if let Some(cached) = self.condition_cache.borrow().get(name) {
            return match cached {
                Some(b) => Ok(Some(*b)),
                // A cached `None` while still evaluating means the condition refers to itself.
                None => err(format!("condition `{name}` refers to itself")),
            };
        }
        let Some(expr) = self.conditions.get(name) else {
            return err(format!("unknown condition `{name}`; define it under Conditions"));
        };
        self.condition_cache.borrow_mut().insert(name.to_string(), None);
        let result = self.condition_expr(expr);
        match &result {
            Ok(Some(b)) => {
                self.condition_cache.borrow_mut().insert(name.to_string(), Some(*b));
            }
            _ => {
                self.condition_cache.borrow_mut().remove(name);
            }
        }
        result
    }

    fn condition_expr(&self, expr: &Value) -> Result<Option<bool>, EvalError> {
        let Some((name, arg)) = expr.as_intrinsic() else {
            return match expr {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) if s == "true" || s == "false" => Ok(Some(s == "true")),
                _ => err(format!(
                    "a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition, not {}",
                    expr.kind()
                )),
            };
        };
        match name {
            "Condition" => match arg.as_str() {
                Some(c) => self.condition(c),
                None => err("Condition needs a condition name"),
            },
            "Fn::Equals" => {
                let [a, b] = args::<2>(name, arg)?;
                let a = self.eval(a)?.and_then(|v| v.scalar_string());
                let b = self.eval(b)?.and_then(|v| v.scalar_string());
                Ok(a.zip(b).map(|(a, b)| a == b))
            }
            "Fn::Not" => {
                let [inner] = args::<1>(name, arg)?;
                Ok(self.condition_expr(inner)?.map(|b| !b))
            }
            "Fn::And" | "Fn::Or" => {
                let Some(items) = arg.as_seq() else {
                    return err(format!("{name} needs a list of conditions"));
                };
                let is_and = name == "Fn::And";
                let mut unknown = false;
                for item in items {
                    match self.condition_expr(item)? {
                        Some(b) if b != is_and => return Ok(Some(b)),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                Ok((!unknown).then_some(is_and))
            }
            _ => Ok(None),
        }
    }
}

fn args<'v, const N: usize>(name: &str, arg: &'v Value) -> Result<[&'v Value; N], EvalError> {
    let items = arg.as_seq().unwrap_or_default();
    if items.len() != N {
        return err(format!("{name} needs a list of {N} arguments, found {}", describe_len(arg)));
    }
    Ok(std::array::from_fn(|i| &items[i]))
}

fn describe_len(v: &Value) -> String {
    match v {
        Value::Seq(items) => format!("{} arguments", items.len()),
        other => other.kind().to_string(),
    }
}

fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

fn url_suffix(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "amazonaws.com.cn",
        _ => "amazonaws.com",
    }
}

/// A piece of a `Fn::Sub` string.
#[derive(Debug, PartialEq)]
pub enum SubPiece<'s> {
    Text(&'s str),
    Var(&'s str),
}

/// Splits a `Fn::Sub` string into literal text and `${Var}` references; `${!Literal}` is the
/// escape for a literal `${Literal}`.
pub fn sub_pieces(text: &str) -> Vec<SubPiece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        let inner = &rest[start + 2..start + len];
        if start > 0 {
            out.push(SubPiece::Text(&rest[..start]));
        }
        if let Some(literal) = inner.strip_prefix('!') {
            out.push(SubPiece::Text("${"));
            out.push(SubPiece::Text(literal));
            out.push(SubPiece::Text("}"));
        } else {
            out.push(SubPiece::Var(inner.trim()));
        }
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        out.push(SubPiece::Text(rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    struct Fixture {
        params: IndexMap<String, ParamValue>,
        conditions: IndexMap<String, Value>,
        mappings: IndexMap<String, Value>,
        pseudo: Pseudo,
    }

    impl Fixture {
        fn new() -> Self {
            let params = IndexMap::from([
                ("Stage".to_string(), ParamValue::String("dev".into())),
                ("Dir".to_string(), ParamValue::String("src/app".into())),
                ("Subnets".to_string(), ParamValue::List(vec!["a".into(), "b".into()])),
            ]);
            let conditions = yaml(
                "IsDev: !Equals [!Ref Stage, dev]\nIsProd: !Not [!Condition IsDev]\nBoth: !And [!Condition IsDev, !Equals [a, a]]\nLoop: !Condition Loop\n",
            );
            let mappings = yaml("Code:\n  dev:\n    Path: src/dev\n");
            Fixture {
                params,
                conditions: conditions.as_map().unwrap().clone(),
                mappings: mappings.as_map().unwrap().clone(),
                pseudo: Pseudo { region: Some("eu-west-1".into()), ..Pseudo::default() },
            }
        }

        fn scope(&self) -> Scope<'_> {
            Scope::new(&self.params, &self.conditions, &self.mappings, &self.pseudo)
        }
    }

    #[test]
    fn ref_sub_join_select_findinmap() {
        let f = Fixture::new();
        let s = f.scope();
        assert_eq!(s.eval_string(&yaml("!Ref Dir")).unwrap().as_deref(), Some("src/app"));
        assert_eq!(
            s.eval_string(&yaml("!Sub 'src/${Stage}/${AWS::Region}'")).unwrap().as_deref(),
            Some("src/dev/eu-west-1")
        );
        assert_eq!(s.eval_string(&yaml("!Sub ['${X}/y', {X: !Ref Stage}]")).unwrap().as_deref(), Some("dev/y"));
        assert_eq!(s.eval_string(&yaml("!Sub 'a-${!Literal}'")).unwrap().as_deref(), Some("a-${Literal}"));
        assert_eq!(s.eval_string(&yaml("!Join ['/', [src, !Ref Stage]]")).unwrap().as_deref(), Some("src/dev"));
        assert_eq!(s.eval_string(&yaml("!Select [1, !Ref Subnets]")).unwrap().as_deref(), Some("b"));
        assert_eq!(s.eval_string(&yaml("!FindInMap [Code, !Ref Stage, Path]")).unwrap().as_deref(), Some("src/dev"));
        assert_eq!(s.eval_string(&yaml("!Ref AWS::Partition")).unwrap().as_deref(), Some("aws"));
    }

    #[test]
    fn conditions_pick_branches() {
        let f = Fixture::new();
        let s = f.scope();
        assert_eq!(s.eval_string(&yaml("!If [IsDev, a, b]")).unwrap().as_deref(), Some("a"));
        assert_eq!(s.eval_string(&yaml("!If [IsProd, a, b]")).unwrap().as_deref(), Some("b"));
        assert_eq!(s.condition("Both").unwrap(), Some(true));
        assert!(s.eval(&yaml("!If [IsProd, a, !Ref AWS::NoValue]")).unwrap().is_none());
    }

    #[test]
    fn novalue_drops_map_entries_and_list_items() {
        let f = Fixture::new();
        let v = f.scope().eval(&yaml("A: !Ref AWS::NoValue\nB: [1, !Ref AWS::NoValue, 2]\n")).unwrap().unwrap();
        assert_eq!(v, yaml("B: [1, 2]"));
    }

    #[test]
    fn unknowable_values_stay_unevaluated() {
        let f = Fixture::new();
        let s = f.scope();
        let getatt = yaml("!GetAtt Fn.Arn");
        assert_eq!(s.eval(&getatt).unwrap(), Some(getatt.clone()));
        assert_eq!(s.eval_string(&yaml("!Sub '${Fn.Arn}/x'")).unwrap(), None);
        assert_eq!(s.eval_string(&yaml("!Ref SomeResource")).unwrap(), None);
        assert_eq!(s.eval_string(&yaml("!Ref AWS::AccountId")).unwrap(), None);
    }

    #[test]
    fn bad_intrinsics_are_errors() {
        let f = Fixture::new();
        let s = f.scope();
        assert!(s.eval(&yaml("!If [IsDev, a]")).unwrap_err().0.contains("3 arguments"));
        assert!(s.eval(&yaml("!If [Nope, a, b]")).unwrap_err().0.contains("unknown condition `Nope`"));
        assert!(s.condition("Loop").unwrap_err().0.contains("refers to itself"));
        assert!(s.eval(&yaml("!Select [5, [a]]")).unwrap_err().0.contains("out of range"));
        assert!(s.eval(&yaml("!FindInMap [Code, prod, Path]")).unwrap_err().0.contains("no entry"));
    }

    #[test]
    fn referring_to_a_parameter_without_a_value_says_how_to_give_it() {
        let f = Fixture::new();
        let missing = ["Dir2".to_string()];
        let s = f.scope().with_missing(&missing);
        let e = s.eval(&yaml("!Sub 'src/${Dir2}'")).unwrap_err();
        assert!(e.0.contains("parameter `Dir2` has no value") && e.0.contains("--parameter-overrides Dir2="), "{e}");
    }

    #[test]
    fn sub_pieces_split() {
        assert_eq!(
            sub_pieces("a${B}c${!D}${E.F}"),
            vec![
                SubPiece::Text("a"),
                SubPiece::Var("B"),
                SubPiece::Text("c"),
                SubPiece::Text("${"),
                SubPiece::Text("D"),
                SubPiece::Text("}"),
                SubPiece::Var("E.F"),
            ]
        );
    }
}
