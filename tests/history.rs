//! What is deployed where, from GitHub's history: `deploys`, `where is`, `whats on`,
//! the pre-flight diff of a deploy, and `rollback` — each against a realistic history
//! in the sandbox, with the number of GitHub API calls each command makes.

mod support;

use std::sync::{Arc, Mutex};

use sandbox::{NewStatus, TokenSpec};
use support::{Options, TestBot};

const ONCALL: &[&str] = &["oncall"];

/// Deploys `target` as `user` and lets the deployer report `states`; returns the id.
async fn deployed(t: &TestBot, user: &str, line: &str, states: &[&str]) -> u64 {
    let mut out = t.say_as(user, ONCALL, "deploys", line).await;
    if out.contains("type `yes`") {
        out = t.say_as(user, ONCALL, "deploys", "yes").await;
    }
    assert!(out.contains("Created deployment"), "{line}: {out}");
    let id = t.last_deployment();
    for state in states {
        let mut s = NewStatus::new(state);
        s.log_url = Some(format!("https://ci.example.test/{id}/{state}"));
        t.sandbox.create_deployment_status("acme/api", id, s);
    }
    id
}

fn config() -> String {
    support::CONFIG.replace(
        "[apps.web.environments.staging]\nrequired_contexts = []",
        "[apps.web.environments.staging]\nrequired_contexts = []\n\n[apps.web.environments.production]\nproduction = true",
    ) + "\n[defaults]\nedit_interval = \"10ms\"\n"
}

/// A history: production had main (ok), then topic (failed), then main again (ok,
/// live); staging had topic (ok), then stale (ok, live); qa never deployed.
async fn history() -> (TestBot, Vec<u64>) {
    let t = TestBot::with(Options {
        config: config(),
        ..Default::default()
    })
    .await;
    let sb = &t.sandbox;
    sb.set_status("acme/api", "stale", "ci/build", "success");
    let p1 = deployed(
        &t,
        "alice",
        "deploy api/main to production",
        &["in_progress", "success"],
    )
    .await;
    let p2 = deployed(
        &t,
        "bob",
        "deploy api/topic to production",
        &["in_progress", "failure"],
    )
    .await;
    sb.commit("acme/api", "main", "Fix the fix");
    sb.set_status("acme/api", "main", "ci/build", "success");
    let p3 = deployed(
        &t,
        "carol",
        "deploy api/main to production",
        &["in_progress", "success"],
    )
    .await;
    let s1 = deployed(&t, "dan", "deploy api/topic to staging", &["success"]).await;
    let s2 = deployed(
        &t,
        "erin",
        "deploy api/stale to staging",
        &["queued", "success"],
    )
    .await;
    t.take_output();
    (t, vec![p1, p2, p3, s1, s2])
}

fn calls(t: &TestBot) -> Vec<String> {
    t.sandbox
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn deploys_lists_recent_deployments_with_their_state_in_one_query() {
    let (t, ids) = history().await;
    t.sandbox.clear_requests();
    let out = t.say("deploys api").await;
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(rows.len(), 5, "{out}");
    // Newest first, each with ref, sha7, environment, who, state and the log.
    assert!(rows[0].contains(&format!("#{} stale", ids[4])), "{out}");
    assert!(rows[0].contains("→ staging · erin"), "{out}");
    assert!(rows[0].contains("✅ success"), "{out}");
    assert!(
        rows[0].contains(&format!("logs: https://ci.example.test/{}/success", ids[4])),
        "{out}"
    );
    assert!(
        rows[3].contains(&format!("#{} topic", ids[1])) && rows[3].contains("❌ failure"),
        "{out}"
    );
    // One GraphQL query: the list with each deployment's latest status.
    assert_eq!(calls(&t), ["POST /graphql"]);

    let out = t.say("deploys api in production last 2").await;
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains(&format!("#{}", ids[2])) && rows[1].contains(&format!("#{}", ids[1])),
        "{out}"
    );

    let out = t.say("deploys api/topic").await;
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("Last 2 deployments of api/topic"), "{out}");

    let out = t.say("deploys web").await;
    assert!(out.contains("No deployments of web yet"), "{out}");
}

