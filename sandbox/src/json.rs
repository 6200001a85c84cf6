//! GitHub-shaped JSON renderers. Every object has every key of the corresponding
//! fixture under `fixtures/github/` (the tests check this), with URLs pointing at
//! the sandbox: API objects under `{base}/repos/...`, web pages under `{base}/{o}/{r}`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::state::{
    CheckRun, Commit, CommitStatus, Comparison, Deployment, DeploymentStatus, Repo, User,
};

pub const DOCS: &str = "https://docs.github.com/rest";
pub const DOC_GRAPHQL: &str = "https://docs.github.com/graphql";
pub const DOC_CREATE_DEPLOYMENT: &str =
    "https://docs.github.com/rest/deployments/deployments#create-a-deployment";
pub const DOC_LIST_DEPLOYMENTS: &str =
    "https://docs.github.com/rest/deployments/deployments#list-deployments";
pub const DOC_GET_DEPLOYMENT: &str =
    "https://docs.github.com/rest/deployments/deployments#get-a-deployment";
pub const DOC_CREATE_DEPLOYMENT_STATUS: &str =
    "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status";
pub const DOC_LIST_DEPLOYMENT_STATUSES: &str =
    "https://docs.github.com/rest/deployments/statuses#list-deployment-statuses";
pub const DOC_GET_DEPLOYMENT_STATUS: &str =
    "https://docs.github.com/rest/deployments/statuses#get-a-deployment-status";
pub const DOC_GET_REPO: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";
pub const DOC_BRANCHES: &str = "https://docs.github.com/rest/branches/branches#list-branches";
pub const DOC_BRANCH: &str = "https://docs.github.com/rest/branches/branches#get-a-branch";
pub const DOC_COMMIT: &str = "https://docs.github.com/rest/commits/commits#get-a-commit";
pub const DOC_COMBINED_STATUS: &str =
    "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference";
pub const DOC_LIST_STATUSES: &str =
    "https://docs.github.com/rest/commits/statuses#list-commit-statuses-for-a-reference";
pub const DOC_CREATE_STATUS: &str =
    "https://docs.github.com/rest/commits/statuses#create-a-commit-status";
pub const DOC_CHECK_RUNS: &str =
    "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference";
pub const DOC_COMPARE: &str = "https://docs.github.com/rest/commits/commits#compare-two-commits";
pub const DOC_CREATE_INSTALLATION_TOKEN: &str =
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
pub const DOC_GET_AUTHENTICATED_USER: &str =
    "https://docs.github.com/rest/users/users#get-the-authenticated-user";
pub const DOC_LIST_HOOKS: &str =
    "https://docs.github.com/rest/repos/webhooks#list-repository-webhooks";
pub const DOC_GET_INSTALLATION: &str =
    "https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app";
pub const DOC_RATE_LIMIT: &str =
    "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting";
pub const DOC_SECONDARY_RATE_LIMIT: &str =
    "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits";

/// `2012-07-20T01:19:13Z`
pub fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// GitHub's legacy global node ids: base64 of `"0{len(Type)}:{Type}{id}"`.
pub fn node_id(kind: &str, id: u64) -> String {
    base64(format!("0{}:{}{}", kind.len(), kind, id).as_bytes())
}

pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A basic error body: `{"message", "documentation_url", "status"}`.
pub fn error(message: &str, documentation_url: &str, status: u16) -> Value {
    json!({ "message": message, "documentation_url": documentation_url, "status": status.to_string() })
}

/// A user, bot or organization (`creator`, `sender`, `owner`).
pub fn user(base: &str, u: &User) -> Value {
    let login = &u.login;
    let api = format!("{base}/users/{login}");
    json!({
        "login": login,
        "id": u.id,
        "node_id": node_id(if u.kind == "Organization" { "Organization" } else { "User" }, u.id),
        "avatar_url": format!("{base}/avatars/u/{}", u.id),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{base}/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": u.kind,
        "site_admin": false,
        "user_view_type": "public",
    })
}

pub fn repo_api_url(base: &str, r: &Repo) -> String {
    format!("{base}/repos/{}", r.full_name())
}

pub fn repo_html_url(base: &str, r: &Repo) -> String {
    format!("{base}/{}", r.full_name())
}

