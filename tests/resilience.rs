//! Regressions from review: what must hold when things go wrong at the worst moment —
//! chat down at the final status, GitHub answering 5xx to a
//! create, a lock taken mid-deploy, the situation changing under an open confirmation.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deploybot::bot::Parts;
use deploybot::chat::shell::{self, SharedBuffer, ShellChat};
use deploybot::chat::{Chat, ChatError, Conversation, Message, MessageId, Tone};
use deploybot::clock::SystemClock;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use deploybot::intents::Patience;
use deploybot::model::DeploymentState;
use deploybot::service::Service;
use deploybot::store::sqlite::SqliteStore;
use sandbox::{Fault, NewStatus, Sandbox};
use support::{wait_for, Options, Said, TestBot};

const ONCALL: &[&str] = &["oncall"];
const BOUND: Duration = Duration::from_secs(10);

/// A chat whose sends and edits can fail on demand, like Discord during an outage.
struct Flaky {
    inner: ShellChat,
    down: AtomicBool,
    /// Edits fail as "the message is gone" instead of as an outage.
    gone: AtomicBool,
    log: Mutex<Vec<(String, String, Tone)>>,
}

#[async_trait]
impl Chat for Flaky {
    async fn send(&self, to: &Conversation, m: &Message) -> Result<MessageId, ChatError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ChatError::new("Discord: 503"));
        }
        let id = self.inner.send(to, m).await?;
        self.log
            .lock()
            .unwrap()
            .push(("send".into(), id.0.clone(), m.tone));
        Ok(id)
    }

    async fn edit(&self, to: &Conversation, id: &MessageId, m: &Message) -> Result<(), ChatError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(ChatError::gone("Discord: 404 Unknown Message"));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(ChatError::new("Discord: 503"));
        }
        self.inner.edit(to, id, m).await?;
        self.log
            .lock()
            .unwrap()
            .push(("edit".into(), id.0.clone(), m.tone));
        Ok(())
    }
}

