//! The reads that GitHub's GraphQL API answers in one request where REST needs one per
//! deployment: the queries (GitHub's schema: `Repository.deployments` with
//! `latestStatus`, `defaultBranchRef`, `Ref.compare`, `object(expression:)` with its
//! `statusCheckRollup`), and their answers turned into the REST types the rest of
//! the bot knows.
//!
//! Whether GraphQL can be used at all is decided in `client.rs` (it falls back to REST
//! when GitHub refuses it); this module only builds queries and reads answers.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Comparison, ContextState, Deployment, DeploymentStatus, Repository, User};
use crate::model::{DeploymentId, RepoName, Sha};

/// Every deployment field the bot reads, with the latest status.
const DEPLOYMENT: &str = "fragment D on Deployment { databaseId commitOid ref { name } \
    environment originalEnvironment task payload description creator { login } createdAt \
    updatedAt latestStatus { state description environment logUrl environmentUrl createdAt \
    updatedAt creator { login } } }";

const NEWEST_FIRST: &str = "orderBy: {field: CREATED_AT, direction: DESC}";

/// The most GitHub gives in one page of a connection.
pub const PAGE: u8 = 100;

/// `{query, variables}` for recent deployments, newest first, optionally of some
/// environments.
pub fn recent_query(repo: &RepoName, environment: Option<&str>, first: u8) -> Value {
    json!({
        "query": format!(
            "query($owner: String!, $name: String!, $environments: [String!], $first: Int!) {{ \
             repository(owner: $owner, name: $name) {{ \
             deployments(environments: $environments, first: $first, {NEWEST_FIRST}) {{ \
             pageInfo {{ hasNextPage }} nodes {{ ...D }} }} }} }} {DEPLOYMENT}"
        ),
        "variables": {
            "owner": repo.owner,
            "name": repo.name,
            "environments": environment.map(|e| vec![e]),
            "first": first,
        },
    })
}

/// One query for the last `scan` deployments of each environment (aliased `e0`, `e1`…).
pub fn live_query(repo: &RepoName, environments: &[&str], scan: u8) -> Value {
    let mut declared = String::new();
    let mut fields = String::new();
    let mut variables = serde_json::Map::new();
    variables.insert("owner".into(), json!(repo.owner));
    variables.insert("name".into(), json!(repo.name));
    variables.insert("scan".into(), json!(scan));
    for (i, environment) in environments.iter().enumerate() {
        declared.push_str(&format!(", $e{i}: String!"));
        fields.push_str(&format!(
            "e{i}: deployments(environments: [$e{i}], first: $scan, {NEWEST_FIRST}) {{ nodes {{ ...D }} }} "
        ));
        variables.insert(format!("e{i}"), json!(environment));
    }
    json!({
        "query": format!(
            "query($owner: String!, $name: String!, $scan: Int!{declared}) {{ \
             repository(owner: $owner, name: $name) {{ {fields}}} }} {DEPLOYMENT}"
        ),
        "variables": variables,
    })
}

/// The deploy pre-flight in one query: the repository (default branch, web address),
/// the environment's last `scan` deployments with their latest statuses and, for each,
/// how `git_ref` compares with the head of the ref it was deployed from; with `checks`,
/// the statuses and check runs on `git_ref`.
///
/// `guesses` are commits that may be what is live (what was live or deployed last time
/// this client looked): the ref is compared with each of them too, so that when the
/// live deployment's branch has moved on since, the answer still holds the comparison
/// with the deployed commit.
pub fn preflight_query(
    repo: &RepoName,
    environment: &str,
    git_ref: &str,
    checks: bool,
    scan: u8,
    guesses: &[String],
) -> Value {
    let checks_field = if checks {
        "target: object(expression: $target) { ... on Commit { oid statusCheckRollup { \
         contexts(first: 100) { nodes { __typename ... on StatusContext { context state } \
         ... on CheckRun { name status conclusion } } } } } }"
    } else {
        ""
    };
    let mut declared = String::new();
    let mut compares = String::new();
    let mut variables = json!({
        "owner": repo.owner,
        "name": repo.name,
        "environment": environment,
        "scan": scan,
        "target": git_ref,
    });
    for (i, sha) in guesses.iter().enumerate() {
        declared.push_str(&format!(", $g{i}: String!"));
        compares.push_str(&format!(
            "c{i}: compare(headRef: $g{i}) {{ aheadBy behindBy status }} "
        ));
        variables[format!("g{i}")] = json!(sha);
    }
    let guess_field = if guesses.is_empty() {
        String::new()
    } else {
        format!("guess: ref(qualifiedName: $target) {{ {compares}}}")
    };
    json!({
        "query": format!(
            "query($owner: String!, $name: String!, $environment: String!, $scan: Int!, $target: String!{declared}) {{ \
             repository(owner: $owner, name: $name) {{ nameWithOwner url defaultBranchRef {{ name }} \
             deployments(environments: [$environment], first: $scan, {NEWEST_FIRST}) {{ \
             nodes {{ ...D ref {{ name target {{ oid }} compare(headRef: $target) {{ aheadBy behindBy status }} }} }} }} \
             {checks_field} {guess_field} }} }} {DEPLOYMENT}"
        ),
        "variables": variables,
    })
}

