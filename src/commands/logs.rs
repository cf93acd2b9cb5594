//! `lamb logs`: the CloudWatch Logs of a deployed stack's functions, several interleaved by
//! time with the function's logical id on each line; `--tail` keeps polling for new events
//! (every second, de-duplicated by event id) until Ctrl-C.
//!
//! Live tail (StartLiveTail) is not used: it streams over HTTP/2 from a `streaming-` host that
//! emulators do not serve, so it could not be tested here; polling works everywhere and costs
//! one FilterLogEvents per function per second.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{context, runtime};
use crate::Error;
use crate::aws::cloudformation::{CfnApi, StackResource};
use crate::aws::lambda::LambdaApi;
use crate::aws::logs::{LogEvent, LogsApi, MAX_EVENTS_PER_READ, Read};
use crate::aws::{Aws, AwsError};
use crate::cli::LogsArgs;
use crate::config::logs::LogsConfig;
use crate::output::{Format, emit};
use crate::project::value::Value;
use crate::project::{Function, Problem, Project, ProjectError, closest};

/// How often `--tail` asks for new events.
const POLL: Duration = Duration::from_secs(1);
/// How far before the newest event seen `--tail` reads again: CloudWatch may take seconds to
/// make an event searchable, so one stamped a little earlier can still arrive.
const OVERLAP_MS: i64 = 15_000;
/// How long `--tail` keeps retrying while AWS cannot be reached before it gives up.
const TAIL_OUTAGE: Duration = Duration::from_secs(120);

/// A function whose logs are read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    /// Logical id (`Child/Id` in nested stacks).
    id: String,
    /// The deployed function's name.
    name: String,
    group: String,
}