async fn flaky_bot() -> (Sandbox, Service, Arc<Flaky>, tempfile::TempDir) {
    let sb = Sandbox::start().await.unwrap();
    support::seed(&sb);
    let text = format!(
        "{}\n[defaults]\nedit_interval = \"10ms\"\n",
        support::CONFIG
    );
    let config = Arc::new(support::parse_config(&text, &sb, &sb.token()));
    let github = HttpGitHub::new(
        &config.github.api_url,
        Arc::new(StaticToken::new(sb.token().into())),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    let chat = Arc::new(Flaky {
        inner: ShellChat::new(Box::new(SharedBuffer::default())),
        down: AtomicBool::new(false),
        gone: AtomicBool::new(false),
        log: Mutex::new(Vec::new()),
    });
    let service = Service::start(Parts {
        config,
        github: Arc::new(github),
        chat: chat.clone(),
        store: Arc::new(store),
        clock: Arc::new(SystemClock),
        adapter: shell::ADAPTER.to_string(),
    })
    .await
    .unwrap();
    (sb, service, chat, dir)
}

async fn deploy_topic(service: &Service, sb: &Sandbox) -> u64 {
    let who = shell::Identity {
        user: "alice".into(),
        roles: vec!["dev".into()],
        channel: "deploys".into(),
    };
    shell::run(
        &service.bot,
        &who,
        "deploy api/topic to staging\n".as_bytes(),
        "!",
    )
    .await;
    sb.deployments("acme/api")[0]["id"].as_u64().unwrap()
}

async fn apply(service: &Service, sb: &Sandbox, id: u64, state: &str) {
    let status = sb.create_deployment_status("acme/api", id, NewStatus::new(state));
    let deployment = sb
        .deployments("acme/api")
        .into_iter()
        .find(|d| d["id"] == id)
        .unwrap();
    let repo = deploybot::model::RepoName::parse("acme/api").unwrap();
    service
        .bot
        .tracker()
        .status(
            &repo,
            deploybot::model::DeploymentId(id),
            Some(&serde_json::from_value(deployment).unwrap()),
            &serde_json::from_value(status).unwrap(),
        )
        .await
        .unwrap();
    service.bot.tracker().flush(BOUND).await;
}

#[tokio::test]
async fn a_final_state_that_chat_could_not_show_is_shown_once_chat_is_back() {
    let (sb, service, chat, _dir) = flaky_bot().await;
    let id = deploy_topic(&service, &sb).await;
    chat.down.store(true, Ordering::SeqCst);
    apply(&service, &sb, id, "success").await;
    let t = service
        .bot
        .store()
        .tracked(
            &deploybot::model::RepoName::parse("acme/api").unwrap(),
            deploybot::model::DeploymentId(id),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !t.final_rendered && !t.announced,
        "nothing was shown, so nothing is marked shown"
    );
    assert_eq!(service.bot.store().unfinished().await.unwrap().len(), 1);

    chat.down.store(false, Ordering::SeqCst);
    service.bot.tick().await; // the housekeeping pass retries it
    service.bot.tracker().flush(BOUND).await;
    let log = chat.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|(kind, _, tone)| kind == "edit"
                && *tone == Tone::Progress(DeploymentState::Success)),
        "{log:?}"
    );
    let mentions = log
        .iter()
        .filter(|(kind, _, tone)| {
            kind == "send" && *tone == Tone::Progress(DeploymentState::Success)
        })
        .count();
    assert_eq!(mentions, 1, "the requester is told once: {log:?}");
    assert!(service.bot.store().unfinished().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_edit_never_posts_a_duplicate_but_a_deleted_message_is_posted_anew() {
    let (sb, service, chat, _dir) = flaky_bot().await;
    let id = deploy_topic(&service, &sb).await;
    chat.down.store(true, Ordering::SeqCst);
    apply(&service, &sb, id, "in_progress").await;
    chat.down.store(false, Ordering::SeqCst);
    let sends = |chat: &Flaky| {
        chat.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _, _)| k == "send")
            .count()
    };
    assert_eq!(sends(&chat), 1, "only the original message");

    // Someone deleted the message: the next update comes as a new one, and sticks.
    chat.gone.store(true, Ordering::SeqCst);
    apply(&service, &sb, id, "success").await;
    chat.gone.store(false, Ordering::SeqCst);
    let log = chat.log.lock().unwrap().clone();
    let new_id = log
        .iter()
        .find(|(k, _, tone)| k == "send" && *tone == Tone::Progress(DeploymentState::Success))
        .map(|(_, id, _)| id.clone())
        .expect("posted anew");
    let t = service
        .bot
        .store()
        .tracked(
            &deploybot::model::RepoName::parse("acme/api").unwrap(),
            deploybot::model::DeploymentId(id),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.message_id.as_deref(), Some(new_id.as_str()));
}

#[tokio::test]
async fn a_5xx_on_create_is_looked_up_and_never_called_safe_to_retry() {
    let t = TestBot::start().await;
    t.sandbox.inject(Fault::status(
        "POST",
        "/deployments",
        502,
        serde_json::json!({"message": "Server Error"}),
    ));
    let out = t.say("deploy api/topic to staging").await;
    assert!(
        out.contains("Unknown: api/topic may or may not be deploying to staging"),
        "{out}"
    );
    assert!(out.contains("`deploys api in staging`"), "{out}");
    assert!(!out.contains("safe to try again"), "{out}");
    let requests = t.sandbox.requests();
    let after_post: Vec<_> = requests
        .iter()
        .skip_while(|r| !(r.method == "POST" && r.path.ends_with("/deployments")))
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments"))
        .collect();
    assert_eq!(after_post.len(), 3, "looked it up, with backoff");
    assert_eq!(t.deployment_posts().len(), 1, "never re-POSTed");
}

