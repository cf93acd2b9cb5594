//! CloudFormation calls lamb makes: read a stack and its resources (nested stacks included),
//! run a change set from creation to completion while streaming events, and delete stacks.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};

use super::{AwsError, Backoff, sdk_error};

/// How long a change set may take to be computed, and a stack operation to finish.
pub const CHANGE_SET_TIMEOUT: Duration = Duration::from_secs(600);
pub const STACK_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackInfo {
    pub name: String,
    pub id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub outputs: Vec<Output>,
    pub parameters: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// Last update (or creation) time, as text: changes whenever the stack does.
    pub updated: String,
}

impl StackInfo {
    /// Whether an operation is running on the stack.
    pub fn busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }
}

/// A resource of a stack; `logical_id` is prefixed with the nested stack's path
/// (`Child/HelloFn`) for resources of nested stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    pub logical_id: String,
    pub physical_id: String,
    pub resource_type: String,
    pub status: String,
}

/// One row of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Option<String>,
}

/// How a change set ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetOutcome {
    Ready(Vec<Change>),
    /// Nothing to change: not an error.
    NoChanges,
}

/// A stack event, for streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub timestamp: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    pub physical_id: Option<String>,
}

/// What lamb asks CloudFormation to do.
#[derive(Debug, Clone, Default)]
pub struct ChangeSetRequest {
    pub stack: String,
    pub name: String,
    pub create: bool,
    pub template_body: Option<String>,
    pub template_url: Option<String>,
    pub parameters: Vec<(String, String)>,
    pub capabilities: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct CfnApi {
    pub client: aws_sdk_cloudformation::Client,
    pub profile: Option<String>,
    pub poll: (Duration, Duration),
}

fn is_missing_stack(e: &AwsError) -> bool {
    matches!(e, AwsError::Service { code, message, .. } if code == "ValidationError" && message.contains("does not exist"))
}

impl CfnApi {
    pub fn new(client: aws_sdk_cloudformation::Client, profile: Option<String>) -> Self {
        CfnApi { client, profile, poll: (Duration::from_millis(200), Duration::from_secs(3)) }
    }

