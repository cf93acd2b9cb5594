//! The URLs a deployed stack answers on: each API's stages and each function URL, found from
//! the stack's resources and processed templates. `lamb outputs` and `lamb list endpoints`
//! both print them.

use std::collections::HashMap;

use serde::Serialize;

use crate::Error;
use crate::aws::Aws;
use crate::aws::cloudformation::{CfnApi, StackResource};

/// One URL a deployed stack answers on.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Endpoint {
    /// `rest-api`, `http-api` or `function-url`.
    pub kind: &'static str,
    /// Logical id of the API, or of the function for its URL (`Child/Id` in nested stacks).
    pub id: String,
    pub url: String,
}

/// `Child/` for a resource of a nested stack `Child`, "" for the root stack's.
pub(super) fn stack_prefix(logical_id: &str) -> &str {
    logical_id.rfind('/').map_or("", |i| &logical_id[..=i])
}

/// Stage names by the logical id of their API, from a processed template: each
/// `AWS::ApiGateway::Stage` or `Deployment` (`RestApiId`) and `AWS::ApiGatewayV2::Stage`
/// (`ApiId`) that names a stage and refers to its API with `Ref`.
fn api_stages(template: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let Ok(doc) = crate::project::template::parse(std::path::Path::new("processed.yaml"), template) else {
        return out;
    };
    let Some(resources) = doc.get("Resources").and_then(|r| r.as_map()) else { return out };
    // A deployment with a StageName creates that stage too; SAM's all say `Stage`, beside the
    // real one, so they count only for an API without Stage resources.
    let mut by_deployment: HashMap<String, Vec<String>> = HashMap::new();
    for res in resources.values() {
        let (key, found) = match res.get("Type").and_then(|t| t.as_str()) {
            Some("AWS::ApiGateway::Stage") => ("RestApiId", &mut out),
            Some("AWS::ApiGateway::Deployment") => ("RestApiId", &mut by_deployment),
            Some("AWS::ApiGatewayV2::Stage") => ("ApiId", &mut out),
            _ => continue,
        };
        let props = res.get("Properties");
        let api = props.and_then(|p| p.get(key)).and_then(|v| match v.as_intrinsic() {
            Some(("Ref", crate::project::value::Value::String(id))) => Some(id.clone()),
            _ => None,
        });
        let name = props.and_then(|p| p.get("StageName")).and_then(|v| v.as_str()).map(str::to_string);
        if let (Some(api), Some(name)) = (api, name) {
            found.entry(api).or_default().push(name);
        }
    }
    for (api, names) in by_deployment {
        out.entry(api).or_insert(names);
    }
    for names in out.values_mut() {
        names.sort();
        names.dedup();
    }
    out
}

/// The endpoints of `stack` (root) whose resources (nested ones included) are `resources`.
pub(super) async fn endpoints(
    aws: &Aws,
    cfn: &CfnApi,
    stack: &str,
    resources: &[StackResource],
) -> Result<Vec<Endpoint>, Error> {
    // Which stages belong to which API: the processed template of each stack says (a
    // stack may hold several APIs, each with its own stages).
    let mut stages: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let has_api = |prefix: &str| {
        resources.iter().any(|r| {
            matches!(r.resource_type.as_str(), "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api")
                && stack_prefix(&r.logical_id) == prefix
        })
    };
    let stacks = std::iter::once((String::new(), stack.to_string())).chain(
        resources
            .iter()
            .filter(|r| r.resource_type == "AWS::CloudFormation::Stack" && !r.physical_id.is_empty())
            .map(|r| (format!("{}/", r.logical_id), r.physical_id.clone())),
    );
    for (prefix, physical) in stacks {
        if has_api(&prefix) {
            let text = cfn.processed_template(&physical).await?;
            stages.insert(prefix, api_stages(&text));
        }
    }
    let mut endpoints = Vec::new();
    for r in resources {
        let suffix = if aws.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let prefix = stack_prefix(&r.logical_id);
        let local = &r.logical_id[prefix.len()..];
        let names = stages.get(prefix).and_then(|m| m.get(local)).cloned().unwrap_or_default();
        let base = format!("https://{}.execute-api.{}.{suffix}", r.physical_id, aws.region);
        match r.resource_type.as_str() {
            "AWS::ApiGateway::RestApi" => {
                for stage in names {
                    endpoints.push(Endpoint {
                        kind: "rest-api",
                        id: r.logical_id.clone(),
                        url: format!("{base}/{stage}/"),
                    });
                }
            }
            "AWS::ApiGatewayV2::Api" => {
                // The `$default` stage (what SAM's HttpApi gets) is served at the root.
                let mut paths: Vec<String> =
                    names.iter().map(|s| if s == "$default" { "/".to_string() } else { format!("/{s}/") }).collect();
                if paths.is_empty() {
                    paths.push("/".into());
                }
                for path in paths {
                    endpoints.push(Endpoint {
                        kind: "http-api",
                        id: r.logical_id.clone(),
                        url: format!("{base}{path}"),
                    });
                }
            }
            "AWS::Lambda::Url" => {
                let function = r.logical_id.trim_end_matches("Url");
                if let Some(name) = resources.iter().find(|f| f.logical_id == function).map(|f| f.physical_id.clone())
                    && let Ok(out) = aws.lambda.get_function_url_config().function_name(name).send().await
                {
                    endpoints.push(Endpoint {
                        kind: "function-url",
                        id: function.to_string(),
                        url: out.function_url().to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stages_belong_to_the_api_they_name() {
        let processed = r#"{"Resources": {
            "A": {"Type": "AWS::ApiGateway::RestApi"},
            "B": {"Type": "AWS::ApiGateway::RestApi"},
            "AStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "A"}, "StageName": "alpha"}},
            "BDeployment": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": "B"}, "StageName": "Stage"}},
            "BStage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "B"}, "StageName": "beta"}},
            "C": {"Type": "AWS::ApiGateway::RestApi"},
            "CDeployment": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": "C"}, "StageName": "v1"}},
            "H": {"Type": "AWS::ApiGatewayV2::Api"},
            "HStage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {"ApiId": {"Ref": "H"}, "StageName": "$default"}},
            "Odd": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": "abc123", "StageName": "x"}}
        }}"#;
        let stages = super::api_stages(processed);
        assert_eq!(stages.get("A").unwrap(), &["alpha"]);
        assert_eq!(stages.get("B").unwrap(), &["beta"]);
        assert_eq!(stages.get("C").unwrap(), &["v1"], "only a deployment names C's stage");
        assert_eq!(stages.get("H").unwrap(), &["$default"]);
        assert_eq!(stages.len(), 4, "{stages:?}");
        assert_eq!(super::stack_prefix("Child/Grand/Api"), "Child/Grand/");
        assert_eq!(super::stack_prefix("Api"), "");
    }
}