#[tokio::test]
async fn a_lock_taken_while_a_deploy_is_in_flight_stops_it() {
    let t = TestBot::start().await;
    // GitHub is slow to answer the deploy's pre-flight (its GraphQL query)...
    t.sandbox.inject(Fault::slow_after_processing(
        "POST",
        "/graphql",
        Duration::from_millis(800),
    ));
    let deploy = t.say_as("alice", &["dev"], "deploys", "deploy api/topic to staging");
    let lock = async {
        // ...and bob locks staging meanwhile.
        wait_for(BOUND, "the deploy's pre-flight", || {
            t.sandbox
                .requests()
                .iter()
                .any(|r| r.method == "POST" && r.path == "/graphql")
                .then_some(())
        })
        .await;
        t.say_as(
            "bob",
            &["dev"],
            "deploys",
            "lock staging on api -- incident",
        )
        .await
    };
    let (out, locked) = tokio::join!(deploy, lock);
    assert!(locked.contains("bob locked staging on api"), "{locked}");
    assert!(out.contains("staging on api is locked by bob"), "{out}");
    assert!(
        t.deployment_posts().is_empty(),
        "deployed into a locked environment"
    );
}

#[tokio::test]
async fn rollback_asks_github_nothing_until_every_local_rule_passed() {
    let t = TestBot::start().await;
    let out = t
        .say_as("mallory", &["dev"], "random", "rollback api in production")
        .await;
    assert!(out.contains("api can't be deployed from #random"), "{out}");
    let out = t
        .say_as("mallory", &["dev"], "deploys", "rollback api in production")
        .await;
    assert!(out.contains("you can't deploy api to production"), "{out}");
    assert!(
        t.sandbox.requests().is_empty(),
        "{:?}",
        t.sandbox.requests()
    );
}

async fn ok_deploy(t: &TestBot, who: &str, line: &str) -> u64 {
    let mut out = t.say_as(who, ONCALL, "deploys", line).await;
    if out.contains("type `yes`") {
        out = t.say_as(who, ONCALL, "deploys", "yes").await;
    }
    assert!(out.contains("Created deployment"), "{line}: {out}");
    let id = t.last_deployment();
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    t.sandbox.commit("acme/api", "main", "Another");
    t.sandbox
        .set_status("acme/api", "main", "ci/build", "success");
    id
}

