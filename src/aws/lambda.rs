//! Lambda calls lamb makes: read a function's code hash and state, update its code, wait until
//! the update is live, publish layer versions and repoint functions at them.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, LastUpdateStatus, Runtime, State};

use super::{AwsError, Backoff, sdk_error};

/// How long one function update may take to become live.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(300);
/// How many times an update that hits "an update is in progress" is retried.
const CONFLICT_RETRIES: u32 = 5;

/// What lamb needs to know about a deployed function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteFunction {
    pub name: String,
    pub arn: String,
    pub code_sha256: String,
    pub last_update_status: Option<String>,
    pub state: Option<String>,
    /// Layer version ARNs, in order.
    pub layers: Vec<String>,
    /// `LoggingConfig.LogGroup`: where the function logs (Lambda says, when it says).
    pub log_group: Option<String>,
}

/// Where new code comes from.
#[derive(Debug, Clone)]
pub enum CodeSource {
    Zip(Vec<u8>),
    S3 { bucket: String, key: String },
}

/// The Lambda client plus what error messages need.
#[derive(Clone)]
pub struct LambdaApi {
    pub client: aws_sdk_lambda::Client,
    pub profile: Option<String>,
    /// First and longest pause between status polls.
    pub poll: (Duration, Duration),
}

impl LambdaApi {
    pub fn new(client: aws_sdk_lambda::Client, profile: Option<String>) -> Self {
        LambdaApi { client, profile, poll: (Duration::from_millis(50), Duration::from_secs(2)) }
    }

    fn err<E, R>(&self, op: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: super::RawAnswer,
    {
        sdk_error(op, self.profile.as_deref(), e)
    }

    /// The function's current configuration, or `None` if it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<RemoteFunction>, AwsError> {
        let out = match self.client.get_function_configuration().function_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = self.err("GetFunctionConfiguration", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        Ok(Some(RemoteFunction {
            name: out.function_name().unwrap_or(name).to_string(),
            arn: out.function_arn().unwrap_or_default().to_string(),
            code_sha256: out.code_sha256().unwrap_or_default().to_string(),
            last_update_status: out.last_update_status().map(|s| s.as_str().to_string()),
            state: out.state().map(|s| s.as_str().to_string()),
            layers: out.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect(),
            log_group: out.logging_config().and_then(|l| l.log_group()).map(str::to_string),
        }))
    }

    /// Waits until the function is not mid-update, returning its configuration. An update that
    /// ends `Failed` is an error carrying Lambda's reason.
    pub async fn wait_updated(&self, name: &str, limit: Duration) -> Result<RemoteFunction, AwsError> {
        let mut backoff = Backoff::new(self.poll.0, self.poll.1, limit);
        loop {
            let out = self
                .client
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| self.err("GetFunctionConfiguration", e))?;
            let pending = matches!(out.state(), Some(State::Pending))
                || matches!(out.last_update_status(), Some(LastUpdateStatus::InProgress));
            if matches!(out.last_update_status(), Some(LastUpdateStatus::Failed)) {
                return Err(AwsError::Failed(format!(
                    "the update of function {name} failed in Lambda: {} ({}); fix the cause and save again",
                    out.last_update_status_reason().unwrap_or("no reason given"),
                    out.last_update_status_reason_code().map(|c| c.as_str()).unwrap_or("no code")
                )));
            }
            if matches!(out.state(), Some(State::Failed)) {
                return Err(AwsError::Failed(format!(
                    "function {name} is in state Failed: {}",
                    out.state_reason().unwrap_or("no reason given")
                )));
            }
            if !pending {
                return Ok(RemoteFunction {
                    name: out.function_name().unwrap_or(name).to_string(),
                    arn: out.function_arn().unwrap_or_default().to_string(),
                    code_sha256: out.code_sha256().unwrap_or_default().to_string(),
                    last_update_status: out.last_update_status().map(|s| s.as_str().to_string()),
                    state: out.state().map(|s| s.as_str().to_string()),
                    layers: out.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect(),
                    log_group: out.logging_config().and_then(|l| l.log_group()).map(str::to_string),
                });
            }
            if !backoff.wait().await {
                return Err(AwsError::Timeout {
                    what: format!("the update of function {name}"),
                    secs: limit.as_secs(),
                    fix:
                        "Lambda still reports it InProgress; check the function in the console and run lamb sync again"
                            .into(),
                });
            }
        }
    }

