//! The sandbox's world: repositories with a real commit graph, commit statuses, check
//! runs, deployments and deployment statuses. Pure and synchronous: no I/O, no JSON
//! rendering (see `json.rs`), no HTTP (see `http.rs`). Every rule about *what GitHub
//! decides* (which ref a name means, when a deployment is refused, which deployments
//! become inactive) lives here so it can be unit-tested without a server.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Commit status states (`POST /repos/{o}/{r}/statuses/{sha}`).
pub const COMMIT_STATES: &[&str] = &["error", "failure", "pending", "success"];
/// Deployment status states (`POST .../deployments/{id}/statuses`).
pub const DEPLOYMENT_STATES: &[&str] = &[
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];
/// Check run statuses.
pub const CHECK_STATUSES: &[&str] = &[
    "queued",
    "in_progress",
    "completed",
    "waiting",
    "requested",
    "pending",
];
/// Check run conclusions.
pub const CHECK_CONCLUSIONS: &[&str] = &[
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];
/// GitHub caps a deployment status description at 140 characters.
pub const MAX_STATUS_DESCRIPTION: usize = 140;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("repository {0} does not exist")]
    NoRepo(String),
    #[error("repository {0} already exists")]
    RepoExists(String),
    #[error("repository name {0:?} is not owner/name")]
    BadRepoName(String),
    #[error("no ref found for: {0}")]
    NoRef(String),
    #[error("branch {0} already exists")]
    BranchExists(String),
    #[error("tag {0} already exists")]
    TagExists(String),
    #[error("invalid value {value:?} for {field}")]
    Invalid { field: &'static str, value: String },
    #[error("deployment {0} does not exist")]
    NoDeployment(u64),
}

