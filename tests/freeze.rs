//! Freezes end to end (real SQLite file, sandbox GitHub, shell adapter, a manual
//! clock): weekly windows in a time zone across a DST change, dated windows, per-app
//! and per-environment scope, chat freezes and `unfreeze`, the global freeze,
//! break-glass (passes, announced, audited; refused without a reason or the
//! permission, with what to type), and `why`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deploybot::chat::Action;
use deploybot::clock::ManualClock;
use support::{Options, Said, TestBot};

/// [`support::CONFIG`] (production: deploy = release/oncall, force = oncall; staging:
/// anyone) with a weekend window on every production and a dated one for `web`.
fn config() -> String {
    format!(
        r#"{}
[[freeze]]
from = "Fri 16:00"
until = "Mon 08:00"
timezone = "Europe/Berlin"
reason = "weekend: nobody on call"
environments = ["prod"]

[[freeze]]
from = "2026-12-23"
until = "2027-01-02"
timezone = "Europe/Berlin"
reason = "holiday freeze"
apps = ["web"]

[defaults]
edit_interval = "10ms"
freeze = ["release", "oncall"]
"#,
        support::CONFIG
    )
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn bot_at(start: &str) -> (TestBot, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(start)));
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

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The Force action (break-glass) on the last message the bot sent, if any.
fn last_force(t: &TestBot) -> Option<String> {
    t.said().iter().rev().find_map(|s| match s {
        Said::Sent { message, .. } => message.actions.iter().find_map(|a| match a {
            Action::Force { command } => Some(command.clone()),
            _ => None,
        }),
        _ => None,
    })
}

/// A Friday 16:00 Berlin start is 14:00 UTC in summer time (the last Friday of October
/// 2026); the clocks go back on Sunday, so it ends Monday 08:00 CET: 07:00 UTC, not
/// 06:00.
#[tokio::test]
async fn a_weekly_window_refuses_inside_and_allows_outside_across_a_dst_change() {
    let (t, clock) = bot_at("2026-10-23T13:59:00Z").await;
    let out = t
        .say_as("rel", RELEASE, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("Created deployment"), "before 16:00: {out}");
    assert_eq!(t.deployment_posts().len(), 1);

    clock.advance(minutes(1));
    let out = t
        .say_as("rel", RELEASE, "deploys", "deploy api/topic to production")
        .await;
    assert!(
        out.contains("api to production is frozen: weekend: nobody on call"),
        "{out}"
    );
    // Where it is from, and when it ends: the local wall time after the change.
    assert!(out.contains("test.toml:"), "{out}");
    assert!(
        out.contains("until Mon 2026-10-26 08:00 Europe/Berlin (in 2d 17h)"),
        "{out}"
    );
    // rel may not force in production: no break-glass offered, but who could.
    assert!(out.contains("ask someone with the oncall role"), "{out}");
    assert_eq!(last_force(&t), None);
    assert!(out.contains("rule: freeze"), "{out}");
    assert_eq!(t.deployment_posts().len(), 1, "nothing reached GitHub");
    // The alias in the config named production only: staging is open.
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");

    // Monday 06:30 UTC is 07:30 CET: still frozen; 07:00 UTC is 08:00: open.
    clock.advance(Duration::from_secs(((2 * 24 + 16) * 60 + 30) * 60));
    assert_eq!(t.bot().now(), at("2026-10-26T06:30:00Z"));
    let out = t
        .say_as("rel", RELEASE, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("is frozen"), "{out}");
    assert!(out.contains("(in 30m)"), "{out}");
    clock.advance(minutes(30));
    let out = t
        .say_as("rel", RELEASE, "deploys", "deploy api/topic to production")
        .await;
    assert!(
        out.contains("Created deployment"),
        "after 08:00 local: {out}"
    );
}