/// A bot whose production asks for confirmation (valid for 10 minutes).
async fn confirming_bot() -> TestBot {
    let config = support::CONFIG.replace(
        "[apps.api.environments.production]\nproduction = true",
        "[apps.api.environments.production]\nproduction = true\nconfirm = true",
    ) + "\n[defaults]\nedit_interval = \"10ms\"\nconfirm_timeout = \"10m\"\n";
    TestBot::with(Options {
        config,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_confirmation_does_not_hold_once_what_is_live_changed() {
    let t = confirming_bot().await;
    ok_deploy(&t, "olga", "deploy api/main to production").await;
    ok_deploy(&t, "olga", "deploy api/main to production").await;

    // olga asks to roll back; before she answers, bob ships something new.
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    assert!(out.contains("type `yes`"), "{out}");
    let question_id = t
        .said()
        .iter()
        .rev()
        .find_map(|s| {
            s.message().actions.iter().find_map(|a| match a {
                deploybot::chat::Action::Confirm { id } => Some(id.clone()),
                _ => None,
            })
        })
        .unwrap();
    ok_deploy(&t, "bob", "deploy api/main to production").await;
    // bob's own confirmation was answered; olga's is still open.
    let posts = t.deployment_posts().len();
    let out = t
        .say_as("olga", ONCALL, "deploys", &format!("confirm {question_id}"))
        .await;
    // The old question says why it no longer holds, without a contradictory
    // "confirmed", and the new one is asked.
    assert!(!out.contains("confirmed by"), "{out}");
    assert!(
        out.contains("the deployment to go back to changed since you were asked"),
        "{out}"
    );
    assert!(out.contains("so deploybot asks again"), "{out}");
    assert!(out.contains("olga: roll back api in production"), "{out}");
    assert!(out.contains("type `yes`"), "{out}");
    assert_eq!(
        t.deployment_posts().len(),
        posts,
        "nothing deployed on a stale answer"
    );
    let out = t.say_as("olga", ONCALL, "deploys", "yes").await;
    assert!(out.contains("confirmed by olga"), "{out}");
    assert!(out.contains("Created deployment"), "{out}");
    assert_eq!(t.deployment_posts().len(), posts + 1);
}

#[tokio::test]
async fn a_second_rollback_does_not_undo_the_first() {
    let t = TestBot::with(Options {
        config: format!(
            "{}\n[defaults]\nedit_interval = \"10ms\"\n",
            support::CONFIG
        ),
        ..Default::default()
    })
    .await;
    let a = ok_deploy(&t, "olga", "deploy api/main to production").await;
    let b = ok_deploy(&t, "olga", "deploy api/main to production").await;
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    assert!(
        out.contains(&format!("(#{a},")) && out.contains("in place of"),
        "{out}"
    );
    let rollback = t.last_deployment();
    t.sandbox
        .create_deployment_status("acme/api", rollback, NewStatus::new("success"));
    let body = t.deployment_posts().pop().unwrap().body.unwrap();
    assert_eq!(body["payload"]["deploybot"]["rollback_of"], b);

    // Rolling back again must not bring back #b, the deployment that was rolled back.
    let posts = t.deployment_posts().len();
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in production")
        .await;
    assert!(out.contains("no earlier successful deployment"), "{out}");
    assert_eq!(t.deployment_posts().len(), posts);
}

/// A bot that may be killed mid-deploy: edits every 10ms, GitHub polled every second
/// (so the background work runs often), and `timeout` per GitHub request.
async fn crashable(timeout: Duration) -> TestBot {
    let config = support::CONFIG.replace(
        "token = \"${SANDBOX_TOKEN}\"",
        "token = \"${SANDBOX_TOKEN}\"\npoll_interval = \"1s\"",
    ) + "\n[defaults]\nedit_interval = \"10ms\"\n";
    TestBot::with(Options {
        config,
        timeout,
        ..Default::default()
    })
    .await
}

/// The "Creating a deployment…" message: its id, and its latest content.
fn creating_message(t: &TestBot) -> (String, Message) {
    let said = t.said();
    let id = said
        .iter()
        .find_map(|s| match s {
            Said::Sent { id, message, .. }
                if message.title.starts_with("Creating a deployment") =>
            {
                Some(id.clone())
            }
            _ => None,
        })
        .expect("a Creating… message");
    let latest = said
        .iter()
        .rev()
        .find_map(|s| match s {
            Said::Edited { id: e, message, .. } | Said::Sent { id: e, message, .. } if *e == id => {
                Some(message.clone())
            }
            _ => None,
        })
        .unwrap();
    (id, latest)
}

fn text(m: &Message) -> String {
    std::iter::once(m.title.clone())
        .chain(m.lines.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn sends(t: &TestBot) -> Vec<Message> {
    t.said()
        .into_iter()
        .filter_map(|s| match s {
            Said::Sent { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_crash_while_githubs_answer_is_in_flight_loses_no_deployment() {
    let mut t = crashable(Duration::from_secs(60)).await;
    // GitHub creates the deployment, then takes its time to say so...
    t.sandbox.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_secs(60),
    ));
    {
        let deploy = t.say("deploy api/topic to staging");
        let created = wait_for(BOUND, "GitHub to create the deployment", || {
            (!t.sandbox.deployments("acme/api").is_empty()).then_some(())
        });
        tokio::select! {
            out = deploy => panic!("answered before GitHub did: {out}"),
            () = created => {}
        }
    }
    // ...and deploybot dies before the answer arrives.
    t.kill().await;
    let id = t.last_deployment();
    // The deployer runs to the end while deploybot is down (no webhook reaches it).
    for state in ["queued", "in_progress", "success"] {
        t.sandbox
            .create_deployment_status("acme/api", id, NewStatus::new(state));
    }
    let sent_before = sends(&t).len();

    t.boot().await;
    let (m, _) = wait_for(BOUND, "the Creating… message to show success", || {
        t.message_of(id)
            .filter(|(m, _)| m.tone == Tone::Progress(DeploymentState::Success))
    })
    .await;
    assert!(m.title.contains(&format!("#{id}")), "{m:?}");
    let (mid, latest) = creating_message(&t);
    assert_eq!(latest.tone, Tone::Progress(DeploymentState::Success));
    let record = t
        .bot()
        .store()
        .tracked(
            &deploybot::model::RepoName::parse("acme/api").unwrap(),
            deploybot::model::DeploymentId(id),
        )
        .await
        .unwrap()
        .expect("tracked after the restart");
    assert_eq!(record.message_id.as_deref(), Some(mid.as_str()));
    // No second progress message: after the restart, at most the requester's mention.
    let after: Vec<Message> = sends(&t).into_iter().skip(sent_before).collect();
    assert!(
        after.len() <= 1
            && after
                .iter()
                .all(|m| m.tone == Tone::Progress(DeploymentState::Success)),
        "{after:?}"
    );
    assert_eq!(t.sandbox.deployments("acme/api").len(), 1);
    assert_eq!(t.deployment_posts().len(), 1, "never re-POSTed");
    closed(&t).await;
}

#[tokio::test]
async fn a_crash_before_github_took_the_post_says_it_was_not_created() {
    let mut t = crashable(Duration::from_secs(60)).await;
    // The POST reaches the sandbox but is held there, unprocessed...
    t.sandbox.inject(
        Fault::status(
            "POST",
            "/deployments",
            502,
            serde_json::json!({"message": "held"}),
        )
        .with_delay(Duration::from_secs(60)),
    );
    {
        let deploy = t.say("deploy api/topic to staging");
        let sent = wait_for(BOUND, "the POST to reach GitHub", || {
            (!t.deployment_posts().is_empty()).then_some(())
        });
        tokio::select! {
            out = deploy => panic!("answered before GitHub did: {out}"),
            () = sent => {}
        }
    }
    // ...when deploybot dies.
    t.kill().await;
    t.boot().await;
    let latest = wait_for(BOUND, "the message to say it was not created", || {
        let (_, latest) = creating_message(&t);
        text(&latest).contains("was not created").then_some(latest)
    })
    .await;
    let shown = text(&latest);
    assert!(
        shown.contains("safe to deploy again: `deploy api/topic to staging`"),
        "{shown}"
    );
    assert!(t.sandbox.deployments("acme/api").is_empty());
    assert_eq!(t.deployment_posts().len(), 1, "never re-POSTed");
    // The message is edited first, then the intent closed and the outcome audited.
    closed(&t).await;
    let audit = t
        .bot()
        .store()
        .audit_entries(Some("api"), None, 10)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("not created"))),
        "{audit:?}"
    );
}

/// Waits (bounded) until no intent is open, and one more store round trip after the
/// close (the audit entry that follows it).
async fn closed(t: &TestBot) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !t.bot().store().open_intents().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an intent stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audited = |entries: &[deploybot::store::AuditEntry]| {
        entries
            .iter()
            .any(|e| e.user_name == "alice" && e.detail.is_some() && e.command == "deploy")
    };
    while !audited(
        &t.bot()
            .store()
            .audit_entries(Some("api"), None, 10)
            .await
            .unwrap(),
    ) {
        assert!(tokio::time::Instant::now() < deadline, "not audited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn impatient() -> Patience {
    Patience {
        still_trying: Duration::from_millis(300),
        answer_within: Duration::from_millis(900),
        recheck_after: Duration::from_millis(100),
        not_created_after: Duration::from_secs(600),
    }
}

#[tokio::test]
async fn a_slow_github_gets_still_trying_then_an_answer_in_time_then_the_outcome() {
    let t = crashable(Duration::from_secs(60)).await;
    t.bot().intents().set_patience(impatient());
    // GitHub creates the deployment but answers long after the bound.
    t.sandbox.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_secs(3),
    ));
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("still trying (GitHub is slow)"), "{out}");
    assert!(out.contains("Not known yet"), "{out}");
    assert!(out.contains("will update this message"), "{out}");
    assert!(!out.contains("Created deployment"), "{out}");
    // The create went on in the background: the same message shows the deployment.
    let id = t.last_deployment();
    wait_for(BOUND, "the message to show the deployment", || {
        t.message_of(id)
            .filter(|(m, _)| m.tone == Tone::Progress(DeploymentState::Created))
    })
    .await;
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    wait_for(BOUND, "the message to follow it", || {
        t.message_of(id)
            .filter(|(m, _)| m.tone == Tone::Progress(DeploymentState::Success))
    })
    .await;
    assert_eq!(t.deployment_posts().len(), 1);
    let audit = t
        .bot()
        .store()
        .audit_entries(Some("api"), None, 10)
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.decision == "pending"), "{audit:?}");
    assert!(
        audit.iter().any(|e| e.deployment_id == Some(id)),
        "the late outcome is audited: {audit:?}"
    );
    // And counted, although the command's own answer was "not known yet".
    let scrape = t.bot().metrics().encode();
    let created: Vec<&str> = scrape
        .lines()
        .filter(|l| l.starts_with("deploybot_deployments_created_total{"))
        .collect();
    assert_eq!(created.len(), 1, "{scrape}");
    assert!(
        created[0].contains("app=\"api\"") && created[0].ends_with(" 1"),
        "{created:?}"
    );
}

