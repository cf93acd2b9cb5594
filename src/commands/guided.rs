//! `lamb deploy --guided`: the questions of SAM's guided deploy, each with the current value
//! (flags, then samconfig, then lamb's defaults) as its default, then the answers saved to
//! samconfig.toml in SAM's format and used for the deploy. Questions go to stderr and answers
//! come from the terminal; without one, the error names the flags to pass instead. An answer
//! that is not valid is asked again, saying why; Ctrl-C leaves everything as it was (exit 130).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::DeployArgs;
use crate::config::samconfig_edit::{self, DeployAnswers};
use crate::config::{self, StackConfig};
use crate::project::Project;
use crate::project::params::{self, Parameter};
use crate::project::value::Value;

#[derive(Debug, thiserror::Error)]
pub enum GuidedError {
    #[error(
        "--guided asks its questions on a terminal, and stdin is not one; pass the answers as flags instead: --stack-name, --region, --parameter-overrides Key=Value ..., --capabilities ..., --confirm-changeset, --disable-rollback, --resolve-s3 or --s3-bucket (or keep them in samconfig.toml)"
    )]
    NotTerminal,
    #[error("the input ended before every question was answered; nothing was saved or deployed")]
    Eof,
    #[error(
        "`{function}` may not have authorization defined, and that was not accepted; add an authorizer (Auth.Authorizer on its Api/HttpApi event, Auth.DefaultAuthorizer on its API, or AuthType AWS_IAM on its function URL), or answer y; nothing was saved or deployed"
    )]
    Unauthorized { function: String },
    #[error("{}: cannot save the answers: {message}; the file was not changed: fix it and run --guided again", file.display())]
    Save { file: PathBuf, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl GuidedError {
    pub fn is_usage(&self) -> bool {
        matches!(self, GuidedError::NotTerminal)
    }
}

/// Where questions are asked and answers read: the terminal, or a script in tests.
pub trait Ask {
    /// Shows `prompt` and reads one line (without its newline); `None` at the end of input.
    /// A `secret` answer is not echoed.
    fn line(&mut self, prompt: &str, secret: bool) -> Result<Option<String>, GuidedError>;
    /// Tells the user something between questions.
    fn say(&mut self, text: &str);
}

/// What is asked, with the current values as defaults.
#[derive(Debug, Clone)]
pub struct Questions {
    pub stack_name: String,
    pub region: String,
    /// Each parameter with its current value (an override), if any.
    pub parameters: Vec<(Parameter, Option<String>)>,
    pub confirm_changeset: bool,
    pub capabilities: Vec<String>,
    pub disable_rollback: bool,
    /// Functions an API route or function URL reaches without authorization.
    pub unauthenticated: Vec<String>,
    pub s3_bucket: Option<String>,
    pub config_file: String,
    pub config_env: String,
}

/// What was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub deploy: DeployAnswers,
    /// NoEcho parameters: used for the deploy, never written to the file.
    pub secret_parameters: Vec<String>,
    /// The file and environment to save to, if the answers are saved.
    pub save: Option<(String, String)>,
}

const CAPABILITIES: &[&str] =
    &["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND", "CAPABILITY_RESOURCE_POLICY"];

/// A name CloudFormation takes for a stack: a letter, then letters, digits and hyphens.
fn valid_stack_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if first_ok && s.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a stack name: it must start with a letter and have only letters, digits and hyphens (at most 128)"
        ))
    }
}

