//! The route table `lamb local start-api` serves, read from the root stack's template the way
//! the SAM translator would build the APIs: every function's `Api` and `HttpApi` events (on the
//! implicit `ServerlessRestApi` / `ServerlessHttpApi` or on an explicit `AWS::Serverless::Api` /
//! `AWS::Serverless::HttpApi`), each API's stage, stage variables, binary media types, CORS and
//! Lambda authorizers, the Lambda proxy operations of an explicit API's inline `DefinitionBody`
//! (`openapi`), and function URLs.
//!
//! All APIs share one local server, and the stage is not part of the local URL (as with SAM).
//! A function URL (`FunctionUrlConfig`, or an `AWS::Lambda::Url` aimed at a function) is served
//! on the same server under the prefix `/{FunctionLogicalId}`: `GET /HelloFn/a/b?x=1` reaches
//! `HelloFn` as `GET /a/b?x=1`, the way `https://<url-id>.lambda-url.<region>.on.aws/a/b?x=1`
//! would. One port for everything keeps the server simple and the URLs stable across runs.
//!
//! What the template says in a shape lamb cannot serve (a path only known after deploy, a JWT or
//! Cognito authorizer, IAM auth) is left out with a note for the user; a mistake that would also
//! fail a deploy (an event naming an API or an authorizer that does not exist) is an error.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::project::intrinsics::{Pseudo, Scope};
use crate::project::value::Value;
use crate::project::{Note, Project, closest, globals};

/// The API SAM creates for `Api` events without a `RestApiId`.
pub(crate) const IMPLICIT_REST_API: &str = "ServerlessRestApi";
/// The API SAM creates for `HttpApi` events without an `ApiId`.
pub(crate) const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";
/// The HTTP API catch-all route key.
pub(crate) const DEFAULT_ROUTE: &str = "$default";
/// The stage SAM gives the implicit REST API.
pub(crate) const IMPLICIT_REST_STAGE: &str = "Prod";
/// The stage of an HTTP API without a StageName, and of function URLs.
pub(crate) const DEFAULT_STAGE: &str = "$default";

/// The shape of the event a function receives and of the answer it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteKind {
    /// An `Api` event: a REST API, payload 1.0.
    Rest,
    /// An `HttpApi` event, with its PayloadFormatVersion.
    Http(PayloadVersion),
    /// A function URL: payload 2.0, any method, any path under the function's prefix.
    FunctionUrl,
}

impl RouteKind {
    pub fn payload(self) -> PayloadVersion {
        match self {
            RouteKind::Rest => PayloadVersion::V1,
            RouteKind::Http(v) => v,
            RouteKind::FunctionUrl => PayloadVersion::V2,
        }
    }
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Exact(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path; always last.
    Greedy(String),
}

/// CORS as the API declares it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cors {
    Rest(RestCors),
    Http(HttpCors),
}

/// A REST API's `Cors`: the header values, single quotes removed, sent as they are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RestCors {
    pub allow_origin: String,
    /// `None`: the methods of the requested path, as the SAM translator lists them.
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
    pub allow_credentials: Option<String>,
    pub max_age: Option<String>,
}

/// An HTTP API's `CorsConfiguration`, or a function URL's `Cors`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HttpCors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuthorizerKind {
    /// REST `FunctionPayloadType: TOKEN`: the token from one header, checked against an
    /// optional regular expression.
    Token { header: String, validation: Option<String> },
    /// `REQUEST`: the request itself, with identity sources that must be present.
    Request,
}

/// Where an authorizer's identity comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdentitySource {
    Header(String),
    QueryString(String),
    StageVariable(String),
    /// A `$context.` variable, as a dotted path into the event's requestContext.
    Context(String),
}

/// A Lambda authorizer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Authorizer {
    pub name: String,
    /// Full id of the authorizer function.
    pub function: String,
    pub kind: AuthorizerKind,
    pub identity: Vec<IdentitySource>,
    /// REST authorizers take 1.0; an HTTP API's says which (AuthorizerPayloadFormatVersion).
    pub payload: PayloadVersion,
    /// HTTP API 2.0 `EnableSimpleResponses`: the answer is `{"isAuthorized": bool}`.
    pub simple_responses: bool,
}