/// The repository object of `GET /repos/{o}/{r}` and of webhook payloads.
/// `permissions` is added by the REST handler (it depends on the token).
pub fn repository(base: &str, r: &Repo) -> Value {
    let api = repo_api_url(base, r);
    let html = repo_html_url(base, r);
    let host = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    json!({
        "id": r.id,
        "node_id": node_id("Repository", r.id),
        "name": r.name,
        "full_name": r.full_name(),
        "private": true,
        "owner": user(base, &r.owner),
        "html_url": html,
        "description": format!("{} (sandbox)", r.name),
        "fork": false,
        "url": api,
        "forks_url": format!("{api}/forks"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "teams_url": format!("{api}/teams"),
        "hooks_url": format!("{api}/hooks"),
        "issue_events_url": format!("{api}/issues/events{{/number}}"),
        "events_url": format!("{api}/events"),
        "assignees_url": format!("{api}/assignees{{/user}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "tags_url": format!("{api}/tags"),
        "blobs_url": format!("{api}/git/blobs{{/sha}}"),
        "git_tags_url": format!("{api}/git/tags{{/sha}}"),
        "git_refs_url": format!("{api}/git/refs{{/sha}}"),
        "trees_url": format!("{api}/git/trees{{/sha}}"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "languages_url": format!("{api}/languages"),
        "stargazers_url": format!("{api}/stargazers"),
        "contributors_url": format!("{api}/contributors"),
        "subscribers_url": format!("{api}/subscribers"),
        "subscription_url": format!("{api}/subscription"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "git_commits_url": format!("{api}/git/commits{{/sha}}"),
        "comments_url": format!("{api}/comments{{/number}}"),
        "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
        "contents_url": format!("{api}/contents/{{+path}}"),
        "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
        "merges_url": format!("{api}/merges"),
        "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
        "downloads_url": format!("{api}/downloads"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "milestones_url": format!("{api}/milestones{{/number}}"),
        "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "releases_url": format!("{api}/releases{{/id}}"),
        "deployments_url": format!("{api}/deployments"),
        "created_at": ts(&r.created_at),
        "updated_at": ts(&r.pushed_at),
        "pushed_at": ts(&r.pushed_at),
        "git_url": format!("git://{host}/{}.git", r.full_name()),
        "ssh_url": format!("git@{host}:{}.git", r.full_name()),
        "clone_url": format!("{html}.git"),
        "svn_url": html,
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": null,
        "has_issues": true,
        "has_projects": false,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": 0,
        "license": null,
        "allow_forking": false,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": r.default_branch,
        "is_template": false,
        "topics": [],
        "visibility": "private",
        "web_commit_signoff_required": false,
        "custom_properties": {},
    })
}

/// The `secret` GitHub shows for a hook that has one.
const MASKED: &str = "********";

/// A webhook's `config` (`GET /repos/{o}/{r}/hooks`, `GET /app/hook/config`): the
/// secret masked, `insecure_ssl` as the string `"0"`/`"1"`.
pub fn hook_config(url: &str, content_type: &str, secret: bool, insecure_ssl: bool) -> Value {
    let mut config = json!({
        "content_type": content_type,
        "insecure_ssl": if insecure_ssl { "1" } else { "0" },
        "url": url,
    });
    if secret {
        config["secret"] = json!(MASKED);
    }
    config
}

/// One repository webhook, as `GET /repos/{o}/{r}/hooks` lists it.
pub fn repo_hook(
    base: &str,
    r: &Repo,
    id: u64,
    active: bool,
    events: &[String],
    config: Value,
    created_at: &DateTime<Utc>,
) -> Value {
    let api = format!("{}/hooks/{id}", repo_api_url(base, r));
    json!({
        "type": "Repository",
        "id": id,
        "name": "web",
        "active": active,
        "events": events,
        "config": config,
        "updated_at": ts(created_at),
        "created_at": ts(created_at),
        "url": api,
        "test_url": format!("{api}/test"),
        "ping_url": format!("{api}/pings"),
        "deliveries_url": format!("{api}/deliveries"),
        "last_response": { "code": null, "status": "unused", "message": null },
    })
}

/// `GET /app`: the App the JWT authenticates.
pub fn app(
    base: &str,
    app_id: u64,
    slug: &str,
    owner: &User,
    permissions: Value,
    installations_count: usize,
    created_at: &DateTime<Utc>,
) -> Value {
    json!({
        "id": app_id,
        "slug": slug,
        "client_id": format!("Iv1.{app_id:016x}"),
        "node_id": node_id("Integration", app_id),
        "owner": user(base, owner),
        "name": format!("Sandbox App {app_id}"),
        "description": "",
        "external_url": base,
        "html_url": format!("{base}/apps/{slug}"),
        "created_at": ts(created_at),
        "updated_at": ts(created_at),
        "permissions": permissions,
        "events": ["deployment", "deployment_status"],
        "installations_count": installations_count,
    })
}

/// `GET /app/installations/{id}`: an installation (on every repository of `account`).
pub fn installation(
    base: &str,
    installation_id: u64,
    app_id: u64,
    slug: &str,
    account: &User,
    permissions: Value,
    created_at: &DateTime<Utc>,
) -> Value {
    json!({
        "id": installation_id,
        "account": user(base, account),
        "access_tokens_url": format!("{base}/app/installations/{installation_id}/access_tokens"),
        "repositories_url": format!("{base}/installation/repositories"),
        "html_url": format!("{base}/organizations/{}/settings/installations/{installation_id}", account.login),
        "app_id": app_id,
        "target_id": account.id,
        "target_type": account.kind,
        "permissions": permissions,
        "events": ["deployment", "deployment_status"],
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "repository_selection": "all",
        "created_at": ts(created_at),
        "updated_at": ts(created_at),
        "app_slug": slug,
        "suspended_at": null,
        "suspended_by": null,
    })
}

/// The 201 of `POST /app/installations/{id}/access_tokens`: the token, when it expires,
/// what it may do, and the repositories it covers (an installation on all of them).
pub fn installation_token(
    base: &str,
    token: &str,
    expires_at: &DateTime<Utc>,
    permissions: Value,
    write: bool,
    repos: &[&Repo],
) -> Value {
    let repositories: Vec<Value> = repos
        .iter()
        .map(|r| {
            let mut v = repository(base, r);
            let extra = json!({
                "permissions": { "admin": false, "maintain": write, "push": write, "triage": write, "pull": true },
                "allow_rebase_merge": true,
                "allow_squash_merge": true,
                "allow_merge_commit": true,
                "allow_auto_merge": false,
                "delete_branch_on_merge": false,
                "template_repository": null,
                "temp_clone_token": "",
                "subscribers_count": 0,
                "network_count": 0,
            });
            if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                v.extend(extra);
            }
            v
        })
        .collect();
    json!({
        "token": token,
        "expires_at": ts(expires_at),
        "permissions": permissions,
        "repository_selection": "all",
        "repositories": repositories,
    })
}

pub fn deployment(base: &str, r: &Repo, d: &Deployment) -> Value {
    let url = format!("{}/deployments/{}", repo_api_url(base, r), d.id);
    json!({
        "url": url,
        "id": d.id,
        "node_id": node_id("Deployment", d.id),
        "sha": d.sha,
        "ref": d.git_ref,
        "task": d.task,
        "payload": d.payload,
        "original_environment": d.original_environment,
        "environment": d.environment,
        "description": d.description,
        "creator": user(base, &d.creator),
        "created_at": ts(&d.created_at),
        "updated_at": ts(&d.updated_at),
        "statuses_url": format!("{url}/statuses"),
        "repository_url": repo_api_url(base, r),
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment,
        "performed_via_github_app": null,
    })
}

pub fn deployment_status(base: &str, r: &Repo, d: &Deployment, s: &DeploymentStatus) -> Value {
    let deployment_url = format!("{}/deployments/{}", repo_api_url(base, r), d.id);
    json!({
        "url": format!("{deployment_url}/statuses/{}", s.id),
        "id": s.id,
        "node_id": node_id("DeploymentStatus", s.id),
        "state": s.state,
        "creator": user(base, &s.creator),
        "description": s.description,
        "environment": s.environment,
        "target_url": s.target_url,
        "created_at": ts(&s.created_at),
        "updated_at": ts(&s.created_at),
        "deployment_url": deployment_url,
        "repository_url": repo_api_url(base, r),
        "environment_url": s.environment_url,
        "log_url": s.log_url,
        "performed_via_github_app": null,
    })
}

pub fn commit_status(base: &str, r: &Repo, s: &CommitStatus) -> Value {
    json!({
        "url": format!("{}/statuses/{}", repo_api_url(base, r), s.sha),
        "avatar_url": format!("{base}/avatars/u/{}", s.creator.id),
        "id": s.id,
        "node_id": node_id("Status", s.id),
        "state": s.state,
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": ts(&s.created_at),
        "updated_at": ts(&s.created_at),
        "creator": user(base, &s.creator),
    })
}

/// `GET /repos/{o}/{r}/commits/{ref}/status`.
pub fn combined_status(base: &str, r: &Repo, sha: &str) -> Value {
    let statuses: Vec<Value> = r
        .latest_statuses(sha)
        .into_iter()
        .map(|s| commit_status(base, r, s))
        .collect();
    let commit_url = format!("{}/commits/{sha}", repo_api_url(base, r));
    json!({
        "state": r.combined_state(sha),
        "total_count": statuses.len(),
        "statuses": statuses,
        "sha": sha,
        "repository": repository(base, r),
        "commit_url": commit_url,
        "url": format!("{commit_url}/status"),
    })
}

fn sandbox_app(base: &str) -> Value {
    let owner = User {
        login: "sandbox".into(),
        id: 9,
        kind: "Organization",
    };
    json!({
        "id": 1,
        "slug": "sandbox-ci",
        "node_id": node_id("Integration", 1),
        "client_id": "Iv1.sandbox",
        "owner": user(base, &owner),
        "name": "Sandbox CI",
        "description": "Check runs seeded into the sandbox",
        "external_url": base,
        "html_url": format!("{base}/apps/sandbox-ci"),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "permissions": { "checks": "write", "metadata": "read" },
        "events": ["check_run"],
    })
}

pub fn check_run(base: &str, r: &Repo, c: &CheckRun) -> Value {
    let api = format!("{}/check-runs/{}", repo_api_url(base, r), c.id);
    json!({
        "id": c.id,
        "head_sha": c.sha,
        "node_id": node_id("CheckRun", c.id),
        "external_id": "",
        "url": api,
        "html_url": format!("{}/runs/{}", repo_html_url(base, r), c.id),
        "details_url": format!("{}/runs/{}", repo_html_url(base, r), c.id),
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": ts(&c.started_at),
        "completed_at": c.completed_at.as_ref().map(ts),
        "output": {
            "title": c.conclusion.as_ref().map(|x| format!("{}: {x}", c.name)),
            "summary": c.conclusion.as_ref().map(|x| format!("{} finished: {x}", c.name)),
            "text": null,
            "annotations_count": 0,
            "annotations_url": format!("{api}/annotations"),
        },
        "name": c.name,
        "check_suite": { "id": c.id },
        "app": sandbox_app(base),
        "pull_requests": [],
    })
}

pub fn check_runs(base: &str, r: &Repo, runs: &[&CheckRun]) -> Value {
    json!({
        "total_count": runs.len(),
        "check_runs": runs.iter().map(|c| check_run(base, r, c)).collect::<Vec<_>>(),
    })
}

fn git_person(c: &Commit) -> Value {
    json!({ "name": c.author_name, "email": c.author_email, "date": ts(&c.date) })
}

/// The commit object of `GET /commits/{ref}` and of compare's `commits`.
pub fn commit(base: &str, r: &Repo, c: &Commit) -> Value {
    let api = repo_api_url(base, r);
    let html = repo_html_url(base, r);
    json!({
        "sha": c.sha,
        "node_id": base64(format!("C_{}", c.sha).as_bytes()),
        "commit": {
            "author": git_person(c),
            "committer": git_person(c),
            "message": c.message,
            "tree": { "sha": c.sha, "url": format!("{api}/git/trees/{}", c.sha) },
            "url": format!("{api}/git/commits/{}", c.sha),
            "comment_count": 0,
            "verification": { "verified": false, "reason": "unsigned", "signature": null, "payload": null },
        },
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("{html}/commit/{}", c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "author": null,
        "committer": null,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{api}/commits/{p}"),
            "html_url": format!("{html}/commit/{p}"),
        })).collect::<Vec<_>>(),
    })
}

/// An entry of `GET /branches`.
pub fn branch_short(base: &str, r: &Repo, name: &str, sha: &str) -> Value {
    json!({
        "name": name,
        "commit": { "sha": sha, "url": format!("{}/commits/{sha}", repo_api_url(base, r)) },
        "protected": false,
    })
}

/// `GET /branches/{branch}`.
pub fn branch_full(base: &str, r: &Repo, name: &str, c: &Commit) -> Value {
    let api = repo_api_url(base, r);
    json!({
        "name": name,
        "commit": commit(base, r, c),
        "_links": {
            "self": format!("{api}/branches/{name}"),
            "html": format!("{}/tree/{name}", repo_html_url(base, r)),
        },
        "protected": false,
        "protection": {
            "enabled": false,
            "required_status_checks": { "enforcement_level": "off", "contexts": [], "checks": [] },
        },
        "protection_url": format!("{api}/branches/{name}/protection"),
    })
}

/// `GET /compare/{base}...{head}`; `spec` is the `{base}...{head}` part as requested.
pub fn comparison(
    base: &str,
    r: &Repo,
    spec: &str,
    base_commit: &Commit,
    head_commit: &Commit,
    c: &Comparison,
) -> Value {
    let api = repo_api_url(base, r);
    let html = repo_html_url(base, r);
    let owner = &r.owner.login;
    let merge_base = r
        .commit(&c.merge_base)
        .map(|m| commit(base, r, m))
        .unwrap_or(Value::Null);
    json!({
        "url": format!("{api}/compare/{spec}"),
        "html_url": format!("{html}/compare/{spec}"),
        "permalink_url": format!(
            "{html}/compare/{owner}:{}...{owner}:{}",
            &base_commit.sha[..7],
            &head_commit.sha[..7]
        ),
        "diff_url": format!("{html}/compare/{spec}.diff"),
        "patch_url": format!("{html}/compare/{spec}.patch"),
        "base_commit": commit(base, r, base_commit),
        "merge_base_commit": merge_base,
        "status": c.status.as_str(),
        "ahead_by": c.ahead.len(),
        "behind_by": c.behind.len(),
        "total_commits": c.ahead.len(),
        "commits": c.ahead.iter().map(|x| commit(base, r, x)).collect::<Vec<_>>(),
        "files": [],
    })
}

/// `GET /rate_limit` for a token whose core budget is (limit, remaining, reset).
pub fn rate_limit(limit: u64, remaining: u64, reset: i64) -> Value {
    let core = json!({ "limit": limit, "remaining": remaining, "reset": reset, "used": limit - remaining });
    let fresh =
        |limit: u64| json!({ "limit": limit, "remaining": limit, "reset": reset, "used": 0 });
    json!({
        "resources": {
            "core": core,
            "search": fresh(30),
            "graphql": fresh(5000),
            "integration_manifest": fresh(5000),
            "code_scanning_upload": fresh(500),
        },
        "rate": core,
    })
}

/// The `deployment` webhook payload (action "created").
pub fn deployment_event(base: &str, r: &Repo, d: &Deployment, sender: &User) -> Value {
    json!({
        "action": "created",
        "deployment": deployment(base, r, d),
        "workflow": null,
        "workflow_run": null,
        "repository": repository(base, r),
        "sender": user(base, sender),
    })
}

/// The `deployment_status` webhook payload (action "created").
pub fn deployment_status_event(
    base: &str,
    r: &Repo,
    d: &Deployment,
    s: &DeploymentStatus,
) -> Value {
    json!({
        "action": "created",
        "deployment_status": deployment_status(base, r, d, s),
        "deployment": deployment(base, r, d),
        "check_run": null,
        "workflow": null,
        "workflow_run": null,
        "repository": repository(base, r),
        "sender": user(base, &s.creator),
    })
}

/// The `status` webhook payload: a commit status was created (GitHub sends no
/// `action`; `branches` are those whose head is the commit).
pub fn status_event(base: &str, r: &Repo, s: &CommitStatus) -> Value {
    let branches: Vec<Value> = r
        .branches
        .iter()
        .filter(|(_, sha)| **sha == s.sha)
        .map(|(name, sha)| branch_short(base, r, name, sha))
        .collect();
    json!({
        "id": s.id,
        "sha": s.sha,
        "name": r.full_name(),
        "target_url": s.target_url,
        "avatar_url": format!("{base}/avatars/u/{}", s.creator.id),
        "context": s.context,
        "description": s.description,
        "state": s.state,
        "commit": r.commit(&s.sha).map(|c| commit(base, r, c)),
        "branches": branches,
        "created_at": ts(&s.created_at),
        "updated_at": ts(&s.created_at),
        "repository": repository(base, r),
        "sender": user(base, &s.creator),
    })
}

/// The check suite of a sandbox check run (each run is a suite of its own).
fn check_suite(base: &str, r: &Repo, c: &CheckRun) -> Value {
    let api = repo_api_url(base, r);
    let head_branch = r
        .branches
        .iter()
        .find(|(_, sha)| **sha == c.sha)
        .map(|(name, _)| name.clone());
    let parent = r
        .commit(&c.sha)
        .and_then(|commit| commit.parents.first().cloned());
    let updated = c.completed_at.as_ref().unwrap_or(&c.started_at);
    json!({
        "id": c.id,
        "node_id": node_id("CheckSuite", c.id),
        "head_branch": head_branch,
        "head_sha": c.sha,
        "status": c.status,
        "conclusion": c.conclusion,
        "url": format!("{api}/check-suites/{}", c.id),
        "before": parent,
        "after": c.sha,
        "pull_requests": [],
        "app": sandbox_app(base),
        "created_at": ts(&c.started_at),
        "updated_at": ts(updated),
        "latest_check_runs_count": 1,
        "check_runs_url": format!("{api}/check-suites/{}/check-runs", c.id),
        "head_commit": r.commit(&c.sha).map(|commit| json!({
            "id": commit.sha,
            "tree_id": commit.sha,
            "message": commit.message,
            "timestamp": ts(&commit.date),
            "author": { "name": commit.author_name, "email": commit.author_email },
            "committer": { "name": commit.author_name, "email": commit.author_email },
        })),
    })
}

/// The `check_run` webhook payload (`created`, or `completed` once it has a conclusion).
pub fn check_run_event(base: &str, r: &Repo, c: &CheckRun, sender: &User) -> Value {
    let mut run = check_run(base, r, c);
    run["check_suite"] = check_suite(base, r, c);
    json!({
        "action": if c.status == "completed" { "completed" } else { "created" },
        "check_run": run,
        "repository": repository(base, r),
        "sender": user(base, sender),
    })
}

/// The `check_suite` webhook payload (`completed`: sent when its run completes).
pub fn check_suite_event(base: &str, r: &Repo, c: &CheckRun, sender: &User) -> Value {
    json!({
        "action": "completed",
        "check_suite": check_suite(base, r, c),
        "repository": repository(base, r),
        "sender": user(base, sender),
    })
}

/// The `ping` webhook payload sent when a hook is added.
pub fn ping_event(
    base: &str,
    hook_id: u64,
    url: &str,
    created_at: &DateTime<Utc>,
    sender: &User,
) -> Value {
    let api = format!("{base}/hooks/{hook_id}");
    json!({
        "zen": "Design for failure.",
        "hook_id": hook_id,
        "hook": {
            "type": "Repository",
            "id": hook_id,
            "name": "web",
            "active": true,
            "events": ["deployment", "deployment_status"],
            "config": { "content_type": "json", "url": url, "insecure_ssl": "0" },
            "updated_at": ts(created_at),
            "created_at": ts(created_at),
            "url": api,
            "test_url": format!("{api}/test"),
            "ping_url": format!("{api}/pings"),
            "deliveries_url": format!("{api}/deliveries"),
            "last_response": { "code": null, "status": "unused", "message": null },
        },
        "sender": user(base, sender),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_match_githubs_examples() {
        assert_eq!(node_id("Deployment", 1), "MDEwOkRlcGxveW1lbnQx");
        assert_eq!(
            node_id("DeploymentStatus", 1),
            "MDE2OkRlcGxveW1lbnRTdGF0dXMx"
        );
        assert_eq!(node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(node_id("Status", 1), "MDY6U3RhdHVzMQ==");
        assert_eq!(node_id("CheckRun", 4), "MDg6Q2hlY2tSdW40");
        assert_eq!(
            node_id("Repository", 1296269),
            "MDEwOlJlcG9zaXRvcnkxMjk2MjY5"
        );
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