#[tokio::test]
async fn where_is_shows_whats_live_in_each_environment() {
    let (t, ids) = history().await;
    t.say_as("olga", ONCALL, "deploys", "lock qa on api -- testing")
        .await;
    t.sandbox.clear_requests();
    let out = t.say("where is api").await;
    let line = |env: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(env))
            .unwrap_or_else(|| panic!("no {env} row: {out}"))
            .to_string()
    };
    let prod_sha = t
        .sandbox
        .deployments("acme/api")
        .iter()
        .find(|d| d["id"] == ids[2])
        .unwrap()["sha"]
        .as_str()
        .unwrap()[..7]
        .to_string();
    assert!(
        line("production").contains(&format!("live: main ({prod_sha}) by carol")),
        "{out}"
    );
    assert!(
        line("staging").contains("live: stale") && line("staging").contains("by erin"),
        "{out}"
    );
    assert!(line("qa").contains("never deployed successfully"), "{out}");
    assert!(line("qa").contains("🔒 locked by olga"), "{out}");
    assert!(line("production").contains("you can deploy"), "{out}");
    // Every environment in one GraphQL query.
    assert_eq!(calls(&t), ["POST /graphql"]);
}

#[tokio::test]
async fn whats_on_shows_one_environment_across_apps() {
    let (t, _) = history().await;
    let out = t.say("whats on production").await;
    assert!(out.contains("What is live in production"), "{out}");
    assert!(out.contains("api: main"), "{out}");
    assert!(
        out.contains("web: nothing deployed successfully yet"),
        "{out}"
    );
    let out = t.say("what's on prod for api").await;
    assert!(out.contains("api: main") && !out.contains("web:"), "{out}");
    let out = t.say("whats on moon").await;
    assert!(out.contains("no app has an environment `moon`"), "{out}");
}

#[tokio::test]
async fn a_deploy_says_how_the_ref_relates_to_whats_live() {
    let (t, _) = history().await;
    let sb = &t.sandbox;
    // staging has `stale` live (the old main).
    sb.create_branch("acme/api", "next", "main");
    sb.commit("acme/api", "next", "Next thing");
    sb.set_status("acme/api", "next", "ci/build", "success");

    let out = t.say("deploy api/main to staging").await;
    assert!(
        out.contains("2 commits ahead of what is live in staging"),
        "{out}"
    );
    assert!(out.contains("compare: "), "{out}");
    let out = t.say("deploy api/stale to staging").await;
    assert!(out.contains("same commit as what is live"), "{out}");
    // topic branched off the old main: ahead of staging's `stale`...
    let out = t.say("deploy api/topic to staging").await;
    assert!(
        out.contains("1 commit ahead of what is live in staging"),
        "{out}"
    );
    // ...but diverged from production's main, which moved on twice since.
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(
        out.contains("diverged from what is live in production"),
        "{out}"
    );
    assert!(out.contains("1 ahead, 2 behind"), "{out}");
    assert!(out.contains("rolls back 2 commits"), "{out}");
    let out = t.say_as("olga", ONCALL, "deploys", "no").await;
    assert!(out.contains("nothing was deployed"), "{out}");

    // production has main live; `stale` is behind it: an accidental rollback there
    // needs confirmation, and nothing is created until then.
    let posts = t.deployment_posts().len();
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/stale to production")
        .await;
    assert!(
        out.contains("2 commits BEHIND what is live in production"),
        "{out}"
    );
    assert!(
        out.contains("rolls back 2 commits that are live there"),
        "{out}"
    );
    assert!(out.contains("type `yes`"), "{out}");
    assert_eq!(t.deployment_posts().len(), posts);
    let out = t.say_as("olga", ONCALL, "deploys", "yes").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(out.contains("BEHIND"), "{out}");
    // Forcing skips that question (force is deliberate).
    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "deploy! api/stale to production -- back out",
        )
        .await;
    assert!(out.contains("Created deployment"), "{out}");
}