    /// Runs `call` and, while Lambda answers that an update is already in progress, waits for
    /// the function to settle and tries again: never two updates in flight for one function.
    async fn settle_and_retry<T, F, Fut>(&self, name: &str, op: &str, mut call: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        let mut tries = 0;
        loop {
            match call().await {
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => {
                    tries += 1;
                    tracing::info!(function = name, op, tries, "an update is in progress; waiting for it to finish");
                    self.wait_updated(name, UPDATE_TIMEOUT).await?;
                }
                other => return other,
            }
        }
    }

    /// Replaces the function's code and waits until the new code is live. Returns the
    /// CodeSha256 Lambda reports afterwards.
    pub async fn update_code(&self, name: &str, code: &CodeSource) -> Result<String, AwsError> {
        let answer = self
            .settle_and_retry(name, "UpdateFunctionCode", || async {
                let req = self.client.update_function_code().function_name(name);
                let sent = match code {
                    CodeSource::Zip(bytes) => {
                        let timeouts = super::upload_timeouts(bytes.len() as u64);
                        req.zip_file(Blob::new(bytes.clone()))
                            .customize()
                            .config_override(aws_sdk_lambda::config::Builder::default().timeout_config(timeouts))
                            .send()
                            .await
                    }
                    CodeSource::S3 { bucket, key } => req.s3_bucket(bucket).s3_key(key).send().await,
                };
                sent.map_err(|e| self.err("UpdateFunctionCode", e))
            })
            .await?;
        // The answer says whether the new code is live already: only an update Lambda still
        // runs (InProgress, or a function still Pending) is polled for.
        if answer.last_update_status() == Some(&LastUpdateStatus::Successful)
            && answer.state().is_none_or(|s| *s == State::Active)
            && let Some(sha) = answer.code_sha256()
        {
            return Ok(sha.to_string());
        }
        Ok(self.wait_updated(name, UPDATE_TIMEOUT).await?.code_sha256)
    }

    /// Points the function at `layers` (in order) and waits until that is live.
    pub async fn set_layers(&self, name: &str, layers: &[String]) -> Result<(), AwsError> {
        self.settle_and_retry(name, "UpdateFunctionConfiguration", || async {
            self.client
                .update_function_configuration()
                .function_name(name)
                .set_layers(Some(layers.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.err("UpdateFunctionConfiguration", e))
        })
        .await?;
        self.wait_updated(name, UPDATE_TIMEOUT).await.map(|_| ())
    }

    /// Publishes a new version of layer `layer_name`; returns its version ARN.
    pub async fn publish_layer(
        &self,
        layer_name: &str,
        code: &CodeSource,
        runtimes: &[String],
        architecture: Option<&str>,
    ) -> Result<String, AwsError> {
        let content = match code {
            CodeSource::Zip(bytes) => {
                aws_sdk_lambda::types::LayerVersionContentInput::builder().zip_file(Blob::new(bytes.clone())).build()
            }
            CodeSource::S3 { bucket, key } => {
                aws_sdk_lambda::types::LayerVersionContentInput::builder().s3_bucket(bucket).s3_key(key).build()
            }
        };
        let mut req = self.client.publish_layer_version().layer_name(layer_name).content(content);
        for r in runtimes {
            req = req.compatible_runtimes(Runtime::from(r.as_str()));
        }
        if let Some(a) = architecture {
            req = req.compatible_architectures(Architecture::from(a));
        }
        let bytes = match code {
            CodeSource::Zip(b) => b.len() as u64,
            CodeSource::S3 { .. } => 0,
        };
        let out = req
            .customize()
            .config_override(aws_sdk_lambda::config::Builder::default().timeout_config(super::upload_timeouts(bytes)))
            .send()
            .await
            .map_err(|e| self.err("PublishLayerVersion", e))?;
        out.layer_version_arn()
            .map(str::to_string)
            .ok_or_else(|| AwsError::Failed(format!("PublishLayerVersion for {layer_name} returned no version ARN")))
    }
}

/// What an invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    pub status: i32,
    pub function_error: Option<String>,
    pub payload: String,
    /// The last 4 KB of the function's log (`LogType: Tail`), decoded.
    pub log_tail: Option<String>,
}

