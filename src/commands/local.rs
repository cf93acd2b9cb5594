//! `lamb local ...`: run functions on this machine. `invoke` builds a function, runs it once
//! in a real process behind lamb's Runtime API and prints its response.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;

use super::{cpus, runtime};
use crate::Error;
use crate::cli::{LocalArgs, LocalCommand, LocalInvokeArgs};
use crate::config::{self, ProjectConfig};
use crate::engine::{self, BuildOptions, LAMB_DIR};
use crate::local::env::{EnvContext, EnvOverrides};
use crate::local::functions::{Functions, Settings};
use crate::local::instance::{Instance, Outcome};
use crate::local::prepare::{self, Builds};
use crate::local::runtime_api::Invocation;
use crate::project::Project;

/// Runs a `lamb local` command.
pub fn local(cmd: LocalCommand) -> Result<(), Error> {
    match cmd {
        LocalCommand::Invoke(args) => invoke(args),
        LocalCommand::StartLambda(args) => start_lambda(args),
        LocalCommand::StartApi(args) => start_api(args),
        LocalCommand::GenerateEvent(args) => generate_event(args),
    }
}

/// A loaded project and what its local functions need.
pub(super) struct Setup {
    pub project: Project,
    pub pc: ProjectConfig,
    pub ctx: EnvContext,
}

/// Loads the project and resolves the region, credentials and `--env-vars` functions get.
pub(super) fn setup(args: &LocalArgs, rt: &tokio::runtime::Runtime) -> Result<Setup, Error> {
    let mut pc = config::project(&args.project, "local_invoke")?;
    let region_flag = args.region.clone().or_else(|| pc.samconfig.string("region"));
    let profile = args.profile.clone().or_else(|| pc.samconfig.string("profile"));
    let (region, credentials) = rt.block_on(aws_for_functions(region_flag, profile));
    pc.pseudo.region = Some(region.clone());
    pc.pseudo.account_id = Some(crate::local::env::LOCAL_ACCOUNT.into());
    let project = crate::load_project_with(&pc)?;
    let overrides = match &args.env_vars {
        Some(path) => EnvOverrides::read(path).map_err(|e| Error::Usage(e.to_string()))?,
        None => EnvOverrides::default(),
    };
    let endpoints =
        std::env::vars().filter(|(k, _)| k == "AWS_ENDPOINT_URL" || k.starts_with("AWS_ENDPOINT_URL_")).collect();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let ctx = EnvContext { region, credentials, endpoints, path, overrides };
    Ok(Setup { project, pc, ctx })
}

/// The region functions see and the credentials they get, as the AWS SDK finds them for the
/// configured profile (environment, profiles, SSO); none when there are none (a function
/// calling AWS then fails as it would without credentials).
async fn aws_for_functions(
    region: Option<String>,
    profile: Option<String>,
) -> (String, Option<(String, String, Option<String>)>) {
    use aws_sdk_lambda::config::ProvideCredentials;
    let region = match region {
        Some(r) => r,
        None => crate::aws::configured_region(profile.as_deref()).await.unwrap_or_else(|| "us-east-1".into()),
    };
    // The environment's keys, else the profile's (static keys, SSO, credential_process). Not
    // the instance metadata service: a developer's machine has none, and asking it only
    // delays the start.
    let env = aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
    let mut from_profile = aws_config::profile::ProfileFileCredentialsProvider::builder();
    if let Some(p) = &profile {
        from_profile = from_profile.profile_name(p);
    }
    let from_profile = from_profile.build();
    let found = match env.provide_credentials().await {
        Ok(c) => Some(c),
        Err(_) => {
            match tokio::time::timeout(std::time::Duration::from_secs(5), from_profile.provide_credentials()).await {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "no AWS credentials for local functions");
                    None
                }
                Err(_) => {
                    tracing::info!("reading AWS credentials for local functions took over 5 s; going on without");
                    None
                }
            }
        }
    };
    let credentials = found.map(|c| {
        (c.access_key_id().to_string(), c.secret_access_key().to_string(), c.session_token().map(str::to_string))
    });
    (region, credentials)
}