/// In spring the clocks go forward on the last Sunday of March: Friday 16:00 is 15:00
/// UTC (CET), and Monday 08:00 is 06:00 UTC (CEST).
#[tokio::test]
async fn a_weekly_window_ends_at_local_time_when_the_clocks_go_forward() {
    let (t, clock) = bot_at("2027-03-26T14:59:00Z").await;
    let deploy = "deploy api/topic to production";
    let out = t.say_as("rel", RELEASE, "deploys", deploy).await;
    assert!(out.contains("Created deployment"), "15:59 CET: {out}");
    clock.advance(minutes(1));
    let out = t.say_as("rel", RELEASE, "deploys", deploy).await;
    assert!(
        out.contains("until Mon 2027-03-29 08:00 Europe/Berlin (in 2d 15h)"),
        "{out}"
    );
    clock.advance(Duration::from_secs((2 * 24 + 15) * 3600 - 60));
    assert_eq!(t.bot().now(), at("2027-03-29T05:59:00Z"));
    let out = t.say_as("rel", RELEASE, "deploys", deploy).await;
    assert!(out.contains("is frozen"), "07:59 CEST: {out}");
    clock.advance(minutes(1));
    let out = t.say_as("rel", RELEASE, "deploys", deploy).await;
    assert!(out.contains("Created deployment"), "08:00 CEST: {out}");
}

#[tokio::test]
async fn a_dated_window_freezes_its_app_only_and_includes_its_last_day() {
    let (t, clock) = bot_at("2026-12-22T22:59:00Z").await;
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("Created deployment"), "the 22nd: {out}");
    clock.advance(minutes(1));
    let out = t.say("deploy web to staging").await;
    assert!(
        out.contains("web to staging is frozen: holiday freeze"),
        "{out}"
    );
    assert!(
        out.contains("until Sun 2027-01-03 00:00 Europe/Berlin (in 11d)"),
        "{out}"
    );
    // The window names web: api deploys on.
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    // The whole of 2 January, Berlin time, is frozen.
    clock.advance(Duration::from_secs(11 * 86_400 - 60));
    assert_eq!(t.bot().now(), at("2027-01-02T22:59:00Z"));
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("is frozen"), "{out}");
    clock.advance(minutes(1));
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
}

/// Break-glass: `deploy!` with a reason, by someone who may force there. It passes,
/// is announced with the freeze it broke (in the channel and the notify channel) and
/// audited; without a reason, or without the permission, it is refused with what to
/// type.
#[tokio::test]
async fn break_glass_passes_a_freeze_and_is_announced_and_audited() {
    let (t, _) = bot_at("2026-12-04T16:00:00Z").await;
    // olga may force: the refusal offers break-glass, as a button and as a line.
    let out = t
        .say_as("olga", ONCALL, "deploys", "deploy api/topic to production")
        .await;
    assert!(out.contains("is frozen: weekend"), "{out}");
    assert!(
        out.contains("type `deploy! api/topic to production -- REASON`"),
        "{out}"
    );
    assert_eq!(
        last_force(&t).as_deref(),
        Some("deploy! api/topic to production -- REASON")
    );
    // Without the permission: refused by the force rule, with who has it.
    let out = t
        .say_as(
            "rel",
            RELEASE,
            "deploys",
            "deploy! api/topic to production -- urgent",
        )
        .await;
    assert!(out.contains("force role"), "{out}");
    assert!(out.contains("ask someone with the oncall role"), "{out}");
    assert!(t.deployment_posts().is_empty());

    let out = t
        .say_as(
            "olga",
            ONCALL,
            "deploys",
            "deploy! api/topic to production -- customer outage",
        )
        .await;
    assert!(out.contains("Created deployment"), "{out}");
    assert_eq!(t.deployment_posts().len(), 1);
    let announced: Vec<(String, String)> = t
        .said()
        .into_iter()
        .filter_map(|s| match s {
            Said::Sent {
                channel, message, ..
            } if message.title.contains("forced deployment") => Some((channel, message.to_text())),
            _ => None,
        })
        .collect();
    let channels: Vec<&str> = announced.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(channels, ["deploys", "ops"], "{announced:?}");
    for (_, text) in &announced {
        assert!(text.contains("reason: customer outage"), "{text}");
        assert!(
            text.contains("break-glass: it went through the freeze weekend: nobody on call"),
            "{text}"
        );
    }
    let entries = t
        .bot()
        .store()
        .audit_entries(Some("api"), Some("production"), 10)
        .await
        .unwrap();
    let glass = entries
        .iter()
        .find(|e| e.decision == "allowed")
        .expect("the break-glass deploy is audited");
    assert_eq!(glass.user_name, "olga");
    assert!(glass.deployment_id.is_some());
    assert_eq!(
        glass.detail.as_deref(),
        Some("break-glass through the freeze: weekend: nobody on call")
    );
    assert!(entries
        .iter()
        .any(|e| e.user_name == "olga" && e.rule.as_deref() == Some("freeze")));
}

