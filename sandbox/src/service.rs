//! The write operations, shared by the REST handlers, the Rust API and the simulated
//! deployer: validate GitHub's way, change the state, render the answer and fire the
//! webhooks (while the state is still locked, so deliveries leave in creation order).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::json::{self, DOC_CREATE_DEPLOYMENT, DOC_CREATE_DEPLOYMENT_STATUS, DOC_CREATE_STATUS};
use crate::state::{
    CreateError, CreateOutcome, DeploymentRequest, NewCommitStatus, StateError, StatusRequest, User,
};
use crate::{deployer, lock, Inner};

/// An HTTP answer before headers common to every response are added.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: vec![],
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::new(200, body)
    }

    pub fn error(status: u16, message: &str, doc: &str) -> Reply {
        Reply::new(status, json::error(message, doc, status))
    }

    pub fn not_found(doc: &str) -> Reply {
        Reply::error(404, "Not Found", doc)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// How a JSON value is spelled in GitHub's (Ruby) validation messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        other => other.to_string(),
    }
}

/// `Invalid request.\n\nFor 'properties/FIELD', VALUE is not a TYPE.`
fn invalid_type(field: &str, value: &Value, expected: &str, doc: &str) -> Reply {
    let message = format!(
        "Invalid request.\n\nFor 'properties/{field}', {} is not {expected}.",
        describe(value)
    );
    Reply::error(422, &message, doc)
}

/// `Invalid request.\n\n"FIELD" wasn't supplied.`
fn missing(field: &str, doc: &str) -> Reply {
    Reply::error(
        422,
        &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
        doc,
    )
}

/// 422 "Validation Failed" with one `errors` entry.
fn validation_failed(
    resource: &str,
    field: &str,
    code: &str,
    message: Option<String>,
    doc: &str,
) -> Reply {
    let mut error = json!({ "resource": resource, "code": code, "field": field });
    if let Some(m) = message {
        error["message"] = Value::String(m);
    }
    Reply::new(
        422,
        json!({ "message": "Validation Failed", "errors": [error], "documentation_url": doc, "status": "422" }),
    )
}

/// The request body as a JSON object: 400 "Problems parsing JSON" otherwise.
pub(crate) fn parse_object(body: &[u8], doc: &str) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reply::error(400, "Problems parsing JSON", doc)),
    }
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    doc: &'a str,
}

impl Fields<'_> {
    fn string(&self, name: &str) -> Result<Option<String>, Reply> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(invalid_type(name, v, "a string", self.doc)),
        }
    }

    /// A string that may also be `null` (treated as absent).
    fn nullable_string(&self, name: &str) -> Result<Option<String>, Reply> {
        match self.map.get(name) {
            Some(Value::Null) => Ok(None),
            _ => self.string(name),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Reply> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(invalid_type(name, v, "a boolean", self.doc)),
        }
    }

    fn string_array(&self, name: &str) -> Result<Option<Vec<String>>, Reply> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(invalid_type(
                        &format!("{name}/items"),
                        other,
                        "a string",
                        self.doc,
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(invalid_type(name, v, "an array", self.doc)),
        }
    }
}

/// Validates a `POST /deployments` body the way GitHub's schema does.
pub(crate) fn parse_deployment_request(
    body: &Map<String, Value>,
) -> Result<DeploymentRequest, Reply> {
    let f = Fields {
        map: body,
        doc: DOC_CREATE_DEPLOYMENT,
    };
    let git_ref = f
        .string("ref")?
        .ok_or_else(|| missing("ref", DOC_CREATE_DEPLOYMENT))?;
    let payload = match body.get("payload") {
        None => None,
        Some(v @ (Value::Object(_) | Value::String(_))) => Some(v.clone()),
        Some(v) => {
            return Err(invalid_type(
                "payload",
                v,
                "an object or a string",
                DOC_CREATE_DEPLOYMENT,
            ))
        }
    };
    let req = DeploymentRequest {
        git_ref,
        task: f.string("task")?,
        auto_merge: f.boolean("auto_merge")?,
        required_contexts: f.string_array("required_contexts")?,
        payload,
        environment: f.string("environment")?,
        description: f.nullable_string("description")?,
        transient_environment: f.boolean("transient_environment")?,
        production_environment: f.boolean("production_environment")?,
    };
    if req.git_ref.is_empty() {
        return Err(validation_failed(
            "Deployment",
            "ref",
            "missing_field",
            None,
            DOC_CREATE_DEPLOYMENT,
        ));
    }
    Ok(req)
}

