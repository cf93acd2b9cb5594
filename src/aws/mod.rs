//! AWS access: one place that builds the SDK clients (credential chain, region, endpoint
//! overrides, retries, timeouts) and turns SDK errors into messages that say what to do.
//! Everything else receives an [`Aws`] and never configures a client itself.

pub mod cloudformation;
pub mod lambda;
pub mod logs;
pub mod s3;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Attempts per call, including the first (standard retry mode: throttling, 5xx and
/// transient network errors are retried with jittered exponential backoff).
pub const MAX_ATTEMPTS: u32 = 5;

/// Standard retry mode with lamb's bounds: jittered exponential backoff from 100 ms to 5 s.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

/// How long a request may take to be sent and answered when it carries `bytes`: the
/// client's minute, plus the upload over a slow link (200 KB/s), so a large zip on a
/// hotel network is not cut off and sent again.
pub fn upload_timeouts(bytes: u64) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT + Duration::from_millis(bytes / 200))
        .build()
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Until the first byte of an answer: AWS answers in well under a second, an emulator too.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// An AWS call that failed, said so that the user knows what to do. Its text never carries a
/// signed URL's query string or credentials, whatever AWS put in its message (see [`redact`]).
#[derive(Debug)]
pub enum AwsError {
    NoRegion,
    Credentials {
        source_desc: String,
        detail: String,
    },
    Unreachable {
        op: String,
        detail: String,
    },
    Service {
        op: String,
        code: String,
        message: String,
        hint: String,
    },
    Other {
        op: String,
        detail: String,
    },
    /// An HTTP answer with no AWS error in it (an HTML page from a proxy or load balancer).
    Http {
        op: String,
        status: u16,
        endpoint: String,
        body_start: String,
    },
    Timeout {
        what: String,
        secs: u64,
        fix: String,
    },
    /// A local file to send could not be read.
    ReadFile {
        path: std::path::PathBuf,
        detail: String,
    },
    Failed(String),
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            AwsError::NoRegion => "no AWS region: pass --region, set `region` in samconfig.toml, or set AWS_REGION (or a region in your AWS profile)".to_string(),
            AwsError::Credentials { source_desc, detail } => format!(
                "no usable AWS credentials ({source_desc}): {detail}; run `aws configure`, `aws sso login`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ),
            AwsError::Unreachable { op, detail } => format!(
                "cannot reach AWS for {op} ({detail}); check your network, or AWS_ENDPOINT_URL if you point lamb at an emulator"
            ),
            AwsError::Service { op, code, message, hint } => format!("{op} failed: {code}: {message}{hint}"),
            AwsError::Other { op, detail } => format!("{op} failed: {detail}"),
            AwsError::Http { op, status, endpoint, body_start } => format!(
                "{op} failed: HTTP {status} from {endpoint} with no AWS error in the answer, which began: {body_start:?}; something between lamb and AWS (a proxy, a load balancer) answered: check it, or retry"
            ),
            AwsError::Timeout { what, secs, fix } => format!("{what} did not finish within {secs} s; {fix}"),
            AwsError::ReadFile { path, detail } => format!("cannot read {}: {detail}", path.display()),
            AwsError::Failed(m) => m.clone(),
        };
        f.write_str(&redact(&text))
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// `path` could not be read to be sent.
    pub fn read_file(path: &std::path::Path, detail: impl std::fmt::Display) -> Self {
        AwsError::ReadFile { path: path.to_path_buf(), detail: detail.to_string() }
    }
}

/// The region `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile names, found as the SDK would
/// but without asking the instance metadata service (a developer's machine has none, and
/// asking only delays).
pub async fn configured_region(profile: Option<&str>) -> Option<String> {
    let env =
        ["AWS_REGION", "AWS_DEFAULT_REGION"].into_iter().find_map(|k| std::env::var(k).ok().filter(|r| !r.is_empty()));
    if env.is_some() {
        return env;
    }
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        provider = provider.profile_name(p);
    }
    aws_config::meta::region::ProvideRegion::region(&provider.build()).await.map(|r| r.to_string())
}

/// The account id in a stack ARN (`arn:aws:cloudformation:region:ACCOUNT:stack/...`).
pub fn account_of(stack_id: &str) -> Option<&str> {
    stack_id.split(':').nth(4).filter(|a| !a.is_empty())
}

/// What replaces a secret in text lamb shows.
pub const REDACTED: &str = "<redacted>";

