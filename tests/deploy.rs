//! `deploy` end to end: the shell adapter, the real GitHub client, the sandbox. Each
//! GitHub outcome is answered in chat, and the request GitHub received is asserted.

mod support;

use std::time::Duration;

use sandbox::{Access, Fault};
use serde_json::json;
use support::TestBot;

#[tokio::test]
async fn a_green_branch_creates_a_deployment_with_the_configured_request() {
    let t = TestBot::start().await;
    let out = t.say("deploy api/topic to staging").await;
    let sha = t.sandbox.resolve("acme/api", "topic").unwrap();
    let id = t.sandbox.deployments("acme/api")[0]["id"].as_u64().unwrap();
    assert!(
        out.contains(&format!(
            "Created deployment #{id} of api/topic ({}) to staging",
            &sha[..7]
        )),
        "{out}"
    );
    assert!(out.contains("requested by: alice"), "{out}");
    assert!(out.contains("task: deploy"), "{out}");
    assert!(
        out.contains(&format!(
            "deployments: {}/acme/api/deployments",
            t.sandbox.url()
        )),
        "{out}"
    );

    let posts = t.deployment_posts();
    assert_eq!(posts.len(), 1);
    let body = posts[0].body.clone().unwrap();
    assert_eq!(body["ref"], "topic");
    assert_eq!(body["task"], "deploy");
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["required_contexts"], json!(["ci/build"]));
    assert_eq!(body["auto_merge"], false);
    assert_eq!(body["production_environment"], false);
    assert_eq!(body["transient_environment"], false);
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("alice") && description.contains("#deploys"),
        "{description}"
    );
    assert!(description.chars().count() <= 140);
    // App-level payload extras, plus deploybot's routing data.
    assert_eq!(body["payload"]["service"], "api");
    assert_eq!(body["payload"]["region"], "eu");
    let routing = &body["payload"]["deploybot"];
    assert!(routing["request_id"].as_str().unwrap().len() >= 16);
    assert_eq!(routing["chat"]["adapter"], "shell");
    assert_eq!(routing["chat"]["channel"], "deploys");
    assert!(routing["chat"]["message"]
        .as_str()
        .unwrap()
        .starts_with("shell-"));
    assert_eq!(routing["user"], json!({"id": "alice", "name": "alice"}));
    assert_eq!(routing["hosts"], json!([]));
    assert_eq!(routing["app"], "api");
    // The token went along, and the API version GitHub documents.
    assert_eq!(
        posts[0].header("authorization"),
        Some("Bearer sandbox-token")
    );
    assert_eq!(posts[0].header("x-github-api-version"), Some("2022-11-28"));
}

#[tokio::test]
async fn required_contexts_is_omitted_when_not_configured_and_empty_when_forced() {
    let t = TestBot::start().await;
    // production: no required_contexts key → the request must not carry one.
    t.say_as(
        "olga",
        &["oncall"],
        "deploys",
        "deploy api/topic to production",
    )
    .await;
    // qa: required_contexts = [] → sent as []. (main: nothing to auto-merge.)
    t.say("deploy api/main to qa").await;
    // forced on staging (configured ["ci/build"]) → [] and no auto-merge.
    let out = t.say("deploy! api/broken to staging").await;
    assert!(out.contains("forced: checks skipped"), "{out}");

    let posts = t.deployment_posts();
    assert_eq!(posts.len(), 3, "{posts:?}");
    let prod = posts[0].body.clone().unwrap();
    assert!(prod.get("required_contexts").is_none(), "{prod}");
    assert_eq!(prod["production_environment"], true);
    assert_eq!(
        prod["payload"]["region"], "us",
        "environment extras override the app's"
    );
    assert_eq!(prod["payload"]["replicas"], 6);
    let qa = posts[1].body.clone().unwrap();
    assert_eq!(qa["required_contexts"], json!([]));
    assert_eq!(qa["transient_environment"], true);
    let forced = posts[2].body.clone().unwrap();
    assert_eq!(forced["required_contexts"], json!([]));
    assert_eq!(forced["auto_merge"], false);
}

