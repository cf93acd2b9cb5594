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

/// Words that mark a production stack.
const PRODUCTION_WORDS: &[&str] = &["prod", "production", "live"];
/// Tags and parameters that name a stack's environment.
const ENVIRONMENT_KEYS: &[&str] = &["environment", "env", "stage"];

/// The words of a name: split at non-alphanumerics and camelCase humps, lowercased
/// (`myApp-ProdAPI` → my, app, prod, api).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let hump = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase()) && chars[i - 1].is_uppercase());
        if hump && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Why a stack looks like production, if it does: its name, or an `Environment`/`Env`/`Stage`
/// tag or parameter, has the word prod, production or live. `lamb sync` pushes code outside
/// CloudFormation, which is for development stacks.
pub fn production_marker<'a>(
    stack: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let marked = |s: &str| words(s).iter().any(|w| PRODUCTION_WORDS.contains(&w.as_str()));
    if marked(stack) {
        return Some(format!("its name `{stack}`"));
    }
    let env_key = |k: &str| ENVIRONMENT_KEYS.contains(&k.to_ascii_lowercase().as_str());
    if let Some((k, v)) = tags.into_iter().find(|(k, v)| env_key(k) && marked(v)) {
        return Some(format!("its tag {k}={v}"));
    }
    if let Some((k, v)) = parameters.into_iter().find(|(k, v)| env_key(k) && marked(v)) {
        return Some(format!("its parameter {k}={v}"));
    }
    None
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

/// Whether the deployed infrastructure is known to match the project without asking
/// CloudFormation: lamb recorded this fingerprint at its last deploy (or check), and the stack
/// has not been updated by anyone since.
pub fn infra_known_current(local_fingerprint: &str, recorded: Option<(&str, &str)>, stack_updated: &str) -> bool {
    recorded.is_some_and(|(fp, updated)| fp == local_fingerprint && updated == stack_updated)
}

/// What a sync pass does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// Template and parameters match the stack: push code only.
    Code,
    /// Deploy through CloudFormation, for these reasons.
    Infra(Vec<String>),
    /// Infrastructure changed but `--code` forbids deploying it: push code anyway and report
    /// the reasons as skipped.
    CodeSkippingInfra(Vec<String>),
}

/// Decides between a code push and a CloudFormation deploy.
pub fn sync_mode(
    stack_exists: bool,
    infra_reasons: Vec<String>,
    missing_functions: &[String],
    code_only: bool,
) -> SyncMode {
    let mut reasons = infra_reasons;
    if !stack_exists {
        reasons.insert(0, "the stack does not exist yet".into());
    }
    reasons.extend(missing_functions.iter().map(|f| format!("function {f} is not in the stack yet")));
    match (reasons.is_empty(), code_only) {
        (true, _) => SyncMode::Code,
        (false, false) => SyncMode::Infra(reasons),
        (false, true) => SyncMode::CodeSkippingInfra(reasons),
    }
}

/// A function as a code sync sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState<'a> {
    /// CodeSha256 of the freshly built zip (None when it failed to build or is not built).
    pub local_sha: Option<&'a str>,
    /// CodeSha256 Lambda reports now, and the layers it uses (None: the function is gone).
    pub remote: Option<(&'a str, &'a [String])>,
}

/// What to do to one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionAction {
    /// Nothing: no write call at all.
    Unchanged,
    /// Update its code, and/or point it at new layer versions (in this order).
    Update { code: bool, layers: Option<Vec<String>> },
    /// It is not deployed (deleted outside lamb, or never deployed).
    Missing,
    /// No local artifact to push.
    NotBuilt,
}

/// Replaces layer versions in `current` whose layer was republished (`swaps`: layer ARN
/// without version → new version ARN), keeping every other layer and the order. `None` when
/// nothing changes.
pub fn swap_layers(current: &[String], swaps: &HashMap<String, String>) -> Option<Vec<String>> {
    let swapped: Vec<String> = current
        .iter()
        .map(|arn| swaps.get(crate::aws::lambda::layer_base(arn)).cloned().unwrap_or_else(|| arn.clone()))
        .collect();
    (swapped.as_slice() != current).then_some(swapped)
}

