//! Every REST fixture the bot's types cover parses, and means what GitHub meant.

use super::*;

fn dir(sub: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/github/rest")
        .join(sub)
}

/// All `.json` files of a fixture folder, so a fixture added later is tested too.
fn files(sub: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir(sub))
        .unwrap_or_else(|e| panic!("{sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {sub}");
    out
}

#[test]
fn every_deployment_response_parses() {
    let mut seen = 0;
    for (name, text) in files("deployments") {
        if name.contains(".request.") {
            // Requests are what a client sends: checked against NewDeployment below.
            continue;
        }
        if name.starts_with("create-deployment.201") || name.starts_with("get-deployment.200") {
            let d: Deployment =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(d.id.0 > 0 && d.sha.as_str().len() == 40, "{name}");
            seen += 1;
        } else if name.starts_with("list-deployments.200") {
            let list: Vec<Deployment> =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!list.is_empty(), "{name}");
            seen += 1;
        } else if name.starts_with("create-deployment.202") {
            let body: ErrorBody = serde_json::from_str(&text).unwrap();
            assert!(body.message.starts_with("Auto-merged"), "{name}");
            seen += 1;
        } else if name.starts_with("create-deployment.409-merge-conflict") {
            let body: ErrorBody = serde_json::from_str(&text).unwrap();
            assert_eq!(body.failed_contexts(), None, "{name}");
            seen += 1;
        } else if name.starts_with("create-deployment.409-status-checks") {
            let body: ErrorBody = serde_json::from_str(&text).unwrap();
            let contexts = body.failed_contexts().unwrap_or_else(|| panic!("{name}"));
            assert!(contexts.iter().any(|c| c.state == "failure"), "{name}");
            seen += 1;
        } else {
            panic!("fixture {name} is not covered by a test: add a case");
        }
    }
    assert!(seen >= 11, "{seen}");
}

#[test]
fn partly_failed_checks_keep_each_context_state() {
    let text = std::fs::read_to_string(dir(
        "deployments/create-deployment.409-status-checks-partly-failed.hubot-deploy.json",
    ))
    .unwrap();
    let body: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body.failed_contexts().unwrap(),
        vec![
            ContextState {
                context: "continuous-integration/travis-ci/push".into(),
                state: "failure".into()
            },
            ContextState {
                context: "code-climate".into(),
                state: "success".into()
            },
        ]
    );
}

#[test]
fn the_fuller_409_shape_seen_in_the_wild_parses_too() {
    // SOURCES.md: real 409 bodies carry field/resource/code beside contexts.
    let text = r#"{"message":"Conflict: Commit status checks failed for main.","errors":[{"contexts":[{"context":"ci/x","state":"pending"}],"resource":"Deployment","field":"required_contexts","code":"invalid"}],"documentation_url":"https://docs.github.com/rest/deployments/deployments#create-a-deployment","status":"409"}"#;
    let body: ErrorBody = serde_json::from_str(text).unwrap();
    assert_eq!(body.failed_contexts().unwrap()[0].state, "pending");
}

#[test]
fn deployment_payloads_as_object_or_string_both_parse() {
    let text = std::fs::read_to_string(dir(
        "deployments/create-deployment.201.payload-string.recorded.github3py.json",
    ))
    .unwrap();
    let d: Deployment = serde_json::from_str(&text).unwrap();
    assert_eq!(d.payload, serde_json::json!(""));
    assert_eq!(d.deploybot(), None);

    let mut ours: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir("deployments/create-deployment.201.openapi.json")).unwrap(),
    )
    .unwrap();
    let routing = serde_json::json!({"deploybot": {
        "request_id": "r1", "chat": {"adapter": "discord", "channel": "42", "thread": null, "message": "7"},
        "user": {"id": "9", "name": "alice"}, "hosts": [], "reason": null}});
    ours["payload"] = routing.clone();
    let d: Deployment = serde_json::from_value(ours.clone()).unwrap();
    assert_eq!(d.deploybot().unwrap().chat.message.as_deref(), Some("7"));
    // A deployer that re-encodes the payload as a string still routes.
    ours["payload"] = serde_json::Value::String(routing.to_string());
    let d: Deployment = serde_json::from_value(ours).unwrap();
    assert_eq!(d.deploybot().unwrap().request_id, "r1");
}