#[tokio::test]
async fn a_github_that_times_out_everything_is_answered_in_time_and_reconciled_later() {
    // Every request of the command times out (1s here; GitHub's list recovers later).
    let t = crashable(Duration::from_secs(1)).await;
    t.bot().intents().set_patience(impatient());
    // The command's three lookups by request id (the first faults that match them)...
    t.sandbox.inject(
        Fault::status("GET", "ref=topic", 200, serde_json::Value::Null)
            .with_delay(Duration::from_secs(5))
            .times(3),
    );
    // ...and its pre-flight (repository, what is live).
    t.sandbox.inject(
        Fault::status("GET", "/repos/acme/api", 200, serde_json::Value::Null)
            .with_delay(Duration::from_secs(5))
            .times(2),
    );
    t.sandbox.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_secs(5),
    ));
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("still trying (GitHub is slow)"), "{out}");
    assert!(out.contains("Not known yet"), "{out}");
    // The command's own lookups time out too; the background check finds it later.
    let id = wait_for(BOUND, "the deployment", || {
        t.sandbox
            .deployments("acme/api")
            .first()
            .and_then(|d| d["id"].as_u64())
    })
    .await;
    let (m, _) = wait_for(Duration::from_secs(30), "the message to show it", || {
        t.message_of(id)
            .filter(|(m, _)| m.tone == Tone::Progress(DeploymentState::Created))
    })
    .await;
    assert!(m.title.contains(&format!("#{id}")), "{m:?}");
    assert_eq!(t.deployment_posts().len(), 1, "never re-POSTed");
    closed(&t).await;
}

