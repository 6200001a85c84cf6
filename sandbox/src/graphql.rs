//! The GraphQL face: `POST /graphql`, answered by async-graphql from the same state as
//! the REST side (nothing here is stored twice), in GitHub's schema: the names, types
//! and nullability of the fields a deploy tool reads (`Repository.deployments` with
//! `latestStatus`, `defaultBranchRef`, `ref(qualifiedName:)`, `Ref.compare(headRef:)`,
//! `object(expression:)` and a commit's `statusCheckRollup`).
//!
//! Authentication and the rate budget are REST's (a separate `graphql` bucket, as on
//! GitHub). Like GitHub with a private repository, a classic token without the `repo`
//! scope gets `repository: null` and a `NOT_FOUND` error, so a `repo_deployment`-only
//! token can use REST but not GraphQL; [`crate::Sandbox::set_graphql`] switches the
//! endpoint off altogether (an old GitHub Enterprise Server, a proxy that passes REST
//! only): then it is a 404.

use std::sync::{Arc, OnceLock};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, ErrorExtensions, InputObject, Object, Schema,
    SimpleObject, Union,
};
use serde_json::Value;

use crate::json::{self, ts};
use crate::state::{self, RefKind, Repo};
use crate::{lock, Grant, Inner};

pub(crate) type GitHubSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema holds no state (that comes with each request), so it is built once.
pub(crate) fn schema() -> &'static GitHubSchema {
    static SCHEMA: OnceLock<GitHubSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::build(Query, EmptyMutation, EmptySubscription).finish())
}

/// What a query may see: the server's state and the credential that asked.
pub(crate) struct Caller {
    pub inner: Arc<Inner>,
    pub grant: Grant,
}

/// Runs one GraphQL request body (`{"query", "variables", "operationName"}`) and
/// renders the answer the way GitHub does (errors carry a top-level `type`).
pub(crate) async fn execute(caller: Caller, body: &[u8]) -> Value {
    let request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            return serde_json::json!({
                "errors": [{"message": "Problems parsing JSON"}],
            })
        }
    };
    let response = schema().execute(request.data(caller)).await;
    let mut value = serde_json::to_value(&response).unwrap_or(Value::Null);
    if let Some(errors) = value.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors {
            let kind = error
                .get_mut("extensions")
                .and_then(Value::as_object_mut)
                .and_then(|ext| ext.remove("type"));
            if let Some(kind) = kind {
                error["type"] = kind;
            }
            if error
                .get("extensions")
                .and_then(Value::as_object)
                .is_some_and(|e| e.is_empty())
            {
                error.as_object_mut().map(|e| e.remove("extensions"));
            }
        }
    }
    if value.get("data").is_some_and(Value::is_null) && value.get("errors").is_some() {
        value.as_object_mut().map(|v| v.remove("data"));
    }
    value
}

fn typed_error(kind: &str, message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("type", kind))
}

/// GitHub's connection limits: `first`/`last` is required and at most 100.
fn page_size(first: Option<i32>, connection: &str) -> async_graphql::Result<usize> {
    match first {
        None => Err(typed_error(
            "MISSING_PAGINATION_BOUNDARIES",
            format!("You must provide a `first` or `last` value to properly paginate the `{connection}` connection."),
        )),
        Some(n) if !(0..=100).contains(&n) => Err(typed_error(
            "EXCESSIVE_PAGINATION",
            format!("Requesting {n} records on the `{connection}` connection exceeds the `first` limit of 100 records."),
        )),
        Some(n) => Ok(n as usize),
    }
}

fn cursor(index: usize) -> String {
    json::base64(format!("cursor:v2:{index}").as_bytes())
}