#[tokio::test]
async fn a_bare_app_deploys_its_default_branch_as_github_reports_it() {
    let t = TestBot::start().await;
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("of web/trunk"), "{out}");
    let posts = t.deployment_posts();
    assert_eq!(posts[0].body.as_ref().unwrap()["ref"], "trunk");
    assert!(t
        .sandbox
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path == "/repos/acme/web"));
}

#[tokio::test]
async fn the_default_environment_is_used_when_none_is_given() {
    let t = TestBot::start().await;
    let out = t.say("deploy api/topic").await;
    assert!(out.contains("to staging"), "{out}");
}

#[tokio::test]
async fn failing_checks_are_listed_with_the_force_command_for_those_allowed() {
    let t = TestBot::start().await;
    let out = t.say("deploy api/broken to staging").await;
    assert!(
        out.contains("checks on api/broken are not all green"),
        "{out}"
    );
    assert!(out.contains("ci/build: failure"), "{out}");
    // Only the required context is checked on staging.
    assert!(!out.contains("security"), "{out}");
    assert!(out.contains("`deploy! api/broken to staging`"), "{out}");
    assert!(t.sandbox.deployments("acme/api").is_empty());

    // production checks every context; alice (release) may deploy but not force.
    let out = t.say("deploy api/broken to production").await;
    assert!(out.contains("ci/build: failure"), "{out}");
    assert!(out.contains("security: pending"), "{out}");
    assert!(!out.contains("deploy!"), "{out}");
    assert!(out.contains("needs the right role"), "{out}");

    // olga (oncall) is offered the forced command, with the reason production needs.
    let out = t
        .say_as(
            "olga",
            &["oncall"],
            "deploys",
            "deploy api/broken to production",
        )
        .await;
    assert!(
        out.contains("`deploy! api/broken to production -- REASON`"),
        "{out}"
    );
}

#[tokio::test]
async fn an_auto_merged_branch_is_retried_once_and_then_deployed() {
    let t = TestBot::start().await;
    let before = t.sandbox.resolve("acme/api", "stale").unwrap();
    let out = t.say("deploy api/stale to qa").await;
    assert!(out.contains("auto-merged first"), "{out}");
    assert!(out.contains("Created deployment"), "{out}");
    let posts = t.deployment_posts();
    assert_eq!(posts.len(), 2, "one 202, one 201");
    let after = t.sandbox.resolve("acme/api", "stale").unwrap();
    assert_ne!(before, after, "GitHub made a merge commit");
    assert_eq!(t.sandbox.deployments("acme/api")[0]["sha"], after);
}

#[tokio::test]
async fn a_merge_conflict_says_which_branches_conflict() {
    let t = TestBot::start().await;
    let out = t.say("deploy api/conflicted to qa").await;
    assert!(out.contains("api/conflicted can't be merged"), "{out}");
    assert!(
        out.contains("Conflict merging main into conflicted"),
        "{out}"
    );
    assert_eq!(t.deployment_posts().len(), 1, "a conflict is not retried");
}

#[tokio::test]
async fn an_unknown_ref_is_reported_as_such() {
    let t = TestBot::start().await;
    let out = t.say("deploy api/nope to staging").await;
    assert!(out.contains("api has no ref `nope`"), "{out}");
}

#[tokio::test]
async fn a_bad_token_says_what_to_fix() {
    let t = TestBot::with(support::Options {
        token: Some("wrong".into()),
        ..Default::default()
    })
    .await;
    let out = t.say("deploy api/topic to staging").await;
    assert!(
        out.contains("rejected deploybot's credentials (Bad credentials)"),
        "{out}"
    );
    assert!(out.contains("repo_deployment"), "{out}");
}