fn valid_region(s: &str) -> Result<(), String> {
    let re = regex_lite::Regex::new(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$").expect("a valid pattern");
    if re.is_match(s) { Ok(()) } else { Err(format!("`{s}` is not an AWS region such as us-east-1 or eu-west-2")) }
}

/// The default stack name: the project directory's name where CloudFormation takes it.
pub fn default_stack_name(dir_name: &str) -> String {
    let cleaned: String = dir_name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let cleaned = cleaned.trim_matches('-').to_string();
    if valid_stack_name(&cleaned).is_ok() { cleaned } else { "lamb-app".to_string() }
}

/// Asks until the answer passes `check`; an empty answer takes `default`.
fn text(
    ask: &mut dyn Ask,
    label: &str,
    default: &str,
    check: &dyn Fn(&str) -> Result<(), String>,
) -> Result<String, GuidedError> {
    loop {
        let prompt = if default.is_empty() { format!("{label}: ") } else { format!("{label} [{default}]: ") };
        let answer = ask.line(&prompt, false)?.ok_or(GuidedError::Eof)?;
        let answer = if answer.trim().is_empty() { default.to_string() } else { answer.trim().to_string() };
        match check(&answer) {
            Ok(()) => return Ok(answer),
            Err(why) => ask.say(&format!("\t{why}; try again")),
        }
    }
}

fn yes_no(ask: &mut dyn Ask, label: &str, default: bool) -> Result<bool, GuidedError> {
    let hint = if default { "Y/n" } else { "y/N" };
    loop {
        let answer = ask.line(&format!("{label} [{hint}]: "), false)?.ok_or(GuidedError::Eof)?;
        match answer.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(default),
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            other => ask.say(&format!("\t`{other}` is not an answer to a yes/no question; type y or n")),
        }
    }
}

fn parameter(ask: &mut dyn Ask, p: &Parameter, current: Option<&str>) -> Result<String, GuidedError> {
    let default = current.map(str::to_string).or_else(|| p.default.clone()).unwrap_or_default();
    let allowed = |v: &str| -> Result<(), String> {
        if p.allowed_values.is_empty() || p.allowed_values.iter().any(|a| a == v) {
            Ok(())
        } else {
            Err(format!("`{v}` is not one of the AllowedValues of {} ({})", p.name, p.allowed_values.join(", ")))
        }
    };
    if let Some(d) = &p.description {
        ask.say(&format!("\t#{d}"));
    }
    if !p.no_echo {
        return text(ask, &format!("Parameter {}", p.name), &default, &allowed);
    }
    // A secret: not shown, not echoed; Enter keeps the current value.
    loop {
        let shown = if default.is_empty() { String::new() } else { " [*****]".to_string() };
        let answer = ask.line(&format!("Parameter {}{shown}: ", p.name), true)?.ok_or(GuidedError::Eof)?;
        let answer = if answer.is_empty() { default.clone() } else { answer };
        match allowed(&answer) {
            Ok(()) => return Ok(answer),
            Err(why) => ask.say(&format!("\t{why}; try again")),
        }
    }
}

/// SAM's guided questions, in SAM's order.
pub fn interview(ask: &mut dyn Ask, q: &Questions) -> Result<Answers, GuidedError> {
    ask.say("Configuring lamb deploy: the values in brackets are the current ones; Enter keeps them.");
    let stack_name = text(ask, "Stack Name", &q.stack_name, &valid_stack_name)?;
    let region = text(ask, "AWS Region", &q.region, &valid_region)?;
    let mut parameter_overrides = Vec::new();
    let mut secret_parameters = Vec::new();
    for (p, current) in &q.parameters {
        parameter_overrides.push((p.name.clone(), parameter(ask, p, current.as_deref())?));
        if p.no_echo {
            secret_parameters.push(p.name.clone());
        }
    }
    ask.say("\t#Shows you the resource changes to be deployed and asks for a 'y' to start the deploy");
    let confirm_changeset = yes_no(ask, "Confirm changes before deploy", q.confirm_changeset)?;
    ask.say("\t#lamb needs permission to create the IAM roles your template's functions use");
    let has_iam = |c: &String| c == "CAPABILITY_IAM" || c == "CAPABILITY_NAMED_IAM";
    let iam = yes_no(ask, "Allow IAM role creation", q.capabilities.is_empty() || q.capabilities.iter().any(has_iam))?;
    let capabilities = if iam {
        let mut caps: Vec<String> = q.capabilities.clone();
        if !caps.iter().any(has_iam) {
            caps.insert(0, "CAPABILITY_IAM".to_string());
        }
        caps
    } else {
        let current: Vec<&str> = q.capabilities.iter().map(String::as_str).filter(|c| !c.contains("IAM")).collect();
        let default = if current.is_empty() { "CAPABILITY_NAMED_IAM".to_string() } else { current.join(" ") };
        let valid = |s: &str| -> Result<(), String> {
            match s.split_whitespace().find(|c| !CAPABILITIES.contains(c)) {
                Some(bad) => Err(format!("`{bad}` is not a capability ({})", CAPABILITIES.join(", "))),
                None => Ok(()),
            }
        };
        text(ask, "Capabilities", &default, &valid)?.split_whitespace().map(str::to_string).collect()
    };
    ask.say("\t#Keeps the state of the resources already provisioned when a deploy fails");
    let disable_rollback = yes_no(ask, "Disable rollback", q.disable_rollback)?;
    for f in &q.unauthenticated {
        if !yes_no(ask, &format!("{f} may not have authorization defined, Is this okay?"), false)? {
            return Err(GuidedError::Unauthorized { function: f.clone() });
        }
    }
    let save = if yes_no(ask, "Save arguments to configuration file", true)? {
        let toml = |s: &str| -> Result<(), String> {
            if s.ends_with(".toml") { Ok(()) } else { Err(format!("`{s}` is not a .toml file; lamb saves TOML")) }
        };
        let file = text(ask, "Configuration file", &q.config_file, &toml)?;
        let env_name = |s: &str| -> Result<(), String> {
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                Ok(())
            } else {
                Err(format!("`{s}` is not an environment name (letters, digits, - and _)"))
            }
        };
        let env = text(ask, "Configuration environment", &q.config_env, &env_name)?;
        Some((file, env))
    } else {
        None
    };
    Ok(Answers {
        deploy: DeployAnswers {
            s3_prefix: stack_name.clone(),
            stack_name,
            region: Some(region),
            s3_bucket: q.s3_bucket.clone(),
            confirm_changeset,
            capabilities,
            disable_rollback,
            parameter_overrides,
        },
        secret_parameters,
        save,
    })
}

