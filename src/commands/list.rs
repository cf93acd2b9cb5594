//! `lamb list endpoints|resources|stack-outputs`: what `sam list` prints, with SAM's JSON field
//! names. A deployed stack gives physical ids, stage URLs and function URLs; before a deploy
//! (no stack name, or a stack not created yet) the template alone says which resources and
//! endpoints there will be, with `-` for what only a deploy makes known, as SAM does.

use indexmap::IndexMap;
use serde::Serialize;

use super::endpoints::{Endpoint, endpoints};
use super::runtime;
use crate::Error;
use crate::aws::cloudformation::{CfnApi, StackResource};
use crate::aws::{Aws, AwsError};
use crate::cli::{ListArgs, ListCommand, ListFormat};
use crate::config::{self, StackConfig};
use crate::load_project_with;
use crate::local::apigw::routes::{self, IMPLICIT_HTTP_API, IMPLICIT_REST_API, RouteKind};
use crate::output::emit;
use crate::project::Project;
use crate::project::value::Value;

/// What SAM prints for a value only a deploy makes known.
const UNKNOWN: &str = "-";

const FUNCTION_TYPES: [&str; 2] = ["AWS::Lambda::Function", "AWS::Serverless::Function"];
const REST_API_TYPES: [&str; 2] = ["AWS::ApiGateway::RestApi", "AWS::Serverless::Api"];
const HTTP_API_TYPES: [&str; 2] = ["AWS::ApiGatewayV2::Api", "AWS::Serverless::HttpApi"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceRow {
    logical_resource_id: String,
    physical_resource_id: String,
}

/// A field SAM fills with one string (`-`, a function URL) or a list (stage URLs, methods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum Cell {
    One(String),
    Many(Vec<String>),
}

impl Cell {
    fn unknown() -> Cell {
        Cell::One(UNKNOWN.into())
    }

