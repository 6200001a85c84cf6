//! Guard rails end to end (real SQLite file, sandbox GitHub, shell adapter): who may
//! deploy, force and lock where; locks and their expiry; confirmations; break-glass
//! force; the audit log; and all of it across a restart.

mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::chat::{Addressing, ChatUser, Conversation, Request};
use deploybot::clock::{Clock, ManualClock};
use support::{Options, Said, TestBot};

/// [`support::CONFIG`] plus rules: locking takes a role, production locks take
/// oncall, and `canary` asks for confirmation.
fn config() -> String {
    support::CONFIG
        .replace(
            "force = [\"oncall\"]\npayload = { region = \"us\", replicas = 6 }",
            "force = [\"oncall\"]\nlock = [\"oncall\"]\npayload = { region = \"us\", replicas = 6 }\n\n[apps.api.environments.canary]\nproduction = true\nconcurrency = 0\nconfirm = true\ndeploy = [\"release\", \"oncall\"]",
        )
        + "\n[defaults]\nlock = [\"dev\", \"release\", \"oncall\"]\nlock_ttl = \"4h\"\nconfirm_timeout = \"60s\"\nedit_interval = \"10ms\"\n"
}

async fn bot_with_clock() -> (TestBot, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestBot::with(Options {
        config: config(),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    (t, clock)
}

const DEV: &[&str] = &["dev"];
const RELEASE: &[&str] = &["release"];
const ONCALL: &[&str] = &["oncall"];
const NONE: &[&str] = &[];

#[tokio::test]
async fn the_permission_matrix_holds_and_refusals_reach_nothing() {
    let (t, _) = bot_with_clock().await;
    // (roles, action, environment, allowed?, rule named in the refusal)
    let cases: &[(&[&str], &str, &str, bool, &str)] = &[
        (NONE, "deploy", "staging", true, ""),
        (DEV, "deploy", "staging", true, ""),
        (DEV, "deploy", "production", false, "deploy role"),
        (NONE, "deploy", "production", false, "deploy role"),
        (RELEASE, "deploy", "production", true, ""),
        (ONCALL, "deploy", "production", true, ""),
        (DEV, "force", "staging", true, ""),
        (RELEASE, "force", "production", false, "force role"),
        (DEV, "force", "production", false, "deploy role"),
        (ONCALL, "force", "production", true, ""),
        (NONE, "lock", "staging", false, "lock role"),
        (DEV, "lock", "staging", true, ""),
        (RELEASE, "lock", "production", false, "lock role"),
        (ONCALL, "lock", "production", true, ""),
    ];
    for (roles, action, env, allowed, rule) in cases {
        let line = match *action {
            "deploy" => format!("deploy api/topic to {env}"),
            "force" => format!("deploy! api/broken to {env} -- hotfix"),
            _ => format!("lock {env} on api"),
        };
        let posts = t.deployment_posts().len();
        let out = t.say_as("u1", roles, "deploys", &line).await;
        let what = format!("{roles:?} {line}");
        if *allowed {
            let ok = match *action {
                "lock" => out.contains("✅ u1 locked"),
                _ => out.contains("Created deployment"),
            };
            assert!(ok, "{what} should be allowed: {out}");
            if *action == "lock" {
                let out = t
                    .say_as("u1", roles, "deploys", &format!("unlock {env} on api"))
                    .await;
                assert!(out.contains("unlocked"), "{out}");
            }
        } else {
            assert!(out.contains("🚫"), "{what} should be refused: {out}");
            assert!(out.contains(&format!("rule: {rule}")), "{what}: {out}");
            assert!(
                out.contains("that takes the"),
                "{what} names the roles it needs: {out}"
            );
            assert_eq!(t.deployment_posts().len(), posts, "{what} reached GitHub");
            assert!(t
                .bot()
                .store()
                .locks(t.bot().now())
                .await
                .unwrap()
                .is_empty());
        }
    }
}

#[tokio::test]
async fn a_lock_keeps_others_out_warns_its_holder_and_expires() {
    let (t, clock) = bot_with_clock().await;
    let out = t
        .say_as(
            "bob",
            ONCALL,
            "deploys",
            "lock production on api for 2h db migration",
        )
        .await;
    assert!(out.contains("✅ bob locked production on api"), "{out}");
    assert!(out.contains("reason: db migration"), "{out}");

    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("production on api is locked by bob"), "{out}");
    assert!(out.contains("db migration"), "{out}");
    assert!(out.contains("until"), "{out}");
    assert!(out.contains("rule: lock"), "{out}");
    assert!(t.deployment_posts().is_empty());

    let out = t
        .say_as("bob", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(
        out.contains("Created deployment"),
        "the holder may deploy: {out}"
    );

    let out = t.say_as("olga", ONCALL, "deploys", "locks").await;
    assert!(out.contains("production on api — bob"), "{out}");

    // Ten minutes before the end, the holder hears about it, once.
    clock.advance(Duration::from_secs(105 * 60));
    t.bot().tick().await;
    let out = t.take_output();
    assert!(
        out.contains("@bob") && out.contains("your lock on production on api expires"),
        "{out}"
    );
    t.bot().tick().await;
    assert!(!t.take_output().contains("expires at"), "warned once");

    clock.advance(Duration::from_secs(16 * 60));
    t.bot().tick().await;
    let out = t.take_output();
    assert!(
        out.contains("bob's lock on production on api expired"),
        "{out}"
    );
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("Created deployment"), "{out}");
}

#[tokio::test]
async fn an_expired_lock_stops_counting_even_before_housekeeping() {
    let (t, clock) = bot_with_clock().await;
    t.say_as("bob", ONCALL, "deploys", "lock production on api for 30m")
        .await;
    clock.advance(Duration::from_secs(31 * 60));
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("Created deployment"), "{out}");
}