/// One method and path of an API, and the function behind it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    /// Logical id of the API (`ServerlessRestApi`, `MyApi`), or of the function for a URL.
    pub api: String,
    pub kind: RouteKind,
    /// Upper case; `ANY` for every method.
    pub method: String,
    /// The path template (`/users/{id}`, `/{proxy+}`), or `$default`.
    pub path: String,
    /// `path` parsed; empty for `/` and for `$default`.
    pub segments: Vec<Segment>,
    /// Full id of the function.
    pub function: String,
    pub stage: String,
    pub stage_variables: IndexMap<String, String>,
    /// `~1` already replaced by `/`.
    pub binary_media_types: Vec<String>,
    pub cors: Option<Cors>,
    pub authorizer: Option<Authorizer>,
    /// The authorizer a REST API's CORS preflight (OPTIONS) goes through: its default
    /// authorizer unless `AddDefaultAuthorizerToCorsPreflight: false`, as once deployed.
    pub preflight_authorizer: Option<Authorizer>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.path == DEFAULT_ROUTE
    }

    /// `GET /users/{id}`, or `$default` (payload 2.0's routeKey).
    pub fn route_key(&self) -> String {
        if self.is_default() || self.kind == RouteKind::FunctionUrl {
            DEFAULT_ROUTE.to_string()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }

    /// The local path prefix of a function URL (`/HelloFn`).
    pub fn url_prefix(&self) -> Option<String> {
        (self.kind == RouteKind::FunctionUrl).then(|| format!("/{}", self.api))
    }
}

/// The routes, and what was left out and why (for the user).
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    pub routes: Vec<Route>,
    pub notes: Vec<Note>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RouteError {
    #[error(
        "{}: {place} has {} `{api}`, which is not a resource in the template{hint}; declare an {} named `{api}`, or remove {} to use the implicit API",
        file.display(),
        ty.id_key(),
        ty.resource_type(),
        ty.id_key()
    )]
    UnknownApi { file: PathBuf, place: String, api: String, ty: ApiType, hint: String },
    #[error(
        "{}: {place} has {} `{api}`, which is {found}; an event of type {} needs an {} (or use the event type that matches `{api}`)",
        file.display(),
        ty.id_key(),
        ty.event_type(),
        ty.resource_type()
    )]
    WrongApiType { file: PathBuf, place: String, api: String, found: String, ty: ApiType },
    #[error(
        "{}: {place} uses authorizer `{name}`, which API `{api}` does not define in Auth.Authorizers{known}; add it there or fix the name",
        file.display()
    )]
    UnknownAuthorizer { file: PathBuf, place: String, name: String, api: String, known: String },
    #[error("{}: resource `{resource}`: {message}", file.display())]
    Invalid { file: PathBuf, resource: String, message: String },
}

/// Reads the route table from the project's root stack.
pub(crate) fn routes(project: &Project) -> Result<RouteTable, RouteError> {
    let stack = project.root_stack();
    let doc = &stack.file.doc;
    let conditions = doc.get("Conditions").and_then(Value::as_map).cloned().unwrap_or_default();
    let mappings = doc.get("Mappings").and_then(Value::as_map).cloned().unwrap_or_default();
    let pseudo = Pseudo::default();
    let missing: Vec<String> =
        project.missing_parameters.iter().filter(|(s, _)| s.is_empty()).map(|(_, n)| n.clone()).collect();
    let scope = Scope::new(&stack.parameters, &conditions, &mappings, &pseudo).with_missing(&missing);
    let empty = IndexMap::new();
    let mut reader = Reader {
        project,
        file: &stack.file.path,
        resources: doc.get("Resources").and_then(Value::as_map).unwrap_or(&empty),
        globals: doc.get("Globals"),
        scope,
        notes: Vec::new(),
        apis: IndexMap::new(),
    };
    let mut routes = Vec::new();
    // Functions of nested stacks belong to their own stack's APIs; those are not served.
    for f in project.functions.iter().filter(|f| !f.res.id.contains('/')) {
        if let Some(resource) = reader.resources.get(&f.res.logical_id) {
            reader.function_routes(&f.res.id, resource, &mut routes)?;
        }
    }
    reader.definition_routes(&mut routes)?;
    reader.lambda_urls(&mut routes)?;
    reader.note_conflicts(&routes);
    Ok(RouteTable { routes, notes: reader.notes })
}