    fn err<E, R>(&self, op: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: super::RawAnswer,
    {
        sdk_error(op, self.profile.as_deref(), e)
    }

    /// The stack, or `None` when it does not exist.
    pub async fn describe(&self, stack: &str) -> Result<Option<StackInfo>, AwsError> {
        let out = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = self.err("DescribeStacks", e);
                return if is_missing_stack(&e) { Ok(None) } else { Err(e) };
            }
        };
        let Some(s) = out.stacks().first() else { return Ok(None) };
        if s.stack_status().map(|st| st.as_str()) == Some("DELETE_COMPLETE") {
            return Ok(None);
        }
        Ok(Some(StackInfo {
            name: s.stack_name().unwrap_or(stack).to_string(),
            id: s.stack_id().unwrap_or_default().to_string(),
            status: s.stack_status().map(|st| st.as_str().to_string()).unwrap_or_default(),
            status_reason: s.stack_status_reason().map(str::to_string),
            outputs: s
                .outputs()
                .iter()
                .map(|o| Output {
                    key: o.output_key().unwrap_or_default().to_string(),
                    value: o.output_value().unwrap_or_default().to_string(),
                    description: o.description().map(str::to_string),
                })
                .collect(),
            parameters: s
                .parameters()
                .iter()
                // The value as passed (an SSM parameter's name, not what it resolved to), which is
                // what the template's parameters are compared with.
                .map(|p| {
                    (
                        p.parameter_key().unwrap_or_default().to_string(),
                        p.parameter_value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            tags: s
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                .collect(),
            updated: s.last_updated_time().or(s.creation_time()).map(|t| t.to_string()).unwrap_or_default(),
        }))
    }

    /// Every resource of `stack`, following nested stacks (their resources get the nested
    /// stack's logical id as a prefix).
    pub async fn resources(&self, stack: &str) -> Result<Vec<StackResource>, AwsError> {
        let mut out = Vec::new();
        let mut todo = vec![(stack.to_string(), String::new())];
        while let Some((stack, prefix)) = todo.pop() {
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_stack_resources()
                    .stack_name(&stack)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| self.err("ListStackResources", e))?;
                for r in page.stack_resource_summaries() {
                    let logical = format!("{prefix}{}", r.logical_resource_id().unwrap_or_default());
                    let physical = r.physical_resource_id().unwrap_or_default().to_string();
                    let ty = r.resource_type().unwrap_or_default().to_string();
                    if ty == "AWS::CloudFormation::Stack" && !physical.is_empty() {
                        todo.push((physical.clone(), format!("{logical}/")));
                    }
                    out.push(StackResource {
                        logical_id: logical,
                        physical_id: physical,
                        resource_type: ty,
                        status: r.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    });
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The template CloudFormation holds for `stack` as submitted (before transforms).
    pub async fn original_template(&self, stack: &str) -> Result<String, AwsError> {
        self.template(stack, aws_sdk_cloudformation::types::TemplateStage::Original).await
    }

    /// The template as CloudFormation runs it: the SAM transform expanded.
    pub async fn processed_template(&self, stack: &str) -> Result<String, AwsError> {
        self.template(stack, aws_sdk_cloudformation::types::TemplateStage::Processed).await
    }

    async fn template(
        &self,
        stack: &str,
        stage: aws_sdk_cloudformation::types::TemplateStage,
    ) -> Result<String, AwsError> {
        let out = self
            .client
            .get_template()
            .stack_name(stack)
            .template_stage(stage)
            .send()
            .await
            .map_err(|e| self.err("GetTemplate", e))?;
        Ok(out.template_body().unwrap_or_default().to_string())
    }

    pub async fn create_change_set(&self, req: &ChangeSetRequest) -> Result<String, AwsError> {
        let mut call = self
            .client
            .create_change_set()
            .stack_name(&req.stack)
            .change_set_name(&req.name)
            .change_set_type(if req.create { ChangeSetType::Create } else { ChangeSetType::Update })
            .set_template_body(req.template_body.clone())
            .set_template_url(req.template_url.clone())
            .description("created by lamb");
        for (k, v) in &req.parameters {
            call = call.parameters(Parameter::builder().parameter_key(k).parameter_value(v).build());
        }
        for c in &req.capabilities {
            call = call.capabilities(Capability::from(c.as_str()));
        }
        for (k, v) in &req.tags {
            call = call.tags(Tag::builder().key(k).value(v).build());
        }
        match call.send().await {
            Ok(out) => Ok(out.id().unwrap_or(&req.name).to_string()),
            Err(e) => Err(self.err("CreateChangeSet", e)),
        }
    }

    /// Waits for the change set to be computed. A change set with nothing to do is
    /// [`ChangeSetOutcome::NoChanges`] (and is deleted).
    pub async fn wait_change_set(&self, stack: &str, id: &str) -> Result<ChangeSetOutcome, AwsError> {
        let mut backoff = Backoff::new(self.poll.0, self.poll.1, CHANGE_SET_TIMEOUT);
        loop {
            let out = self
                .client
                .describe_change_set()
                .stack_name(stack)
                .change_set_name(id)
                .send()
                .await
                .map_err(|e| self.err("DescribeChangeSet", e))?;
            match out.status() {
                Some(ChangeSetStatus::CreateComplete) => {
                    let changes = out
                        .changes()
                        .iter()
                        .filter_map(|c| c.resource_change())
                        .map(|rc| Change {
                            action: rc.action().map(|a| a.as_str().to_string()).unwrap_or_default(),
                            logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
                            resource_type: rc.resource_type().unwrap_or_default().to_string(),
                            replacement: rc.replacement().map(|r| r.as_str().to_string()),
                        })
                        .collect();
                    return Ok(ChangeSetOutcome::Ready(changes));
                }
                Some(ChangeSetStatus::Failed) => {
                    let reason = out.status_reason().unwrap_or_default().to_string();
                    if is_no_changes(&reason) {
                        let _ = self.client.delete_change_set().stack_name(stack).change_set_name(id).send().await;
                        return Ok(ChangeSetOutcome::NoChanges);
                    }
                    return Err(AwsError::Failed(format!(
                        "CloudFormation rejected the change set for stack {stack}: {reason}; fix the template and deploy again"
                    )));
                }
                _ => {}
            }
            if !backoff.wait().await {
                return Err(AwsError::Timeout {
                    what: format!("the change set for stack {stack}"),
                    secs: CHANGE_SET_TIMEOUT.as_secs(),
                    fix: "check it in the CloudFormation console".into(),
                });
            }
        }
    }

    /// Executes a change set; `disable_rollback` keeps what a failed deploy made.
    pub async fn execute_change_set(&self, stack: &str, id: &str, disable_rollback: bool) -> Result<(), AwsError> {
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(id)
            .set_disable_rollback(disable_rollback.then_some(true))
            .send()
            .await
            .map_err(|e| self.err("ExecuteChangeSet", e))?;
        Ok(())
    }

    pub async fn delete_change_set(&self, stack: &str, id: &str) -> Result<(), AwsError> {
        self.client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| self.err("DeleteChangeSet", e))?;
        Ok(())
    }

    /// The newest event id of the stack, so streaming can start after it.
    pub async fn last_event_id(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let out = match self.client.describe_stack_events().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = self.err("DescribeStackEvents", e);
                return if is_missing_stack(&e) { Ok(None) } else { Err(e) };
            }
        };
        Ok(out.stack_events().first().and_then(|e| e.event_id()).map(str::to_string))
    }

    /// Events newer than `after` (oldest first), reading pages until `after` is reached.
    async fn events_since(
        &self,
        stack: &str,
        after: Option<&str>,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<Event>, AwsError> {
        let mut fresh = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.err("DescribeStackEvents", e))?;
            for e in page.stack_events() {
                let id = e.event_id().unwrap_or_default().to_string();
                if Some(id.as_str()) == after || seen.contains(&id) {
                    break 'pages;
                }
                seen.insert(id.clone());
                fresh.push(Event {
                    id,
                    timestamp: e.timestamp().map(|t| t.to_string()).unwrap_or_default(),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_string),
                    physical_id: e.physical_resource_id().map(str::to_string),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        fresh.reverse();
        Ok(fresh)
    }

    /// Streams the stack's events to `on_event` until it reaches a final status, and returns
    /// the final stack and every failure event seen.
    pub async fn follow(
        &self,
        stack: &str,
        after: Option<&str>,
        mut on_event: impl FnMut(&Event),
    ) -> Result<(StackInfo, Vec<Event>), AwsError> {
        let mut backoff = Backoff::new(self.poll.0, self.poll.1, STACK_TIMEOUT);
        let mut seen = HashSet::new();
        let mut failures = Vec::new();
        loop {
            let info = self.describe(stack).await?;
            // A deleted stack has no events to read by name any more.
            let events = if info.is_some() { self.events_since(stack, after, &mut seen).await? } else { Vec::new() };
            for e in events {
                if e.status.ends_with("_FAILED") {
                    failures.push(e.clone());
                }
                on_event(&e);
            }
            match info {
                Some(info) if !info.busy() => {
                    // A nested stack's failure says only "Embedded stack ... was not successfully
                    // created": its own events hold the reason.
                    let nested: Vec<String> = failures
                        .iter()
                        .filter(|e| e.resource_type == "AWS::CloudFormation::Stack" && e.logical_id != stack)
                        .filter_map(|e| e.physical_id.clone())
                        .collect();
                    for child in nested {
                        let mut child_seen = HashSet::new();
                        if let Ok(events) = self.events_since(&child, None, &mut child_seen).await {
                            failures.extend(events.into_iter().filter(|e| e.status.ends_with("_FAILED")));
                        }
                    }
                    return Ok((info, failures));
                }
                None => {
                    // Deleted (a delete finished, or a failed create was cleaned up).
                    let gone =
                        StackInfo { name: stack.to_string(), status: "DELETE_COMPLETE".into(), ..Default::default() };
                    return Ok((gone, failures));
                }
                Some(_) => {}
            }
            if !backoff.wait().await {
                return Err(AwsError::Timeout {
                    what: format!("the operation on stack {stack}"),
                    secs: STACK_TIMEOUT.as_secs(),
                    fix: "it may still be running; follow it in the CloudFormation console".into(),
                });
            }
        }
    }

    pub async fn delete(&self, stack: &str) -> Result<(), AwsError> {
        self.client.delete_stack().stack_name(stack).send().await.map_err(|e| self.err("DeleteStack", e))?;
        Ok(())
    }
}

/// CloudFormation's ways of saying a change set has nothing to do.
pub fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    fn page(members: &[(&str, &str, &str)], next: Option<&str>) -> http::Response<SdkBody> {
        let members: String = members
            .iter()
            .map(|(l, p, t)| format!("<member><LogicalResourceId>{l}</LogicalResourceId><PhysicalResourceId>{p}</PhysicalResourceId><ResourceType>{t}</ResourceType><ResourceStatus>CREATE_COMPLETE</ResourceStatus><LastUpdatedTimestamp>2026-01-01T00:00:00Z</LastUpdatedTimestamp></member>"))
            .collect();
        let next = next.map(|n| format!("<NextToken>{n}</NextToken>")).unwrap_or_default();
        let body = format!(
            "<ListStackResourcesResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ListStackResourcesResult><StackResourceSummaries>{members}</StackResourceSummaries>{next}</ListStackResourcesResult></ListStackResourcesResponse>"
        );
        http::Response::builder().status(200).body(SdkBody::from(body)).unwrap()
    }

    /// A CloudFormation API answering from `http`'s replayed exchanges.
    fn api(http: &StaticReplayClient) -> CfnApi {
        let conf = aws_sdk_cloudformation::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(http.clone())
            .build();
        CfnApi::new(aws_sdk_cloudformation::Client::from_conf(conf), None)
    }

    fn req() -> http::Request<SdkBody> {
        http::Request::builder().uri("https://cloudformation.us-east-1.amazonaws.com/").body(SdkBody::empty()).unwrap()
    }

    #[tokio::test]
    async fn resources_follow_every_page_and_every_nested_stack() {
        let child = "arn:aws:cloudformation:us-east-1:1:stack/app-Child-X/1";
        let http = StaticReplayClient::new(vec![
            ReplayEvent::new(req(), page(&[("Fn", "app-Fn-1", "AWS::Lambda::Function")], Some("page2"))),
            ReplayEvent::new(req(), page(&[("Child", child, "AWS::CloudFormation::Stack")], None)),
            ReplayEvent::new(req(), page(&[("Inner", "app-Inner-2", "AWS::Lambda::Function")], Some("c2"))),
            ReplayEvent::new(req(), page(&[("Layer", "arn:layer:1", "AWS::Lambda::LayerVersion")], None)),
        ]);
        let api = api(&http);
        let found: Vec<(String, String)> =
            api.resources("app").await.unwrap().into_iter().map(|r| (r.logical_id, r.physical_id)).collect();
        assert_eq!(
            found,
            [
                ("Fn".to_string(), "app-Fn-1".to_string()),
                ("Child".to_string(), child.to_string()),
                ("Child/Inner".to_string(), "app-Inner-2".to_string()),
                ("Child/Layer".to_string(), "arn:layer:1".to_string()),
            ]
        );
        // Each page asked for with the token the last one gave, the nested stack by its ARN.
        let bodies: Vec<String> = http
            .actual_requests()
            .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned())
            .collect();
        assert_eq!(bodies.len(), 4);
        assert!(bodies[0].contains("StackName=app") && !bodies[0].contains("NextToken"), "{}", bodies[0]);
        assert!(bodies[1].contains("StackName=app") && bodies[1].contains("NextToken=page2"), "{}", bodies[1]);
        assert!(
            bodies[2].contains("StackName=arn%3Aaws%3Acloudformation") && !bodies[2].contains("NextToken"),
            "{}",
            bodies[2]
        );
        assert!(bodies[3].contains("NextToken=c2"), "{}", bodies[3]);
    }

    #[tokio::test]
    async fn disable_rollback_is_asked_of_execute_change_set_only_when_wanted() {
        let ok = || {
            let body = "<ExecuteChangeSetResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ExecuteChangeSetResult/></ExecuteChangeSetResponse>";
            http::Response::builder().status(200).body(SdkBody::from(body)).unwrap()
        };
        let http = StaticReplayClient::new(vec![ReplayEvent::new(req(), ok()), ReplayEvent::new(req(), ok())]);
        let api = api(&http);
        api.execute_change_set("app", "cs-1", true).await.unwrap();
        api.execute_change_set("app", "cs-2", false).await.unwrap();
        let bodies: Vec<String> = http
            .actual_requests()
            .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned())
            .collect();
        assert!(
            bodies[0].contains("ChangeSetName=cs-1") && bodies[0].contains("DisableRollback=true"),
            "{}",
            bodies[0]
        );
        assert!(bodies[1].contains("ChangeSetName=cs-2") && !bodies[1].contains("DisableRollback"), "{}", bodies[1]);
    }
}