#[derive(Debug, Serialize)]
struct EventRow {
    function: String,
    log_group: String,
    log_stream: String,
    /// Milliseconds since the epoch.
    timestamp: i64,
    /// The same, as RFC 3339 in UTC.
    time: String,
    event_id: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct SourceRow {
    function: String,
    function_name: String,
    log_group: String,
    /// False when the log group does not exist (the function never ran).
    found: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    functions: Vec<SourceRow>,
    events: Vec<EventRow>,
}

/// The functions the user named (full or unique logical ids), or all of them.
fn function_ids(project: &Project, wanted: &[String]) -> Result<Vec<String>, Error> {
    let all: Vec<&Function> = project.functions.iter().collect();
    let known = || all.iter().map(|f| f.res.id.as_str()).collect::<Vec<_>>().join(", ");
    if all.is_empty() {
        return Err(Error::Project(ProjectError::Invalid {
            problems: vec![Problem {
                file: project.root_stack().file.path.clone(),
                line: None,
                message: "the template has no functions, so there are no logs to read".into(),
            }],
        }));
    }
    if wanted.is_empty() {
        return Ok(all.iter().map(|f| f.res.id.clone()).collect());
    }
    let mut out = Vec::new();
    for w in wanted {
        let by_logical: Vec<&&Function> = all.iter().filter(|f| f.res.id == *w || f.res.logical_id == *w).collect();
        let id = match by_logical.as_slice() {
            [one] => one.res.id.clone(),
            [] if project.layer(w).is_some() => {
                return Err(Error::Usage(format!(
                    "--resource-id {w}: a layer writes no logs; the template's functions: {}",
                    known()
                )));
            }
            [] => {
                let hint = closest(w, all.iter().map(|f| f.res.id.as_str()))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                return Err(Error::Usage(format!(
                    "--resource-id {w}: no such function in the template{hint}; its functions: {}",
                    known()
                )));
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|f| f.res.id.as_str()).collect();
                return Err(Error::Usage(format!(
                    "--resource-id {w} is ambiguous: it names {}; use the full id",
                    ids.join(" and ")
                )));
            }
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The log group the template gives function `f` (`LoggingConfig.LogGroup`, its own or from
/// Globals): a name, or a `Ref` to a log group of the stack. `Err` names an expression lamb
/// cannot resolve.
fn template_log_group(project: &Project, f: &Function, resources: &[StackResource]) -> Result<Option<String>, String> {
    let prefix = &f.res.id[..f.res.id.len() - f.res.logical_id.len()];
    let Some(stack) = project.stacks.iter().find(|s| format!("{}/", s.path) == prefix || s.path == prefix) else {
        return Ok(None);
    };
    let doc = &stack.file.doc;
    let own = doc.get("Resources").and_then(|r| r.get(&f.res.logical_id)).and_then(|r| r.get("Properties"));
    let global = doc.get("Globals").and_then(|g| g.get("Function"));
    let value = [own, global]
        .into_iter()
        .flatten()
        .find_map(|props| props.get("LoggingConfig").and_then(|l| l.get("LogGroup")));
    let Some(value) = value else { return Ok(None) };
    if let Some(name) = value.as_str() {
        return Ok(Some(name.to_string()));
    }
    if let Some(("Ref", Value::String(target))) = value.as_intrinsic() {
        let full = format!("{prefix}{target}");
        if let Some(r) = resources.iter().find(|r| r.logical_id == full && !r.physical_id.is_empty()) {
            return Ok(Some(r.physical_id.clone()));
        }
    }
    Err(format!("function {}: LoggingConfig.LogGroup is {}, which lamb cannot resolve", f.res.id, value.kind()))
}

fn not_deployed(stack: &str, region: &str) -> String {
    format!("stack {stack} does not exist in {region}; deploy it first with `lamb deploy`, then invoke a function")
}

/// Each function's deployed name and log group: what Lambda says (`LoggingConfig`), else the
/// template, else Lambda's default `/aws/lambda/<name>`.
async fn sources(aws: &Aws, project: &Project, stack: &str, ids: &[String]) -> Result<Vec<Source>, Error> {
    let cfn = CfnApi::new(aws.cfn.clone(), aws.profile.clone());
    if cfn.describe(stack).await?.is_none() {
        return Err(AwsError::Failed(not_deployed(stack, &aws.region)).into());
    }
    let resources = cfn.resources(stack).await?;
    let physical = crate::deploy::physical_ids(project, &resources);
    let mut names = Vec::new();
    for id in ids {
        let name = physical.get(id).ok_or_else(|| {
            AwsError::Failed(format!("function {id} is not in stack {stack} yet; deploy it with `lamb deploy`"))
        })?;
        names.push(name.clone());
    }
    let lambda = LambdaApi::new(aws.lambda.clone(), aws.profile.clone());
    let remote = lambda.list(&names.iter().cloned().collect()).await?;
    let mut out = Vec::new();
    for (id, name) in ids.iter().zip(names) {
        let from_lambda = remote.get(&name).and_then(|r| r.log_group.clone());
        let from_template = match project.function(id) {
            Some(f) if from_lambda.is_none() => template_log_group(project, f, &resources).unwrap_or_else(|why| {
                tracing::warn!("{why}; reading /aws/lambda/{name}");
                None
            }),
            _ => None,
        };
        let group = from_lambda.or(from_template).unwrap_or_else(|| format!("/aws/lambda/{name}"));
        out.push(Source { id: id.clone(), name, group });
    }
    Ok(out)
}

/// Reads every source's events from `start_ms` on, all at once.
async fn read_all(
    api: &LogsApi,
    sources: &[Source],
    start_ms: i64,
    filter: Option<&str>,
) -> Result<Vec<Option<Read>>, AwsError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in sources.iter().enumerate() {
        let (api, group, filter) = (api.clone(), s.group.clone(), filter.map(str::to_string));
        tasks.spawn(async move { (i, api.filter(&group, start_ms, filter.as_deref()).await) });
    }
    let mut out: Vec<Option<Read>> = vec![None; sources.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, read) = done.map_err(|e| AwsError::Failed(format!("reading logs stopped: {e}")))?;
        out[i] = read?;
    }
    Ok(out)
}

/// One event of one source, ordered by time (then source, stream and id, so the order is
/// stable).
fn interleave(events: Vec<(usize, LogEvent)>) -> Vec<(usize, LogEvent)> {
    let mut events = events;
    events.sort_by(|(a, x), (b, y)| {
        (x.timestamp, a, &x.stream, &x.event_id).cmp(&(y.timestamp, b, &y.stream, &y.event_id))
    });
    events
}

/// `2026-12-08T02:05:00.123Z`.
fn utc_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = crate::output::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms.rem_euclid(1000))
}

fn row(s: &Source, e: &LogEvent) -> EventRow {
    EventRow {
        function: s.id.clone(),
        log_group: s.group.clone(),
        log_stream: e.stream.clone(),
        timestamp: e.timestamp,
        time: utc_ms(e.timestamp),
        event_id: e.event_id.clone(),
        message: e.message.clone(),
    }
}

/// The human line of an event: id, time, message (its trailing newline dropped).
fn line(s: &Source, e: &LogEvent, width: usize) -> String {
    format!("{:<width$}  {}  {}", s.id, utc_ms(e.timestamp), e.message.trim_end_matches(['\n', '\r']))
}