    fn text(&self) -> String {
        match self {
            Cell::One(s) => s.clone(),
            Cell::Many(v) if v.is_empty() => UNKNOWN.into(),
            Cell::Many(v) => v.join(" "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointRow {
    logical_resource_id: String,
    physical_resource_id: String,
    cloud_endpoint: Cell,
    methods: Cell,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StackOutputRow {
    output_key: String,
    output_value: String,
    description: String,
}

/// A resource the template declares, or one SAM makes from it that can be named beforehand.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    /// Full id: `Child/Id` in a nested stack.
    id: String,
    resource_type: String,
}

/// The resources of every loaded template, in template order, plus the implicit APIs
/// (`ServerlessRestApi`, `ServerlessHttpApi`) the root stack's API events make.
fn declared(project: &Project, methods: &IndexMap<String, Vec<String>>) -> Vec<Declared> {
    let mut out = Vec::new();
    for stack in &project.stacks {
        let prefix = if stack.path.is_empty() { String::new() } else { format!("{}/", stack.path) };
        let Some(resources) = stack.file.doc.get("Resources").and_then(Value::as_map) else { continue };
        for (id, res) in resources {
            let resource_type = res.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
            out.push(Declared { id: format!("{prefix}{id}"), resource_type });
        }
    }
    for (api, ty) in [(IMPLICIT_REST_API, "AWS::ApiGateway::RestApi"), (IMPLICIT_HTTP_API, "AWS::ApiGatewayV2::Api")] {
        if methods.contains_key(api) && !out.iter().any(|d| d.id == api) {
            out.push(Declared { id: api.to_string(), resource_type: ty.to_string() });
        }
    }
    out
}

/// Paths and methods per API logical id (root stack), as SAM lists them: `/hello['get']`.
fn api_methods(project: &Project) -> IndexMap<String, Vec<String>> {
    let table = match routes::routes(project) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("the API routes cannot be read from the template, so no methods are listed: {e}");
            return IndexMap::new();
        }
    };
    let mut by_api: IndexMap<String, IndexMap<String, Vec<String>>> = IndexMap::new();
    for r in table.routes.iter().filter(|r| r.kind != RouteKind::FunctionUrl) {
        let methods = by_api.entry(r.api.clone()).or_default().entry(r.path.clone()).or_default();
        let m = r.method.to_ascii_lowercase();
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    by_api
        .into_iter()
        .map(|(api, paths)| {
            let list = paths
                .into_iter()
                .map(|(path, ms)| {
                    let quoted: Vec<String> = ms.iter().map(|m| format!("'{m}'")).collect();
                    format!("{path}[{}]", quoted.join(", "))
                })
                .collect();
            (api, list)
        })
        .collect()
}

/// Whether deployed `logical_id` is the resource the template calls `declared`: the same id,
/// or a SAM layer's LayerVersion (its id plus a 10-hex-digit content hash).
fn is_deployed_as(declared: &str, logical_id: &str) -> bool {
    logical_id == declared
        || logical_id
            .strip_prefix(declared)
            .is_some_and(|rest| rest.len() == 10 && rest.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `lamb list resources`: the deployed resources with their physical ids, then what the
/// template declares that the stack does not have (yet).
fn resource_rows(declared: &[Declared], deployed: &[StackResource]) -> Vec<ResourceRow> {
    let mut rows: Vec<ResourceRow> = deployed
        .iter()
        .map(|r| ResourceRow {
            logical_resource_id: r.logical_id.clone(),
            physical_resource_id: if r.physical_id.is_empty() { UNKNOWN.into() } else { r.physical_id.clone() },
        })
        .collect();
    for d in declared {
        if !deployed.iter().any(|r| is_deployed_as(&d.id, &r.logical_id)) {
            rows.push(ResourceRow { logical_resource_id: d.id.clone(), physical_resource_id: UNKNOWN.into() });
        }
    }
    rows
}

/// `lamb list endpoints`: every function and API, deployed ones with their URLs, then those
/// the template declares that the stack does not have (yet).
fn endpoint_rows(
    declared: &[Declared],
    deployed: &[StackResource],
    urls: &[Endpoint],
    methods: &IndexMap<String, Vec<String>>,
) -> Vec<EndpointRow> {
    let api_methods = |id: &str| Cell::Many(methods.get(id).cloned().unwrap_or_default());
    let mut rows = Vec::new();
    for r in deployed {
        let ty = r.resource_type.as_str();
        let (cloud_endpoint, methods) = if ty == "AWS::Lambda::Function" {
            let url = urls.iter().find(|e| e.kind == "function-url" && e.id == r.logical_id);
            (url.map_or_else(Cell::unknown, |e| Cell::One(e.url.clone())), Cell::unknown())
        } else if REST_API_TYPES.contains(&ty) || HTTP_API_TYPES.contains(&ty) {
            let stages = urls.iter().filter(|e| e.kind != "function-url" && e.id == r.logical_id);
            (Cell::Many(stages.map(|e| e.url.clone()).collect()), api_methods(&r.logical_id))
        } else {
            continue;
        };
        rows.push(EndpointRow {
            logical_resource_id: r.logical_id.clone(),
            physical_resource_id: if r.physical_id.is_empty() { UNKNOWN.into() } else { r.physical_id.clone() },
            cloud_endpoint,
            methods,
        });
    }
    for d in declared {
        let ty = d.resource_type.as_str();
        let is_api = REST_API_TYPES.contains(&ty) || HTTP_API_TYPES.contains(&ty);
        if !(is_api || FUNCTION_TYPES.contains(&ty)) || deployed.iter().any(|r| r.logical_id == d.id) {
            continue;
        }
        rows.push(EndpointRow {
            logical_resource_id: d.id.clone(),
            physical_resource_id: UNKNOWN.into(),
            cloud_endpoint: Cell::unknown(),
            methods: if is_api { api_methods(&d.id) } else { Cell::unknown() },
        });
    }
    rows
}

/// Aligned columns under a header, like SAM's table.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        emit(padded.join("  ").trim_end());
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
}

fn print<T: Serialize>(format: ListFormat, rows: &[T], headers: &[&str], cells: impl Fn(&T) -> Vec<String>) {
    match format {
        ListFormat::Json => emit(&serde_json::to_string_pretty(rows).unwrap_or_default()),
        ListFormat::Table => table(headers, &rows.iter().map(cells).collect::<Vec<_>>()),
    }
}

/// What the deployed stack has, or `None` when it does not exist yet.
struct Deployed {
    resources: Vec<StackResource>,
    urls: Vec<Endpoint>,
    outputs: Vec<StackOutputRow>,
}

async fn read_stack(cfg: &StackConfig, with_urls: bool) -> Result<(Option<Deployed>, String), Error> {
    let aws = Aws::connect(&cfg.aws).await?;
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    let Some(info) = cfn.describe(&cfg.stack_name).await? else { return Ok((None, aws.region)) };
    let resources = cfn.resources(&cfg.stack_name).await?;
    let urls = if with_urls { endpoints(&aws, &cfn, &cfg.stack_name, &resources).await? } else { Vec::new() };
    let outputs = info
        .outputs
        .iter()
        .map(|o| StackOutputRow {
            output_key: o.key.clone(),
            output_value: o.value.clone(),
            description: o.description.clone().unwrap_or_else(|| UNKNOWN.into()),
        })
        .collect();
    Ok((Some(Deployed { resources, urls, outputs }), aws.region))
}

fn not_deployed(stack: &str, region: &str) -> String {
    format!("stack {stack} does not exist in {region}; deploy it first with `lamb deploy` (or `lamb deploy --guided`)")
}

pub fn list(cmd: ListCommand) -> Result<(), Error> {
    let (what, args): (&str, &ListArgs) = match &cmd {
        ListCommand::Endpoints(a) => ("endpoints", a),
        ListCommand::Resources(a) => ("resources", a),
        ListCommand::StackOutputs(a) => ("stack-outputs", a),
    };
    let section = format!("list_{}", what.replace('-', "_"));
    if what == "stack-outputs" {
        let (_, cfg) = config::project_and_stack(&args.project, &args.aws, None, &section)?;
        let (deployed, region) = runtime()?.block_on(read_stack(&cfg, false))?;
        let deployed = deployed.ok_or_else(|| AwsError::Failed(not_deployed(&cfg.stack_name, &region)))?;
        print(args.output, &deployed.outputs, &["OutputKey", "OutputValue", "Description"], |o| {
            vec![o.output_key.clone(), o.output_value.clone(), o.description.clone()]
        });
        return Ok(());
    }
    let (pc, cfg) = config::project_and_optional_stack(&args.project, &args.aws, &section)?;
    let project = load_project_with(&pc)?;
    let deployed = match &cfg {
        Some(cfg) => match runtime()?.block_on(read_stack(cfg, what == "endpoints")) {
            Ok((deployed, region)) => {
                if deployed.is_none() {
                    eprintln!(
                        "note: {}; until then, this is what the template says",
                        not_deployed(&cfg.stack_name, &region)
                    );
                }
                deployed
            }
            // Not set up for AWS yet (a new project): the template still says a lot.
            Err(Error::Aws(e @ AwsError::Credentials { .. })) => {
                eprintln!("note: cannot read stack {} ({e}); this is what the template says", cfg.stack_name);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let methods = api_methods(&project);
    let declared = declared(&project, &methods);
    let (mut resources, urls) = deployed.map_or((Vec::new(), Vec::new()), |d| (d.resources, d.urls));
    // CloudFormation lists resources in no particular order: by id, they read (and diff) well.
    resources.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    if what == "resources" {
        let rows = resource_rows(&declared, &resources);
        print(args.output, &rows, &["LogicalResourceId", "PhysicalResourceId"], |r| {
            vec![r.logical_resource_id.clone(), r.physical_resource_id.clone()]
        });
    } else {
        let rows = endpoint_rows(&declared, &resources, &urls, &methods);
        print(args.output, &rows, &["LogicalResourceId", "PhysicalResourceId", "CloudEndpoint", "Methods"], |r| {
            vec![
                r.logical_resource_id.clone(),
                r.physical_resource_id.clone(),
                r.cloud_endpoint.text(),
                r.methods.text(),
            ]
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(template: &str) -> (tempfile::TempDir, Project) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::write(root.join("template.yaml"), template).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        let p = crate::project::load(&crate::project::LoadOptions {
            template: root.join("template.yaml"),
            root: root.clone(),
            ..Default::default()
        })
        .unwrap();
        (d, p)
    }

    const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Events:
        Get: {Type: Api, Properties: {Path: /hello, Method: get}}
        Post: {Type: Api, Properties: {Path: /hello, Method: post}}
        Any: {Type: Api, Properties: {Path: '/items/{id}', Method: any}}
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: src}
  Bucket:
    Type: AWS::S3::Bucket
";

    fn res(id: &str, physical: &str, ty: &str) -> StackResource {
        StackResource {
            logical_id: id.into(),
            physical_id: physical.into(),
            resource_type: ty.into(),
            status: "CREATE_COMPLETE".into(),
        }
    }

    #[test]
    fn before_a_deploy_the_template_names_resources_and_endpoints_with_unknown_ids() {
        let (_d, p) = project(TEMPLATE);
        let methods = api_methods(&p);
        assert_eq!(methods[IMPLICIT_REST_API], ["/hello['get', 'post']", "/items/{id}['any']"]);
        let declared = declared(&p, &methods);
        let rows = resource_rows(&declared, &[]);
        let ids: Vec<&str> = rows.iter().map(|r| r.logical_resource_id.as_str()).collect();
        assert_eq!(ids, ["Hello", "Shared", "Bucket", "ServerlessRestApi"]);
        assert!(rows.iter().all(|r| r.physical_resource_id == "-"));
        let rows = endpoint_rows(&declared, &[], &[], &methods);
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"LogicalResourceId": "Hello", "PhysicalResourceId": "-", "CloudEndpoint": "-", "Methods": "-"},
                {"LogicalResourceId": "ServerlessRestApi", "PhysicalResourceId": "-", "CloudEndpoint": "-",
                 "Methods": ["/hello['get', 'post']", "/items/{id}['any']"]}
            ])
        );
    }

    #[test]
    fn deployed_resources_come_first_and_a_sam_layer_matches_its_hashed_version() {
        let (_d, p) = project(TEMPLATE);
        let methods = api_methods(&p);
        let declared = declared(&p, &methods);
        let deployed = [
            res("Hello", "app-Hello-1", "AWS::Lambda::Function"),
            res("HelloRole", "app-HelloRole-1", "AWS::IAM::Role"),
            res("ServerlessRestApi", "abc123", "AWS::ApiGateway::RestApi"),
            res("Shared0123456789", "arn:aws:lambda:us-east-1:1:layer:Shared:1", "AWS::Lambda::LayerVersion"),
        ];
        let rows = resource_rows(&declared, &deployed);
        let pairs: Vec<(&str, &str)> =
            rows.iter().map(|r| (r.logical_resource_id.as_str(), r.physical_resource_id.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("Hello", "app-Hello-1"),
                ("HelloRole", "app-HelloRole-1"),
                ("ServerlessRestApi", "abc123"),
                ("Shared0123456789", "arn:aws:lambda:us-east-1:1:layer:Shared:1"),
                ("Bucket", "-"),
            ]
        );
        let urls = vec![
            Endpoint {
                kind: "rest-api",
                id: "ServerlessRestApi".into(),
                url: "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/".into(),
            },
            Endpoint { kind: "function-url", id: "Hello".into(), url: "https://x.lambda-url.us-east-1.on.aws/".into() },
        ];
        let rows = endpoint_rows(&declared, &deployed, &urls, &methods);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].cloud_endpoint, Cell::One("https://x.lambda-url.us-east-1.on.aws/".into()));
        assert_eq!(
            rows[1].cloud_endpoint,
            Cell::Many(vec!["https://abc123.execute-api.us-east-1.amazonaws.com/Prod/".into()])
        );
        assert_eq!(rows[1].methods.text(), "/hello['get', 'post'] /items/{id}['any']");
    }
}