#[tokio::test]
async fn take_over_and_release_by_others_need_force_and_tell_the_holder() {
    let (t, _) = bot_with_clock().await;
    // Staging has no force rule: anyone who may lock may also take over or release.
    t.say_as("bob", DEV, "deploys", "lock staging on api -- trying a fix")
        .await;
    let out = t.say_as("dan", DEV, "deploys", "lock staging on api").await;
    assert!(out.contains("already locked by bob"), "{out}");
    assert!(out.contains("`lock! staging on api`"), "{out}");

    let out = t
        .say_as(
            "carol",
            DEV,
            "deploys",
            "lock! staging on api -- release train",
        )
        .await;
    assert!(out.contains("took it over from bob"), "{out}");
    assert!(
        out.contains("@bob") && out.contains("carol took over your lock"),
        "{out}"
    );
    let out = t.say_as("carol", DEV, "deploys", "locks").await;
    assert!(
        out.contains("carol") && out.contains("release train"),
        "{out}"
    );

    // Releasing someone else's lock takes `unlock!`: a plain `unlock` says so.
    let out = t
        .say_as("erin", DEV, "deploys", "unlock staging on api")
        .await;
    assert!(out.contains("locked by carol, not you"), "{out}");
    assert!(
        out.contains("type `unlock! staging on api` (they will be told)"),
        "{out}"
    );
    assert_eq!(t.bot().store().locks(t.bot().now()).await.unwrap().len(), 1);
    let out = t
        .say_as("erin", DEV, "deploys", "unlock! staging on api")
        .await;
    assert!(out.contains("erin unlocked staging on api"), "{out}");
    assert!(
        out.contains("@carol") && out.contains("erin released your lock"),
        "{out}"
    );

    // Production: releasing or taking over someone's lock needs oncall's force
    // permission, and the refusal names what was refused.
    t.say_as("olga", ONCALL, "deploys", "lock production on api")
        .await;
    let out = t
        .say_as("rel", RELEASE, "deploys", "unlock production on api")
        .await;
    assert!(out.contains("locked by olga, not you"), "{out}");
    assert!(out.contains("ask olga to unlock it"), "{out}");
    assert!(
        !out.contains("unlock!"),
        "rel may not, so is not offered it: {out}"
    );
    let out = t
        .say_as("rel", RELEASE, "deploys", "unlock! production on api")
        .await;
    assert!(
        out.contains("you can't release someone else's lock on production on api: that takes the oncall role"),
        "{out}"
    );
    assert!(!out.contains("force a deploy"), "{out}");
    assert!(out.contains("locked by olga"), "{out}");
    let out = t
        .say_as("rel", RELEASE, "deploys", "lock! production on api")
        .await;
    assert!(out.contains("rule: lock role"), "{out}");
    assert!(
        out.contains("you can't lock or unlock production on api"),
        "{out}"
    );
    let locks = t.bot().store().locks(t.bot().now()).await.unwrap();
    assert_eq!(locks[0].holder_name, "olga");
    // The holder's own `lock!` takes nothing over: it renews the lock.
    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "lock! production on api for 2h -- freeze",
        )
        .await;
    assert!(out.contains("olga locked production on api"), "{out}");
    assert!(out.contains("renewed your lock"), "{out}");
    assert!(!out.contains("🚫"), "{out}");
    let out = t
        .say_as("pat", ONCALL, "deploys", "lock! production on api")
        .await;
    assert!(out.contains("took it over from olga"), "{out}");
    assert!(out.contains("@olga"), "{out}");
}

