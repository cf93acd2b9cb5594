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

    /// The settings of API `id`, read once; `None` when its Condition leaves it out.
    fn api(&mut self, id: &str, ty: ApiType, function: &str, event: &str) -> Result<Option<ApiSettings>, RouteError> {
        if let Some(found) = self.apis.get(id) {
            return Ok(found.clone());
        }
        let implicit = matches!((id, ty), (IMPLICIT_REST_API, ApiType::Rest) | (IMPLICIT_HTTP_API, ApiType::Http));
        let resource = match self.resources.get(id) {
            Some(r) => Some(r),
            None if implicit => None,
            None => {
                let names = self
                    .resources
                    .iter()
                    .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty.resource_type()))
                    .map(|(k, _)| k.as_str());
                let hint = closest(id, names).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                return Err(RouteError::UnknownApi {
                    file: self.file.to_path_buf(),
                    place: format!("function `{function}` event `{event}`"),
                    api: id.to_string(),
                    ty,
                    hint,
                });
            }
        };
        if let Some(r) = resource {
            let found = r.get("Type").and_then(Value::as_str).unwrap_or("a resource without a Type");
            if found != ty.resource_type() {
                return Err(RouteError::WrongApiType {
                    file: self.file.to_path_buf(),
                    place: format!("function `{function}` event `{event}`"),
                    api: id.to_string(),
                    found: format!("an {found}"),
                    ty,
                });
            }
            if self.excluded(id, r)? {
                self.note(id, "its Condition is false, so its routes are not served".into());
                self.apis.insert(id.to_string(), None);
                return Ok(None);
            }
        }
        let props = match resource {
            Some(r) => self.properties(r, ty.globals_section()),
            None => {
                let section = self.globals.and_then(|g| g.get(ty.globals_section()));
                globals::apply(section, &Value::Map(IndexMap::new()), None)
            }
        };
        let props = self.eval(id, &props)?.unwrap_or_default();
        if resource.is_some() && props.get("DefinitionUri").is_some() {
            self.note(
                id,
                "routes declared only in its DefinitionUri file are not served locally; function events and an inline DefinitionBody are".into(),
            );
        }
        let settings = self.api_settings(id, ty, resource.is_none(), &props)?;
        self.apis.insert(id.to_string(), Some(settings.clone()));
        Ok(Some(settings))
    }

    fn api_settings(
        &mut self,
        id: &str,
        ty: ApiType,
        implicit: bool,
        props: &Value,
    ) -> Result<ApiSettings, RouteError> {
        let stage = match (ty, implicit, props.get("StageName")) {
            (ApiType::Rest, true, _) => IMPLICIT_REST_STAGE.to_string(),
            (_, _, Some(v)) => match v.scalar_string() {
                Some(s) => s,
                None => {
                    let fallback = if ty == ApiType::Rest { IMPLICIT_REST_STAGE } else { DEFAULT_STAGE };
                    self.note(id, format!("StageName is {}; the stage is `{fallback}` locally", describe(v)));
                    fallback.to_string()
                }
            },
            (ApiType::Rest, false, None) => {
                return Err(self
                    .invalid(id, "an AWS::Serverless::Api needs a StageName; add one, e.g. `StageName: Prod`".into()));
            }
            (ApiType::Http, _, None) => DEFAULT_STAGE.to_string(),
        };
        let vars_key = if ty == ApiType::Rest { "Variables" } else { "StageVariables" };
        let stage_variables = self.string_map(id, props, vars_key);
        let binary_media_types = match (ty, props.get("BinaryMediaTypes")) {
            (ApiType::Rest, Some(Value::Seq(items))) => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) => out.push(s.replace("~1", "/")),
                        None => {
                            self.note(id, format!("BinaryMediaTypes has {}; it is ignored locally", describe(item)))
                        }
                    }
                }
                out
            }
            (ApiType::Rest, Some(other)) => {
                return Err(self.invalid(id, format!("BinaryMediaTypes must be a list, not {}", other.kind())));
            }
            _ => Vec::new(),
        };
        let cors = match ty {
            ApiType::Rest => props.get("Cors").map(|c| self.rest_cors(id, c)).transpose()?.flatten(),
            ApiType::Http => props
                .get("CorsConfiguration")
                .map(|c| self.http_cors(id, "CorsConfiguration", c))
                .transpose()?
                .flatten(),
        };
        let auth = props.get("Auth");
        let mut authorizers = IndexMap::new();
        if let Some(defs) = auth.and_then(|a| a.get("Authorizers")) {
            let Some(defs) = defs.as_map() else {
                return Err(self
                    .invalid(id, format!("Auth.Authorizers must be a map of named authorizers, not {}", defs.kind())));
            };
            for (name, def) in defs {
                let a = self.authorizer(id, ty, name, def)?;
                authorizers.insert(name.clone(), a);
            }
        }
        let default_authorizer = match auth.and_then(|a| a.get("DefaultAuthorizer")) {
            None => None,
            Some(v) => match v.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    self.note(id, format!("Auth.DefaultAuthorizer is {}; routes are served without it", describe(v)));
                    None
                }
            },
        };
        if let Some(name) = &default_authorizer
            && !matches!(name.as_str(), "NONE" | "AWS_IAM")
            && !authorizers.contains_key(name)
        {
            let names: Vec<&str> = authorizers.keys().map(String::as_str).collect();
            let known =
                closest(name, names.iter().copied()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
            return Err(RouteError::UnknownAuthorizer {
                file: self.file.to_path_buf(),
                place: format!("API `{id}` Auth.DefaultAuthorizer"),
                name: name.clone(),
                api: id.to_string(),
                known,
            });
        }
        let default_on_preflight = ty == ApiType::Rest
            && !matches!(auth.and_then(|a| a.get("AddDefaultAuthorizerToCorsPreflight")), Some(Value::Bool(false)));
        Ok(ApiSettings {
            id: id.to_string(),
            stage,
            stage_variables,
            binary_media_types,
            cors,
            authorizers,
            default_authorizer,
            default_on_preflight,
        })
    }

    /// A map of names to scalar values (stage variables); other values are noted and left out.
    fn string_map(&mut self, id: &str, props: &Value, key: &str) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        match props.get(key) {
            None => {}
            Some(Value::Map(m)) => {
                for (k, v) in m {
                    match v.scalar_string() {
                        Some(s) => {
                            out.insert(k.clone(), s);
                        }
                        None => self.note(id, format!("{key}.{k} is {}; it is left out locally", describe(v))),
                    }
                }
            }
            Some(other) => self.note(id, format!("{key} is {}, not a map; it is ignored locally", describe(other))),
        }
        out
    }

    /// A REST API's `Cors`: `"'origin'"`, or a map of single-quoted header values.
    fn rest_cors(&mut self, id: &str, v: &Value) -> Result<Option<Cors>, RouteError> {
        let quoted = |this: &Self, key: &str, v: &Value| -> Result<String, RouteError> {
            match v.as_str().and_then(|s| s.strip_prefix('\'')).and_then(|s| s.strip_suffix('\'')) {
                Some(inner) => Ok(inner.to_string()),
                None => Err(this.invalid(
                    id,
                    format!(
                        "Cors{key} is {}; API Gateway takes header values in single quotes inside the string, e.g. \"'*'\"",
                        match v.as_str() {
                            Some(s) => format!("`{s}`"),
                            None => describe(v),
                        }
                    ),
                )),
            }
        };
        match v {
            Value::String(_) => Ok(Some(Cors::Rest(RestCors {
                allow_origin: quoted(self, "", v)?,
                allow_methods: None,
                allow_headers: None,
                allow_credentials: None,
                max_age: None,
            }))),
            Value::Map(m) => {
                let Some(origin) = m.get("AllowOrigin") else {
                    return Err(self.invalid(id, "Cors needs AllowOrigin, e.g. `AllowOrigin: \"'*'\"`".into()));
                };
                let get = |key: &str| -> Result<Option<String>, RouteError> {
                    match m.get(key) {
                        None => Ok(None),
                        Some(Value::Bool(b)) if key == "AllowCredentials" => Ok(b.then(|| "true".to_string())),
                        Some(v) => quoted(self, &format!(".{key}"), v).map(Some),
                    }
                };
                Ok(Some(Cors::Rest(RestCors {
                    allow_origin: quoted(self, ".AllowOrigin", origin)?,
                    allow_methods: get("AllowMethods")?,
                    allow_headers: get("AllowHeaders")?,
                    allow_credentials: get("AllowCredentials")?,
                    max_age: get("MaxAge")?,
                })))
            }
            other => {
                self.note(id, format!("Cors is {}; CORS is off locally", describe(other)));
                Ok(None)
            }
        }
    }

    /// An HTTP API's `CorsConfiguration` (`true`, or a map of lists) or a function URL's `Cors`.
    fn http_cors(&mut self, id: &str, key: &str, v: &Value) -> Result<Option<Cors>, RouteError> {
        match v {
            Value::Bool(false) => Ok(None),
            Value::Bool(true) => {
                Ok(Some(Cors::Http(HttpCors { allow_origins: vec!["*".into()], ..HttpCors::default() })))
            }
            Value::Map(m) => {
                let list = |this: &Self, name: &str| -> Result<Vec<String>, RouteError> {
                    match m.get(name) {
                        None => Ok(Vec::new()),
                        Some(Value::Seq(items)) => items
                            .iter()
                            .map(|i| {
                                i.scalar_string().ok_or_else(|| {
                                    this.invalid(id, format!("{key}.{name} has {}; use plain strings", describe(i)))
                                })
                            })
                            .collect(),
                        Some(Value::String(s)) => Ok(vec![s.clone()]),
                        Some(other) => {
                            Err(this.invalid(id, format!("{key}.{name} must be a list, not {}", other.kind())))
                        }
                    }
                };
                let allow_credentials = match m.get("AllowCredentials") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
                    Some(other) => {
                        return Err(self.invalid(
                            id,
                            format!("{key}.AllowCredentials must be true or false, not {}", describe(other)),
                        ));
                    }
                };
                let max_age = match m.get("MaxAge") {
                    None => None,
                    Some(v) => match v.scalar_string().and_then(|s| s.parse::<i64>().ok()) {
                        Some(n) => Some(n),
                        None => {
                            return Err(self.invalid(
                                id,
                                format!("{key}.MaxAge must be a number of seconds, not {}", describe(v)),
                            ));
                        }
                    },
                };
                Ok(Some(Cors::Http(HttpCors {
                    allow_origins: list(self, "AllowOrigins")?,
                    allow_methods: list(self, "AllowMethods")?,
                    allow_headers: list(self, "AllowHeaders")?,
                    expose_headers: list(self, "ExposeHeaders")?,
                    allow_credentials,
                    max_age,
                })))
            }
            other => {
                self.note(id, format!("{key} is {}; CORS is off locally", describe(other)));
                Ok(None)
            }
        }
    }

    /// One entry of `Auth.Authorizers`; `None` (with a note) for one that is not a Lambda
    /// authorizer.
    fn authorizer(
        &mut self,
        api: &str,
        ty: ApiType,
        name: &str,
        def: &Value,
    ) -> Result<Option<Authorizer>, RouteError> {
        let Some(arn) = def.get("FunctionArn") else {
            let what = if def.get("UserPoolArn").is_some() {
                "a Cognito user pool authorizer"
            } else if def.get("JwtConfiguration").is_some() {
                "a JWT authorizer"
            } else {
                "not a Lambda authorizer (it has no FunctionArn)"
            };
            self.note(
                api,
                format!(
                    "authorizer `{name}` is {what}, which lamb does not run locally; its routes are served without it"
                ),
            );
            return Ok(None);
        };
        let Some(function) = self.function_ref(arn) else {
            self.note(
                api,
                format!(
                    "authorizer `{name}` has FunctionArn {}, which is not a function of this template; its routes are served without it",
                    describe(arn)
                ),
            );
            return Ok(None);
        };
        let identity = def.get("Identity");
        let list = |key: &str| -> Vec<String> {
            match identity.and_then(|i| i.get(key)) {
                Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_string).collect(),
                Some(v) => v.scalar_string().into_iter().collect(),
                None => Vec::new(),
            }
        };
        let request_identity = || -> Vec<IdentitySource> {
            let mut out: Vec<IdentitySource> = list("Headers").into_iter().map(IdentitySource::Header).collect();
            out.extend(list("QueryStrings").into_iter().map(IdentitySource::QueryString));
            out.extend(list("StageVariables").into_iter().map(IdentitySource::StageVariable));
            out.extend(list("Context").into_iter().map(IdentitySource::Context));
            out
        };
        let place = format!("authorizer `{name}`");
        match ty {
            ApiType::Rest => {
                let payload_type = def.get("FunctionPayloadType").and_then(Value::scalar_string);
                let kind = match payload_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    None | Some("TOKEN") => {
                        let header = identity
                            .and_then(|i| i.get("Header"))
                            .and_then(Value::scalar_string)
                            .unwrap_or_else(|| "Authorization".to_string());
                        let validation =
                            identity.and_then(|i| i.get("ValidationExpression")).and_then(Value::scalar_string);
                        if let Some(re) = &validation
                            && let Err(e) = regex_lite::Regex::new(re)
                        {
                            return Err(self.invalid(api, format!("{place}: Identity.ValidationExpression `{re}` is not a valid regular expression: {e}")));
                        }
                        AuthorizerKind::Token { header, validation }
                    }
                    Some("REQUEST") => AuthorizerKind::Request,
                    Some(other) => {
                        return Err(self
                            .invalid(api, format!("{place}: FunctionPayloadType `{other}` is not TOKEN or REQUEST")));
                    }
                };
                let identity = match &kind {
                    AuthorizerKind::Token { header, .. } => vec![IdentitySource::Header(header.clone())],
                    AuthorizerKind::Request => request_identity(),
                };
                Ok(Some(Authorizer {
                    name: name.to_string(),
                    function,
                    kind,
                    identity,
                    payload: PayloadVersion::V1,
                    simple_responses: false,
                }))
            }
            ApiType::Http => {
                let version = match def.get("AuthorizerPayloadFormatVersion").and_then(Value::scalar_string) {
                    Some(v) => match payload_version(&v) {
                        Some(p) => p,
                        None => {
                            return Err(self.invalid(
                                api,
                                format!("{place}: AuthorizerPayloadFormatVersion `{v}` is not \"1.0\" or \"2.0\""),
                            ));
                        }
                    },
                    None => {
                        return Err(self.invalid(
                            api,
                            format!("{place} needs AuthorizerPayloadFormatVersion (\"1.0\" or \"2.0\"); add it"),
                        ));
                    }
                };
                let simple = matches!(def.get("EnableSimpleResponses"), Some(Value::Bool(true)));
                if simple && version == PayloadVersion::V1 {
                    return Err(self.invalid(
                        api,
                        format!("{place}: EnableSimpleResponses needs AuthorizerPayloadFormatVersion \"2.0\""),
                    ));
                }
                Ok(Some(Authorizer {
                    name: name.to_string(),
                    function,
                    kind: AuthorizerKind::Request,
                    identity: request_identity(),
                    payload: version,
                    simple_responses: simple,
                }))
            }
        }
    }

    /// The function a `FunctionArn` / `TargetFunctionArn` names, when it is one of the root
    /// stack's: `!GetAtt Fn.Arn`, `!Sub ${Fn.Arn}`, `!Ref Fn`, or an ARN ending in its name.
    fn function_ref(&self, v: &Value) -> Option<String> {
        let logical = match v.as_intrinsic() {
            Some(("Fn::GetAtt", Value::Seq(args))) if args.len() == 2 => args[0].as_str().map(str::to_string),
            Some(("Fn::Sub", Value::String(s))) => {
                s.strip_prefix("${").and_then(|s| s.strip_suffix(".Arn}")).map(str::to_string)
            }
            Some(("Ref", Value::String(s))) => Some(s.clone()),
            None => v.as_str().and_then(|arn| {
                let name = arn.rsplit_once(":function:")?.1;
                let name = name.split(':').next()?;
                self.function_named(name)
            }),
            _ => None,
        }?;
        let f = self.project.function(&logical)?;
        Some(f.res.id.clone())
    }

    /// The root-stack function whose logical id or FunctionName is `name`.
    fn function_named(&self, name: &str) -> Option<String> {
        if self.project.function(name).is_some() {
            return Some(name.to_string());
        }
        self.resources.iter().find_map(|(id, r)| {
            let fname = r.get("Properties").and_then(|p| p.get("FunctionName")).and_then(Value::as_str)?;
            (fname == name).then(|| id.clone())
        })
    }

    /// A function URL's two routes: its prefix, and everything under it.
    fn function_url(&mut self, resource: &str, function: &str, config: &Value, routes: &mut Vec<Route>) {
        if routes.iter().any(|r| r.kind == RouteKind::FunctionUrl && r.function == function) {
            self.note(resource, format!("function `{function}` has more than one function URL; the first is served"));
            return;
        }
        match config.get("AuthType").and_then(Value::as_str) {
            Some("AWS_IAM") => self.note(
                resource,
                "the function URL's AuthType AWS_IAM is not checked locally; it is served without authentication"
                    .into(),
            ),
            Some("NONE") | None => {}
            Some(other) => self.note(
                resource,
                format!("function URL AuthType `{other}` is not NONE or AWS_IAM; served without authentication"),
            ),
        }
        if config.get("InvokeMode").and_then(Value::as_str) == Some("RESPONSE_STREAM") {
            self.note(
                resource,
                "the function URL streams its response once deployed; locally the answer is sent whole".into(),
            );
        }
        let cors = match config.get("Cors") {
            Some(c) => match self.http_cors(resource, "Cors", c) {
                Ok(c) => c,
                Err(e) => {
                    self.note(resource, format!("function URL {e}; CORS is off locally"));
                    None
                }
            },
            None => None,
        };
        for path in [format!("/{function}"), format!("/{function}/{{proxy+}}")] {
            let segments = parse_path(&path).unwrap_or_default();
            routes.push(Route {
                api: function.to_string(),
                kind: RouteKind::FunctionUrl,
                method: "ANY".into(),
                path,
                segments,
                function: function.to_string(),
                stage: DEFAULT_STAGE.into(),
                stage_variables: IndexMap::new(),
                binary_media_types: Vec::new(),
                cors: cors.clone(),
                authorizer: None,
                preflight_authorizer: None,
            });
        }
    }

    /// `AWS::Lambda::Url` resources aimed at a function of the root stack.
    fn lambda_urls(&mut self, routes: &mut Vec<Route>) -> Result<(), RouteError> {
        for (id, r) in self.resources {
            if r.get("Type").and_then(Value::as_str) != Some("AWS::Lambda::Url") || self.excluded(id, r)? {
                continue;
            }
            let props = self.eval(id, r.get("Properties").unwrap_or(&Value::Null))?.unwrap_or_default();
            let target = props.get("TargetFunctionArn").cloned().unwrap_or_default();
            match self.function_ref(&target) {
                Some(function) => self.function_url(id, &function, &props, routes),
                None => self.note(
                    id,
                    format!(
                        "TargetFunctionArn is {}, not a function of this template; the URL is not served",
                        describe(&target)
                    ),
                ),
            }
        }
        Ok(())
    }

    /// Two APIs (or two events) with the same method and path: one local server serves one.
    fn note_conflicts(&mut self, routes: &[Route]) {
        let mut seen: IndexMap<(String, String), &Route> = IndexMap::new();
        for r in routes.iter().filter(|r| r.kind != RouteKind::FunctionUrl) {
            let key = (r.method.clone(), r.path.clone());
            match seen.get(&key) {
                Some(first) => {
                    let message = format!(
                        "`{} {}` of function `{}` ({}) is also declared for function `{}` ({}); locally the first is served",
                        r.method, r.path, r.function, r.api, first.function, first.api
                    );
                    self.notes.push(Note { resource: r.function.clone(), message });
                }
                None => {
                    seen.insert(key, r);
                }
            }
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

mod openapi;
#[cfg(test)]
mod tests;
