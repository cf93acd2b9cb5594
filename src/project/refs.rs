//! Checks that every `Ref`, `Fn::GetAtt`, `Fn::Sub` variable and condition name points at
//! something the template declares, so a typo is reported before anything is built or deployed.

use indexmap::IndexSet;

use super::intrinsics::{PSEUDO_PARAMETERS, SubPiece, sub_pieces};
use super::value::Value;

/// Names a template may refer to.
pub struct Names<'a> {
    pub parameters: &'a IndexSet<String>,
    pub resources: &'a IndexSet<String>,
    pub conditions: &'a IndexSet<String>,
    /// With the SAM transform, resources SAM generates (`HelloFnRole`, `ServerlessRestApi`, ...)
    /// are valid targets too.
    pub sam: bool,
}

impl Names<'_> {
    fn is_ref_target(&self, name: &str) -> bool {
        self.parameters.contains(name) || self.is_resource(name) || PSEUDO_PARAMETERS.contains(&name)
    }

    fn is_resource(&self, name: &str) -> bool {
        self.resources.contains(name)
            || (self.sam
                && (name.starts_with("ServerlessRestApi")
                    || name.starts_with("ServerlessHttpApi")
                    || name.starts_with("ServerlessWebSocketApi")
                    || self.resources.iter().any(|r| name.starts_with(r.as_str()))))
    }
}

/// A reference that does not resolve: where it is (`Resources.X`, `Outputs.Y`, ...) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRef {
    pub place: String,
    pub message: String,
}

/// Walks `v` (found at `place`) and collects bad references.
pub fn check(v: &Value, place: &str, names: &Names, out: &mut Vec<BadRef>) {
    let mut bad = |message: String| out.push(BadRef { place: place.to_string(), message });
    if let Some((func, arg)) = v.as_intrinsic() {
        match func {
            "Ref" => {
                if let Some(target) = arg.as_str()
                    && !names.is_ref_target(target)
                {
                    bad(format!(
                        "`!Ref {target}` refers to no parameter or resource; declare parameter `{target}` under Parameters or fix the name"
                    ));
                }
            }
            "Fn::GetAtt" => {
                let resource = match arg {
                    Value::Seq(items) => items.first().and_then(Value::as_str).map(str::to_string),
                    Value::String(s) => s.split('.').next().map(str::to_string),
                    _ => None,
                };
                if let Some(r) = resource
                    && !names.is_resource(&r)
                {
                    bad(format!("`!GetAtt {r}...` refers to no resource named `{r}`; fix the name"));
                }
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (Some(s.as_str()), None),
                    Value::Seq(items) => (items.first().and_then(Value::as_str), items.get(1).and_then(Value::as_map)),
                    _ => (None, None),
                };
                for piece in text.map(sub_pieces).unwrap_or_default() {
                    let SubPiece::Var(var) = piece else { continue };
                    if vars.is_some_and(|m| m.contains_key(var)) {
                        continue;
                    }
                    let ok = match var.split_once('.') {
                        Some((res, _)) => names.is_resource(res),
                        None => names.is_ref_target(var),
                    };
                    if !ok {
                        bad(format!(
                            "`${{{var}}}` in a !Sub refers to no parameter or resource; declare it or fix the name"
                        ));
                    }
                }
            }
            "Condition" | "Fn::If" => {
                let cond = match (func, arg) {
                    ("Condition", Value::String(s)) => Some(s.as_str()),
                    ("Fn::If", Value::Seq(items)) => items.first().and_then(Value::as_str),
                    _ => None,
                };
                if let Some(c) = cond
                    && !names.conditions.contains(c)
                {
                    bad(format!("condition `{c}` is not defined; add it under Conditions or fix the name"));
                }
            }
            _ => {}
        }
    }
    match v {
        Value::Map(m) => {
            for item in m.values() {
                check(item, place, names, out);
            }
        }
        Value::Seq(items) => {
            for item in items {
                check(item, place, names, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn bad_refs(v: &str, sam: bool) -> Vec<String> {
        let parameters: IndexSet<String> = ["Stage".to_string()].into();
        let resources: IndexSet<String> = ["HelloFn".to_string(), "Bucket".to_string()].into();
        let conditions: IndexSet<String> = ["IsDev".to_string()].into();
        let names = Names { parameters: &parameters, resources: &resources, conditions: &conditions, sam };
        let mut out = Vec::new();
        check(&yaml(v), "Resources.X", &names, &mut out);
        out.into_iter().map(|b| b.message).collect()
    }

    #[test]
    fn good_references_pass() {
        let v = "A: !Ref Stage\nB: !GetAtt HelloFn.Arn\nC: !Sub '${Stage}-${AWS::Region}-${Bucket.Arn}-${!Lit}-${V}'\nD: !If [IsDev, !Ref Bucket, !Ref AWS::NoValue]\nE: {Fn::Sub: ['${V}', {V: x}]}\n";
        let v = v.replace("-${V}'", "'");
        assert_eq!(bad_refs(&v, false), Vec::<String>::new());
    }

    #[test]
    fn unknown_names_are_reported() {
        let errs = bad_refs("A: !Ref Stag\nB: !GetAtt Nope.Arn\nC: !Sub '${Missing}'\nD: !If [IsProd, a, b]\n", false);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains("`!Ref Stag`"));
        assert!(errs[1].contains("`Nope`"));
        assert!(errs[2].contains("`${Missing}`"));
        assert!(errs[3].contains("condition `IsProd`"));
    }

    #[test]
    fn sam_generated_names_are_allowed_with_the_transform() {
        assert_eq!(
            bad_refs("A: !Ref HelloFnRole\nB: !Sub 'https://${ServerlessRestApi}.x'\n", true),
            Vec::<String>::new()
        );
        assert_eq!(bad_refs("A: !Ref HelloFnRole\n", false).len(), 1);
    }
}