/// Validates a `POST .../deployments/{id}/statuses` body.
pub(crate) fn parse_status_request(body: &Map<String, Value>) -> Result<StatusRequest, Reply> {
    let doc = DOC_CREATE_DEPLOYMENT_STATUS;
    let f = Fields { map: body, doc };
    Ok(StatusRequest {
        state: f.string("state")?.ok_or_else(|| missing("state", doc))?,
        target_url: f.string("target_url")?,
        log_url: f.string("log_url")?,
        description: f.string("description")?,
        environment: f.string("environment")?,
        environment_url: f.string("environment_url")?,
        auto_inactive: f.boolean("auto_inactive")?,
    })
}

/// `POST /repos/{o}/{r}/deployments`: 201, 202 (auto-merged), 409 or 422.
pub(crate) fn create_deployment(
    inner: &Arc<Inner>,
    repo: &str,
    req: &DeploymentRequest,
    user: &User,
) -> Reply {
    let base = &inner.base;
    let doc = DOC_CREATE_DEPLOYMENT;
    let mut st = lock(&inner.state);
    let outcome = st.create_deployment(repo, req, user.clone());
    let id = match outcome {
        Err(CreateError::NoRepo) => return Reply::not_found(doc),
        Err(CreateError::NoRef(r)) => {
            return Reply::error(422, &format!("No ref found for: {r}"), doc)
        }
        Err(CreateError::MergeConflict { base, head }) => {
            return Reply::error(409, &format!("Conflict merging {base} into {head}."), doc)
        }
        Err(CreateError::ContextsFailed { git_ref, contexts }) => {
            let contexts: Vec<Value> = contexts
                .iter()
                .map(|(c, s)| json!({ "context": c, "state": s }))
                .collect();
            return Reply::new(
                409,
                json!({
                    "message": format!("Conflict: Commit status checks failed for {git_ref}."),
                    "errors": [{
                        "contexts": contexts,
                        "resource": "Deployment",
                        "field": "required_contexts",
                        "code": "invalid",
                    }],
                    "documentation_url": doc,
                    "status": "409",
                }),
            );
        }
        Ok(CreateOutcome::AutoMerged { base, head, .. }) => {
            return Reply::new(
                202,
                json!({ "message": format!("Auto-merged {base} into {head} on deployment.") }),
            )
        }
        Ok(CreateOutcome::Created(id)) => id,
    };
    let (Some(r), Some(d)) = (st.repo(repo), st.repo(repo).and_then(|r| r.deployment(id))) else {
        return Reply::not_found(doc);
    };
    let body = json::deployment(base, r, d);
    let event = json::deployment_event(base, r, d, user);
    inner.hub.emit(
        "deployment",
        &serde_json::to_vec(&event).unwrap_or_default(),
        None,
    );
    let run = deployer::Job {
        repo: r.full_name(),
        deployment_id: id,
        git_ref: d.git_ref.clone(),
        environment: d.environment.clone(),
    };
    drop(st);
    deployer::start(inner, run);
    let location = body["url"].as_str().unwrap_or_default().to_string();
    Reply::new(201, body).header("location", &location)
}

