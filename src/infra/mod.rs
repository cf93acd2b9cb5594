//! The infrastructure side of a template: what it looks like with code locations taken out
//! (to decide whether a change needs CloudFormation or only a code push, as `sam sync` does,
//! but on every sync), and the packaged form that points at S3 instead of local paths.

pub mod diff;

use std::collections::HashMap;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::fingerprint::hex;
use crate::project::value::Value;
use crate::project::{Code, Project, Stack};

/// The property that holds a resource type's code (or nested template) location.
pub fn code_key(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "AWS::Serverless::Function" => Some("CodeUri"),
        "AWS::Serverless::LayerVersion" => Some("ContentUri"),
        "AWS::Lambda::Function" => Some("Code"),
        "AWS::Lambda::LayerVersion" => Some("Content"),
        "AWS::Serverless::Application" => Some("Location"),
        "AWS::CloudFormation::Stack" => Some("TemplateURL"),
        "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" | "AWS::Serverless::StateMachine" => Some("DefinitionUri"),
        _ => None,
    }
}

/// Content hashes (hex) of the local definition files in `stack`, by logical id.
pub fn definition_shas(project: &Project, stack: &Stack) -> HashMap<String, String> {
    project
        .definitions
        .iter()
        .filter(|d| d.stack == stack.path)
        .filter_map(|d| crate::fingerprint::hash_file(&d.path).ok().map(|h| (d.logical_id.clone(), hex(&h))))
        .collect()
}

/// A definition as compared: its content hash. Local files are given by `shas`; a packaged
/// one (`s3://bucket/prefix/<sha256>.yaml`, or `{Bucket, Key}`) names its hash in its key.
fn normal_definition(value: &Value, local: Option<&String>) -> Option<Value> {
    if let Some(sha) = local {
        return Some(Value::String(format!("sha256:{sha}")));
    }
    let key = match value {
        Value::String(s) => s.strip_prefix("s3://").and_then(|r| r.split_once('/')).map(|(_, k)| k.to_string()),
        Value::Map(m) => m.get("Key").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }?;
    let stem = key.rsplit('/').next()?.split('.').next()?;
    (stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit())).then(|| Value::String(format!("sha256:{stem}")))
}

/// Logical ids (within `stack`) whose code or nested template lamb packages from local files.
pub fn local_ids(project: &Project, stack: &Stack) -> Vec<String> {
    let prefix = if stack.path.is_empty() { String::new() } else { format!("{}/", stack.path) };
    let strip_prefix = |id: &str| id.strip_prefix(&prefix).filter(|rest| !rest.contains('/')).map(str::to_string);
    let mut ids: Vec<String> = project
        .code_resources()
        .filter(|r| matches!(r.code, Code::Dir(_) | Code::Zip(_) | Code::File(_)))
        .filter_map(|r| strip_prefix(&r.id))
        .collect();
    ids.extend(project.nested.iter().filter(|n| n.template.is_some()).filter_map(|n| strip_prefix(&n.id)));
    ids
}

/// `doc` without the code locations (and build Metadata) of `ids`, and with definition files
/// reduced to their content hashes (`shas`, for local ones): two templates that differ only in
/// code need no CloudFormation deploy, while a changed definition does.
pub fn strip(doc: &Value, ids: &[String], shas: &HashMap<String, String>) -> Value {
    let mut doc = doc.clone();
    let Value::Map(root) = &mut doc else { return doc };
    if let Some(Value::Map(resources)) = root.get_mut("Resources") {
        for (id, res) in resources.iter_mut() {
            let Value::Map(res) = res else { continue };
            let is_definition = matches!(
                res.get("Type").and_then(Value::as_str),
                Some("AWS::Serverless::Api" | "AWS::Serverless::HttpApi" | "AWS::Serverless::StateMachine")
            );
            if !is_definition {
                continue;
            }
            // A local definition file named in Globals is the resource's own once packaged.
            if res.get("Properties").is_none_or(|p| p.get("DefinitionUri").is_none())
                && let Some(sha) = shas.get(id)
            {
                let props = res.entry("Properties".to_string()).or_insert_with(|| Value::Map(IndexMap::new()));
                if let Value::Map(props) = props {
                    props.insert("DefinitionUri".into(), Value::String(format!("sha256:{sha}")));
                }
            }
            if let Some(Value::Map(props)) = res.get_mut("Properties")
                && let Some(normal) = props.get("DefinitionUri").and_then(|v| normal_definition(v, shas.get(id)))
            {
                props.insert("DefinitionUri".into(), normal);
            }
        }
        for id in ids {
            let Some(Value::Map(res)) = resources.get_mut(id) else { continue };
            let key = res.get("Type").and_then(Value::as_str).and_then(code_key);
            // Build settings and SAM's own bookkeeping (SamResourceId) change no resource.
            res.shift_remove("Metadata");
            if let (Some(key), Some(Value::Map(props))) = (key, res.get_mut("Properties")) {
                props.shift_remove(key);
                if props.is_empty() {
                    res.shift_remove("Properties");
                }
            }
        }
    }
    // A local CodeUri (or DefinitionUri) in Globals is packaged like the resources' own; one in
    // S3 is infrastructure.
    if let Some(Value::Map(globals)) = root.get_mut("Globals") {
        for (section, key) in [("Function", "CodeUri"), ("Api", "DefinitionUri"), ("HttpApi", "DefinitionUri")] {
            if let Some(Value::Map(props)) = globals.get_mut(section)
                && props
                    .get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|u| !u.starts_with("s3://") && !u.starts_with("https://"))
            {
                props.shift_remove(key);
            }
        }
    }
    doc
}