#[test]
fn every_deployment_status_response_parses() {
    for (name, text) in files("deployment-statuses") {
        if name.contains(".request.") {
            continue;
        }
        let statuses: Vec<DeploymentStatus> = if name.starts_with("list-") {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            vec![serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))]
        };
        for s in statuses {
            assert!(s.state().is_some(), "{name}: {}", s.state);
        }
    }
}

#[test]
fn empty_target_url_is_no_log_link() {
    let text = std::fs::read_to_string(dir(
        "deployment-statuses/create-deployment-status.201.recorded.github3py.json",
    ))
    .unwrap();
    let s: DeploymentStatus = serde_json::from_str(&text).unwrap();
    assert_eq!(s.log_link(), None);
    let text = std::fs::read_to_string(dir(
        "deployment-statuses/create-deployment-status.201.openapi.json",
    ))
    .unwrap();
    let s: DeploymentStatus = serde_json::from_str(&text).unwrap();
    assert_eq!(
        s.log_link(),
        Some("https://example.com/deployment/42/output")
    );
    assert_eq!(
        s.environment_link(),
        Some("https://test-branch.lab.acme.com")
    );
}

#[test]
fn request_fixtures_use_the_fields_new_deployment_sends() {
    // What other clients send is a subset of what deploybot sends, with the same names.
    let ours = serde_json::to_value(NewDeployment {
        git_ref: "topic".into(),
        task: "deploy".into(),
        environment: "staging".into(),
        required_contexts: Some(vec![]),
        auto_merge: false,
        production_environment: false,
        transient_environment: false,
        description: "d".into(),
        payload: serde_json::json!({}),
    })
    .unwrap();
    for (name, text) in files("deployments") {
        if !name.contains(".request.") {
            continue;
        }
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in theirs.as_object().unwrap().keys() {
            assert!(
                ours.get(key).is_some(),
                "{name}: deploybot never sends `{key}`"
            );
        }
    }
}

#[test]
fn error_bodies_parse() {
    for (name, text) in files("errors") {
        if name.contains(".schema.")
            || name.contains(".exchange.")
            || name.contains("resource-not-accessible")
        {
            // JSON Schemas, a header+body exchange (tested in client.rs), and a token
            // body filed under errors (tested with the App token source).
            continue;
        }
        let body: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!body.message.is_empty(), "{name}");
    }
    let text = std::fs::read_to_string(dir(
        "errors/validation-failed.422.recorded.octokit-fixtures.json",
    ))
    .unwrap();
    let body: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(body.errors[0].field.as_deref(), Some("color"));
    assert_eq!(body.failed_contexts(), None);
}

#[test]
fn installation_token_responses_parse() {
    #[derive(serde::Deserialize)]
    struct AccessToken {
        #[allow(dead_code)]
        token: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    }
    let mut all = files("apps");
    all.push((
        "resource-not-accessible-by-integration.403.recorded.github3py.json".into(),
        std::fs::read_to_string(dir(
            "errors/resource-not-accessible-by-integration.403.recorded.github3py.json",
        ))
        .unwrap(),
    ));
    for (name, text) in all {
        let t: AccessToken = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(t.expires_at.timestamp() > 0);
    }
}

#[test]
fn errors_tell_people_what_to_do() {
    let repo = RepoName::parse("acme/api").unwrap();
    let now = Utc::now();
    let text = GitHubError::Unauthorized {
        message: "Bad credentials".into(),
    }
    .explain(&repo, now);
    assert!(text.contains("repo_deployment"), "{text}");
    let text = GitHubError::Forbidden {
        message: "Resource not accessible by personal access token".into(),
        accepted_permissions: Some("deployments=write".into()),
        accepted_scopes: None,
        token_scopes: Some("".into()),
    }
    .explain(&repo, now);
    assert!(
        text.contains("deployments=write") && text.contains("repo_deployment"),
        "{text}"
    );
    let text = GitHubError::RateLimited {
        message: "API rate limit exceeded".into(),
        retry_at: Some(now + chrono::Duration::seconds(125)),
    }
    .explain(&repo, now);
    assert!(text.contains("in 2m 5s"), "{text}");
}

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(human_duration(Duration::from_secs(42)), "42s");
    assert_eq!(human_duration(Duration::from_secs(125)), "2m 5s");
    assert_eq!(human_duration(Duration::from_secs(7200)), "2h");
    assert_eq!(human_duration(Duration::from_secs(90000)), "1d 1h");
}