/// `text` without secrets AWS or the SDK may put in messages: the query string of a signed URL
/// (one carrying `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `Signature`
/// or `AWSAccessKeyId`, e.g. a presigned S3 link in a Lambda error) is replaced as a whole;
/// `Credential=`, `Signature=` and `Security-Token=` values (a SigV4 header or form quoted
/// back), `X-Amz-Security-Token:` header values, and access key ids (`AKIA...`, `ASIA...`)
/// anywhere else are replaced one by one.
pub fn redact(text: &str) -> String {
    const SIGNED: [&str; 4] = ["signature=", "credential=", "security-token=", "awsaccesskeyid="];
    let query_end = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('?') {
        let (head, tail) = rest.split_at(q + 1);
        let end = tail.find(query_end).unwrap_or(tail.len());
        let query = tail[..end].to_ascii_lowercase();
        out.push_str(head);
        out.push_str(if SIGNED.iter().any(|k| query.contains(k)) { REDACTED } else { &tail[..end] });
        rest = &tail[end..];
    }
    out.push_str(rest);
    let value_end = |c: char| query_end(c) || matches!(c, ',' | '&' | ';');
    for key in ["credential=", "signature=", "security-token=", "x-amz-security-token: "] {
        out = redact_values(&out, key, value_end);
    }
    redact_key_ids(&out)
}

/// Replaces what follows each (ASCII case-insensitive) `key` up to `end` with [`REDACTED`].
fn redact_values(text: &str, key: &str, end: impl Fn(char) -> bool) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(key) {
        let start = at + i + key.len();
        let stop = text[start..].find(&end).map_or(text.len(), |n| start + n);
        out.push_str(&text[at..start]);
        if stop > start {
            out.push_str(REDACTED);
        }
        at = stop;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces access key ids: `AKIA` or `ASIA` and 16 more capitals or digits, as a word.
fn redact_key_ids(text: &str) -> String {
    let b = text.as_bytes();
    let id_char = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i + 20 <= b.len() {
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if word_start
            && (b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA"))
            && b[i + 4..i + 20].iter().all(|c| id_char(*c))
            && b.get(i + 20).is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += 20;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

impl AwsError {
    /// The service error code (`ResourceNotFoundException`, ...), if the service answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.code(), Some("ResourceNotFoundException" | "NotFound" | "NoSuchKey" | "NoSuchBucket" | "404"))
    }

    /// Lambda's "an update is in progress" conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self.code(), Some("ResourceConflictException"))
    }

    /// Whether trying again later may succeed without the user changing anything: network
    /// trouble, timeouts, throttling, AWS's own errors, conflicts. Bad credentials, missing
    /// resources and rejected templates are the user's to fix.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::Unreachable { .. } | AwsError::Timeout { .. } => true,
            AwsError::Service { code, .. } => matches!(
                code.as_str(),
                "TooManyRequestsException"
                    | "ThrottlingException"
                    | "Throttling"
                    | "RequestLimitExceeded"
                    | "ServiceException"
                    | "ServiceUnavailable"
                    | "ServiceUnavailableException"
                    | "InternalFailure"
                    | "InternalError"
                    | "ResourceConflictException"
                    | "500"
                    | "502"
                    | "503"
                    | "504"
            ),
            AwsError::Other { .. } => true,
            AwsError::Http { status, .. } => *status >= 500 || *status == 429,
            AwsError::NoRegion | AwsError::Credentials { .. } | AwsError::ReadFile { .. } | AwsError::Failed(_) => {
                false
            }
        }
    }
}

/// Which credentials lamb was asked to use, for messages.
fn credential_source(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("profile `{p}`"),
        None => match std::env::var("AWS_PROFILE") {
            Ok(p) => format!("profile `{p}` from AWS_PROFILE"),
            Err(_) => "the default credential chain: environment, ~/.aws profiles, SSO, IMDS".into(),
        },
    }
}

/// The raw HTTP answer behind a service error, read when it carries no AWS error.
pub trait RawAnswer: std::fmt::Debug {
    fn status(&self) -> u16;
    fn body(&self) -> &[u8];
}

impl RawAnswer for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn body(&self) -> &[u8] {
        self.body().bytes().unwrap_or_default()
    }
}

/// The endpoint lamb's clients talk to, for messages: the configured one (an emulator, a
/// proxy) or AWS's in the region. Set when the clients are made.
static ENDPOINT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn endpoint() -> String {
    ENDPOINT.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "the AWS endpoint".into())
}