/// `{data, errors}` as GitHub sends it.
#[derive(Debug, Deserialize)]
pub struct Answer<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Vec<Error>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Error {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: String,
}

impl Error {
    /// Errors that say GraphQL will not show this repository to these credentials
    /// (while REST may: a classic token without `repo` on a private repository, an
    /// SSO or IP allow-list rule), as opposed to a query GitHub does not understand.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.kind.as_deref(),
            Some("NOT_FOUND" | "FORBIDDEN" | "INSUFFICIENT_SCOPES" | "SAML_FAILURE")
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct Data<R> {
    pub repository: Option<R>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    #[serde(default)]
    pub page_info: Option<PageInfo>,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
}

#[derive(Debug, Deserialize)]
pub struct RecentRepository {
    pub deployments: Connection,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightRepository {
    pub name_with_owner: String,
    pub url: String,
    pub default_branch_ref: Option<Name>,
    pub deployments: Connection,
    #[serde(default)]
    pub target: Option<Target>,
    /// `c0`, `c1`…: the ref (as base) compared with each guess (as head).
    #[serde(default)]
    pub guess: Option<std::collections::HashMap<String, Option<NodeComparison>>>,
}

impl PreflightRepository {
    /// How the `i`th guess (`base`) compares with `head`, from the answer's comparison
    /// the other way round.
    pub fn guessed(&self, i: usize, base: &str, head: &str) -> Option<Comparison> {
        let c = self.guess.as_ref()?.get(&format!("c{i}"))?.as_ref()?;
        let status = match c.status.to_ascii_lowercase().as_str() {
            "ahead" => "behind",
            "behind" => "ahead",
            other => other,
        }
        .to_string();
        Some(Comparison {
            status,
            ahead_by: c.behind_by,
            behind_by: c.ahead_by,
            html_url: Some(format!("{}/compare/{base}...{head}", self.url)),
        })
    }