/// The functions an `Api`/`HttpApi` event or a function URL reaches without authorization, as
/// SAM's guided deploy finds them: no `Auth.Authorizer` on the event (or `NONE`), and an API
/// (explicit, or the implicit one through `Globals`) without a `DefaultAuthorizer` or an
/// OpenAPI definition of its own; a function URL with `AuthType: NONE`.
pub fn unauthenticated(doc: &Value) -> Vec<String> {
    let resources = doc.get("Resources").and_then(Value::as_map);
    let authorized_name = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|a| a != "NONE");
    let api_has_auth = |api: &Value| {
        let props = api.get("Properties");
        authorized_name(props.and_then(|p| p.get("Auth")).and_then(|a| a.get("DefaultAuthorizer")))
            || props.is_some_and(|p| p.get("DefinitionBody").is_some() || p.get("DefinitionUri").is_some())
    };
    let mut open = std::collections::BTreeSet::new();
    for (id, r) in resources.into_iter().flatten() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = r.get("Properties");
        let events = props.and_then(|p| p.get("Events")).and_then(Value::as_map);
        for event in events.into_iter().flat_map(|e| e.values()) {
            let (api_key, global) = match event.get("Type").and_then(Value::as_str) {
                Some("Api") => ("RestApiId", "Api"),
                Some("HttpApi") => ("ApiId", "HttpApi"),
                _ => continue,
            };
            let ep = event.get("Properties");
            let event_auth = ep.and_then(|p| p.get("Auth")).and_then(|a| a.get("Authorizer"));
            let authorized = match event_auth {
                Some(_) => authorized_name(event_auth),
                None => match ep.and_then(|p| p.get(api_key)).and_then(|v| v.get("Ref")).and_then(Value::as_str) {
                    Some(api) => resources.and_then(|rs| rs.get(api)).is_some_and(api_has_auth),
                    None => doc
                        .get("Globals")
                        .and_then(|g| g.get(global))
                        .is_some_and(|g| authorized_name(g.get("Auth").and_then(|a| a.get("DefaultAuthorizer")))),
                },
            };
            if !authorized {
                open.insert(id.clone());
            }
        }
        let url_auth = props.and_then(|p| p.get("FunctionUrlConfig")).and_then(|u| u.get("AuthType"));
        if url_auth.and_then(Value::as_str) == Some("NONE") {
            open.insert(id.clone());
        }
    }
    open.into_iter().collect()
}