#[tokio::test]
async fn a_chat_freeze_refuses_until_unfreeze_and_its_holder_is_told() {
    let (t, clock) = bot_at("2026-12-02T12:00:00Z").await;
    // Freezing takes the freeze rule (release or oncall here).
    let out = t
        .say_as("dan", DEV, "deploys", "freeze staging on api -- load test")
        .await;
    assert!(out.contains("freeze role"), "{out}");
    let out = t
        .say_as(
            "rel",
            RELEASE,
            "deploys",
            "freeze staging on api for 2h -- load test",
        )
        .await;
    assert!(out.contains("rel froze staging on api until"), "{out}");
    assert!(out.contains("(in 2h)"), "{out}");
    assert!(out.contains("type `unfreeze staging on api`"), "{out}");

    // Nobody deploys through it, not even who froze it; break-glass is offered to
    // those who may force (everyone, in staging), and without a reason says so.
    let out = t
        .say_as("rel", RELEASE, "deploys", "deploy api/topic to staging")
        .await;
    assert!(out.contains("api to staging is frozen: load test"), "{out}");
    assert!(out.contains("frozen by rel in chat"), "{out}");
    assert!(out.contains("(in 2h)"), "{out}");
    let out = t.say("deploy! api/topic to staging").await;
    assert!(
        out.contains("break-glass through a freeze needs a reason: type `deploy! api/topic to staging -- REASON`"),
        "{out}"
    );
    assert!(t.deployment_posts().is_empty());
    // Its scope: web is not frozen.
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("Created deployment"), "{out}");

    // Names are checked, with what to type instead.
    let out = t
        .say_as("rel", RELEASE, "deploys", "freeze stage on apj -- x")
        .await;
    assert!(
        out.contains("did you mean `freeze stage on api -- x`"),
        "{out}"
    );
    let out = t
        .say_as("rel", RELEASE, "deploys", "freeze stage -- x")
        .await;
    assert!(out.contains("any app has no environment `stage`"), "{out}");
    assert!(out.contains("e.g. `freeze production -- x`"), "{out}");
    let out = t
        .say_as("olga", ONCALL, "deploys", "unfreeze staging")
        .await;
    assert!(
        out.contains("staging (every app) is not frozen in chat"),
        "{out}"
    );
    assert!(
        out.contains("`unfreeze staging on api` (load test by rel)"),
        "{out}"
    );
    let out = t
        .say_as("olga", ONCALL, "deploys", "unfreeze staging on api")
        .await;
    assert!(out.contains("olga unfroze staging on api"), "{out}");
    assert!(out.contains("rel has been told"), "{out}");
    let told = t.said().into_iter().any(|s| {
        let m = s.message();
        m.mention.as_deref() == Some("rel") && m.title.contains("olga lifted your freeze")
    });
    assert!(told, "{:?}", t.said());
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");

    // `for` runs out on its own.
    t.say_as("rel", RELEASE, "deploys", "freeze qa on api for 1h -- soak")
        .await;
    let out = t.say("deploy api/topic to qa").await;
    assert!(out.contains("is frozen: soak"), "{out}");
    clock.advance(minutes(60));
    let out = t.say("deploy api/topic to qa").await;
    assert!(out.contains("Created deployment"), "{out}");

    let entries = t
        .bot()
        .store()
        .audit_entries(Some("api"), None, 50)
        .await
        .unwrap();
    assert!(entries.iter().any(|e| e.command == "freeze"
        && e.decision == "allowed"
        && e.detail.as_deref() == Some("froze staging on api: load test")));
    assert!(entries
        .iter()
        .any(|e| e.command == "unfreeze" && e.user_name == "olga"));
}