/// An account: a user, a bot or an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub id: u64,
    /// "User", "Bot" or "Organization".
    pub kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub date: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CommitStatus {
    pub id: u64,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub creator: User,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: u64,
    pub sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct DeploymentStatus {
    pub id: u64,
    pub state: String,
    pub creator: User,
    pub description: String,
    pub environment: String,
    pub target_url: String,
    pub log_url: String,
    pub environment_url: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub git_ref: String,
    pub task: String,
    pub payload: Value,
    pub original_environment: String,
    pub environment: String,
    pub description: Option<String>,
    pub creator: User,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub transient_environment: bool,
    pub production_environment: bool,
    /// Oldest first.
    pub statuses: Vec<DeploymentStatus>,
}

impl Deployment {
    pub fn latest_state(&self) -> Option<&str> {
        self.statuses.last().map(|s| s.state.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    Branch(String),
    Tag(String),
    Sha,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub sha: String,
    pub kind: RefKind,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: u64,
    pub owner: User,
    pub name: String,
    pub default_branch: String,
    pub created_at: DateTime<Utc>,
    pub pushed_at: DateTime<Utc>,
    /// Creation order, which is also a topological order (parents come first).
    commits: Vec<Commit>,
    index: HashMap<String, usize>,
    pub branches: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    conflicting: BTreeSet<String>,
    /// Creation order.
    pub statuses: Vec<CommitStatus>,
    /// Creation order.
    pub check_runs: Vec<CheckRun>,
    /// Creation order (oldest first).
    pub deployments: Vec<Deployment>,
}

/// What the auto-merge step of `POST /deployments` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// 201: a deployment with this id exists now.
    Created(u64),
    /// 202: `base` (the default branch) was merged into `head`; no deployment was created.
    AutoMerged {
        base: String,
        head: String,
        merge_sha: String,
    },
}

/// Why `POST /deployments` refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    NoRepo,
    /// 422 "No ref found for: X".
    NoRef(String),
    /// 409 "Conflict merging BASE into HEAD."
    MergeConflict {
        base: String,
        head: String,
    },
    /// 409 "Conflict: Commit status checks failed for REF." with every verified context.
    ContextsFailed {
        git_ref: String,
        contexts: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct DeploymentRequest {
    pub git_ref: String,
    pub task: Option<String>,
    pub auto_merge: Option<bool>,
    /// `None`: every context on the commit must be success; `Some([])`: none.
    pub required_contexts: Option<Vec<String>>,
    pub payload: Option<Value>,
    pub environment: Option<String>,
    pub description: Option<String>,
    pub transient_environment: Option<bool>,
    pub production_environment: Option<bool>,
}

/// A commit status to add (`POST /repos/{o}/{r}/statuses/{sha}`).
#[derive(Debug, Clone, Default)]
pub struct NewCommitStatus {
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

impl NewCommitStatus {
    pub fn new(state: &str, context: &str) -> NewCommitStatus {
        NewCommitStatus {
            state: state.to_string(),
            context: context.to_string(),
            ..NewCommitStatus::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StatusRequest {
    pub state: String,
    pub target_url: Option<String>,
    pub log_url: Option<String>,
    pub description: Option<String>,
    pub environment: Option<String>,
    pub environment_url: Option<String>,
    pub auto_inactive: Option<bool>,
}

/// A deployment status that was created, plus the `inactive` statuses that
/// `auto_inactive` added to older deployments as a consequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    pub status_id: u64,
    /// (deployment id, status id) of every `inactive` status added by auto_inactive.
    pub inactivated: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareStatus {
    Identical,
    Ahead,
    Behind,
    Diverged,
}

impl CompareStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            CompareStatus::Identical => "identical",
            CompareStatus::Ahead => "ahead",
            CompareStatus::Behind => "behind",
            CompareStatus::Diverged => "diverged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub status: CompareStatus,
    pub merge_base: String,
    /// Commits reachable from head but not from base, oldest first.
    pub ahead: Vec<Commit>,
    /// Commits reachable from base but not from head, oldest first.
    pub behind: Vec<Commit>,
}

/// Everything, for every repository.
#[derive(Debug, Default)]
pub struct State {
    repos: BTreeMap<String, Repo>,
    owners: BTreeMap<String, u64>,
    next_repo_id: u64,
    next_owner_id: u64,
    next_deployment_id: u64,
    next_deployment_status_id: u64,
    next_commit_status_id: u64,
    next_check_run_id: u64,
    commit_counter: u64,
}

fn key(full_name: &str) -> String {
    full_name.to_ascii_lowercase()
}

fn now() -> DateTime<Utc> {
    // GitHub timestamps have whole seconds.
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl State {
    pub fn new() -> State {
        State {
            next_repo_id: 1_000,
            next_owner_id: 100,
            next_deployment_id: 1,
            next_deployment_status_id: 1,
            next_commit_status_id: 1,
            next_check_run_id: 1,
            ..State::default()
        }
    }

    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&key(full_name))
    }

    fn repo_mut(&mut self, full_name: &str) -> Result<&mut Repo, StateError> {
        self.repos
            .get_mut(&key(full_name))
            .ok_or_else(|| StateError::NoRepo(full_name.to_string()))
    }

    pub fn repos(&self) -> impl Iterator<Item = &Repo> {
        self.repos.values()
    }

    fn next_sha(&mut self, repo: &str, message: &str, parents: &[String]) -> String {
        self.commit_counter += 1;
        let mut h = Sha256::new();
        h.update(repo.as_bytes());
        h.update([0]);
        h.update(self.commit_counter.to_be_bytes());
        h.update(message.as_bytes());
        for p in parents {
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())[..40].to_string()
    }

    /// Creates `owner/name` with one initial commit on `default_branch`; returns its sha.
    pub fn create_repo(
        &mut self,
        full_name: &str,
        default_branch: &str,
    ) -> Result<String, StateError> {
        let (owner, name) = match full_name.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => (o, n),
            _ => return Err(StateError::BadRepoName(full_name.to_string())),
        };
        if self.repos.contains_key(&key(full_name)) {
            return Err(StateError::RepoExists(full_name.to_string()));
        }
        if default_branch.is_empty() {
            return Err(StateError::Invalid {
                field: "default_branch",
                value: String::new(),
            });
        }
        let owner_id = match self.owners.get(&owner.to_ascii_lowercase()) {
            Some(id) => *id,
            None => {
                self.next_owner_id += 1;
                self.owners
                    .insert(owner.to_ascii_lowercase(), self.next_owner_id);
                self.next_owner_id
            }
        };
        self.next_repo_id += 1;
        let t = now();
        let sha = self.next_sha(full_name, "Initial commit", &[]);
        let commit = Commit {
            sha: sha.clone(),
            message: "Initial commit".into(),
            parents: vec![],
            author_name: "Sandbox Developer".into(),
            author_email: "dev@sandbox.example.test".into(),
            date: t,
        };
        let mut repo = Repo {
            id: self.next_repo_id,
            owner: User {
                login: owner.to_string(),
                id: owner_id,
                kind: "Organization",
            },
            name: name.to_string(),
            default_branch: default_branch.to_string(),
            created_at: t,
            pushed_at: t,
            commits: vec![],
            index: HashMap::new(),
            branches: BTreeMap::new(),
            tags: BTreeMap::new(),
            conflicting: BTreeSet::new(),
            statuses: vec![],
            check_runs: vec![],
            deployments: vec![],
        };
        repo.push_commit(commit);
        repo.branches
            .insert(default_branch.to_string(), sha.clone());
        self.repos.insert(key(full_name), repo);
        Ok(sha)
    }

    /// A new commit on top of `branch` (created from the default branch if missing).
    pub fn commit(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
    ) -> Result<String, StateError> {
        let r = self
            .repo(repo)
            .ok_or_else(|| StateError::NoRepo(repo.to_string()))?;
        let parent = match r.branches.get(branch) {
            Some(sha) => sha.clone(),
            None => r
                .branches
                .get(&r.default_branch)
                .cloned()
                .unwrap_or_default(),
        };
        let full = format!("{}/{}", r.owner.login, r.name);
        self.commit_with_parents(&full, branch, message, vec![parent])
    }

    fn commit_with_parents(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
        parents: Vec<String>,
    ) -> Result<String, StateError> {
        let sha = self.next_sha(repo, message, &parents);
        let r = self.repo_mut(repo)?;
        let t = now();
        r.push_commit(Commit {
            sha: sha.clone(),
            message: message.to_string(),
            parents,
            author_name: "Sandbox Developer".into(),
            author_email: "dev@sandbox.example.test".into(),
            date: t,
        });
        r.branches.insert(branch.to_string(), sha.clone());
        r.pushed_at = t;
        Ok(sha)
    }

    pub fn create_branch(
        &mut self,
        repo: &str,
        branch: &str,
        from: &str,
    ) -> Result<String, StateError> {
        let r = self.repo_mut(repo)?;
        if r.branches.contains_key(branch) {
            return Err(StateError::BranchExists(branch.to_string()));
        }
        let sha = r
            .resolve(from)
            .ok_or_else(|| StateError::NoRef(from.to_string()))?
            .sha;
        r.branches.insert(branch.to_string(), sha.clone());
        Ok(sha)
    }

    pub fn create_tag(&mut self, repo: &str, tag: &str, from: &str) -> Result<String, StateError> {
        let r = self.repo_mut(repo)?;
        if r.tags.contains_key(tag) {
            return Err(StateError::TagExists(tag.to_string()));
        }
        let sha = r
            .resolve(from)
            .ok_or_else(|| StateError::NoRef(from.to_string()))?
            .sha;
        r.tags.insert(tag.to_string(), sha.clone());
        Ok(sha)
    }

    pub fn set_merge_conflict(
        &mut self,
        repo: &str,
        branch: &str,
        conflicting: bool,
    ) -> Result<(), StateError> {
        let r = self.repo_mut(repo)?;
        if conflicting {
            r.conflicting.insert(branch.to_string());
        } else {
            r.conflicting.remove(branch);
        }
        Ok(())
    }

    /// `POST /repos/{o}/{r}/statuses/{sha}`; `sha` must already be resolved.
    pub fn add_commit_status(
        &mut self,
        repo: &str,
        sha: &str,
        status: NewCommitStatus,
        creator: User,
    ) -> Result<u64, StateError> {
        if !COMMIT_STATES.contains(&status.state.as_str()) {
            return Err(StateError::Invalid {
                field: "state",
                value: status.state,
            });
        }
        let id = self.next_commit_status_id;
        let r = self.repo_mut(repo)?;
        if !r.index.contains_key(sha) {
            return Err(StateError::NoRef(sha.to_string()));
        }
        r.statuses.push(CommitStatus {
            id,
            sha: sha.to_string(),
            state: status.state,
            context: status.context,
            description: status.description,
            target_url: status.target_url,
            creator,
            created_at: now(),
        });
        self.next_commit_status_id += 1;
        Ok(id)
    }

    /// Records a check run for `name` on `sha` (a new run: the latest one per name counts).
    pub fn add_check_run(
        &mut self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) -> Result<u64, StateError> {
        if !CHECK_STATUSES.contains(&status) {
            return Err(StateError::Invalid {
                field: "status",
                value: status.to_string(),
            });
        }
        match conclusion {
            Some(c) if !CHECK_CONCLUSIONS.contains(&c) => {
                return Err(StateError::Invalid {
                    field: "conclusion",
                    value: c.to_string(),
                })
            }
            None if status == "completed" => {
                return Err(StateError::Invalid {
                    field: "conclusion",
                    value: "null".into(),
                })
            }
            _ => {}
        }
        let id = self.next_check_run_id;
        let r = self.repo_mut(repo)?;
        if !r.index.contains_key(sha) {
            return Err(StateError::NoRef(sha.to_string()));
        }
        let t = now();
        let completed = status == "completed";
        r.check_runs.push(CheckRun {
            id,
            sha: sha.to_string(),
            name: name.to_string(),
            status: status.to_string(),
            conclusion: if completed {
                conclusion.map(str::to_string)
            } else {
                None
            },
            started_at: t,
            completed_at: completed.then_some(t),
        });
        self.next_check_run_id += 1;
        Ok(id)
    }

    /// `POST /repos/{o}/{r}/deployments`, in GitHub's order: unknown ref, auto-merge,
    /// required contexts, then create.
    pub fn create_deployment(
        &mut self,
        repo: &str,
        req: &DeploymentRequest,
        creator: User,
    ) -> Result<CreateOutcome, CreateError> {
        let r = self.repo(repo).ok_or(CreateError::NoRepo)?;
        let full = format!("{}/{}", r.owner.login, r.name);
        let resolved = r
            .resolve(&req.git_ref)
            .ok_or_else(|| CreateError::NoRef(req.git_ref.clone()))?;

        if req.auto_merge.unwrap_or(true) {
            if let RefKind::Branch(branch) = &resolved.kind {
                let default_head = r
                    .branches
                    .get(&r.default_branch)
                    .cloned()
                    .unwrap_or_default();
                if *branch != r.default_branch && !r.is_ancestor(&default_head, &resolved.sha) {
                    let base = r.default_branch.clone();
                    if r.conflicting.contains(branch) {
                        return Err(CreateError::MergeConflict {
                            base,
                            head: branch.clone(),
                        });
                    }
                    // The merge commit GitHub makes carries the same sentence as the 202.
                    let message = format!("Auto-merged {base} into {branch} on deployment.");
                    let merge_sha = self
                        .commit_with_parents(
                            &full,
                            branch,
                            &message,
                            vec![resolved.sha.clone(), default_head],
                        )
                        .map_err(|_| CreateError::NoRepo)?;
                    return Ok(CreateOutcome::AutoMerged {
                        base,
                        head: branch.clone(),
                        merge_sha,
                    });
                }
            }
        }

        let contexts = r.contexts(&resolved.sha);
        let verified: Vec<(String, String)> = match &req.required_contexts {
            None => contexts.into_iter().collect(),
            Some(required) => {
                let mut seen = HashSet::new();
                required
                    .iter()
                    .filter(|c| seen.insert(c.as_str()))
                    .map(|c| {
                        (
                            c.clone(),
                            contexts.get(c).cloned().unwrap_or_else(|| "pending".into()),
                        )
                    })
                    .collect()
            }
        };
        if verified.iter().any(|(_, state)| state != "success") {
            return Err(CreateError::ContextsFailed {
                git_ref: req.git_ref.clone(),
                contexts: verified,
            });
        }

        let id = self.next_deployment_id;
        self.next_deployment_id += 1;
        let environment = req
            .environment
            .clone()
            .unwrap_or_else(|| "production".into());
        let t = now();
        let deployment = Deployment {
            id,
            sha: resolved.sha,
            git_ref: req.git_ref.clone(),
            task: req.task.clone().unwrap_or_else(|| "deploy".into()),
            payload: req
                .payload
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())),
            original_environment: environment.clone(),
            production_environment: req
                .production_environment
                .unwrap_or(environment == "production"),
            environment,
            description: req.description.clone(),
            creator,
            created_at: t,
            updated_at: t,
            transient_environment: req.transient_environment.unwrap_or(false),
            statuses: vec![],
        };
        self.repo_mut(&full)
            .map_err(|_| CreateError::NoRepo)?
            .deployments
            .push(deployment);
        Ok(CreateOutcome::Created(id))
    }

    /// `POST .../deployments/{id}/statuses`, including `auto_inactive`.
    pub fn create_deployment_status(
        &mut self,
        repo: &str,
        deployment_id: u64,
        req: &StatusRequest,
        creator: User,
    ) -> Result<StatusOutcome, StateError> {
        if !DEPLOYMENT_STATES.contains(&req.state.as_str()) {
            return Err(StateError::Invalid {
                field: "state",
                value: req.state.clone(),
            });
        }
        if let Some(d) = &req.description {
            if d.chars().count() > MAX_STATUS_DESCRIPTION {
                return Err(StateError::Invalid {
                    field: "description",
                    value: d.clone(),
                });
            }
        }
        let first_id = self.next_deployment_status_id;
        let r = self.repo_mut(repo)?;
        let pos = r
            .deployments
            .iter()
            .position(|d| d.id == deployment_id)
            .ok_or(StateError::NoDeployment(deployment_id))?;
        let t = now();
        let mut next_id = first_id;
        let deployment = &mut r.deployments[pos];
        if let Some(env) = &req.environment {
            deployment.environment = env.clone();
        }
        let environment = deployment.environment.clone();
        // log_url replaces target_url; setting either sets both.
        let url = req
            .log_url
            .clone()
            .or_else(|| req.target_url.clone())
            .unwrap_or_default();
        deployment.statuses.push(DeploymentStatus {
            id: next_id,
            state: req.state.clone(),
            creator: creator.clone(),
            description: req.description.clone().unwrap_or_default(),
            environment: environment.clone(),
            target_url: url.clone(),
            log_url: url,
            environment_url: req.environment_url.clone().unwrap_or_default(),
            created_at: t,
        });
        deployment.updated_at = t;
        let status_id = next_id;
        next_id += 1;

        let mut inactivated = vec![];
        if req.state == "success" && req.auto_inactive.unwrap_or(true) {
            for other in r.deployments.iter_mut().take(pos) {
                let eligible = other.environment == environment
                    && !other.transient_environment
                    && !other.production_environment
                    && other.latest_state() == Some("success");
                if !eligible {
                    continue;
                }
                other.statuses.push(DeploymentStatus {
                    id: next_id,
                    state: "inactive".into(),
                    creator: creator.clone(),
                    description: String::new(),
                    environment: other.environment.clone(),
                    target_url: String::new(),
                    log_url: String::new(),
                    environment_url: String::new(),
                    created_at: t,
                });
                other.updated_at = t;
                inactivated.push((other.id, next_id));
                next_id += 1;
            }
        }
        self.next_deployment_status_id = next_id;
        Ok(StatusOutcome {
            status_id,
            inactivated,
        })
    }
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner.login, self.name)
    }

    fn push_commit(&mut self, commit: Commit) {
        self.index.insert(commit.sha.clone(), self.commits.len());
        self.commits.push(commit);
    }

    pub fn commit(&self, sha: &str) -> Option<&Commit> {
        self.index.get(sha).map(|i| &self.commits[*i])
    }

    /// A branch, a tag (also as `heads/x`, `refs/heads/x`, `tags/x`, `refs/tags/x`), a full
    /// sha, or an unambiguous abbreviated sha of at least 7 hex digits.
    pub fn resolve(&self, git_ref: &str) -> Option<Resolved> {
        let branch = git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("heads/"));
        let tag = git_ref
            .strip_prefix("refs/tags/")
            .or_else(|| git_ref.strip_prefix("tags/"));
        if let Some(b) = branch {
            return self.branches.get(b).map(|sha| Resolved {
                sha: sha.clone(),
                kind: RefKind::Branch(b.to_string()),
            });
        }
        if let Some(t) = tag {
            return self.tags.get(t).map(|sha| Resolved {
                sha: sha.clone(),
                kind: RefKind::Tag(t.to_string()),
            });
        }
        if let Some(sha) = self.branches.get(git_ref) {
            return Some(Resolved {
                sha: sha.clone(),
                kind: RefKind::Branch(git_ref.to_string()),
            });
        }
        if let Some(sha) = self.tags.get(git_ref) {
            return Some(Resolved {
                sha: sha.clone(),
                kind: RefKind::Tag(git_ref.to_string()),
            });
        }
        if git_ref.len() >= 7 && git_ref.len() <= 40 && is_hex(git_ref) {
            let wanted = git_ref.to_ascii_lowercase();
            let mut found = self.commits.iter().filter(|c| c.sha.starts_with(&wanted));
            if let (Some(c), None) = (found.next(), found.next()) {
                return Some(Resolved {
                    sha: c.sha.clone(),
                    kind: RefKind::Sha,
                });
            }
        }
        None
    }

    /// Every commit reachable from `sha` (itself included).
    fn ancestors(&self, sha: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([sha.to_string()]);
        while let Some(s) = queue.pop_front() {
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(c) = self.commit(&s) {
                queue.extend(c.parents.iter().cloned());
            }
        }
        seen
    }

    /// Is `ancestor` reachable from `descendant` (or equal to it)?
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.ancestors(descendant).contains(ancestor)
    }

    /// `GET /compare/{base}...{head}` on resolved shas; `None` without a common ancestor.
    pub fn compare(&self, base: &str, head: &str) -> Option<Comparison> {
        let from_base = self.ancestors(base);
        let from_head = self.ancestors(head);
        let common: HashSet<&String> = from_base.intersection(&from_head).collect();
        // The best common ancestor: the common commit created last (commits are stored
        // in a topological order, so no other common commit descends from it).
        let merge_base = self
            .commits
            .iter()
            .rev()
            .find(|c| common.contains(&c.sha))?
            .sha
            .clone();
        let in_order = |set: &HashSet<String>, minus: &HashSet<String>| -> Vec<Commit> {
            self.commits
                .iter()
                .filter(|c| set.contains(&c.sha) && !minus.contains(&c.sha))
                .cloned()
                .collect()
        };
        let ahead = in_order(&from_head, &from_base);
        let behind = in_order(&from_base, &from_head);
        let status = match (ahead.is_empty(), behind.is_empty()) {
            (true, true) => CompareStatus::Identical,
            (false, true) => CompareStatus::Ahead,
            (true, false) => CompareStatus::Behind,
            (false, false) => CompareStatus::Diverged,
        };
        Some(Comparison {
            status,
            merge_base,
            ahead,
            behind,
        })
    }

    /// The latest commit status per context on `sha`, newest first.
    pub fn latest_statuses(&self, sha: &str) -> Vec<&CommitStatus> {
        let mut seen = HashSet::new();
        self.statuses
            .iter()
            .rev()
            .filter(|s| s.sha == sha && seen.insert(s.context.as_str()))
            .collect()
    }

    /// The latest check run per name on `sha`, newest first.
    pub fn latest_check_runs(&self, sha: &str) -> Vec<&CheckRun> {
        let mut seen = HashSet::new();
        self.check_runs
            .iter()
            .rev()
            .filter(|c| c.sha == sha && seen.insert(c.name.as_str()))
            .collect()
    }

    /// The combined state of the commit statuses on `sha`, as `GET .../status` reports it:
    /// failure if any latest status is error or failure, else pending if there are none
    /// or one is pending, else success.
    pub fn combined_state(&self, sha: &str) -> &'static str {
        let latest = self.latest_statuses(sha);
        if latest
            .iter()
            .any(|s| s.state == "error" || s.state == "failure")
        {
            "failure"
        } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
            "pending"
        } else {
            "success"
        }
    }

    /// Every context on `sha` with its state, as the deployments API verifies them:
    /// the latest commit status per context, and the latest check run per name
    /// (completed success/neutral/skipped = success, not completed = pending, else failure).
    pub fn contexts(&self, sha: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for s in self.latest_statuses(sha) {
            out.insert(s.context.clone(), s.state.clone());
        }
        for c in self.latest_check_runs(sha) {
            let state = if c.status != "completed" {
                "pending"
            } else {
                match c.conclusion.as_deref() {
                    Some("success" | "neutral" | "skipped") => "success",
                    _ => "failure",
                }
            };
            // A status and a check run with the same name: the worse one wins.
            let worse = match out.get(&c.name).map(String::as_str) {
                Some(existing) if rank(existing) >= rank(state) => existing.to_string(),
                _ => state.to_string(),
            };
            out.insert(c.name.clone(), worse);
        }
        out
    }

    pub fn deployment(&self, id: u64) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// Deployments newest first, filtered like `GET /deployments`.
    pub fn list_deployments(
        &self,
        sha: Option<&str>,
        git_ref: Option<&str>,
        task: Option<&str>,
        environment: Option<&str>,
    ) -> Vec<&Deployment> {
        self.deployments
            .iter()
            .rev()
            .filter(|d| sha.is_none_or(|s| d.sha == s))
            .filter(|d| git_ref.is_none_or(|r| d.git_ref == r))
            .filter(|d| task.is_none_or(|t| d.task == t))
            .filter(|d| environment.is_none_or(|e| d.environment == e))
            .collect()
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "success" => 0,
        "pending" => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            login: "tester".into(),
            id: 1,
            kind: "User",
        }
    }

    fn deploy_req(git_ref: &str) -> DeploymentRequest {
        DeploymentRequest {
            git_ref: git_ref.into(),
            ..Default::default()
        }
    }

    fn world() -> (State, String) {
        let mut s = State::new();
        let root = s.create_repo("acme/api", "main").unwrap();
        (s, root)
    }

    #[test]
    fn shas_are_40_hex_and_unique() {
        let (mut s, root) = world();
        let a = s.commit("acme/api", "main", "a").unwrap();
        assert_eq!(root.len(), 40);
        assert!(is_hex(&a) && a.len() == 40);
        assert_ne!(root, a);
    }

    #[test]
    fn resolve_branches_tags_and_short_shas() {
        let (mut s, root) = world();
        let t = s.commit("acme/api", "topic", "on topic").unwrap();
        s.create_tag("acme/api", "v1", "topic").unwrap();
        let r = s.repo("ACME/Api").unwrap();
        assert_eq!(
            r.resolve("topic").unwrap(),
            Resolved {
                sha: t.clone(),
                kind: RefKind::Branch("topic".into())
            }
        );
        assert_eq!(r.resolve("refs/heads/main").unwrap().sha, root);
        assert_eq!(r.resolve("v1").unwrap().kind, RefKind::Tag("v1".into()));
        assert_eq!(r.resolve("tags/v1").unwrap().sha, t);
        assert_eq!(r.resolve(&t[..7]).unwrap().kind, RefKind::Sha);
        assert_eq!(r.resolve(&t).unwrap().sha, t);
        assert!(r.resolve(&t[..6]).is_none(), "too short");
        assert!(r.resolve("nope").is_none());
        // The new branch was created from the default branch.
        assert_eq!(r.commit(&t).unwrap().parents, vec![root]);
    }

    #[test]
    fn compare_reports_ahead_behind_diverged_identical() {
        let (mut s, root) = world();
        let t1 = s.commit("acme/api", "topic", "t1").unwrap();
        let t2 = s.commit("acme/api", "topic", "t2").unwrap();
        let r = s.repo("acme/api").unwrap();
        let c = r.compare(&root, &t2).unwrap();
        assert_eq!(c.status, CompareStatus::Ahead);
        assert_eq!(
            c.ahead.iter().map(|c| c.sha.clone()).collect::<Vec<_>>(),
            vec![t1.clone(), t2.clone()]
        );
        assert_eq!(c.merge_base, root);
        assert_eq!(r.compare(&t2, &root).unwrap().status, CompareStatus::Behind);
        assert_eq!(
            r.compare(&t2, &t2).unwrap().status,
            CompareStatus::Identical
        );
        let m = s.commit("acme/api", "main", "m").unwrap();
        let r = s.repo("acme/api").unwrap();
        let c = r.compare(&m, &t2).unwrap();
        assert_eq!(c.status, CompareStatus::Diverged);
        assert_eq!((c.ahead.len(), c.behind.len()), (2, 1));
        assert_eq!(c.merge_base, root);
    }

    #[test]
    fn auto_merge_merges_the_default_branch_then_creates() {
        let (mut s, _) = world();
        let topic = s.commit("acme/api", "topic", "t").unwrap();
        let main = s.commit("acme/api", "main", "m").unwrap();
        let out = s
            .create_deployment("acme/api", &deploy_req("topic"), user())
            .unwrap();
        let CreateOutcome::AutoMerged {
            base,
            head,
            merge_sha,
        } = out
        else {
            panic!("expected a merge: {out:?}")
        };
        assert_eq!((base.as_str(), head.as_str()), ("main", "topic"));
        let r = s.repo("acme/api").unwrap();
        assert_eq!(r.branches["topic"], merge_sha);
        assert_eq!(r.commit(&merge_sha).unwrap().parents, vec![topic, main]);
        assert!(r.deployments.is_empty(), "202 creates no deployment");
        let again = s
            .create_deployment("acme/api", &deploy_req("topic"), user())
            .unwrap();
        assert!(matches!(again, CreateOutcome::Created(_)));
    }

    #[test]
    fn auto_merge_false_tags_shas_and_the_default_branch_do_not_merge() {
        let (mut s, _) = world();
        s.commit("acme/api", "topic", "t").unwrap();
        s.create_tag("acme/api", "v1", "topic").unwrap();
        s.commit("acme/api", "main", "m").unwrap();
        let req = DeploymentRequest {
            auto_merge: Some(false),
            ..deploy_req("topic")
        };
        assert!(matches!(
            s.create_deployment("acme/api", &req, user()),
            Ok(CreateOutcome::Created(_))
        ));
        assert!(matches!(
            s.create_deployment("acme/api", &deploy_req("v1"), user()),
            Ok(CreateOutcome::Created(_))
        ));
        assert!(matches!(
            s.create_deployment("acme/api", &deploy_req("main"), user()),
            Ok(CreateOutcome::Created(_))
        ));
    }

    #[test]
    fn merge_conflict_refuses() {
        let (mut s, _) = world();
        s.commit("acme/api", "topic", "t").unwrap();
        s.commit("acme/api", "main", "m").unwrap();
        s.set_merge_conflict("acme/api", "topic", true).unwrap();
        assert_eq!(
            s.create_deployment("acme/api", &deploy_req("topic"), user()),
            Err(CreateError::MergeConflict {
                base: "main".into(),
                head: "topic".into()
            })
        );
    }

    #[test]
    fn unknown_ref_is_checked_first() {
        let (mut s, _) = world();
        assert_eq!(
            s.create_deployment("acme/api", &deploy_req("nope"), user()),
            Err(CreateError::NoRef("nope".into()))
        );
    }

    #[test]
    fn required_contexts_absent_list_and_empty() {
        let (mut s, root) = world();
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("pending", "ci/build"),
            user(),
        )
        .unwrap();
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("failure", "ci/build"),
            user(),
        )
        .unwrap();
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("success", "security"),
            user(),
        )
        .unwrap();
        s.add_check_run("acme/api", &root, "lint", "completed", Some("neutral"))
            .unwrap();
        s.add_check_run("acme/api", &root, "e2e", "in_progress", None)
            .unwrap();

        let err = s
            .create_deployment("acme/api", &deploy_req("main"), user())
            .unwrap_err();
        let CreateError::ContextsFailed { git_ref, contexts } = err else {
            panic!("{err:?}")
        };
        assert_eq!(git_ref, "main");
        assert_eq!(
            contexts,
            vec![
                ("ci/build".to_string(), "failure".to_string()),
                ("e2e".into(), "pending".into()),
                ("lint".into(), "success".into()),
                ("security".into(), "success".into()),
            ]
        );

        let listed = DeploymentRequest {
            required_contexts: Some(vec!["security".into(), "lint".into()]),
            ..deploy_req("main")
        };
        assert!(matches!(
            s.create_deployment("acme/api", &listed, user()),
            Ok(CreateOutcome::Created(_))
        ));

        let missing = DeploymentRequest {
            required_contexts: Some(vec!["ci/deploy".into()]),
            ..deploy_req("main")
        };
        let err = s
            .create_deployment("acme/api", &missing, user())
            .unwrap_err();
        assert_eq!(
            err,
            CreateError::ContextsFailed {
                git_ref: "main".into(),
                contexts: vec![("ci/deploy".into(), "pending".into())]
            }
        );

        let none = DeploymentRequest {
            required_contexts: Some(vec![]),
            ..deploy_req("main")
        };
        assert!(matches!(
            s.create_deployment("acme/api", &none, user()),
            Ok(CreateOutcome::Created(_))
        ));
    }

    #[test]
    fn combined_state_rules() {
        let (mut s, root) = world();
        assert_eq!(s.repo("acme/api").unwrap().combined_state(&root), "pending");
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("success", "a"),
            user(),
        )
        .unwrap();
        assert_eq!(s.repo("acme/api").unwrap().combined_state(&root), "success");
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("pending", "b"),
            user(),
        )
        .unwrap();
        assert_eq!(s.repo("acme/api").unwrap().combined_state(&root), "pending");
        s.add_commit_status(
            "acme/api",
            &root,
            NewCommitStatus::new("error", "c"),
            user(),
        )
        .unwrap();
        assert_eq!(s.repo("acme/api").unwrap().combined_state(&root), "failure");
        assert!(s
            .add_commit_status(
                "acme/api",
                &root,
                NewCommitStatus::new("bogus", "c"),
                user()
            )
            .is_err());
    }

    #[test]
    fn deployment_defaults() {
        let (mut s, root) = world();
        let CreateOutcome::Created(id) = s
            .create_deployment("acme/api", &deploy_req("main"), user())
            .unwrap()
        else {
            panic!()
        };
        let d = s.repo("acme/api").unwrap().deployment(id).unwrap().clone();
        assert_eq!(
            (d.sha.as_str(), d.task.as_str(), d.environment.as_str()),
            (root.as_str(), "deploy", "production")
        );
        assert!(d.production_environment && !d.transient_environment);
        assert_eq!(d.payload, serde_json::json!({}));
        let req = DeploymentRequest {
            environment: Some("staging".into()),
            ..deploy_req("main")
        };
        let CreateOutcome::Created(id2) = s.create_deployment("acme/api", &req, user()).unwrap()
        else {
            panic!()
        };
        assert!(id2 > id);
        assert!(
            !s.repo("acme/api")
                .unwrap()
                .deployment(id2)
                .unwrap()
                .production_environment
        );
    }

    #[test]
    fn auto_inactive_marks_prior_successful_non_production_deployments() {
        let (mut s, _) = world();
        let mk = |s: &mut State, env: &str, transient: bool, production: Option<bool>| {
            let req = DeploymentRequest {
                environment: Some(env.into()),
                transient_environment: Some(transient),
                production_environment: production,
                ..deploy_req("main")
            };
            match s.create_deployment("acme/api", &req, user()).unwrap() {
                CreateOutcome::Created(id) => id,
                other => panic!("{other:?}"),
            }
        };
        let success = StatusRequest {
            state: "success".into(),
            ..Default::default()
        };
        let quiet = StatusRequest {
            auto_inactive: Some(false),
            ..success.clone()
        };
        let old = mk(&mut s, "staging", false, None);
        let transient = mk(&mut s, "staging", true, None);
        let prod = mk(&mut s, "staging", false, Some(true));
        let failed = mk(&mut s, "staging", false, None);
        let other_env = mk(&mut s, "qa", false, None);
        for id in [old, transient, prod, other_env] {
            s.create_deployment_status("acme/api", id, &quiet, user())
                .unwrap();
        }
        let failure = StatusRequest {
            state: "failure".into(),
            ..Default::default()
        };
        s.create_deployment_status("acme/api", failed, &failure, user())
            .unwrap();

        let new = mk(&mut s, "staging", false, None);
        let out = s
            .create_deployment_status("acme/api", new, &success, user())
            .unwrap();
        assert_eq!(
            out.inactivated.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            vec![old]
        );
        let r = s.repo("acme/api").unwrap();
        assert_eq!(r.deployment(old).unwrap().latest_state(), Some("inactive"));
        assert_eq!(
            r.deployment(transient).unwrap().latest_state(),
            Some("success")
        );
        assert_eq!(r.deployment(prod).unwrap().latest_state(), Some("success"));
        assert_eq!(
            r.deployment(failed).unwrap().latest_state(),
            Some("failure")
        );
        assert_eq!(
            r.deployment(other_env).unwrap().latest_state(),
            Some("success")
        );

        let newer = mk(&mut s, "staging", false, None);
        let out = s
            .create_deployment_status("acme/api", newer, &quiet, user())
            .unwrap();
        assert!(out.inactivated.is_empty());
    }

    #[test]
    fn status_validation_and_url_aliases() {
        let (mut s, _) = world();
        let CreateOutcome::Created(id) = s
            .create_deployment("acme/api", &deploy_req("main"), user())
            .unwrap()
        else {
            panic!()
        };
        let bad = StatusRequest {
            state: "done".into(),
            ..Default::default()
        };
        assert!(matches!(
            s.create_deployment_status("acme/api", id, &bad, user()),
            Err(StateError::Invalid { .. })
        ));
        let long = StatusRequest {
            state: "success".into(),
            description: Some("x".repeat(141)),
            ..Default::default()
        };
        assert!(s
            .create_deployment_status("acme/api", id, &long, user())
            .is_err());
        assert_eq!(
            s.create_deployment_status(
                "acme/api",
                999,
                &StatusRequest {
                    state: "queued".into(),
                    ..Default::default()
                },
                user()
            ),
            Err(StateError::NoDeployment(999))
        );
        let legacy = StatusRequest {
            state: "in_progress".into(),
            target_url: Some("https://ci/1".into()),
            environment: Some("staging".into()),
            ..Default::default()
        };
        s.create_deployment_status("acme/api", id, &legacy, user())
            .unwrap();
        let d = s.repo("acme/api").unwrap().deployment(id).unwrap();
        let st = d.statuses.last().unwrap();
        assert_eq!(
            (st.log_url.as_str(), st.target_url.as_str()),
            ("https://ci/1", "https://ci/1")
        );
        assert_eq!(
            (d.environment.as_str(), d.original_environment.as_str()),
            ("staging", "production")
        );
    }

    #[test]
    fn list_filters_newest_first() {
        let (mut s, _) = world();
        for env in ["staging", "production", "staging"] {
            let req = DeploymentRequest {
                environment: Some(env.into()),
                ..deploy_req("main")
            };
            s.create_deployment("acme/api", &req, user()).unwrap();
        }
        let r = s.repo("acme/api").unwrap();
        let staging: Vec<u64> = r
            .list_deployments(None, None, None, Some("staging"))
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(staging, vec![3, 1]);
        assert_eq!(
            r.list_deployments(None, Some("main"), Some("deploy"), None)
                .len(),
            3
        );
        assert!(r
            .list_deployments(Some("0000000"), None, None, None)
            .is_empty());
    }
}
