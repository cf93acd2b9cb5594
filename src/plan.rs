//! Pure decisions: given what was fingerprinted and what the artifact store holds, what to do.
//! No I/O here, so every case is a plain unit test.

use std::collections::HashMap;

/// What to do for one build key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildAction {
    /// The store has an artifact for this exact key.
    Cached,
    /// Build it.
    Build,
}

/// Resources that share one build key (e.g. two functions with the same CodeUri, runtime and
/// architecture) are built once; the first in template order stands for the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildGroup {
    pub key: String,
    pub representative: String,
    pub members: Vec<String>,
    pub action: BuildAction,
}

/// Groups `(id, key)` pairs (in template order) by key and decides each group's action.
pub fn plan_builds(prepared: &[(String, String)], in_store: impl Fn(&str) -> bool, force: bool) -> Vec<BuildGroup> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<BuildGroup> = Vec::new();
    for (id, key) in prepared {
        match index.get(key.as_str()) {
            Some(&i) => groups[i].members.push(id.clone()),
            None => {
                index.insert(key, groups.len());
                let action = if !force && in_store(key) { BuildAction::Cached } else { BuildAction::Build };
                groups.push(BuildGroup {
                    key: key.clone(),
                    representative: id.clone(),
                    members: vec![id.clone()],
                    action,
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn new_changed_and_unchanged() {
        let store = ["k-old"];
        let groups = plan_builds(&pairs(&[("A", "k-old"), ("B", "k-new")]), |k| store.contains(&k), false);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].representative.as_str(), &groups[0].action), ("A", &BuildAction::Cached));
        assert_eq!((groups[1].representative.as_str(), &groups[1].action), ("B", &BuildAction::Build));
    }

    #[test]
    fn shared_code_is_built_once_by_the_first() {
        let groups = plan_builds(&pairs(&[("A", "k"), ("B", "x"), ("C", "k")]), |_| false, false);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].members, ["A", "C"]);
        assert_eq!(groups[0].representative, "A");
    }

    #[test]
    fn force_rebuilds_what_is_cached() {
        let groups = plan_builds(&pairs(&[("A", "k")]), |_| true, true);
        assert_eq!(groups[0].action, BuildAction::Build);
    }
}