    pub fn repository(&self) -> Option<Repository> {
        Some(Repository {
            full_name: self.name_with_owner.clone(),
            default_branch: self.default_branch_ref.as_ref()?.name.clone(),
            html_url: self.url.clone(),
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct Name {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Oid {
    pub oid: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub status_check_rollup: Option<Rollup>,
}

#[derive(Debug, Deserialize)]
pub struct Rollup {
    pub contexts: RollupContexts,
}

#[derive(Debug, Deserialize)]
pub struct RollupContexts {
    pub nodes: Vec<RollupContext>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "__typename")]
pub enum RollupContext {
    StatusContext {
        context: String,
        state: String,
    },
    CheckRun {
        name: String,
        status: String,
        conclusion: Option<String>,
    },
}

impl Target {
    /// The checks as `required_contexts` sees them, in REST's words (`commit_checks`).
    pub fn checks(&self) -> Vec<ContextState> {
        let Some(rollup) = &self.status_check_rollup else {
            return vec![];
        };
        rollup
            .contexts
            .nodes
            .iter()
            .map(|c| match c {
                RollupContext::StatusContext { context, state } => ContextState {
                    context: context.clone(),
                    state: state.to_ascii_lowercase(),
                },
                RollupContext::CheckRun {
                    name,
                    status,
                    conclusion,
                } => ContextState {
                    context: name.clone(),
                    state: match (status.as_str(), conclusion.as_deref()) {
                        ("COMPLETED", Some("SUCCESS" | "NEUTRAL" | "SKIPPED")) => "success",
                        ("COMPLETED", _) => "failure",
                        _ => "pending",
                    }
                    .to_string(),
                },
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub database_id: Option<u64>,
    pub commit_oid: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<NodeRef>,
    pub environment: Option<String>,
    pub original_environment: Option<String>,
    pub task: Option<String>,
    pub payload: Option<String>,
    pub description: Option<String>,
    pub creator: Option<Login>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub latest_status: Option<Status>,
}

#[derive(Debug, Deserialize)]
pub struct NodeRef {
    pub name: String,
    #[serde(default)]
    pub target: Option<Oid>,
    #[serde(default)]
    pub compare: Option<NodeComparison>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeComparison {
    pub ahead_by: u32,
    pub behind_by: u32,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct Login {
    pub login: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: String,
    pub description: Option<String>,
    pub environment: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub creator: Option<Login>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Node {
    /// The deployment as REST shows it, with its latest status. `None` for a node
    /// without a database id (GitHub always has one).
    pub fn into_rest(
        self,
        api: &str,
        repo: &RepoName,
    ) -> Option<(Deployment, Option<DeploymentStatus>)> {
        let id = self.database_id?;
        let repository_url = format!("{api}/repos/{}/{}", repo.owner, repo.name);
        let url = format!("{repository_url}/deployments/{id}");
        // REST's `ref` is what the deployment was created with; GraphQL has the ref
        // only when it was created by ref, else the sha.
        let git_ref = self
            .git_ref
            .as_ref()
            .map_or_else(|| self.commit_oid.clone(), |r| r.name.clone());
        let payload = match self.payload.as_deref() {
            Some(p) => serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_string())),
            None => Value::Object(Default::default()),
        };
        let environment = self.environment.unwrap_or_default();
        let status = self.latest_status.map(|s| DeploymentStatus {
            // GraphQL does not expose a status's database id.
            id: 0,
            state: s.state.to_ascii_lowercase(),
            description: s.description,
            environment: s.environment.or_else(|| Some(environment.clone())),
            target_url: s.log_url.clone(),
            log_url: s.log_url,
            environment_url: s.environment_url,
            creator: s.creator.map(login_user),
            created_at: Some(s.created_at),
            updated_at: s.updated_at,
        });
        let deployment = Deployment {
            id: DeploymentId(id),
            statuses_url: format!("{url}/statuses"),
            url,
            sha: Sha::new(self.commit_oid),
            git_ref,
            task: self.task.unwrap_or_else(|| "deploy".to_string()),
            payload,
            original_environment: self.original_environment,
            environment,
            description: self.description,
            creator: self.creator.map(login_user),
            created_at: self.created_at,
            updated_at: self.updated_at,
            repository_url,
            transient_environment: None,
            production_environment: None,
        };
        Some((deployment, status))
    }

    /// How the deployed commit compares with `head`, when the answer says so: the
    /// query compares the head of the ref the deployment came from, which is the
    /// deployed commit only while that ref has not moved (always for a tag).
    pub fn comparison(&self, html_url: &str, head: &str) -> Option<Comparison> {
        let r = self.git_ref.as_ref()?;
        if r.target.as_ref()?.oid != self.commit_oid {
            return None;
        }
        let c = r.compare.as_ref()?;
        Some(Comparison {
            status: c.status.to_ascii_lowercase(),
            ahead_by: c.ahead_by,
            behind_by: c.behind_by,
            html_url: Some(format!("{html_url}/compare/{}...{head}", self.commit_oid)),
        })
    }
}

fn login_user(l: Login) -> User {
    // GraphQL's actors are read by login; the database id is not asked for.
    User {
        login: l.login,
        id: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer in the shape GitHub's GraphQL API gives (field names and enum values
    /// of its schema; the payload is a JSON string).
    const ANSWER: &str = r#"{"data": {"repository": {
        "nameWithOwner": "acme/api", "url": "https://github.com/acme/api",
        "defaultBranchRef": {"name": "main"},
        "deployments": {"nodes": [
          {"databaseId": 42, "commitOid": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d",
           "ref": null, "environment": "production", "originalEnvironment": "production",
           "task": "deploy", "payload": "{\"deploybot\":{\"request_id\":\"r1\",\"chat\":{\"adapter\":\"shell\",\"channel\":\"deploys\"},\"user\":{\"id\":\"u\",\"name\":\"alice\"}}}",
           "description": null, "creator": {"login": "octocat"},
           "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T10:00:05Z",
           "latestStatus": {"state": "IN_PROGRESS", "description": "", "environment": "production",
             "logUrl": "https://ci.example/1", "environmentUrl": null, "creator": {"login": "ci"},
             "createdAt": "2026-12-01T10:00:05Z", "updatedAt": "2026-12-01T10:00:05Z"}},
          {"databaseId": 41, "commitOid": "b84d88e7554fc1fa21bcbc4efae3c782a70d2b9d",
           "ref": {"name": "v1.2", "target": {"oid": "b84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"},
                   "compare": {"aheadBy": 3, "behindBy": 0, "status": "AHEAD"}},
           "environment": "production", "originalEnvironment": "production", "task": "deploy",
           "payload": "{}", "description": "release", "creator": {"login": "octocat"},
           "createdAt": "2026-11-30T10:00:00Z", "updatedAt": "2026-11-30T10:00:05Z",
           "latestStatus": {"state": "SUCCESS", "description": "done", "environment": "production",
             "logUrl": null, "environmentUrl": "https://api.example", "creator": {"login": "ci"},
             "createdAt": "2026-11-30T10:00:05Z", "updatedAt": "2026-11-30T10:00:05Z"}}
        ]}}}}"#;

    #[test]
    fn an_answer_reads_as_rests_types() {
        let answer: Answer<Data<PreflightRepository>> = serde_json::from_str(ANSWER).unwrap();
        assert!(answer.errors.is_empty());
        let mut repo = answer.data.unwrap().repository.unwrap();
        let repository = repo.repository().unwrap();
        assert_eq!(repository.default_branch, "main");
        assert_eq!(repository.html_url, "https://github.com/acme/api");
        let api = RepoName::parse("acme/api").unwrap();
        let nodes = std::mem::take(&mut repo.deployments.nodes);
        let tag = &nodes[1];
        // The tag has not moved: its comparison is the deployed commit's.
        let c = tag.comparison(&repo.url, "main").unwrap();
        assert_eq!(
            (c.status.as_str(), c.ahead_by, c.behind_by),
            ("ahead", 3, 0)
        );
        let mut nodes = nodes.into_iter();
        let (d, status) = nodes
            .next()
            .unwrap()
            .into_rest("https://api.github.com", &api)
            .unwrap();
        assert_eq!(d.id, DeploymentId(42));
        assert_eq!(
            d.url,
            "https://api.github.com/repos/acme/api/deployments/42"
        );
        // Made from a sha: REST's `ref` is the sha.
        assert_eq!(d.git_ref, d.sha.as_str());
        assert_eq!(d.deploybot().unwrap().user.name, "alice");
        let status = status.unwrap();
        assert_eq!(status.state, "in_progress");
        assert_eq!(status.log_link(), Some("https://ci.example/1"));
        let (d, _) = nodes
            .next()
            .unwrap()
            .into_rest("https://api.github.com", &api)
            .unwrap();
        assert_eq!(d.git_ref, "v1.2");
    }

    #[test]
    fn refusals_are_told_from_queries_github_does_not_understand() {
        let refused: Answer<Data<RecentRepository>> = serde_json::from_str(
            r#"{"data": {"repository": null}, "errors": [{"type": "NOT_FOUND", "path": ["repository"],
               "message": "Could not resolve to a Repository with the name 'acme/api'."}]}"#,
        )
        .unwrap();
        assert!(refused.errors[0].is_refusal());
        let unknown: Answer<Data<RecentRepository>> = serde_json::from_str(
            r#"{"errors": [{"message": "Field 'statusCheckRollup' doesn't exist on type 'Commit'"}]}"#,
        )
        .unwrap();
        assert!(!unknown.errors[0].is_refusal());
    }

    #[test]
    fn a_guess_reads_the_other_way_round() {
        let repo: PreflightRepository = serde_json::from_str(
            r#"{"nameWithOwner": "acme/api", "url": "https://github.com/acme/api",
                "defaultBranchRef": {"name": "main"}, "deployments": {"nodes": []},
                "guess": {"c0": {"aheadBy": 0, "behindBy": 2, "status": "BEHIND"}, "c1": null}}"#,
        )
        .unwrap();
        // Base main, head the live commit: the head is 2 behind. The other way round
        // (base the live commit, head main), main is 2 ahead.
        let c = repo.guessed(0, "abc", "main").unwrap();
        assert_eq!(
            (c.status.as_str(), c.ahead_by, c.behind_by),
            ("ahead", 2, 0)
        );
        assert_eq!(
            c.html_url.as_deref(),
            Some("https://github.com/acme/api/compare/abc...main")
        );
        assert!(repo.guessed(1, "def", "main").is_none());
    }
}