/// Parses a path template. Parameters take whole segments, and a greedy one comes last.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("path `{path}` does not start with `/`"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("path `{path}` has an empty segment"));
        }
        let inner = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
        match inner {
            Some(name) if name.contains(['{', '}']) || name.is_empty() || name == "+" => {
                return Err(format!("path `{path}` has a malformed parameter `{part}`"));
            }
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) if i + 1 == parts.len() => out.push(Segment::Greedy(greedy.to_string())),
                Some(_) => {
                    return Err(format!("path `{path}`: the greedy parameter `{part}` must be the last segment"));
                }
                None => out.push(Segment::Param(name.to_string())),
            },
            None if part.contains(['{', '}']) => {
                return Err(format!(
                    "path `{path}`: `{part}` mixes text and a parameter; API Gateway parameters take a whole segment"
                ));
            }
            None => out.push(Segment::Exact((*part).to_string())),
        }
    }
    Ok(out)
}

/// Which kind of API an event or resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiType {
    Rest,
    Http,
}

impl ApiType {
    fn resource_type(self) -> &'static str {
        match self {
            ApiType::Rest => "AWS::Serverless::Api",
            ApiType::Http => "AWS::Serverless::HttpApi",
        }
    }
    fn event_type(self) -> &'static str {
        match self {
            ApiType::Rest => "Api",
            ApiType::Http => "HttpApi",
        }
    }
    fn id_key(self) -> &'static str {
        match self {
            ApiType::Rest => "RestApiId",
            ApiType::Http => "ApiId",
        }
    }
    fn globals_section(self) -> &'static str {
        match self {
            ApiType::Rest => "Api",
            ApiType::Http => "HttpApi",
        }
    }
}

/// What one API contributes to each of its routes.
#[derive(Debug, Clone)]
struct ApiSettings {
    id: String,
    stage: String,
    stage_variables: IndexMap<String, String>,
    binary_media_types: Vec<String>,
    cors: Option<Cors>,
    /// `None` for an authorizer lamb cannot run (noted once, when the API was read).
    authorizers: IndexMap<String, Option<Authorizer>>,
    default_authorizer: Option<String>,
    default_on_preflight: bool,
}

struct Reader<'a> {
    project: &'a Project,
    file: &'a Path,
    resources: &'a IndexMap<String, Value>,
    globals: Option<&'a Value>,
    scope: Scope<'a>,
    notes: Vec<Note>,
    /// APIs read so far; `None` for one whose Condition is false.
    apis: IndexMap<String, Option<ApiSettings>>,
}