/// Builds `ids` (with their layers), or takes the last build with `--no-build`.
pub(super) fn builds(setup: &Setup, ids: &[String], no_build: bool) -> Result<Builds, Error> {
    let lamb_dir = setup.pc.root.join(LAMB_DIR);
    if no_build {
        return Ok(prepare::from_record(&lamb_dir));
    }
    let opts = BuildOptions {
        ids: setup.project.with_layers_of(ids),
        force: false,
        dry_run: false,
        jobs: cpus(),
        follow_external_symlinks: false,
    };
    let report = engine::build(&setup.project, &opts, &engine::Silent)?;
    Ok(prepare::from_report(&report))
}

/// The function a command names, or the template's only one.
pub(super) fn function_id(project: &Project, id: Option<&str>) -> Result<String, Error> {
    match id {
        Some(id) => {
            let full = project.resolve_id(id).map_err(Error::Usage)?;
            if project.function(&full).is_none() {
                return Err(Error::Usage(format!("`{id}` is a layer; name a function")));
            }
            Ok(full)
        }
        None => match project.functions.as_slice() {
            [one] => Ok(one.res.id.clone()),
            [] => Err(Error::Usage("the template has no functions".into())),
            many => {
                let ids: Vec<&str> = many.iter().map(|f| f.res.id.as_str()).collect();
                Err(Error::Usage(format!(
                    "the template has {} functions; name one: lamb local invoke ID (one of {})",
                    ids.len(),
                    ids.join(", ")
                )))
            }
        },
    }
}

/// The event: `-` reads stdin, a path reads the file, nothing is `{}`. It must be JSON.
fn event(path: Option<&std::path::Path>) -> Result<Bytes, Error> {
    let (bytes, origin) = match path {
        None => (b"{}".to_vec(), "the event".to_string()),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::io("cannot read the event from stdin", e))?;
            (buf, "the event on stdin".to_string())
        }
        Some(p) => (
            std::fs::read(p).map_err(|e| Error::Usage(format!("--event {}: {e}; check the path", p.display())))?,
            format!("--event {}", p.display()),
        ),
    };
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(Error::Usage(format!("{origin} is not JSON ({e}); fix it (no event means {{}})")));
    }
    Ok(Bytes::from(bytes))
}

fn invoke(args: LocalInvokeArgs) -> Result<(), Error> {
    let rt = runtime()?;
    let setup = setup(&args.local, &rt)?;
    let id = function_id(&setup.project, args.id.as_deref())?;
    let payload = event(args.event.as_deref())?;
    let builds = builds(&setup, std::slice::from_ref(&id), args.local.no_build)?;
    let lamb_dir = setup.pc.root.join(LAMB_DIR);
    let prepared = prepare::prepare(&setup.project, &id, &builds, &setup.ctx, &lamb_dir)?;
    for w in &prepared.warnings {
        tracing::warn!("{w}");
    }
    let launch = prepared.launch;
    let outcome = rt.block_on(async {
        let sink: crate::local::instance::Sink = Arc::new(|line: &str| eprintln!("{line}"));
        let mut instance = Instance::spawn(&launch, sink).await?;
        let request_id = crate::local::request_id();
        eprintln!("START RequestId: {request_id} Version: $LATEST");
        let inv = Invocation {
            request_id,
            body: payload,
            timeout: launch.timeout,
            function_arn: launch.arn.clone(),
            trace_id: format!(
                "Root=1-{:08x}-{}",
                crate::local::now_ms() / 1000,
                &crate::local::request_id().replace('-', "")[..24]
            ),
            client_context: None,
            cognito_identity: None,
        };
        let invoked = instance.invoke(inv).await;
        // Every line the function printed comes before END.
        instance.stop().await;
        eprintln!("{}", invoked.report(launch.memory_mb));
        Ok::<_, Error>(invoked.outcome)
    })?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(outcome.body());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    match outcome {
        Outcome::Response(_) => Ok(()),
        Outcome::Error { error_type, .. } => {
            Err(Error::Failed(format!("{id} failed ({error_type}); its error is above")))
        }
    }
}