/// A deploy's `yes` after what is live changed: the new question, never "confirmed"
/// followed by a refusal.
#[tokio::test]
async fn a_deploy_confirmed_after_what_is_live_changed_is_asked_again() {
    let t = confirming_bot().await;
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("type `yes`"), "{out}");
    ok_deploy(&t, "bob", "deploy api/main to production").await;
    let posts = t.deployment_posts().len();
    let out = t.say_as("olga", ONCALL, "deploys", "yes").await;
    assert!(!out.contains("confirmed by"), "{out}");
    assert!(
        out.contains("what is live in production changed since you were asked"),
        "{out}"
    );
    assert!(
        out.contains("olga: deploy api/topic to production?"),
        "{out}"
    );
    assert_eq!(t.deployment_posts().len(), posts);
}

#[tokio::test]
async fn a_rollback_whose_lookups_github_does_not_answer_is_answered_in_time() {
    let t = crashable(Duration::from_secs(10)).await;
    t.bot().intents().set_patience(impatient());
    // Listing the environment's deployments takes far longer than the bound.
    t.sandbox.inject(
        Fault::status("GET", "/deployments", 200, serde_json::Value::Null)
            .with_delay(Duration::from_secs(8)),
    );
    t.sandbox.set_graphql(false);
    let started = std::time::Instant::now();
    let out = t
        .say_as("olga", ONCALL, "deploys", "rollback api in staging")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}: {out}",
        started.elapsed()
    );
    assert!(out.contains("GitHub did not answer within"), "{out}");
    assert!(out.contains("nothing was deployed"), "{out}");
    assert!(out.contains("`rollback api in staging`"), "{out}");
    assert_eq!(t.deployment_posts().len(), 0);
}