#[tokio::test]
async fn the_global_freeze_stops_every_app_and_environment() {
    let (t, _) = bot_at("2026-12-02T12:00:00Z").await;
    let out = t
        .say_as("olga", ONCALL, "deploys", "freeze -- release day")
        .await;
    assert!(
        out.contains("olga froze everything (every app, every environment) until `unfreeze`"),
        "{out}"
    );
    for line in ["deploy api/topic to staging", "deploy web to staging"] {
        let out = t.say(line).await;
        assert!(out.contains("is frozen: release day"), "{line}: {out}");
        assert!(out.contains("until someone types `unfreeze`"), "{out}");
    }
    // A rollback meets it too (the same local checks); its break-glass is a rollback.
    let out = t.say("rollback api in staging").await;
    assert!(
        out.contains("api to staging is frozen: release day"),
        "{out}"
    );
    assert!(
        out.contains("is open to you: type `rollback! api in staging -- REASON`"),
        "{out}"
    );
    assert!(t.deployment_posts().is_empty());
    // Freezing again replaces it.
    let out = t
        .say_as("rel", RELEASE, "deploys", "freeze -- release day, part two")
        .await;
    assert!(
        out.contains("replaces olga's freeze (release day)"),
        "{out}"
    );
    let out = t.say("environments api").await;
    assert!(
        out.contains("staging (default) — never deployed successfully · you can deploy · 🧊 frozen: release day, part two"),
        "{out}"
    );
    let out = t.say_as("rel", RELEASE, "deploys", "unfreeze").await;
    assert!(out.contains("rel unfroze everything"), "{out}");
    let out = t.say("deploy web to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
}

#[tokio::test]
async fn why_shows_the_freeze_in_force_or_the_next_window() {
    let (t, clock) = bot_at("2026-12-02T12:00:00Z").await;
    let out = t
        .say_as("rel", RELEASE, "deploys", "why production on api")
        .await;
    assert!(
        out.contains("rel can deploy api to production now"),
        "{out}"
    );
    assert!(
        out.contains("✅ freeze: not frozen now; next: weekend: nobody on call from Fri 2026-12-04 16:00 Europe/Berlin to Mon 2026-12-07 08:00 Europe/Berlin (in 2d 3h; test.toml:"),
        "{out}"
    );
    let out = t.say("why staging on api").await;
    assert!(out.contains("✅ freeze: not frozen"), "{out}");
    assert!(
        !out.contains("next:"),
        "no window covers api's staging: {out}"
    );

    clock.advance(Duration::from_secs((2 * 24 + 3) * 3600));
    let out = t
        .say_as("rel", RELEASE, "deploys", "why production on api")
        .await;
    assert!(
        out.contains("rel can't deploy api to production now: freeze"),
        "{out}"
    );
    assert!(
        out.contains("🚫 freeze: weekend: nobody on call (test.toml:"),
        "{out}"
    );
    assert!(
        out.contains("until Mon 2026-12-07 08:00 Europe/Berlin"),
        "{out}"
    );
}

/// The last word before creating is the freeze's: one made while the deploy's
/// pre-flight waits on GitHub stops it.
#[tokio::test]
async fn a_freeze_made_while_a_deploy_is_in_flight_stops_it() {
    let (t, _) = bot_at("2026-12-02T12:00:00Z").await;
    t.sandbox.inject(sandbox::Fault::slow_after_processing(
        "POST",
        "/graphql",
        Duration::from_millis(800),
    ));
    let deploy = t.say_as("dan", DEV, "deploys", "deploy api/topic to staging");
    let freeze = async {
        support::wait_for(Duration::from_secs(10), "the deploy's pre-flight", || {
            t.sandbox
                .requests()
                .iter()
                .any(|r| r.method == "POST" && r.path == "/graphql")
                .then_some(())
        })
        .await;
        t.say_as("olga", ONCALL, "deploys", "freeze -- incident")
            .await
    };
    let (first, second) = tokio::join!(deploy, freeze);
    let out = format!("{first}{second}");
    assert!(out.contains("olga froze everything"), "{out}");
    assert!(out.contains("api to staging is frozen: incident"), "{out}");
    assert!(
        t.deployment_posts().is_empty(),
        "deployed into a frozen environment"
    );
}
