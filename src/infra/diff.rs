//! Whether the project's infrastructure differs from what a stack runs: root and nested
//! templates (code locations stripped), parameter values and the configured tags. Pure: the
//! deployed side is read by the caller ([`crate::sync`]) and handed in.

use std::collections::HashMap;

use crate::project::value::Value;
use crate::project::{Project, template};

/// What a stack runs, as CloudFormation reports it.
pub struct Deployed<'a> {
    /// Each of the project's stacks' original template text, by stack path ("" for the root);
    /// `None` when a nested stack is not in the stack yet.
    pub templates: &'a HashMap<String, Option<String>>,
    /// The root stack's parameter values (`****` for NoEcho ones).
    pub parameters: &'a [(String, String)],
    pub tags: &'a [(String, String)],
}

/// Why the project's infrastructure needs a deploy: one reason per difference, in the order
/// of the project's stacks, then parameters, then `tags`. Empty when they match.
pub fn differences(project: &Project, deployed: &Deployed<'_>, tags: &[(String, String)]) -> Vec<String> {
    let mut reasons = Vec::new();
    for stack in &project.stacks {
        let Some(Some(deployed_text)) = deployed.templates.get(&stack.path) else {
            reasons.push(format!("nested stack {} is not in the stack yet", stack.path));
            continue;
        };
        let ids = super::local_ids(project, stack);
        let local = super::strip(&stack.file.doc, &ids, &super::definition_shas(project, stack));
        match template::parse(std::path::Path::new("deployed.yaml"), deployed_text) {
            Ok(deployed) => {
                let deployed = super::strip(&deployed, &ids, &HashMap::new());
                if deployed != local {
                    reasons.push(format!(
                        "{} differs from the deployed template: {}",
                        stack.file.path.display(),
                        first_difference(&local, &deployed)
                    ));
                }
            }
            Err(e) => {
                reasons.push(format!("the deployed template of {} cannot be compared ({e})", stack.file.path.display()))
            }
        }
    }
    let params: HashMap<&str, &str> = deployed.parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (k, v) in &project.root_stack().parameters {
        let local = v.as_cfn_string();
        match params.get(k.as_str()) {
            Some(&"****") => reasons.push(format!("parameter {k} is NoEcho, so its deployed value cannot be compared")),
            Some(d) if *d == local => {}
            Some(d) => reasons.push(format!("parameter {k} is `{local}` here but `{d}` in the stack")),
            None => reasons.push(format!("parameter {k} is not set in the stack")),
        }
    }
    for (k, v) in tags {
        match deployed.tags.iter().find(|(tk, _)| tk == k) {
            Some((_, tv)) if tv == v => {}
            Some((_, tv)) => reasons.push(format!("tag {k} is `{v}` here but `{tv}` on the stack")),
            None => reasons.push(format!("tag {k} is not on the stack")),
        }
    }
    reasons
}

/// Names the first place where two templates differ, as a path (`Resources.Fn.Properties...`).
fn first_difference(a: &Value, b: &Value) -> String {
    fn walk(a: &Value, b: &Value, path: &str, depth: usize) -> Option<String> {
        if a == b {
            return None;
        }
        let (Some(am), Some(bm)) = (a.as_map(), b.as_map()) else { return Some(format!("{path} changed")) };
        if depth == 0 {
            return Some(format!("{path} changed"));
        }
        for (k, v) in am {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match bm.get(k) {
                None => return Some(format!("{p} is new")),
                Some(other) => {
                    if let Some(d) = walk(v, other, &p, depth - 1) {
                        return Some(d);
                    }
                }
            }
        }
        bm.keys()
            .find(|k| !am.contains_key(*k))
            .map(|k| if path.is_empty() { format!("{k} was removed") } else { format!("{path}.{k} was removed") })
    }
    walk(a, b, "", 5).unwrap_or_else(|| "the documents differ".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_path() {
        let a: Value = serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 3}\n").unwrap();
        let b: Value = serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 5}\n").unwrap();
        assert_eq!(first_difference(&a, &b), "Resources.Fn.Properties.Timeout changed");
        let c: Value =
            serde_norway::from_str("Resources:\n  Fn:\n    Properties: {Timeout: 3}\n  New: {Type: X}\n").unwrap();
        assert_eq!(first_difference(&c, &a), "Resources.New is new");
        assert_eq!(first_difference(&a, &c), "Resources.New was removed");
    }
}