impl Reader<'_> {
    fn note(&mut self, resource: &str, message: String) {
        self.notes.push(Note { resource: resource.to_string(), message });
    }

    fn invalid(&self, resource: &str, message: String) -> RouteError {
        RouteError::Invalid { file: self.file.to_path_buf(), resource: resource.to_string(), message }
    }

    /// Evaluates what can be known locally; `None` for `AWS::NoValue`.
    fn eval(&self, resource: &str, v: &Value) -> Result<Option<Value>, RouteError> {
        self.scope.eval(v).map_err(|e| self.invalid(resource, e.to_string()))
    }

    /// A resource's Properties with the Globals `section` merged in.
    fn properties(&self, resource: &Value, section: &str) -> Value {
        let props = resource.get("Properties").cloned().unwrap_or(Value::Map(IndexMap::new()));
        let section = self.globals.and_then(|g| g.get(section));
        globals::apply(section, &props, resource.get("IgnoreGlobals"))
    }

    /// Whether the resource's Condition leaves it out of the stack.
    fn excluded(&self, id: &str, resource: &Value) -> Result<bool, RouteError> {
        match resource.get("Condition").and_then(Value::as_str) {
            Some(cond) => match self.scope.condition(cond) {
                Ok(v) => Ok(v == Some(false)),
                Err(e) => Err(self.invalid(id, e.to_string())),
            },
            None => Ok(false),
        }
    }

    fn function_routes(&mut self, id: &str, resource: &Value, routes: &mut Vec<Route>) -> Result<(), RouteError> {
        let sam = resource.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function");
        if !sam {
            return Ok(());
        }
        let props = self.properties(resource, "Function");
        if let Some(events) = props.get("Events") {
            let events = self.eval(id, events)?.unwrap_or_default();
            let Some(events) = events.as_map() else {
                return Err(self.invalid(id, format!("Events must be a map of named events, not {}", events.kind())));
            };
            for (name, event) in events {
                let props = event.get("Properties").cloned().unwrap_or(Value::Map(IndexMap::new()));
                match event.get("Type").and_then(Value::as_str) {
                    Some("Api") => self.api_event(id, name, &props, routes)?,
                    Some("HttpApi") => self.http_api_event(id, name, &props, routes)?,
                    _ => {}
                }
            }
        }
        if let Some(config) = props.get("FunctionUrlConfig") {
            let config = self.eval(id, config)?.unwrap_or_default();
            self.function_url(id, id, &config, routes);
        }
        Ok(())
    }

    fn api_event(
        &mut self,
        function: &str,
        event: &str,
        props: &Value,
        routes: &mut Vec<Route>,
    ) -> Result<(), RouteError> {
        let place = format!("event `{event}`");
        let Some(path) = self.required_string(function, &place, props, "Path", ApiType::Rest)? else {
            return Ok(());
        };
        let Some(method) = self.required_string(function, &place, props, "Method", ApiType::Rest)? else {
            return Ok(());
        };
        self.add_route(function, event, props, ApiType::Rest, RouteKind::Rest, &path, &method, routes)
    }

    fn http_api_event(
        &mut self,
        function: &str,
        event: &str,
        props: &Value,
        routes: &mut Vec<Route>,
    ) -> Result<(), RouteError> {
        let place = format!("event `{event}`");
        let version = match props.get("PayloadFormatVersion").map(|v| (v, v.scalar_string())) {
            None => PayloadVersion::V2,
            Some((_, Some(v))) => {
                match payload_version(&v) {
                    Some(p) => p,
                    None => {
                        return Err(self.invalid(
                        function,
                        format!("{place}: PayloadFormatVersion `{v}` is not one API Gateway knows; use \"1.0\" or \"2.0\""),
                    ));
                    }
                }
            }
            Some((v, None)) => {
                self.note(function, format!("{place}: PayloadFormatVersion is {}; served as 2.0", describe(v)));
                PayloadVersion::V2
            }
        };
        // An HttpApi event without Path and Method is the API's `$default` route.
        let path = match props.get("Path") {
            None => DEFAULT_ROUTE.to_string(),
            Some(_) => match self.required_string(function, &place, props, "Path", ApiType::Http)? {
                Some(p) => p,
                None => return Ok(()),
            },
        };
        let method = match props.get("Method") {
            None => "ANY".to_string(),
            Some(_) => match self.required_string(function, &place, props, "Method", ApiType::Http)? {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        self.add_route(function, event, props, ApiType::Http, RouteKind::Http(version), &path, &method, routes)
    }

    /// A string property of an event: absent is an error, a value known only after deploy a note.
    fn required_string(
        &mut self,
        function: &str,
        place: &str,
        props: &Value,
        key: &str,
        api: ApiType,
    ) -> Result<Option<String>, RouteError> {
        match props.get(key) {
            None => Err(self.invalid(function, format!("{place} of type {} has no {key}; add one", api.event_type()))),
            Some(v) => match v.scalar_string() {
                Some(s) => Ok(Some(s)),
                None => {
                    self.note(
                        function,
                        format!("{place}: {key} is {}, known only after deploy; the route is not served", describe(v)),
                    );
                    Ok(None)
                }
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_route(
        &mut self,
        function: &str,
        event: &str,
        props: &Value,
        api_type: ApiType,
        kind: RouteKind,
        path: &str,
        method: &str,
        routes: &mut Vec<Route>,
    ) -> Result<(), RouteError> {
        let place = format!("event `{event}`");
        let api_id = match props.get(api_type.id_key()) {
            None => match api_type {
                ApiType::Rest => IMPLICIT_REST_API.to_string(),
                ApiType::Http => IMPLICIT_HTTP_API.to_string(),
            },
            Some(v) => match ref_target(v) {
                Some(id) => id,
                None => {
                    self.note(
                        function,
                        format!(
                            "{place}: {} is {}, which lamb cannot follow to an API in this template; the route is not served",
                            api_type.id_key(),
                            describe(v)
                        ),
                    );
                    return Ok(());
                }
            },
        };
        let Some(api) = self.api(&api_id, api_type, function, event)? else {
            return Ok(());
        };
        let (path, segments) = if path == DEFAULT_ROUTE && api_type == ApiType::Http {
            (DEFAULT_ROUTE.to_string(), Vec::new())
        } else {
            match parse_path(path) {
                Ok(segments) => (normalize_path(path), segments),
                Err(msg) => {
                    self.note(function, format!("{place}: {msg}; the route is not served"));
                    return Ok(());
                }
            }
        };
        let method = normalize_method(method);
        let authorizer = self.route_authorizer(&api, props, function, &place)?;
        routes.push(route_for(&api, kind, method, path, segments, function, authorizer));
        Ok(())
    }

    /// The authorizer of one route: the event's `Auth.Authorizer`, else the API's default.
    fn route_authorizer(
        &mut self,
        api: &ApiSettings,
        props: &Value,
        function: &str,
        place: &str,
    ) -> Result<Option<Authorizer>, RouteError> {
        let own = props.get("Auth").and_then(|a| a.get("Authorizer"));
        let name = match own {
            Some(v) => match v.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    self.note(
                        function,
                        format!("{place}: Auth.Authorizer is {}; the route is served without it", describe(v)),
                    );
                    return Ok(None);
                }
            },
            None => api.default_authorizer.clone(),
        };
        let Some(name) = name else { return Ok(None) };
        match name.as_str() {
            "NONE" => Ok(None),
            "AWS_IAM" => {
                self.note(
                    function,
                    format!("{place}: AWS_IAM authorization is not checked locally; the route is served without it"),
                );
                Ok(None)
            }
            _ => match api.authorizers.get(&name) {
                Some(found) => Ok(found.clone()),
                None => {
                    let names: Vec<&str> = api.authorizers.keys().map(String::as_str).collect();
                    let known = match closest(&name, names.iter().copied()) {
                        Some(c) => format!(" (did you mean `{c}`?)"),
                        None if names.is_empty() => String::new(),
                        None => format!(" (it defines {})", names.join(", ")),
                    };
                    let source = if own.is_some() { "" } else { " as its default" };
                    Err(RouteError::UnknownAuthorizer {
                        file: self.file.to_path_buf(),
                        place: format!("function `{function}` {place}{source}"),
                        name,
                        api: api.id.clone(),
                        known,
                    })
                }
            },
        }
    }
}

fn route_for(
    api: &ApiSettings,
    kind: RouteKind,
    method: String,
    path: String,
    segments: Vec<Segment>,
    function: &str,
    authorizer: Option<Authorizer>,
) -> Route {
    Route {
        api: api.id.clone(),
        kind,
        method,
        path,
        segments,
        function: function.to_string(),
        stage: api.stage.clone(),
        stage_variables: api.stage_variables.clone(),
        binary_media_types: api.binary_media_types.clone(),
        cors: api.cors.clone(),
        authorizer,
        preflight_authorizer: preflight_authorizer(api),
    }
}

fn preflight_authorizer(api: &ApiSettings) -> Option<Authorizer> {
    if !api.default_on_preflight {
        return None;
    }
    let name = api.default_authorizer.as_ref()?;
    api.authorizers.get(name).cloned().flatten()
}

fn payload_version(v: &str) -> Option<PayloadVersion> {
    match v.trim() {
        "1.0" | "1" => Some(PayloadVersion::V1),
        "2.0" | "2" => Some(PayloadVersion::V2),
        _ => None,
    }
}

/// `!Ref X` or a plain `X`: the logical id an `RestApiId` / `ApiId` names.
fn ref_target(v: &Value) -> Option<String> {
    match v.as_intrinsic() {
        Some(("Ref", Value::String(s))) => Some(s.clone()),
        Some(_) => None,
        None => v.as_str().map(str::to_string),
    }
}

fn normalize_method(m: &str) -> String {
    let upper = m.trim().to_ascii_uppercase();
    if upper == "X-AMAZON-APIGATEWAY-ANY-METHOD" || upper == "*" { "ANY".into() } else { upper }
}

/// The path without a trailing slash (API Gateway ignores it).
fn normalize_path(p: &str) -> String {
    match p.strip_suffix('/') {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => p.to_string(),
    }
}

/// A value known only after deploy, for a note: `!GetAtt Fn.Arn`, `!ImportValue ...`.
fn describe(v: &Value) -> String {
    match v.as_intrinsic() {
        Some((name, arg)) => {
            let short = name.strip_prefix("Fn::").unwrap_or(name);
            let mut arg = arg.canonical_json();
            if arg.len() > 60 {
                arg.truncate(57);
                arg.push_str("...");
            }
            format!("`!{short} {arg}`")
        }
        None => match v.scalar_string() {
            Some(s) => format!("`{s}`"),
            None => v.kind().to_string(),
        },
    }
}

mod apis;
mod auth;
mod openapi;
#[cfg(test)]
mod tests;
mod urls;
