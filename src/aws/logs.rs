//! CloudWatch Logs calls lamb makes: read a log group's events in a time window, page by page,
//! with a bound on how much one read may fetch.

use super::{AwsError, sdk_error};

/// The most events one read of one log group fetches (the first ones in CloudWatch's order),
/// so a noisy function cannot make `lamb logs` page forever.
pub const MAX_EVENTS_PER_READ: usize = 10_000;
/// The most pages one read asks for: CloudWatch may answer a search of a large group with
/// many empty pages, each with a token to go on.
const MAX_PAGES: usize = 100;

/// One log event as CloudWatch Logs stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub stream: String,
    /// Milliseconds since the epoch, as the writer stamped it.
    pub timestamp: i64,
    pub event_id: String,
    pub message: String,
}

/// What one read of a log group found.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub events: Vec<LogEvent>,
    /// More matched than one read fetches ([`MAX_EVENTS_PER_READ`], or its page bound).
    pub truncated: bool,
}

/// The CloudWatch Logs client plus what error messages need.
#[derive(Clone)]
pub struct LogsApi {
    pub client: aws_sdk_cloudwatchlogs::Client,
    pub profile: Option<String>,
}

impl LogsApi {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, profile: Option<String>) -> Self {
        LogsApi { client, profile }
    }

    /// The events of `group` stamped from `start_ms` on that match `pattern` (CloudWatch's
    /// filter pattern syntax), oldest first; `None` when the group does not exist (a function
    /// that never ran has none yet).
    pub async fn filter(&self, group: &str, start_ms: i64, pattern: Option<&str>) -> Result<Option<Read>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut truncated = false;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start_ms)
                .set_filter_pattern(pattern.map(str::to_string))
                .set_next_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = sdk_error("FilterLogEvents", self.profile.as_deref(), e);
                    return if e.is_not_found() { Ok(None) } else { Err(e) };
                }
            };
            out.extend(page.events().iter().map(|e| LogEvent {
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                timestamp: e.timestamp().unwrap_or_default(),
                event_id: e.event_id().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().to_string(),
            }));
            // An empty page with a token is CloudWatch still searching: the token says where.
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if out.len() < MAX_EVENTS_PER_READ => token = Some(t.to_string()),
                Some(_) => {
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
        // Out of pages with a token still in hand: there was more.
        truncated |= token.is_some();
        out.truncate(MAX_EVENTS_PER_READ);
        out.sort_by_key(|e| e.timestamp);
        Ok(Some(Read { events: out, truncated }))
    }
}