/// Decides one function's action: code is pushed only when its hash differs from what Lambda
/// runs, layers only when one of them was republished.
pub fn function_action(f: &FunctionState, swaps: &HashMap<String, String>) -> FunctionAction {
    let Some((remote_sha, remote_layers)) = f.remote else { return FunctionAction::Missing };
    let layers = swap_layers(remote_layers, swaps);
    let Some(local) = f.local_sha else {
        return match layers {
            Some(l) => FunctionAction::Update { code: false, layers: Some(l) },
            None => FunctionAction::NotBuilt,
        };
    };
    let code = local != remote_sha;
    if !code && layers.is_none() { FunctionAction::Unchanged } else { FunctionAction::Update { code, layers } }
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    #[test]
    fn infra_is_current_only_when_fingerprint_and_stack_time_both_match() {
        assert!(infra_known_current("fp", Some(("fp", "t1")), "t1"));
        assert!(!infra_known_current("fp", Some(("fp", "t1")), "t2"), "someone else deployed");
        assert!(!infra_known_current("fp2", Some(("fp", "t1")), "t1"), "template changed");
        assert!(!infra_known_current("fp", None, "t1"), "never recorded");
    }

    #[test]
    fn mode_follows_reasons_and_code_flag() {
        assert_eq!(sync_mode(true, vec![], &[], false), SyncMode::Code);
        assert_eq!(
            sync_mode(true, vec!["template changed".into()], &[], false),
            SyncMode::Infra(vec!["template changed".into()])
        );
        assert_eq!(
            sync_mode(true, vec![], &["NewFn".into()], true),
            SyncMode::CodeSkippingInfra(vec!["function NewFn is not in the stack yet".into()])
        );
        let SyncMode::Infra(r) = sync_mode(false, vec![], &[], false) else { panic!() };
        assert_eq!(r, ["the stack does not exist yet"]);
    }

    fn swaps() -> HashMap<String, String> {
        HashMap::from([(
            "arn:aws:lambda:r:1:layer:shared".to_string(),
            "arn:aws:lambda:r:1:layer:shared:8".to_string(),
        )])
    }

    #[test]
    fn unchanged_code_and_layers_make_no_call() {
        let layers = vec!["arn:aws:lambda:r:1:layer:other:2".to_string()];
        let f = FunctionState { local_sha: Some("abc"), remote: Some(("abc", &layers)) };
        assert_eq!(function_action(&f, &swaps()), FunctionAction::Unchanged);
    }

    #[test]
    fn changed_code_is_pushed() {
        let f = FunctionState { local_sha: Some("new"), remote: Some(("old", &[])) };
        assert_eq!(function_action(&f, &swaps()), FunctionAction::Update { code: true, layers: None });
    }

    #[test]
    fn a_republished_layer_is_swapped_in_place_keeping_the_others() {
        let layers = vec![
            "arn:aws:lambda:r:1:layer:first:1".to_string(),
            "arn:aws:lambda:r:1:layer:shared:7".to_string(),
            "arn:aws:lambda:r:1:layer:last:3".to_string(),
        ];
        let f = FunctionState { local_sha: Some("abc"), remote: Some(("abc", &layers)) };
        assert_eq!(
            function_action(&f, &swaps()),
            FunctionAction::Update {
                code: false,
                layers: Some(vec![
                    "arn:aws:lambda:r:1:layer:first:1".into(),
                    "arn:aws:lambda:r:1:layer:shared:8".into(),
                    "arn:aws:lambda:r:1:layer:last:3".into()
                ])
            }
        );
    }

    #[test]
    fn missing_and_unbuilt_functions() {
        assert_eq!(
            function_action(&FunctionState { local_sha: Some("a"), remote: None }, &swaps()),
            FunctionAction::Missing
        );
        assert_eq!(
            function_action(&FunctionState { local_sha: None, remote: Some(("a", &[])) }, &swaps()),
            FunctionAction::NotBuilt
        );
    }

    #[test]
    fn production_stacks_are_recognised_by_name_tag_or_parameter() {
        let none: [(&str, &str); 0] = [];
        for name in ["prod", "app-prod", "my_production_api", "ShopProdStack", "LIVE-site", "api-PROD-eu", "myAppProd"]
        {
            assert!(production_marker(name, none, none).is_some(), "{name}");
        }
        for name in
            ["app-dev", "product-catalog", "products", "delivery", "olive-oil", "lively", "reproduce", "staging"]
        {
            assert_eq!(production_marker(name, none, none), None, "{name}");
        }
        assert_eq!(
            production_marker("app", [("Owner", "prod-team"), ("Stage", "Prod")], none).as_deref(),
            Some("its tag Stage=Prod")
        );
        assert_eq!(
            production_marker("app", [("environment", "live")], none).as_deref(),
            Some("its tag environment=live")
        );
        assert_eq!(
            production_marker("app", [("Environment", "dev")], [("Env", "production")]).as_deref(),
            Some("its parameter Env=production")
        );
        // Only environment-like keys count: a team called "prod-team" is not a stage.
        assert_eq!(production_marker("app", [("Owner", "prod-team")], [("Bucket", "prod-assets")]), None);
        assert_eq!(words("myApp-ProdAPI"), ["my", "app", "prod", "api"]);
    }
}