/// The first line's worth of an answer's body, whitespace folded, secrets redacted.
fn body_start(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let folded: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut = folded.len().min(160);
    while !folded.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = if cut < folded.len() { "..." } else { "" };
    redact(&format!("{}{more}", &folded[..cut]))
}

/// Converts an SDK error, naming the operation.
pub fn sdk_error<E, R>(op: &str, profile: Option<&str>, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: RawAnswer,
{
    match &err {
        SdkError::ServiceError(se) if se.err().code().is_none() => {
            let raw = se.raw();
            AwsError::Http {
                op: op.to_string(),
                status: raw.status(),
                endpoint: endpoint(),
                body_start: body_start(raw.body()),
            }
        }
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = redact(e.message().unwrap_or(""));
            let hint = hint_for(&code);
            if code.contains("ExpiredToken")
                || code.contains("InvalidClientTokenId")
                || code == "UnrecognizedClientException"
            {
                return AwsError::Credentials {
                    source_desc: credential_source(profile),
                    detail: format!("{code}: {message}"),
                };
            }
            AwsError::Service { op: op.to_string(), code, message, hint }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            let detail = chain(&err);
            if detail.contains("credentials") || detail.contains("Credentials") {
                return AwsError::Credentials { source_desc: credential_source(profile), detail: short(&detail) };
            }
            AwsError::Unreachable { op: op.to_string(), detail: short(&detail) }
        }
        _ => {
            let detail = chain(&err);
            if detail.contains("credentials") || detail.contains("Credentials") {
                return AwsError::Credentials { source_desc: credential_source(profile), detail: short(&detail) };
            }
            AwsError::Other { op: op.to_string(), detail: short(&detail) }
        }
    }
}

/// An error and its causes, each said once ("dispatch failure: io error: ... : Connection
/// refused (os error 111)"), without the SDK's debug dump of the same.
fn chain<E: std::error::Error>(err: &E) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(e) = cause {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cause = e.source();
    }
    parts.join(": ")
}

/// The SDK's error chains repeat themselves; keep them readable (and without secrets).
fn short(detail: &str) -> String {
    let mut s = redact(&detail.replace('\n', " "));
    if s.len() > 400 {
        let mut cut = 400;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn hint_for(code: &str) -> String {
    match code {
        "AccessDeniedException" | "AccessDenied" => "; the credentials in use lack this permission".into(),
        "TooManyRequestsException" | "ThrottlingException" | "Throttling" => {
            "; AWS kept throttling after retries, try again in a moment".into()
        }
        _ => String::new(),
    }
}

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// The clients lamb uses, built once per command.
#[derive(Clone)]
pub struct Aws {
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub cfn: aws_sdk_cloudformation::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts_config: aws_config::SdkConfig,
    pub region: String,
    pub profile: Option<String>,
    /// The S3 endpoint when overridden (an emulator): S3 URLs are then path-style on it.
    pub s3_endpoint: Option<String>,
}

impl Aws {
    /// Loads the standard configuration (environment, profiles, SSO, IMDS) with lamb's
    /// overrides. No network call is made here.
    pub async fn connect(opts: &AwsOptions) -> Result<Aws, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config()).timeout_config(
            TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build(),
        );
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).ok_or(AwsError::NoRegion)?;
        if let Ok(mut e) = ENDPOINT.lock() {
            *e = Some(config.endpoint_url().map_or_else(|| format!("AWS in {region}"), str::to_string));
        }
        let s3_endpoint = s3_endpoint(&config);
        let s3_conf = aws_sdk_s3::config::Builder::from(&config).force_path_style(s3_endpoint.is_some()).build();
        Ok(Aws {
            lambda: aws_sdk_lambda::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            cfn: aws_sdk_cloudformation::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            sts_config: config,
            region,
            profile: opts.profile.clone(),
            s3_endpoint,
        })
    }

    pub fn err<E, R>(&self, op: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: RawAnswer,
    {
        sdk_error(op, self.profile.as_deref(), e)
    }

    /// An HTTPS URL for an S3 object that CloudFormation can read (path-style on an emulator).
    pub fn s3_url(&self, bucket: &str, key: &str) -> String {
        match &self.s3_endpoint {
            Some(ep) => format!("{}/{bucket}/{key}", ep.trim_end_matches('/')),
            // China's regions have their own domain.
            None if self.region.starts_with("cn-") => {
                format!("https://{bucket}.s3.{}.amazonaws.com.cn/{key}", self.region)
            }
            None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
        }
    }
}