/// The questions for a project, with flags, samconfig and lamb's defaults as current values.
pub fn questions(args: &DeployArgs, project: &Project, cfg: &StackConfig, pc: &config::ProjectConfig) -> Questions {
    let doc = &project.root_stack().file.doc;
    let decls = params::declarations(doc.get("Parameters")).unwrap_or_default();
    let region = cfg
        .aws
        .region
        .clone()
        .or_else(|| ["AWS_REGION", "AWS_DEFAULT_REGION"].into_iter().find_map(|k| std::env::var(k).ok()))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    let config_file = args
        .project
        .config_file
        .clone()
        .or_else(|| pc.samconfig.file.as_ref().and_then(|f| f.file_name().map(PathBuf::from)))
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        .map_or_else(|| "samconfig.toml".to_string(), |f| f.display().to_string());
    Questions {
        stack_name: cfg.stack_name.clone(),
        region,
        parameters: decls.into_iter().map(|p| (p.clone(), pc.overrides.get(&p.name).cloned())).collect(),
        confirm_changeset: cfg.confirm,
        capabilities: cfg.capabilities.clone(),
        disable_rollback: cfg.disable_rollback,
        unauthenticated: unauthenticated(doc),
        s3_bucket: match &cfg.bucket {
            config::Bucket::Named(b) => Some(b.clone()),
            _ => None,
        },
        config_file,
        config_env: args.project.config_env.clone(),
    }
}

/// Saves `answers` into `file` (its NoEcho parameters left out), editing it in place.
pub fn save(file: &std::path::Path, env: &str, answers: &Answers) -> Result<(), GuidedError> {
    let current = match std::fs::read_to_string(file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(GuidedError::Io { what: format!("cannot read {}", file.display()), source }),
    };
    let mut saved = answers.deploy.clone();
    saved.parameter_overrides.retain(|(k, _)| !answers.secret_parameters.contains(k));
    let text = samconfig_edit::save_deploy(current.as_deref(), env, &saved)
        .map_err(|message| GuidedError::Save { file: file.to_path_buf(), message })?;
    crate::state::write_atomic(file, text.as_bytes())
        .map_err(|e| GuidedError::Save { file: file.to_path_buf(), message: e.to_string() })
}

/// The terminal: prompts on stderr, answers from stdin, secrets without echo, and Ctrl-C
/// (exit 130) putting the terminal back as it was.
pub struct Terminal;

impl Terminal {
    /// The terminal, if stdin is one.
    pub fn open() -> Result<Terminal, GuidedError> {
        if !std::io::stdin().is_terminal() {
            return Err(GuidedError::NotTerminal);
        }
        tty::remember();
        tty::on_interrupt_exit();
        Ok(Terminal)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        tty::restore();
        tty::default_interrupt();
    }
}

impl Ask for Terminal {
    fn line(&mut self, prompt: &str, secret: bool) -> Result<Option<String>, GuidedError> {
        let mut err = std::io::stderr();
        let _ = write!(err, "\t{prompt}");
        let _ = err.flush();
        if secret {
            tty::echo(false);
        }
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer);
        if secret {
            tty::echo(true);
            let _ = writeln!(err);
        }
        let n = read.map_err(|source| GuidedError::Io { what: "cannot read the answer".into(), source })?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(answer.trim_end_matches(['\n', '\r']).to_string()))
    }

    fn say(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Terminal modes on stdin, and the SIGINT handler that restores them.
mod tty {
    use std::sync::OnceLock;

    static ORIGINAL: OnceLock<libc::termios> = OnceLock::new();

    pub fn remember() {
        // SAFETY: tcgetattr writes a termios for a descriptor; a zeroed one is a valid buffer.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut t) } == 0 {
            let _ = ORIGINAL.set(t);
        }
    }

    pub fn restore() {
        if let Some(t) = ORIGINAL.get() {
            // SAFETY: restores the modes read by `remember` on the same descriptor.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }

    pub fn echo(on: bool) {
        let Some(original) = ORIGINAL.get() else { return };
        let mut t = *original;
        if !on {
            t.c_lflag &= !libc::ECHO;
        }
        // SAFETY: as in `restore`; TCSANOW keeps typed-ahead input.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }

    extern "C" fn interrupted(_: libc::c_int) {
        restore();
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::_exit(130);
        }
    }

    pub fn on_interrupt_exit() {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(libc::SIGINT, interrupted as *const () as libc::sighandler_t) };
    }

    pub fn default_interrupt() {
        // SAFETY: puts back the default disposition.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    }
}

#[cfg(test)]
mod tests;