#[tokio::test]
async fn a_read_only_token_names_the_missing_permission() {
    let sb_token = "read-only-token";
    let t = TestBot::with(support::Options {
        token: Some(sb_token.into()),
        ..Default::default()
    })
    .await;
    t.sandbox.add_token(sb_token, Access::ReadOnly);
    let out = t.say("deploy api/topic to staging").await;
    assert!(
        out.contains("refused deploybot's token on acme/api"),
        "{out}"
    );
    assert!(out.contains("deployments=write"), "{out}");
    assert!(t.sandbox.deployments("acme/api").is_empty());
}

#[tokio::test]
async fn a_missing_repository_points_at_the_config() {
    let t = TestBot::start().await;
    let out = t.say_as("alice", &[], "general", "deploy ghost/main").await;
    assert!(out.contains("GitHub cannot find acme/ghost"), "{out}");
    assert!(out.contains("`repository`"), "{out}");
}

#[tokio::test]
async fn rate_limits_say_when_to_retry_and_stop_further_calls() {
    let t = TestBot::start().await;
    let reset = chrono::Utc::now().timestamp() + 600;
    t.sandbox.inject(Fault::rate_limited("/deployments", reset));
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("rate limit is used up"), "{out}");
    assert!(out.contains("Try again at"), "{out}");
    let calls = t.sandbox.requests().len();
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("rate limit is used up"), "{out}");
    assert_eq!(
        t.sandbox.requests().len(),
        calls,
        "no request goes out until the reset"
    );
}

#[tokio::test]
async fn secondary_rate_limits_honour_retry_after() {
    let t = TestBot::start().await;
    t.sandbox
        .inject(Fault::secondary_rate_limit("/deployments", 120));
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("in 2m") || out.contains("in 1m 59s"), "{out}");
}

#[tokio::test]
async fn a_lost_answer_is_recovered_by_request_id_not_by_posting_again() {
    let t = TestBot::with(support::Options {
        timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    t.sandbox.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_secs(3),
    ));
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(out.contains("found by its request id"), "{out}");
    assert_eq!(t.deployment_posts().len(), 1, "the POST is never repeated");
    assert_eq!(t.sandbox.deployments("acme/api").len(), 1);
}

#[tokio::test]
async fn invalid_refs_and_injection_attempts_never_reach_github() {
    let t = TestBot::start().await;
    for line in [
        "deploy api/x;rm -rf / to staging",
        "deploy api/$(reboot) to staging",
        "deploy api/`id` to staging",
        "deploy api/a..b to staging",
        "deploy api/-rf to staging",
        "deploy api/x.lock to staging",
        "deploy api/x@{1} to staging",
        "deploy api/topic to staging/web-1;reboot",
        "deploy api/topic to stag|ing",
    ] {
        let out = t.say(line).await;
        assert!(out.contains("🚫"), "{line}: {out}");
    }
    assert!(
        t.sandbox.requests().is_empty(),
        "{:?}",
        t.sandbox.requests()
    );
}

#[tokio::test]
async fn unknown_apps_and_environments_list_what_exists_without_calling_github() {
    let t = TestBot::start().await;
    let out = t
        .say_as("alice", &[], "general", "deploy topic to staging")
        .await;
    assert!(out.contains("`topic` is not an app"), "{out}");
    assert!(
        out.contains("api (acme/api), web (acme/web), ghost (acme/ghost)"),
        "{out}"
    );
    let out = t.say("deploy api/topic to moon").await;
    assert!(out.contains("api has no environment `moon`"), "{out}");
    assert!(out.contains("staging, qa, production"), "{out}");
    assert!(t.sandbox.requests().is_empty());
}

#[tokio::test]
async fn a_bare_ref_in_an_apps_channel_belongs_to_that_app() {
    let t = TestBot::start().await;
    let out = t.say("deploy topic").await;
    assert!(out.contains("of api/topic"), "{out}");
}