/// The S3 endpoint when one is configured (an emulator, LocalStack, a proxy): S3's own
/// variable, else the global endpoint the SDK resolved (from AWS_ENDPOINT_URL or the profile's
/// `endpoint_url`), unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS says to use AWS's own.
fn s3_endpoint(config: &aws_config::SdkConfig) -> Option<String> {
    let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| config.endpoint_url().map(str::to_string))
}

/// Polls with a delay that starts small and grows, so fast operations finish fast and slow ones
/// are not hammered; gives up after `limit`.
pub struct Backoff {
    delay: Duration,
    max: Duration,
    deadline: tokio::time::Instant,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, limit: Duration) -> Self {
        Backoff { delay: first, max, deadline: tokio::time::Instant::now() + limit }
    }

    /// Sleeps before the next poll; `false` once the time is up.
    pub async fn wait(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay.min(self.deadline - now)).await;
        self.delay = (self.delay * 3 / 2).min(self.max);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_from_stack_arn() {
        assert_eq!(account_of("arn:aws:cloudformation:us-east-1:123456789012:stack/app/abc"), Some("123456789012"));
        assert_eq!(account_of("app"), None);
    }

    const PRESIGNED: &str = "https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snapshots/1/fn-0a1b?versionId=3\
        &X-Amz-Security-Token=IQoJb3JpZ2luX2VjELAMBTOKEN%2F%2B&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=600\
        &X-Amz-Credential=ASIALAMBREDACTTEST01%2F20240101%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_presigned_url_loses_its_query_string() {
        let text = format!("Error occurred while GetObject. S3 Error Code: AccessDenied. URL: {PRESIGNED}. Check it");
        let out = redact(&text);
        assert_eq!(
            out,
            "Error occurred while GetObject. S3 Error Code: AccessDenied. URL: https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snapshots/1/fn-0a1b?<redacted> Check it"
        );
        // SigV2 links too, and quoted ones; a query without signing parameters stays.
        assert_eq!(
            redact("\"https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIALAMBREDACTTEST02&Expires=1&Signature=abc%3D\""),
            "\"https://b.s3.amazonaws.com/k?<redacted>\""
        );
        assert_eq!(
            redact("see https://docs.aws.amazon.com/x?page=2 now"),
            "see https://docs.aws.amazon.com/x?page=2 now"
        );
    }

    #[test]
    fn credentials_signatures_tokens_and_key_ids_elsewhere_are_redacted() {
        let out = redact(
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIALAMBREDACTTEST03/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        );
        assert_eq!(
            out,
            "Authorization: AWS4-HMAC-SHA256 Credential=<redacted>, SignedHeaders=host;x-amz-date, Signature=<redacted>"
        );
        assert_eq!(redact("x-amz-security-token: FwoGZXIvYXdzEXAMPLE\nnext"), "x-amz-security-token: <redacted>\nnext");
        assert_eq!(redact("key ASIALAMBREDACTTEST04 was used"), "key <redacted> was used");
        // Not a key id: too short, or part of a longer word.
        assert_eq!(redact("AKIA123 and XAKIALAMBREDACTTEST05"), "AKIA123 and XAKIALAMBREDACTTEST05");
        assert_eq!(redact("plain text, no secrets: a=b&c=d"), "plain text, no secrets: a=b&c=d");
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        let detail = format!("{}é{}", "x".repeat(399), "y".repeat(50));
        let out = short(&detail);
        assert!(out.ends_with("x..."), "{out}");
        assert_eq!(out.len(), 399 + 3);
    }

    #[test]
    fn aws_errors_never_display_a_signed_url() {
        let e = AwsError::Failed(format!("the update of function f failed in Lambda: {PRESIGNED}"));
        let shown = e.to_string();
        assert!(shown.ends_with("fn-0a1b?<redacted>"), "{shown}");
        for secret in ["Signature", "Credential", "Security-Token", "ASIALAMB", "IQoJ"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let e = AwsError::Service {
            op: "UpdateFunctionCode".into(),
            code: "InvalidParameterValueException".into(),
            message: format!("cannot read {PRESIGNED}"),
            hint: String::new(),
        };
        assert!(e.to_string().ends_with("fn-0a1b?<redacted>"), "{e}");
    }
}