/// Prints events as `--tail` does: a line each (JSON lines with `-o json`). `false` once stdout
/// is closed (`lamb logs --tail | head`): nobody reads any more.
fn print_lines(sources: &[Source], events: &[(usize, LogEvent)], format: Format) -> bool {
    let width = sources.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (i, e) in events {
        let text = match format {
            Format::Json => serde_json::to_string(&row(&sources[*i], e)).unwrap_or_default(),
            Format::Human => line(&sources[*i], e, width),
        };
        if writeln!(out, "{text}").is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

fn warn_truncated(s: &Source) {
    eprintln!(
        "warning: {} ({}) has more than {MAX_EVENTS_PER_READ} matching events; showing the first; narrow --since or add --filter",
        s.id, s.group
    );
}

pub fn logs(args: LogsArgs) -> Result<(), Error> {
    let lc = crate::config::logs::logs(&args, crate::local::now_ms() as i64)?;
    let ctx = context(&args.project, &args.aws, None, "logs")?;
    let ids = function_ids(&ctx.project, &lc.ids)?;
    runtime()?.block_on(async {
        let aws = Aws::connect(&ctx.cfg.aws).await?;
        let sources = sources(&aws, &ctx.project, &ctx.cfg.stack_name, &ids).await?;
        let api = LogsApi::new(aws.logs.clone(), aws.profile.clone());
        if lc.tail { tail(&api, &sources, &lc).await } else { once(&api, &sources, &lc).await }
    })
}

/// `lamb logs` without `--tail`: what there is, once.
async fn once(api: &LogsApi, sources: &[Source], lc: &LogsConfig) -> Result<(), Error> {
    let reads = read_all(api, sources, lc.since_ms, lc.filter.as_deref()).await?;
    let mut events = Vec::new();
    for (i, read) in reads.iter().enumerate() {
        if let Some(r) = read {
            if r.truncated {
                warn_truncated(&sources[i]);
            }
            events.extend(r.events.iter().cloned().map(|e| (i, e)));
        } else if lc.format == Format::Human {
            eprintln!(
                "note: {} has no logs yet: its log group {} does not exist (the function has not run)",
                sources[i].id, sources[i].group
            );
        }
    }
    let events = interleave(events);
    if lc.format == Format::Json {
        let report = Report {
            functions: sources
                .iter()
                .zip(&reads)
                .map(|(s, r)| SourceRow {
                    function: s.id.clone(),
                    function_name: s.name.clone(),
                    log_group: s.group.clone(),
                    found: r.is_some(),
                })
                .collect(),
            events: events.iter().map(|(i, e)| row(&sources[*i], e)).collect(),
        };
        emit(&serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_lines(sources, &events, lc.format);
    }
    Ok(())
}

/// `lamb logs --tail`: what there is, then each new event as it arrives, until Ctrl-C (exit 0).
async fn tail(api: &LogsApi, sources: &[Source], lc: &LogsConfig) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered before the first read, so a Ctrl-C at any point ends the tail cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let started = crate::local::now_ms() as i64;
    let mut from = lc.since_ms;
    // (source, stream, event id) -> timestamp, for events printed and still in the window.
    let mut seen: HashMap<(usize, String, String), i64> = HashMap::new();
    let mut newest: Option<i64> = None;
    let mut failing: Option<Instant> = None;
    let mut warned_truncated = vec![false; sources.len()];
    loop {
        let reads = tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            r = read_all(api, sources, from, lc.filter.as_deref()) => r,
        };
        match reads {
            Ok(reads) => {
                failing = None;
                let mut fresh = Vec::new();
                for (i, read) in reads.into_iter().enumerate() {
                    let Some(read) = read else { continue };
                    if read.truncated && !warned_truncated[i] {
                        warned_truncated[i] = true;
                        warn_truncated(&sources[i]);
                    }
                    for e in read.events {
                        if seen.insert((i, e.stream.clone(), e.event_id.clone()), e.timestamp).is_none() {
                            newest = newest.max(Some(e.timestamp));
                            fresh.push((i, e));
                        }
                    }
                }
                if !print_lines(sources, &interleave(fresh), lc.format) {
                    return Ok(());
                }
                // Read again only a little before the newest event: the window, and what is
                // remembered of it, stay small however long the tail runs.
                from = from.max(newest.unwrap_or(started) - OVERLAP_MS);
                seen.retain(|_, ts| *ts >= from);
            }
            Err(e) if e.is_transient() => {
                let since = *failing.get_or_insert_with(Instant::now);
                if since.elapsed() > TAIL_OUTAGE {
                    return Err(e.into());
                }
                tracing::warn!("reading logs failed, retrying: {e}");
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, stream: &str, id: &str) -> LogEvent {
        LogEvent { stream: stream.into(), timestamp: ts, event_id: id.into(), message: format!("m{id}\n") }
    }

    #[test]
    fn events_of_several_functions_interleave_by_time() {
        let merged = interleave(vec![
            (0, ev(30, "a", "3")),
            (1, ev(10, "b", "1")),
            (0, ev(20, "a", "2")),
            (1, ev(20, "b", "4")),
        ]);
        let order: Vec<(usize, &str)> = merged.iter().map(|(i, e)| (*i, e.event_id.as_str())).collect();
        assert_eq!(order, [(1, "1"), (0, "2"), (1, "4"), (0, "3")]);
    }

    #[test]
    fn a_line_names_the_function_and_the_time_in_utc() {
        let s = Source { id: "Hello".into(), name: "app-Hello-1".into(), group: "/aws/lambda/app-Hello-1".into() };
        assert_eq!(line(&s, &ev(1_796_695_466_720, "x", "7"), 8), "Hello     2026-12-08T02:04:26.720Z  m7");
        assert_eq!(utc_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