/// Who may force there: the one permission behind `lock!` and `unlock!` of another's
/// lock, named as such when it is missing.
#[tokio::test]
async fn a_force_refusal_names_the_lock_action_it_refused() {
    let (t, _) = bot_with_clock().await;
    t.say_as("olga", ONCALL, "deploys", "lock production on api")
        .await;
    let out = t
        .say_as(
            "sam",
            &["oncall-trainee", "release"],
            "deploys",
            "unlock! production on api",
        )
        .await;
    assert!(out.contains("release someone else's lock"), "{out}");
    assert!(out.contains("ask someone with the oncall role"), "{out}");
    assert!(!out.contains("one of those"), "{out}");
}

#[tokio::test]
async fn racing_lock_commands_leave_exactly_one_holder() {
    let (t, _) = bot_with_clock().await;
    let bot = t.bot().clone();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let bot = bot.clone();
        tasks.push(tokio::spawn(async move {
            bot.handle(Request {
                conversation: Conversation {
                    adapter: "shell".into(),
                    channel: "deploys".into(),
                    channel_name: Some("deploys".into()),
                    thread: None,
                    interaction: None,
                },
                message_id: None,
                user: ChatUser {
                    id: format!("user{i}"),
                    name: format!("user{i}"),
                    roles: vec!["oncall".into()],
                },
                text: "lock production on api".into(),
                addressing: Addressing::Direct,
                pressed: None,
            })
            .await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let locks = t.bot().store().locks(t.bot().now()).await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let out = t.take_output();
    assert_eq!(
        out.matches("locked production on api until").count(),
        1,
        "{out}"
    );
    assert_eq!(out.matches("is already locked by").count(), 23, "{out}");
    assert!(out.contains(&format!("already locked by {}", locks[0].holder_name)));
}

#[tokio::test]
async fn a_confirmed_deploy_goes_ahead_once() {
    let (t, _) = bot_with_clock().await;
    let out = t.say("deploy api/topic to canary").await;
    assert!(out.contains("alice: deploy api/topic to canary?"), "{out}");
    assert!(out.contains("canary asks for confirmation"), "{out}");
    assert!(out.contains("type `yes` to go ahead"), "{out}");
    assert!(t.deployment_posts().is_empty(), "nothing before the answer");

    let out = t.say("yes").await;
    assert!(out.contains("confirmed by alice"), "{out}");
    assert!(out.contains("Created deployment"), "{out}");
    assert_eq!(t.deployment_posts().len(), 1);

    // The confirmation cannot be used again.
    let id = confirmation_id(&t);
    let out = t.say(&format!("confirm {id}")).await;
    assert!(out.contains("was already confirmed"), "{out}");
    let out = t.say("yes").await;
    assert!(
        out.contains("“deploy api/topic to canary” was already confirmed"),
        "{out}"
    );
    assert_eq!(t.deployment_posts().len(), 1, "a replay deploys nothing");
    let out = t.say_as("nobody", ONCALL, "deploys", "yes").await;
    assert!(out.contains("there is nothing to confirm here"), "{out}");
}

/// The id of the last confirmation the bot asked for (shown on its message).
fn confirmation_id(t: &TestBot) -> String {
    t.said()
        .iter()
        .rev()
        .find_map(|s| match s {
            Said::Sent { message, .. } => message.actions.iter().find_map(|a| match a {
                deploybot::chat::Action::Confirm { id } => Some(id.clone()),
                _ => None,
            }),
            _ => None,
        })
        .expect("a confirmation was asked")
}

#[tokio::test]
async fn only_the_requester_can_confirm_or_cancel() {
    let (t, _) = bot_with_clock().await;
    t.say("deploy api/topic to canary").await;
    let id = confirmation_id(&t);
    let out = t.say_as("mallory", ONCALL, "deploys", "yes").await;
    assert!(out.contains("only alice can confirm"), "{out}");
    let out = t
        .say_as("mallory", ONCALL, "deploys", &format!("confirm {id}"))
        .await;
    assert!(out.contains("only alice can confirm"), "{out}");
    let out = t
        .say_as("mallory", ONCALL, "deploys", &format!("cancel {id}"))
        .await;
    assert!(out.contains("only alice can cancel"), "{out}");
    assert!(t.deployment_posts().is_empty());

    let out = t.say("no").await;
    assert!(out.contains("cancelled by alice"), "{out}");
    let out = t.say(&format!("confirm {id}")).await;
    assert!(out.contains("was cancelled"), "{out}");
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn an_unanswered_confirmation_expires_with_a_message() {
    let (t, clock) = bot_with_clock().await;
    t.say("deploy api/topic to canary").await;
    let id = confirmation_id(&t);
    clock.advance(Duration::from_secs(61));
    let out = t.say(&format!("confirm {id}")).await;
    assert!(out.contains("expired"), "{out}");
    assert!(
        out.contains("to ask again, type `deploy api/topic to canary`"),
        "{out}"
    );
    t.bot().tick().await;
    let out = t.take_output();
    assert!(out.contains("was not confirmed in time"), "{out}");
    // A plain `yes`, too late: what expired, when, and what to type.
    clock.advance(Duration::from_secs(120));
    let out = t.say("yes").await;
    let expired_at = (clock.now() - chrono::Duration::seconds(121)).format("%Y-%m-%d %H:%M:%S UTC");
    assert!(
        out.contains(&format!("“deploy api/topic to canary” expired at {expired_at} (2m 1s ago), unanswered: nothing was deployed")),
        "{out}"
    );
    assert!(
        out.contains("to ask again, type `deploy api/topic to canary`"),
        "{out}"
    );
    assert!(!out.contains("nothing to confirm"), "{out}");
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn a_confirmation_rechecks_the_rules_when_answered() {
    let (t, _) = bot_with_clock().await;
    t.say("deploy api/topic to canary").await;
    // Meanwhile someone locks canary.
    t.say_as("bob", ONCALL, "deploys", "lock canary on api")
        .await;
    let out = t.say("yes").await;
    assert!(out.contains("canary on api is locked by bob"), "{out}");
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn break_glass_force_needs_a_reason_and_is_announced_with_what_it_skipped() {
    let (t, _) = bot_with_clock().await;
    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "deploy! api/broken to production",
        )
        .await;
    assert!(out.contains("needs a reason"), "{out}");
    assert!(t.deployment_posts().is_empty());

    t.say_as(
        "olga",
        ONCALL,
        "deploys",
        "deploy! api/broken to production -- login is down",
    )
    .await;
    let announcements: Vec<(String, String)> = t
        .said()
        .into_iter()
        .filter_map(|s| match s {
            Said::Sent {
                channel, message, ..
            } if message.title.contains("forced deployment") => Some((channel, message.to_text())),
            _ => None,
        })
        .collect();
    assert_eq!(
        announcements
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>(),
        vec!["deploys", "ops"],
        "{announcements:?}"
    );
    let text = &announcements[1].1;
    assert!(text.contains("olga forced deployment"), "{text}");
    assert!(text.contains("reason: login is down"), "{text}");
    assert!(
        text.contains("ci/build: failure") && text.contains("security: pending"),
        "{text}"
    );
    assert!(text.contains("from #deploys"), "{text}");
}

#[tokio::test]
async fn why_explains_what_would_stop_a_deploy() {
    let (t, _) = bot_with_clock().await;
    let out = t
        .say_as("dan", DEV, "deploys", "why production on api")
        .await;
    assert!(
        out.contains("dan can't deploy api to production now: deploy role"),
        "{out}"
    );
    assert!(out.contains("the release or oncall roles"), "{out}");
    t.say_as("bob", ONCALL, "deploys", "lock production on api -- freeze")
        .await;
    let out = t.say_as("olga", ONCALL, "deploys", "why production").await;
    assert!(
        out.contains("can't deploy api to production now: lock"),
        "{out}"
    );
    assert!(
        out.contains("held by bob") && out.contains("freeze"),
        "{out}"
    );
    let out = t
        .say_as("olga", ONCALL, "random", "why canary on api")
        .await;
    assert!(out.contains("channel"), "{out}");
    assert!(out.contains("confirmation"), "{out}");
    let out = t
        .say_as("bob", ONCALL, "deploys", "why production on api")
        .await;
    assert!(
        out.contains("bob can deploy api to production now"),
        "{out}"
    );
    assert!(out.contains("lock: yours"), "{out}");
}

#[tokio::test]
async fn the_audit_log_records_every_attempt_and_its_rule() {
    let (t, _) = bot_with_clock().await;
    t.say_as("dan", DEV, "deploys", "deploy api/topic to production")
        .await;
    t.say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    t.say_as("olga", ONCALL, "deploys", "lock production on api")
        .await;
    t.say_as("dan", DEV, "deploys", "deploy api staging").await;
    t.say_as(
        "eve",
        DEV,
        "deploys",
        "deploy api/x'; DROP TABLE audit; -- to staging",
    )
    .await;
    let id = t.last_deployment();

    let out = t
        .say_as("olga", ONCALL, "deploys", "audit api in production")
        .await;
    assert!(
        out.contains("dan in #deploys: `deploy api/topic to production` → refused (deploy role)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "olga in #deploys: `deploy api/topic to production` → allowed (deployment #{id})"
        )),
        "{out}"
    );
    assert!(out.contains("`lock production on api` → allowed"), "{out}");
    assert!(!out.contains("staging"), "filtered to production: {out}");

    let entries = t
        .bot()
        .store()
        .audit_entries(None, None, 100)
        .await
        .unwrap();
    assert!(entries
        .iter()
        .any(|e| e.rule.as_deref() == Some("syntax") && e.user_name == "dan"));
    assert!(entries
        .iter()
        .any(|e| e.user_name == "eve" && e.text.contains("DROP TABLE")));
    // The audit command itself is in the log too, after the five before it.
    assert_eq!(entries.len(), 6, "{entries:#?}");
}

#[tokio::test]
async fn locks_confirmations_and_the_audit_log_survive_a_restart() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut t = TestBot::with(Options {
        config: config(),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    t.say_as("bob", ONCALL, "deploys", "lock production on api -- freeze")
        .await;
    t.say("deploy api/topic to canary").await;
    t.kill().await;
    t.boot().await;

    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("locked by bob"), "{out}");
    let out = t.say("yes").await;
    assert!(
        out.contains("Created deployment"),
        "the confirmation outlived the restart: {out}"
    );
    let entries = t
        .bot()
        .store()
        .audit_entries(None, None, 100)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.text == "lock production on api -- freeze"),
        "{entries:#?}"
    );

    // A confirmation that expires while the bot is down is expired when it comes back.
    t.say("deploy api/main to canary").await;
    t.kill().await;
    clock.advance(Duration::from_secs(120));
    t.boot().await;
    t.bot().tick().await;
    let out = t.take_output();
    assert!(out.contains("was not confirmed in time"), "{out}");
}

#[tokio::test]
async fn deploy_lock_tasks_are_locks() {
    let (t, _) = bot_with_clock().await;
    let out = t
        .say_as(
            "bob",
            ONCALL,
            "deploys",
            "deploy:lock api to production -- freeze",
        )
        .await;
    assert!(out.contains("bob locked production on api"), "{out}");
    let out = t
        .say_as("bob", ONCALL, "deploys", "deploy:unlock api to production")
        .await;
    assert!(out.contains("bob unlocked production on api"), "{out}");
    assert!(t.deployment_posts().is_empty());
}

/// One rule for how long a lock lasts: `help lock`, the refusals and the lock itself
/// say the same, and an out-of-range duration is refused with the limit, never cut
/// short or kept as a reason.
#[tokio::test]
async fn lock_durations_follow_one_rule_everywhere() {
    let (t, _) = bot_with_clock().await;
    let help = t.say("help lock").await;
    assert!(help.contains("from 1m to 7d"), "{help}");
    assert!(
        help.contains("without `for` it lasts `lock_ttl` (4h unless configured)"),
        "{help}"
    );
    assert!(!help.contains("until `unlock`"), "{help}");

    let out = t
        .say_as("olga", ONCALL, "deploys", "lock production on api")
        .await;
    assert!(
        out.contains("(in 4h) — the default, `lock_ttl`; `for 2h` chooses"),
        "{out}"
    );
    t.say_as("olga", ONCALL, "deploys", "unlock production on api")
        .await;

    for (line, says) in [
        (
            "lock production on api for 30d",
            "`for 30d` is out of range",
        ),
        ("lock production on api for 10y", "`10y` is not a duration"),
        ("lock production on api for 0m", "`for 0s` is out of range"),
    ] {
        let out = t.say_as("olga", ONCALL, "deploys", line).await;
        assert!(out.contains(says), "{line}: {out}");
        assert!(out.contains("(1m to 7d)"), "{line} names the limit: {out}");
        assert!(!out.contains("until `unlock`"), "{line}: {out}");
        assert!(
            t.bot()
                .store()
                .locks(t.bot().now())
                .await
                .unwrap()
                .is_empty(),
            "{line} locked something"
        );
    }
    let out = t
        .say_as("olga", ONCALL, "deploys", "lock production on api for 30d")
        .await;
    assert!(
        out.contains("did you mean `lock production on api for 7d`?"),
        "{out}"
    );
}

/// The question asks about everything a `yes` commits to: that it is forced, which
/// failing checks that skips, and the reason.
#[tokio::test]
async fn a_forced_deploy_asks_with_what_force_skips() {
    let (t, _) = bot_with_clock().await;
    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "deploy! api/broken to canary -- hotfix",
        )
        .await;
    assert!(out.contains("olga: deploy api/broken to canary?"), "{out}");
    assert!(
        out.contains("⚠️ forced: the required checks are skipped"),
        "{out}"
    );
    let bypassed = out
        .lines()
        .find(|l| l.contains("bypassed:"))
        .unwrap_or_default();
    assert!(
        bypassed.contains("ci/build: failure") && bypassed.contains("security: pending"),
        "{out}"
    );
    assert!(out.contains("reason: hotfix"), "{out}");
    assert!(t.deployment_posts().is_empty());
}

/// Announcements in the notify channel are for production: forcing staging is not one.
#[tokio::test]
async fn a_forced_staging_deploy_is_not_announced_in_the_notify_channel() {
    let (t, _) = bot_with_clock().await;
    let out = t
        .say_as("dan", DEV, "deploys", "deploy! api/topic to staging")
        .await;
    assert!(out.contains("Created deployment"), "{out}");
    let elsewhere: Vec<String> = t
        .said()
        .into_iter()
        .filter_map(|s| match s {
            Said::Sent {
                channel, message, ..
            } if channel != "deploys" => Some(message.to_text()),
            _ => None,
        })
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
}

/// Wording: one role is "the role", everyone is "anyone", one deployment is not "Last
/// 1 deployment", audit times carry the year and the zone, help's ids look like real
/// ones, and an environment called production is not "production (production)".
#[tokio::test]
async fn answers_read_naturally() {
    let (t, _) = bot_with_clock().await;
    let out = t.say_as("dan", DEV, "deploys", "why staging on api").await;
    assert!(out.contains("✅ role: anyone may deploy here"), "{out}");
    assert!(!out.contains("qualify"), "{out}");
    let out = t
        .say_as(
            "rel",
            RELEASE,
            "deploys",
            "deploy! api/broken to production -- x",
        )
        .await;
    assert!(out.contains("ask someone with the oncall role"), "{out}");
    assert!(!out.contains("one of those"), "{out}");

    t.say("deploy api/topic to staging").await;
    let out = t.say("deploys api last 1").await;
    assert!(out.contains("Latest deployment of api"), "{out}");
    assert!(!out.contains("Last 1 deployment"), "{out}");

    let out = t.say("audit").await;
    let today = t.bot().now().format("%Y-%m-%d").to_string();
    assert!(
        out.contains(&today) && out.contains(" UTC alice in #deploys"),
        "{out}"
    );

    let out = t.say("help confirm").await;
    assert!(out.contains("`confirm 3478be`"), "{out}");
    assert!(!out.contains("4711"), "{out}");
    let out = t.say("where is api").await;
    assert!(!out.contains("production (production)"), "{out}");
}