/// `POST .../deployments/{id}/statuses`: 201, 404 or 422. Fires `deployment_status`
/// (never for `inactive`, as on GitHub).
pub(crate) fn create_deployment_status(
    inner: &Arc<Inner>,
    repo: &str,
    id: u64,
    req: &StatusRequest,
    user: &User,
) -> Reply {
    let base = &inner.base;
    let doc = DOC_CREATE_DEPLOYMENT_STATUS;
    let mut st = lock(&inner.state);
    let outcome = match st.create_deployment_status(repo, id, req, user.clone()) {
        Ok(o) => o,
        Err(StateError::Invalid {
            field: "description",
            ..
        }) => {
            return validation_failed(
                "DeploymentStatus",
                "description",
                "custom",
                Some("description is too long (maximum is 140 characters)".into()),
                doc,
            )
        }
        Err(StateError::Invalid { field, value }) => {
            let allowed = crate::state::DEPLOYMENT_STATES.join(", ");
            let message =
                format!("Invalid request.\n\nFor 'properties/{field}', \"{value}\" is not one of [{allowed}].");
            return Reply::error(422, &message, doc);
        }
        Err(_) => return Reply::not_found(doc),
    };
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(doc);
    };
    let Some(d) = r.deployment(id) else {
        return Reply::not_found(doc);
    };
    let Some(s) = d.statuses.iter().find(|s| s.id == outcome.status_id) else {
        return Reply::not_found(doc);
    };
    let body = json::deployment_status(base, r, d, s);
    if s.state != "inactive" {
        let event = json::deployment_status_event(base, r, d, s);
        inner.hub.emit(
            "deployment_status",
            &serde_json::to_vec(&event).unwrap_or_default(),
            None,
        );
    }
    let location = body["url"].as_str().unwrap_or_default().to_string();
    Reply::new(201, body).header("location", &location)
}

/// `POST /repos/{o}/{r}/statuses/{sha}`: 201, 404 or 422.
pub(crate) fn create_commit_status(
    inner: &Arc<Inner>,
    repo: &str,
    sha: &str,
    body: &Map<String, Value>,
    user: &User,
) -> Reply {
    let doc = DOC_CREATE_STATUS;
    let f = Fields { map: body, doc };
    let parsed = (|| {
        Ok::<_, Reply>((
            f.string("state")?.ok_or_else(|| missing("state", doc))?,
            f.nullable_string("target_url")?,
            f.nullable_string("description")?,
            f.string("context")?.unwrap_or_else(|| "default".into()),
        ))
    })();
    let (state, target_url, description, context) = match parsed {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let mut st = lock(&inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(doc);
    };
    let Some(resolved) = r.resolve(sha) else {
        return Reply::error(422, &format!("No commit found for SHA: {sha}"), doc);
    };
    let status = NewCommitStatus {
        state: state.clone(),
        context,
        description,
        target_url,
    };
    let id = match st.add_commit_status(repo, &resolved.sha, status, user.clone()) {
        Ok(id) => id,
        Err(StateError::Invalid { .. }) => {
            let message = format!(
                "Invalid request.\n\nFor 'properties/state', \"{state}\" is not one of [{}].",
                crate::state::COMMIT_STATES.join(", ")
            );
            return Reply::error(422, &message, doc);
        }
        Err(_) => return Reply::not_found(doc),
    };
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(doc);
    };
    match r.statuses.iter().find(|s| s.id == id) {
        Some(s) => {
            emit_commit_status(inner, &st, repo, id);
            Reply::new(201, json::commit_status(&inner.base, r, s))
        }
        None => Reply::not_found(doc),
    }
}

/// Fires `status` for commit status `id` of `repo`, as GitHub does for every new one.
pub(crate) fn emit_commit_status(inner: &Inner, st: &crate::state::State, repo: &str, id: u64) {
    let Some(r) = st.repo(repo) else { return };
    let Some(s) = r.statuses.iter().find(|s| s.id == id) else {
        return;
    };
    let event = json::status_event(&inner.base, r, s);
    inner.hub.emit(
        "status",
        &serde_json::to_vec(&event).unwrap_or_default(),
        None,
    );
}

/// Fires `check_run` for check run `id` of `repo` (`created`, or `completed`), and
/// `check_suite` `completed` when the run completed (each sandbox run is its own suite).
pub(crate) fn emit_check_run(inner: &Inner, st: &crate::state::State, repo: &str, id: u64) {
    let Some(r) = st.repo(repo) else { return };
    let Some(c) = r.check_runs.iter().find(|c| c.id == id) else {
        return;
    };
    let sender = crate::api_user();
    let run = json::check_run_event(&inner.base, r, c, &sender);
    inner.hub.emit(
        "check_run",
        &serde_json::to_vec(&run).unwrap_or_default(),
        None,
    );
    if c.status == "completed" {
        let suite = json::check_suite_event(&inner.base, r, c, &sender);
        inner.hub.emit(
            "check_suite",
            &serde_json::to_vec(&suite).unwrap_or_default(),
            None,
        );
    }
}