/// A canonical hash of a value: map keys sorted, so key order in the file does not matter.
pub fn hash_value(v: &Value) -> String {
    hex(&Sha256::digest(v.canonical_json().as_bytes()))
}

/// The fingerprint of the project's infrastructure: every stack's template without code
/// locations, plus the parameter values and the settings a deploy passes (stack name, tags).
pub fn fingerprint(project: &Project, stack_name: &str, tags: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(format!("lamb-infra-v1\0{stack_name}\0"));
    for stack in &project.stacks {
        h.update(stack.path.as_bytes());
        let stripped = strip(&stack.file.doc, &local_ids(project, stack), &definition_shas(project, stack));
        h.update(hash_value(&stripped).as_bytes());
        let mut params: Vec<String> = stack.parameters.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        params.sort();
        h.update(params.join("\0").as_bytes());
    }
    for (k, v) in tags {
        h.update(format!("tag\0{k}\0{v}\0"));
    }
    hex(&h.finalize())
}

/// Where packaged code (or a nested template) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, key: String },
    Url(String),
}

/// `doc` with the code locations of the resources in `locations` pointing at S3: what
/// CloudFormation receives. The SAM transform stays, for CloudFormation to expand.
pub fn package(doc: &Value, locations: &HashMap<String, Location>) -> Value {
    let mut doc = doc.clone();
    let Value::Map(root) = &mut doc else { return doc };
    let Some(Value::Map(resources)) = root.get_mut("Resources") else { return doc };
    for (id, location) in locations {
        let Some(Value::Map(res)) = resources.get_mut(id) else { continue };
        let ty = res.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(key) = code_key(&ty) else { continue };
        let value = match (ty.as_str(), location) {
            ("AWS::Lambda::Function" | "AWS::Lambda::LayerVersion", Location::S3 { bucket, key }) => {
                Value::Map(IndexMap::from([
                    ("S3Bucket".to_string(), Value::from(bucket.as_str())),
                    ("S3Key".to_string(), Value::from(key.as_str())),
                ]))
            }
            (_, Location::S3 { bucket, key }) => Value::String(format!("s3://{bucket}/{key}")),
            (_, Location::Url(url)) => Value::String(url.clone()),
        };
        let props = res.entry("Properties".to_string()).or_insert_with(|| Value::Map(IndexMap::new()));
        if let Value::Map(props) = props {
            props.insert(key.to_string(), value);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    const T: &str = "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    CodeUri: src\n    Runtime: python3.12\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: python3.12}\n    Properties:\n      CodeUri: fn\n      Handler: a.b\n      Environment: {Variables: {A: '1'}}\n  Cfn:\n    Type: AWS::Lambda::Function\n    Properties: {Code: cfn, Handler: a.b, Runtime: nodejs20.x, Role: r}\n  Layer:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: layer}\n  Remote:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: s3://b/k.zip, Handler: a.b}\n";

    fn ids() -> Vec<String> {
        ["Fn", "Cfn", "Layer"].map(String::from).to_vec()
    }

    #[test]
    fn code_only_changes_strip_to_the_same_template() {
        let a = yaml(T);
        let b = yaml(
            &T.replace("CodeUri: fn", "CodeUri: s3://bucket/abc.zip")
                .replace("{BuildMethod: python3.12}", "{SamResourceId: Fn}"),
        );
        assert_eq!(strip(&a, &ids(), &HashMap::new()), strip(&b, &ids(), &HashMap::new()));
        assert_eq!(hash_value(&strip(&a, &ids(), &HashMap::new())), hash_value(&strip(&b, &ids(), &HashMap::new())));
    }

    #[test]
    fn infrastructure_changes_do_not() {
        let a = strip(&yaml(T), &ids(), &HashMap::new());
        let env = strip(&yaml(&T.replace("A: '1'", "A: '2'")), &ids(), &HashMap::new());
        assert_ne!(a, env);
        // Code that lamb does not package (already in S3) is infrastructure.
        let remote = strip(&yaml(&T.replace("s3://b/k.zip", "s3://b/other.zip")), &ids(), &HashMap::new());
        assert_ne!(a, remote);
    }

    #[test]
    fn definitions_compare_by_content() {
        let sha = "a".repeat(64);
        let local = yaml(
            "Resources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p, DefinitionUri: api.yaml}\n",
        );
        let deployed = yaml(&format!(
            "Resources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {{StageName: p, DefinitionUri: s3://b/prefix/{sha}.yaml}}\n"
        ));
        let shas = HashMap::from([("Api".to_string(), sha.clone())]);
        assert_eq!(strip(&local, &[], &shas), strip(&deployed, &[], &HashMap::new()));
        let changed = HashMap::from([("Api".to_string(), "b".repeat(64))]);
        assert_ne!(strip(&local, &[], &changed), strip(&deployed, &[], &HashMap::new()));
    }

    #[test]
    fn definitions_from_globals_compare_by_content_as_packaged() {
        let sha = "c".repeat(64);
        let local = yaml(
            "Globals:\n  Api: {DefinitionUri: api.yaml}\n  HttpApi: {DefinitionUri: http.yaml}\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p}\n  Http:\n    Type: AWS::Serverless::HttpApi\n",
        );
        let at = |k: &str| Location::S3 { bucket: "b".into(), key: format!("prefix/{k}.yaml") };
        let deployed =
            package(&local, &HashMap::from([("Api".to_string(), at(&sha)), ("Http".to_string(), at(&"d".repeat(64)))]));
        let shas = HashMap::from([("Api".to_string(), sha.clone()), ("Http".to_string(), "d".repeat(64))]);
        assert_eq!(strip(&local, &[], &shas), strip(&deployed, &[], &HashMap::new()));
        // An edit to the file is an infrastructure change.
        let edited = HashMap::from([("Api".to_string(), "e".repeat(64)), ("Http".to_string(), "d".repeat(64))]);
        assert_ne!(strip(&local, &[], &edited), strip(&deployed, &[], &HashMap::new()));
        // A definition in S3 named in Globals stays part of the comparison.
        let remote = yaml(
            "Globals:\n  Api: {DefinitionUri: s3://b/api.yaml}\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n",
        );
        let other = yaml(
            "Globals:\n  Api: {DefinitionUri: s3://b/api2.yaml}\nResources:\n  Api:\n    Type: AWS::Serverless::Api\n",
        );
        assert_ne!(strip(&remote, &[], &HashMap::new()), strip(&other, &[], &HashMap::new()));
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = yaml("Resources:\n  A: {Type: X, Properties: {P: 1, Q: 2}}\n");
        let b = yaml("Resources:\n  A: {Properties: {Q: 2, P: 1}, Type: X}\n");
        assert_eq!(hash_value(&a), hash_value(&b));
    }

    #[test]
    fn package_points_code_at_s3_in_each_resource_types_form() {
        let locations = HashMap::from([
            ("Fn".to_string(), Location::S3 { bucket: "b".into(), key: "p/1.zip".into() }),
            ("Cfn".to_string(), Location::S3 { bucket: "b".into(), key: "p/2.zip".into() }),
            ("Layer".to_string(), Location::S3 { bucket: "b".into(), key: "p/3.zip".into() }),
        ]);
        let out = package(&yaml(T), &locations);
        let res = out.get("Resources").unwrap();
        assert_eq!(
            res.get("Fn").unwrap().get("Properties").unwrap().get("CodeUri"),
            Some(&Value::from("s3://b/p/1.zip"))
        );
        assert_eq!(
            res.get("Cfn").unwrap().get("Properties").unwrap().get("Code"),
            Some(&yaml("{S3Bucket: b, S3Key: p/2.zip}"))
        );
        assert_eq!(
            res.get("Layer").unwrap().get("Properties").unwrap().get("ContentUri"),
            Some(&Value::from("s3://b/p/3.zip"))
        );
        assert_eq!(out.get("Transform"), Some(&Value::from("AWS::Serverless-2016-10-31")));
        assert_eq!(
            res.get("Remote").unwrap().get("Properties").unwrap().get("CodeUri"),
            Some(&Value::from("s3://b/k.zip"))
        );
    }

    #[test]
    fn a_function_taking_code_uri_from_globals_gets_its_own() {
        let t = "Globals:\n  Function: {CodeUri: src}\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: a.b}\n";
        let locations = HashMap::from([("Fn".to_string(), Location::S3 { bucket: "b".into(), key: "k".into() })]);
        let out = package(&yaml(t), &locations);
        assert_eq!(
            out.get("Resources").unwrap().get("Fn").unwrap().get("Properties").unwrap().get("CodeUri"),
            Some(&Value::from("s3://b/k"))
        );
    }
}