#[tokio::test]
async fn roles_channels_and_reasons_are_checked_before_github() {
    let t = TestBot::start().await;
    let out = t
        .say_as("dan", &["dev"], "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("you can't deploy api to production"), "{out}");
    assert!(out.contains("the release or oncall roles"), "{out}");
    let out = t
        .say_as(
            "alice",
            &["release"],
            "random",
            "deploy api/topic to staging",
        )
        .await;
    assert!(out.contains("api can't be deployed from #random"), "{out}");
    assert!(out.contains("#deploys"), "{out}");
    let out = t
        .say_as(
            "alice",
            &["release"],
            "deploys",
            "deploy! api/topic to production",
        )
        .await;
    assert!(out.contains("you can't force a deploy"), "{out}");
    let out = t
        .say_as(
            "olga",
            &["oncall"],
            "deploys",
            "deploy! api/topic to production",
        )
        .await;
    assert!(out.contains("needs a reason"), "{out}");
    assert!(out.contains("-- "), "{out}");
    assert!(t.deployment_posts().is_empty());

    let out = t
        .say_as(
            "olga",
            &["oncall"],
            "deploys",
            "deploy! api/broken to prod -- hotfix for login",
        )
        .await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(out.contains("reason: hotfix for login"), "{out}");
    let body = t.deployment_posts()[0].body.clone().unwrap();
    assert_eq!(body["payload"]["deploybot"]["reason"], "hotfix for login");
}

#[tokio::test]
async fn tasks_and_hosts_reach_github() {
    let t = TestBot::start().await;
    let out = t
        .say("deploy:migrate api/topic to staging/web-1,web-2")
        .await;
    assert!(out.contains("to staging/web-1,web-2"), "{out}");
    assert!(out.contains("task: deploy:migrate"), "{out}");
    let body = t.deployment_posts()[0].body.clone().unwrap();
    assert_eq!(body["task"], "deploy:migrate");
    assert_eq!(
        body["payload"]["deploybot"]["hosts"],
        json!(["web-1", "web-2"])
    );
}

#[tokio::test]
async fn almost_commands_get_a_corrected_example() {
    let t = TestBot::start().await;
    let out = t.say("deploy api staging").await;
    assert!(
        out.contains("did you mean `deploy api to staging`"),
        "{out}"
    );
    let out = t.say("deplyo api to staging").await;
    assert!(out.contains("`deploy api to staging`"), "{out}");
    let out = t.say("hello there").await;
    assert!(out.contains("type `help`"), "{out}");
    assert!(t.sandbox.requests().is_empty());
}

/// `deploy apj to staging` (a typo of `api`): asked about before any deployment is
/// created; a real branch of the channel's app with such a name still deploys.
#[tokio::test]
async fn a_word_close_to_an_app_name_is_asked_about_before_anything_is_created() {
    let t = TestBot::start().await;
    let out = t.say("deploy apj to staging").await;
    assert!(
        out.contains(
            "`apj` is not an app, nor a branch of api — did you mean `deploy api to staging`?"
        ),
        "{out}"
    );
    assert!(
        out.contains("to deploy the ref `apj` of api anyway, type `deploy api/apj to staging`"),
        "{out}"
    );
    let out = t.say("deploy wbe/trunk").await;
    assert!(out.contains("did you mean `deploy web/trunk`?"), "{out}");
    assert!(
        t.deployment_posts().is_empty(),
        "nothing reached GitHub's deployments"
    );

    t.sandbox.create_branch("acme/api", "apx", "main");
    t.sandbox
        .set_status("acme/api", "apx", "ci/build", "success");
    let out = t.say("deploy apx to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert_eq!(t.deployment_posts()[0].body.clone().unwrap()["ref"], "apx");

    // The other commands that name an app ask the same.
    let out = t.say("rollback apj in staging").await;
    assert!(
        out.contains("there is no app `apj` — did you mean `rollback api`?"),
        "{out}"
    );
}