/// A function may run for 15 minutes before it answers.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(15 * 60 + 30);

impl LambdaApi {
    /// Invokes the function once and waits for its answer. Never retried: a retry after a
    /// lost answer would run the function (and its side effects) again.
    pub async fn invoke(&self, name: &str, payload: Vec<u8>) -> Result<Invoked, AwsError> {
        let once = aws_sdk_lambda::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().read_timeout(INVOKE_TIMEOUT).build());
        let out = self
            .client
            .invoke()
            .function_name(name)
            .payload(Blob::new(payload))
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .customize()
            .config_override(once)
            .send()
            .await
            .map_err(|e| self.err("Invoke", e))?;
        let log_tail = out.log_result().map(|l| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(l)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        });
        Ok(Invoked {
            status: out.status_code(),
            function_error: out.function_error().map(str::to_string),
            payload: out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default(),
            log_tail,
        })
    }
}

impl LambdaApi {
    /// Reads many functions at once through ListFunctions (50 per call), stopping as soon as
    /// every name in `names` was seen. Names not found are left out: the caller checks them one
    /// by one (they may have been deleted, or ListFunctions may lag behind).
    pub async fn list(
        &self,
        names: &std::collections::HashSet<String>,
    ) -> Result<HashMap<String, RemoteFunction>, AwsError> {
        let mut out = HashMap::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_functions()
                .max_items(50)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| self.err("ListFunctions", e))?;
            for f in page.functions() {
                let Some(name) = f.function_name().filter(|n| names.contains(*n)) else { continue };
                out.insert(
                    name.to_string(),
                    RemoteFunction {
                        name: name.to_string(),
                        arn: f.function_arn().unwrap_or_default().to_string(),
                        code_sha256: f.code_sha256().unwrap_or_default().to_string(),
                        last_update_status: f.last_update_status().map(|s| s.as_str().to_string()),
                        state: f.state().map(|s| s.as_str().to_string()),
                        layers: f.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect(),
                        log_group: f.logging_config().and_then(|l| l.log_group()).map(str::to_string),
                    },
                );
            }
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() || out.len() == names.len() {
                return Ok(out);
            }
        }
    }

    /// Publishes a version of the function's current code (refusing if Lambda runs other code
    /// than `code_sha256` by then); returns the version number.
    pub async fn publish_version(&self, name: &str, code_sha256: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .publish_version()
            .function_name(name)
            .code_sha256(code_sha256)
            .description("published by lamb sync")
            .send()
            .await
            .map_err(|e| self.err("PublishVersion", e))?;
        out.version()
            .map(str::to_string)
            .ok_or_else(|| AwsError::Failed(format!("PublishVersion for {name} returned no version")))
    }

    /// Points alias `alias` of the function at `version`, creating the alias if it is missing.
    pub async fn point_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), AwsError> {
        match self.client.update_alias().function_name(name).name(alias).function_version(version).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = self.err("UpdateAlias", e);
                if !e.is_not_found() {
                    return Err(e);
                }
                self.client
                    .create_alias()
                    .function_name(name)
                    .name(alias)
                    .function_version(version)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.err("CreateAlias", e))
            }
        }
    }

    /// The CodeSha256 of a published layer version's content.
    pub async fn layer_version_sha(&self, arn: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .get_layer_version_by_arn()
            .arn(arn)
            .send()
            .await
            .map_err(|e| self.err("GetLayerVersionByArn", e))?;
        Ok(out.content().and_then(|c| c.code_sha256()).unwrap_or_default().to_string())
    }
}

/// A layer version ARN without its version: `arn:aws:lambda:r:acct:layer:name`.
pub fn layer_base(arn: &str) -> &str {
    match arn.rsplit_once(':') {
        Some((base, version)) if version.chars().all(|c| c.is_ascii_digit()) && base.contains(":layer:") => base,
        _ => arn,
    }
}

#[cfg(test)]
mod tests;