/// What a local server prints: its own lines and its functions' output, on stderr.
fn report() -> crate::local::reload::Report {
    Arc::new(|line: &str| eprintln!("{line}"))
}

/// Waits for SIGINT or SIGTERM.
async fn stopped() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("cannot install signal handlers", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot install signal handlers", e))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Serves until SIGINT or SIGTERM, then stops the server, the watcher and every function process.
async fn until_stopped(
    server: tokio::task::JoinHandle<()>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    functions: &Functions,
) -> Result<(), Error> {
    let stop = stopped().await;
    server.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    functions.shutdown().await;
    stop
}

/// The functions of a project, prepared to serve, with hot reload unless `--no-watch`.
async fn serve_functions(
    setup: Setup,
    builds: Builds,
    serve: &crate::cli::ServeArgs,
    on_project: Arc<dyn Fn(Arc<Project>) + Send + Sync>,
) -> (Arc<Functions>, Option<tokio::task::JoinHandle<()>>) {
    let report = report();
    let settings = Settings {
        ctx: setup.ctx.clone(),
        lamb_dir: setup.pc.root.join(LAMB_DIR),
        warm: usize::from(serve.warm_instances),
        sink: Arc::new(|line: &str| eprintln!("{line}")),
    };
    let (functions, updated) = Functions::new(Arc::new(setup.project), &builds, settings).await;
    for w in &updated.warnings {
        report(&format!("warning: {w}"));
    }
    for (id, why) in &updated.failed {
        report(&format!("warning: {id} cannot run: {why}"));
    }
    let functions = Arc::new(functions);
    let watcher = (!serve.no_watch).then(|| {
        tokio::spawn(crate::local::reload::watch(
            functions.clone(),
            setup.pc.clone(),
            std::time::Duration::from_millis(serve.debounce_ms),
            report.clone(),
            on_project,
        ))
    });
    (functions, watcher)
}

fn start_lambda(args: crate::cli::StartLambdaArgs) -> Result<(), Error> {
    let rt = runtime()?;
    let setup = setup(&args.local, &rt)?;
    let builds = builds(&setup, &[], args.local.no_build)?;
    let region = setup.ctx.region.clone();
    rt.block_on(async {
        let listener = crate::local::http::listen(&args.serve.host, args.port, "--port").await?;
        let (functions, watcher) = serve_functions(setup, builds, &args.serve, Arc::new(|_| {})).await;
        let addr = listener.local_addr().map_err(|e| Error::io("cannot read the listening address", e))?;
        let names: Vec<String> = functions.project().functions.iter().map(|f| f.res.logical_id.clone()).collect();
        eprintln!("lamb serves the Lambda Invoke API for {} at http://{addr}", names.join(", "));
        eprintln!(
            "  aws lambda invoke --endpoint-url http://{addr} --function-name {} out.json; Ctrl-C to stop",
            names.first().map_or("NAME", String::as_str)
        );
        let server = tokio::spawn(crate::local::invoke_api::serve(listener, functions.clone(), region, report()));
        until_stopped(server, watcher, &functions).await
    })
}

/// `start-api`'s listing of what it serves.
fn describe_route(r: &crate::local::apigw::routes::Route, base: &str) -> String {
    use crate::local::apigw::routes::RouteKind;
    match r.url_prefix() {
        Some(prefix) => format!("  ANY     {base}{prefix}/...  → {} (function URL)", r.function),
        None => {
            let api = match r.kind {
                RouteKind::Rest => "REST API",
                _ => "HTTP API",
            };
            let path = if r.is_default() { "/ (any path: $default)".to_string() } else { r.path.clone() };
            let auth = r.authorizer.as_ref().map(|a| format!(", authorizer {}", a.name)).unwrap_or_default();
            format!("  {:<7} {base}{path}  → {} ({api} {}, stage {}{auth})", r.method, r.function, r.api, r.stage)
        }
    }
}

fn start_api(args: crate::cli::StartApiArgs) -> Result<(), Error> {
    use crate::local::api_server::{self, Api};
    use crate::local::apigw::routes::routes;
    let rt = runtime()?;
    let setup = setup(&args.local, &rt)?;
    let table = routes(&setup.project).map_err(crate::local::LocalError::from)?;
    for note in &table.notes {
        eprintln!("note: {note}");
    }
    if table.routes.is_empty() {
        return Err(Error::Failed(format!(
            "{}: no function has an Api or HttpApi event or a FunctionUrlConfig, so there is nothing to serve; add an event (or use `lamb local start-lambda` or `lamb local invoke`)",
            setup.pc.template.display()
        )));
    }
    let builds = builds(&setup, &[], args.local.no_build)?;
    let region = setup.ctx.region.clone();
    let static_dir = Some(setup.pc.root.join(&args.static_dir)).filter(|d| d.is_dir());
    rt.block_on(async {
        let listener = crate::local::http::listen(&args.serve.host, args.port, "--port").await?;
        let addr = listener.local_addr().map_err(|e| Error::io("cannot read the listening address", e))?;
        eprintln!("lamb serves the template's APIs at http://{addr} (Ctrl-C to stop):");
        let cell: Arc<std::sync::OnceLock<Arc<Api>>> = Arc::new(std::sync::OnceLock::new());
        let on_project = {
            let (cell, report) = (cell.clone(), report());
            Arc::new(move |p: Arc<Project>| match routes(&p) {
                Ok(table) => {
                    if let Some(api) = cell.get() {
                        api.set_routes(table);
                    }
                }
                Err(e) => report(&format!("error: {e} (the last good routes stay)")),
            })
        };
        let base = format!("http://{addr}");
        for r in &table.routes {
            eprintln!("{}", describe_route(r, &base));
        }
        if let Some(d) = &static_dir {
            eprintln!("  GET     {base}/...  → files of {}", d.display());
        }
        let (functions, watcher) = serve_functions(setup, builds, &args.serve, on_project).await;
        let api = Arc::new(Api::new(table, functions.clone(), static_dir, region, report()));
        let _ = cell.set(api.clone());
        let server = tokio::spawn(api_server::serve(listener, api));
        until_stopped(server, watcher, &functions).await
    })
}

/// `generate-event`: a sample event as JSON on stdout; without a service and event, the list
/// of what there is.
fn generate_event(args: crate::cli::GenerateEventArgs) -> Result<(), Error> {
    use crate::local::events::{catalog, generate};
    let (Some(service), Some(event)) = (&args.service, &args.event) else {
        let mut out = String::from("lamb local generate-event SERVICE EVENT [--key value ...]\n");
        for spec in catalog() {
            out.push_str(&format!("  {:<12} {:<20} {}\n", spec.service, spec.event, spec.help));
            let keys: Vec<String> = spec.keys.iter().map(|k| format!("--{} ({})", k.name, k.default)).collect();
            if !keys.is_empty() {
                out.push_str(&format!("  {:<33} {}\n", "", keys.join(" ")));
            }
        }
        crate::output::emit(out.trim_end());
        return match (&args.service, &args.event) {
            (None, None) => Ok(()),
            _ => Err(Error::Usage("name both a SERVICE and an EVENT (see the list above)".into())),
        };
    };
    let mut values = std::collections::BTreeMap::new();
    let mut rest = args.values.iter();
    while let Some(key) = rest.next() {
        let Some(name) = key.strip_prefix("--") else {
            return Err(Error::Usage(format!("`{key}`: values are given as --key value (e.g. --path users)")));
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let v = rest.next().ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?;
                (name.to_string(), v.clone())
            }
        };
        values.insert(name, value);
    }
    let doc = generate(service, event, &values).map_err(|e| Error::Usage(e.to_string()))?;
    crate::output::emit(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(())
}