#[tokio::test]
async fn rollback_redeploys_the_previous_successful_sha() {
    let (t, ids) = history().await;
    let deployments = t.sandbox.deployments("acme/api");
    let sha_of = |id: u64| {
        deployments.iter().find(|d| d["id"] == id).unwrap()["sha"]
            .as_str()
            .unwrap()
            .to_string()
    };
    t.sandbox.clear_requests();

    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    // Live: #p3 (main, newer); previous success: #p1 (main, older). #p2 failed: skipped.
    let (live, back) = (sha_of(ids[2]), sha_of(ids[0]));
    assert!(
        out.contains(&format!("rollback: puts back {} (#{}", &back[..7], ids[0])),
        "{out}"
    );
    assert!(
        out.contains(&format!("in place of {} (#{}", &live[..7], ids[2])),
        "{out}"
    );
    assert!(out.contains(&format!("api@{}", &back[..7])), "{out}");
    let post = t.deployment_posts().pop().unwrap();
    let body = post.body.unwrap();
    assert_eq!(body["ref"], back, "the exact sha, not a branch");
    assert_eq!(body["task"], "deploy");
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("rollback of #{}", ids[2])),
        "{body}"
    );
    // Finding the target: 1 list + latest status of #p3, #p2, #p1 (newest first).
    let requests = calls(&t);
    let lists = requests
        .iter()
        .filter(|c| c.starts_with("GET") && c.ends_with("/deployments"))
        .count();
    let statuses = requests.iter().filter(|c| c.ends_with("/statuses")).count();
    // rollback: 1 list + 3 reads; then the deploy's pre-flight: 1 GraphQL query.
    assert_eq!((lists, statuses), (1, 3), "{requests:?}");
    assert_eq!(
        requests.iter().filter(|c| *c == "POST /graphql").count(),
        1,
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_rollback_after_a_failed_deploy_puts_back_what_was_live_before_it() {
    let (t, ids) = history().await;
    // production: #p3 (main) is live; then a deploy of topic fails there.
    let p4 = deployed(
        &t,
        "bob",
        "deploy api/topic to production",
        &["in_progress", "failure"],
    )
    .await;
    let sha_of = |id: u64| {
        t.sandbox
            .deployments("acme/api")
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()["sha"]
            .as_str()
            .unwrap()
            .to_string()
    };
    t.take_output();
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    // Not #p1 (what was live before #p3): #p3 itself, which the failure may have
    // half-replaced.
    let back = sha_of(ids[2]);
    assert!(
        out.contains(&format!("rollback: puts back {} (#{}", &back[..7], ids[2])),
        "{out}"
    );
    assert!(out.contains(&format!("(#{p4}, topic by bob")), "{out}");
    let body = t.deployment_posts().pop().unwrap().body.unwrap();
    assert_eq!(body["ref"], back);
    assert_eq!(body["payload"]["deploybot"]["rollback_of"], p4);
}

#[tokio::test]
async fn rollback_finds_deployments_github_marked_inactive() {
    let (t, ids) = history().await;
    // staging is not a production environment: GitHub's auto_inactive marked #s1
    // inactive when #s2 succeeded. It was still live once.
    let s1 = t.sandbox.deployment_statuses("acme/api", ids[3]);
    assert_eq!(s1[0]["state"], "inactive", "{s1:?}");
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in staging")
        .await;
    assert!(
        out.contains(&format!("(#{}, topic by dan", ids[3])),
        "{out}"
    );
    assert!(out.contains("Created deployment"), "{out}");
}

#[tokio::test]
async fn rollback_refuses_when_there_is_nothing_to_go_back_to_and_obeys_locks() {
    let (t, _) = history().await;
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in qa")
        .await;
    assert!(out.contains("nothing is live in qa"), "{out}");
    t.say_as("bob", ONCALL, "deploys", "lock production on api")
        .await;
    let posts = t.deployment_posts().len();
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    assert!(out.contains("production on api is locked by bob"), "{out}");
    assert_eq!(t.deployment_posts().len(), posts);
}

#[tokio::test]
async fn a_rollback_to_a_confirming_environment_is_confirmed_first() {
    let config = config().replace(
        "[apps.api.environments.production]\nproduction = true",
        "[apps.api.environments.production]\nproduction = true\nconfirm = true",
    );
    let t = TestBot::with(Options {
        config,
        ..Default::default()
    })
    .await;
    // Two successful production deploys, each confirmed.
    for _ in 0..2 {
        t.say_as("olga", ONCALL, "deploys", "deploy api/main to production")
            .await;
        t.say_as("olga", ONCALL, "deploys", "yes").await;
        let id = t.last_deployment();
        t.sandbox
            .create_deployment_status("acme/api", id, NewStatus::new("success"));
        t.sandbox.commit("acme/api", "main", "Another");
        t.sandbox
            .set_status("acme/api", "main", "ci/build", "success");
    }
    let posts = t.deployment_posts().len();
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    assert!(out.contains("roll back api in production to"), "{out}");
    assert!(out.contains("type `yes`"), "{out}");
    assert_eq!(t.deployment_posts().len(), posts);
    let out = t.say_as("olga", ONCALL, "deploys", "yes").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(out.contains("rollback: puts back"), "{out}");
}

// GitHub requests per command. GraphQL answers in one query what REST needs a request
// per deployment for; `POST /deployments` stays REST.

fn graphql_queries(t: &TestBot) -> Vec<String> {
    t.sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/graphql")
        .map(|r| {
            r.body.as_ref().unwrap()["query"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_deploy_costs_one_query_and_the_post() {
    let (t, _) = history().await;
    // Something is live in staging (stale): the query answers the comparison too.
    t.sandbox.clear_requests();
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(
        out.contains("1 commit ahead of what is live in staging"),
        "{out}"
    );
    assert_eq!(
        calls(&t),
        ["POST /graphql", "POST /repos/acme/api/deployments"]
    );
    // Nothing live in qa (main: qa auto-merges, and main needs no merge).
    t.sandbox.clear_requests();
    let out = t.say("deploy api/main to qa").await;
    assert!(out.contains("Created deployment"), "{out}");
    assert_eq!(
        calls(&t),
        ["POST /graphql", "POST /repos/acme/api/deployments"]
    );
    // Forced: the checks it bypasses come with the same query.
    t.sandbox.clear_requests();
    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "deploy! api/broken to production -- hotfix",
        )
        .await;
    assert!(out.contains("Created deployment"), "{out}");
    assert!(
        out.contains("bypassed: ci/build: failure, security: pending")
            || out.contains("bypassed: security: pending, ci/build: failure"),
        "{out}"
    );
    assert!(
        out.contains("diverged from what is live in production"),
        "{out}"
    );
    assert_eq!(
        calls(&t),
        ["POST /graphql", "POST /repos/acme/api/deployments"]
    );
}

#[tokio::test]
async fn a_deploy_compares_with_the_deployed_commit_when_its_branch_has_moved_on() {
    let (t, _) = history().await;
    // production has main live (deployed by this bot); main moves on. The query's
    // comparison through the live deployment's ref is with the branch's head, not with
    // what was deployed; the query also compares with the commits this bot last saw
    // live or deployed there, so it still answers in one.
    t.sandbox.commit("acme/api", "main", "After the deploy");
    t.sandbox
        .set_status("acme/api", "main", "ci/build", "success");
    t.sandbox.clear_requests();
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/main to production")
        .await;
    assert!(
        out.contains("1 commit ahead of what is live in production"),
        "{out}"
    );
    assert_eq!(
        calls(&t),
        ["POST /graphql", "POST /repos/acme/api/deployments"]
    );

    // A bot that never saw production (a restart) asks one more read, about the
    // deployed commit itself.
    let mut t = t;
    t.kill().await;
    t.boot().await;
    t.sandbox.commit("acme/api", "main", "Once more");
    t.sandbox
        .set_status("acme/api", "main", "ci/build", "success");
    let live = t.last_deployment();
    t.sandbox
        .create_deployment_status("acme/api", live, NewStatus::new("success"));
    t.sandbox.clear_requests();
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/main to production")
        .await;
    assert!(
        out.contains("1 commit ahead of what is live in production"),
        "{out}"
    );
    // (Without the restart's catch-up of tracked deployments' statuses.)
    let asked: Vec<String> = calls(&t)
        .into_iter()
        .filter(|c| !c.ends_with("/statuses"))
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(asked[0], "POST /graphql");
    assert!(asked[1].contains("/compare/"), "{asked:?}");
    assert_eq!(asked[2], "POST /repos/acme/api/deployments");
}

#[tokio::test]
async fn deploys_where_is_and_whats_on_cost_one_query_per_app() {
    let (t, _) = history().await;
    t.sandbox.clear_requests();
    t.say("deploys api").await;
    assert_eq!(calls(&t), ["POST /graphql"]);
    t.sandbox.clear_requests();
    t.say("deploys api/topic in production").await;
    assert_eq!(calls(&t), ["POST /graphql"]);
    t.sandbox.clear_requests();
    t.say("where is api").await;
    assert_eq!(calls(&t), ["POST /graphql"]);
    // One query for the three environments, aliased.
    let query = &graphql_queries(&t)[0];
    for alias in ["e0: deployments", "e1: deployments", "e2: deployments"] {
        assert!(query.contains(alias), "{query}");
    }
    t.sandbox.clear_requests();
    t.say("whats on production").await;
    assert_eq!(calls(&t), ["POST /graphql", "POST /graphql"], "api and web");
}

/// A bot on the same history whose GitHub answers REST only (a proxy, an old GitHub
/// Enterprise Server): every command gives the same answer as with GraphQL, at REST's
/// price.
#[tokio::test]
async fn without_graphql_every_answer_comes_over_rest() {
    let (with, _) = history().await;
    let expected: Vec<String> = {
        let mut out = vec![];
        for line in ["deploys api", "where is api", "whats on production"] {
            out.push(timeless(&with.say(line).await));
        }
        out
    };
    let t = with;
    t.sandbox.set_graphql(false);
    let mut answers = vec![];
    for line in ["deploys api", "where is api", "whats on production"] {
        t.sandbox.clear_requests();
        answers.push(timeless(&t.say(line).await));
        let rest: Vec<String> = calls(&t)
            .into_iter()
            .filter(|c| c != "POST /graphql")
            .collect();
        assert!(!rest.is_empty(), "{line}: REST answered");
    }
    assert_eq!(answers, expected);
    // It asked GraphQL once, learnt it is not there, and asks REST only from then on.
    t.sandbox.clear_requests();
    t.say("deploys api").await;
    assert!(graphql_queries(&t).is_empty(), "{:?}", calls(&t));
    assert_eq!(calls(&t).len(), 1 + 5, "1 list + 1 status per row");
    let metrics = t.bot().metrics_text().await;
    assert!(
        metrics.contains("deploybot_github_rest_fallbacks_total{reason=\"unavailable\"}"),
        "{metrics}"
    );
    assert!(matches!(
        t.bot().github().read_path(),
        deploybot::github::ReadPath::RestFallback { reason } if reason.contains("404")
    ));
}

/// Without "5s ago" / "just now", which move on between two runs of a command.
fn timeless(s: &str) -> String {
    s.replace("just now", "T ago")
        .split(' ')
        .map(|w| {
            let digits = w.trim_end_matches(|c: char| "smhd,".contains(c));
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                "T"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Log lines, captured for one test (its runtime runs on the test's thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The minimal-scope promise: a classic token with only `repo_deployment` cannot use
/// GraphQL on a private repository, so deploybot reads over REST, says so once, and
/// every command still works.
#[tokio::test]
async fn a_token_with_only_repo_deployment_keeps_working_over_rest_and_warns_once() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish(),
    );
    let token = "ghp_repo_deployment_only_0001";
    let t = TestBot::with(Options {
        config: config(),
        token: Some(token.into()),
        ..Default::default()
    })
    .await;
    t.sandbox
        .add_token_with(token, TokenSpec::classic(&["repo_deployment"]));
    t.sandbox.clear_requests();

    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    let id = t.last_deployment();
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    let out = t.say("deploys api").await;
    assert!(
        out.contains(&format!("#{id} topic")) && out.contains("✅ success"),
        "{out}"
    );
    let out = t.say("where is api").await;
    assert!(out.contains("live: topic"), "{out}");
    let out = t.say("whats on staging for api").await;
    assert!(out.contains("api: topic"), "{out}");

    // GraphQL was asked once for the repository, then never again.
    assert_eq!(graphql_queries(&t).len(), 1, "{:?}", calls(&t));
    let warned: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains("GraphQL"))
        .map(str::to_string)
        .collect();
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(
        warned[0].contains("reading its deployments over REST instead")
            && warned[0].contains("acme/api")
            && warned[0].contains("`repo` scope"),
        "{}",
        warned[0]
    );
    let metrics = t.bot().metrics_text().await;
    assert!(
        metrics.contains("deploybot_github_rest_fallbacks_total{reason=\"refused\"} 4"),
        "{metrics}"
    );
}

/// `environments` without an app: every app that may be deployed from the channel,
/// as `help environments` says, in every channel.
#[tokio::test]
async fn environments_without_an_app_shows_every_app_of_the_channel() {
    let t = TestBot::start().await;
    let help = t.say("help environments").await;
    assert!(
        help.contains("every app that may be deployed from this channel"),
        "{help}"
    );
    // #deploys: api (which lists it), web and ghost (which allow any channel).
    let out = t.say("environments").await;
    for app in ["api (acme/api)", "web (acme/web)", "ghost (acme/ghost)"] {
        assert!(
            out.contains(&format!("Environments of {app}")),
            "{app}: {out}"
        );
    }
    assert!(!out.contains("production (production)"), "{out}");
    // #random: not api, which is deployed from #deploys only.
    let out = t.say_as("alice", &["dev"], "random", "envs").await;
    assert!(out.contains("Environments of web"), "{out}");
    assert!(out.contains("Environments of ghost"), "{out}");
    assert!(!out.contains("Environments of api"), "{out}");
    assert!(!out.contains("which app?"), "{out}");
}