fn after_index(after: Option<&str>) -> usize {
    let Some(after) = after else { return 0 };
    (0..10_000)
        .find(|i| cursor(*i) == after)
        .map_or(0, |i| i + 1)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub struct Query;

#[Object]
impl Query {
    /// Lookup a given repository by the owner and repository name.
    async fn repository(
        &self,
        ctx: &Context<'_>,
        owner: String,
        name: String,
    ) -> async_graphql::Result<Option<Repository>> {
        let caller = ctx.data_unchecked::<Caller>();
        let full = format!("{owner}/{name}");
        let hidden = || {
            typed_error(
                "NOT_FOUND",
                format!("Could not resolve to a Repository with the name '{full}'."),
            )
        };
        // Every sandbox repository is private: a classic token needs `repo` for it.
        if !caller.grant.sees(&full) || !caller.grant.has_scope("repo") {
            return Err(hidden());
        }
        let st = lock(&caller.inner.state);
        match st.repo(&full) {
            Some(r) => Ok(Some(Repository {
                repo: Arc::new(r.clone()),
                base: caller.inner.base.clone(),
            })),
            None => Err(hidden()),
        }
    }
}

pub struct Repository {
    repo: Arc<Repo>,
    base: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeploymentOrderField {
    CreatedAt,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

/// Ordering options for deployment connections.
#[derive(InputObject)]
pub struct DeploymentOrder {
    field: DeploymentOrderField,
    direction: OrderDirection,
}

#[Object]
impl Repository {
    async fn name(&self) -> &str {
        &self.repo.name
    }

    async fn name_with_owner(&self) -> String {
        self.repo.full_name()
    }

    async fn url(&self) -> String {
        json::repo_html_url(&self.base, &self.repo)
    }

    async fn database_id(&self) -> i64 {
        self.repo.id as i64
    }

    async fn default_branch_ref(&self) -> Option<Ref> {
        Ref::branch(&self.repo, &self.repo.default_branch)
    }

    /// Fully qualified names (`refs/heads/main`) first, then short names (`main`).
    async fn r#ref(&self, qualified_name: String) -> Option<Ref> {
        let resolved = self.repo.resolve(&qualified_name)?;
        let (name, prefix) = match resolved.kind {
            RefKind::Branch(b) => (b, "refs/heads/"),
            RefKind::Tag(t) => (t, "refs/tags/"),
            RefKind::Sha => return None,
        };
        Some(Ref {
            repo: self.repo.clone(),
            name,
            prefix,
            oid: resolved.sha,
        })
    }

    /// A Git object by a revision expression (a sha, a branch, a tag).
    async fn object(&self, expression: String) -> Option<Commit> {
        let resolved = self.repo.resolve(&expression)?;
        Some(Commit {
            repo: self.repo.clone(),
            oid: resolved.sha,
        })
    }

    /// Deployments associated with the repository. GitHub's default order is oldest
    /// first.
    async fn deployments(
        &self,
        environments: Option<Vec<String>>,
        order_by: Option<DeploymentOrder>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<DeploymentConnection> {
        let size = page_size(first, "deployments")?;
        let newest_first = order_by.is_some_and(|o| {
            o.field == DeploymentOrderField::CreatedAt && o.direction == OrderDirection::Desc
        });
        let mut all: Vec<&state::Deployment> = self
            .repo
            .deployments
            .iter()
            .filter(|d| {
                environments
                    .as_ref()
                    .is_none_or(|envs| envs.contains(&d.environment))
            })
            .collect();
        if newest_first {
            all.reverse();
        }
        let start = after_index(after.as_deref());
        let nodes: Vec<Deployment> = all
            .iter()
            .skip(start)
            .take(size)
            .map(|d| Deployment {
                repo: self.repo.clone(),
                d: (*d).clone(),
            })
            .collect();
        let end = start + nodes.len();
        Ok(DeploymentConnection {
            total_count: all.len() as i32,
            page_info: PageInfo {
                has_next_page: end < all.len(),
                has_previous_page: start > 0,
                end_cursor: (!nodes.is_empty()).then(|| cursor(end - 1)),
                start_cursor: (!nodes.is_empty()).then(|| cursor(start)),
            },
            nodes,
        })
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    end_cursor: Option<String>,
    start_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct DeploymentConnection {
    nodes: Vec<Deployment>,
    total_count: i32,
    page_info: PageInfo,
}

/// A Git reference: a branch or a tag.
pub struct Ref {
    repo: Arc<Repo>,
    name: String,
    prefix: &'static str,
    oid: String,
}

impl Ref {
    fn branch(repo: &Arc<Repo>, name: &str) -> Option<Ref> {
        repo.branches.get(name).map(|sha| Ref {
            repo: repo.clone(),
            name: name.to_string(),
            prefix: "refs/heads/",
            oid: sha.clone(),
        })
    }

    /// What a deployment's ref is, if it was created by ref (not by sha) and the ref
    /// still exists.
    fn of_deployment(repo: &Arc<Repo>, git_ref: &str) -> Option<Ref> {
        let resolved = repo.resolve(git_ref)?;
        let (name, prefix) = match resolved.kind {
            RefKind::Branch(b) => (b, "refs/heads/"),
            RefKind::Tag(t) => (t, "refs/tags/"),
            RefKind::Sha => return None,
        };
        Some(Ref {
            repo: repo.clone(),
            name,
            prefix,
            oid: resolved.sha,
        })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ComparisonStatus {
    Ahead,
    Behind,
    Diverged,
    Identical,
}

/// How a head relates to a base.
#[derive(SimpleObject)]
pub struct Comparison {
    ahead_by: i32,
    behind_by: i32,
    status: ComparisonStatus,
}

#[Object]
impl Ref {
    async fn name(&self) -> &str {
        &self.name
    }

    async fn prefix(&self) -> &str {
        self.prefix
    }

    async fn target(&self) -> Commit {
        Commit {
            repo: self.repo.clone(),
            oid: self.oid.clone(),
        }
    }

    /// Compares this ref as the base to `headRef` (a branch, a tag or a sha), if the
    /// comparison can be made: what `GET /compare/{base}...{head}` answers.
    async fn compare(&self, head_ref: String) -> Option<Comparison> {
        let head = self.repo.resolve(&head_ref)?;
        let c = self.repo.compare(&self.oid, &head.sha)?;
        Some(Comparison {
            ahead_by: c.ahead.len() as i32,
            behind_by: c.behind.len() as i32,
            status: match c.status {
                state::CompareStatus::Ahead => ComparisonStatus::Ahead,
                state::CompareStatus::Behind => ComparisonStatus::Behind,
                state::CompareStatus::Diverged => ComparisonStatus::Diverged,
                state::CompareStatus::Identical => ComparisonStatus::Identical,
            },
        })
    }
}

pub struct Commit {
    repo: Arc<Repo>,
    oid: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum StatusState {
    Error,
    Expected,
    Failure,
    Pending,
    Success,
}

impl StatusState {
    fn of(s: &str) -> StatusState {
        match s {
            "error" => StatusState::Error,
            "failure" => StatusState::Failure,
            "success" => StatusState::Success,
            _ => StatusState::Pending,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CheckStatusState {
    Completed,
    InProgress,
    Pending,
    Queued,
    Requested,
    Waiting,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CheckConclusionState {
    ActionRequired,
    Cancelled,
    Failure,
    Neutral,
    Skipped,
    Stale,
    StartupFailure,
    Success,
    TimedOut,
}

/// A commit status.
#[derive(SimpleObject)]
pub struct StatusContext {
    context: String,
    state: StatusState,
    description: Option<String>,
    target_url: Option<String>,
}

/// A check run.
#[derive(SimpleObject)]
pub struct CheckRun {
    name: String,
    status: CheckStatusState,
    conclusion: Option<CheckConclusionState>,
}

#[derive(Union)]
pub enum StatusCheckRollupContext {
    CheckRun(CheckRun),
    StatusContext(StatusContext),
}

#[derive(SimpleObject)]
pub struct StatusCheckRollupContextConnection {
    nodes: Vec<StatusCheckRollupContext>,
    total_count: i32,
}

/// The commit statuses and check runs of a commit, together.
pub struct StatusCheckRollup {
    repo: Arc<Repo>,
    oid: String,
}

#[Object]
impl StatusCheckRollup {
    /// The combined state, as GitHub's merge box shows it.
    async fn state(&self) -> StatusState {
        let contexts = self.repo.contexts(&self.oid);
        if contexts.values().any(|s| s == "failure" || s == "error") {
            StatusState::Failure
        } else if contexts.values().any(|s| s != "success") {
            StatusState::Pending
        } else {
            StatusState::Success
        }
    }

    async fn contexts(
        &self,
        first: Option<i32>,
    ) -> async_graphql::Result<StatusCheckRollupContextConnection> {
        let size = page_size(first, "contexts")?;
        let mut all: Vec<StatusCheckRollupContext> = Vec::new();
        for s in self.repo.latest_statuses(&self.oid) {
            all.push(StatusCheckRollupContext::StatusContext(StatusContext {
                context: s.context.clone(),
                state: StatusState::of(&s.state),
                description: s.description.clone(),
                target_url: s.target_url.clone(),
            }));
        }
        for c in self.repo.latest_check_runs(&self.oid) {
            all.push(StatusCheckRollupContext::CheckRun(CheckRun {
                name: c.name.clone(),
                status: match c.status.as_str() {
                    "completed" => CheckStatusState::Completed,
                    "in_progress" => CheckStatusState::InProgress,
                    "waiting" => CheckStatusState::Waiting,
                    "requested" => CheckStatusState::Requested,
                    "pending" => CheckStatusState::Pending,
                    _ => CheckStatusState::Queued,
                },
                conclusion: c.conclusion.as_deref().map(|c| match c {
                    "success" => CheckConclusionState::Success,
                    "neutral" => CheckConclusionState::Neutral,
                    "skipped" => CheckConclusionState::Skipped,
                    "cancelled" => CheckConclusionState::Cancelled,
                    "timed_out" => CheckConclusionState::TimedOut,
                    "action_required" => CheckConclusionState::ActionRequired,
                    "stale" => CheckConclusionState::Stale,
                    "startup_failure" => CheckConclusionState::StartupFailure,
                    _ => CheckConclusionState::Failure,
                }),
            }));
        }
        let total_count = all.len() as i32;
        all.truncate(size);
        Ok(StatusCheckRollupContextConnection {
            nodes: all,
            total_count,
        })
    }
}

#[Object]
impl Commit {
    async fn oid(&self) -> &str {
        &self.oid
    }

    async fn message(&self) -> Option<String> {
        self.repo.commit(&self.oid).map(|c| c.message.clone())
    }

    /// `null` when the commit has neither statuses nor check runs.
    async fn status_check_rollup(&self) -> Option<StatusCheckRollup> {
        if self.repo.contexts(&self.oid).is_empty() {
            return None;
        }
        Some(StatusCheckRollup {
            repo: self.repo.clone(),
            oid: self.oid.clone(),
        })
    }
}

/// An account that acts: a user or a bot.
#[derive(SimpleObject)]
pub struct Actor {
    login: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeploymentState {
    Abandoned,
    Active,
    Destroyed,
    Error,
    Failure,
    Inactive,
    InProgress,
    Pending,
    Queued,
    Waiting,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeploymentStatusState {
    Error,
    Failure,
    Inactive,
    InProgress,
    Pending,
    Queued,
    Success,
    Waiting,
}

impl DeploymentStatusState {
    fn of(s: &str) -> DeploymentStatusState {
        match s {
            "error" => DeploymentStatusState::Error,
            "failure" => DeploymentStatusState::Failure,
            "inactive" => DeploymentStatusState::Inactive,
            "in_progress" => DeploymentStatusState::InProgress,
            "queued" => DeploymentStatusState::Queued,
            "success" => DeploymentStatusState::Success,
            "waiting" => DeploymentStatusState::Waiting,
            _ => DeploymentStatusState::Pending,
        }
    }
}

pub struct Deployment {
    repo: Arc<Repo>,
    d: state::Deployment,
}

#[Object]
impl Deployment {
    async fn id(&self) -> String {
        json::node_id("Deployment", self.d.id)
    }

    async fn database_id(&self) -> i64 {
        self.d.id as i64
    }

    async fn commit_oid(&self) -> &str {
        &self.d.sha
    }

    async fn commit(&self) -> Commit {
        Commit {
            repo: self.repo.clone(),
            oid: self.d.sha.clone(),
        }
    }

    /// `null` when the deployment was created for a sha (or its ref is gone).
    async fn r#ref(&self) -> Option<Ref> {
        Ref::of_deployment(&self.repo, &self.d.git_ref)
    }

    async fn environment(&self) -> &str {
        &self.d.environment
    }

    async fn original_environment(&self) -> &str {
        &self.d.original_environment
    }

    async fn task(&self) -> &str {
        &self.d.task
    }

    /// JSON, as a string.
    async fn payload(&self) -> String {
        self.d.payload.to_string()
    }

    async fn description(&self) -> Option<&str> {
        self.d.description.as_deref()
    }

    async fn creator(&self) -> Actor {
        Actor {
            login: self.d.creator.login.clone(),
        }
    }

    async fn created_at(&self) -> String {
        ts(&self.d.created_at)
    }

    async fn updated_at(&self) -> String {
        ts(&self.d.updated_at)
    }

    /// The deployment's state, derived from its latest status.
    async fn state(&self) -> DeploymentState {
        match self.d.latest_state() {
            None | Some("pending") => DeploymentState::Pending,
            Some("success") => DeploymentState::Active,
            Some("inactive") if self.d.transient_environment => DeploymentState::Destroyed,
            Some("inactive") => DeploymentState::Inactive,
            Some("failure") => DeploymentState::Failure,
            Some("error") => DeploymentState::Error,
            Some("queued") => DeploymentState::Queued,
            Some("in_progress") => DeploymentState::InProgress,
            Some("waiting") => DeploymentState::Waiting,
            Some(_) => DeploymentState::Pending,
        }
    }

    async fn latest_status(&self) -> Option<DeploymentStatus> {
        self.d
            .statuses
            .last()
            .map(|s| DeploymentStatus { s: s.clone() })
    }
}

pub struct DeploymentStatus {
    s: state::DeploymentStatus,
}

#[Object]
impl DeploymentStatus {
    async fn id(&self) -> String {
        json::node_id("DeploymentStatus", self.s.id)
    }

    async fn state(&self) -> DeploymentStatusState {
        DeploymentStatusState::of(&self.s.state)
    }

    async fn description(&self) -> Option<String> {
        non_empty(&self.s.description)
    }

    async fn environment(&self) -> Option<String> {
        non_empty(&self.s.environment)
    }

    async fn log_url(&self) -> Option<String> {
        non_empty(&self.s.log_url).or_else(|| non_empty(&self.s.target_url))
    }

    async fn environment_url(&self) -> Option<String> {
        non_empty(&self.s.environment_url)
    }

    async fn creator(&self) -> Actor {
        Actor {
            login: self.s.creator.login.clone(),
        }
    }

    async fn created_at(&self) -> String {
        ts(&self.s.created_at)
    }

    async fn updated_at(&self) -> String {
        ts(&self.s.created_at)
    }
}
