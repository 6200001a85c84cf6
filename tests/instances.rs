//! Two instances on one PostgreSQL database, in one process: the leader applies every
//! webhook event, whichever instance GitHub delivered it to, so each status is shown
//! once and the requester is told once. Most tests run two real Discord adapters
//! (`DiscordBot`, the serenity client) against one fake Discord (`tests/fake_discord/`),
//! with GitHub's deliveries spread over both by a round-robin balancer
//! (`tests/balancer/`). Runs when `DEPLOYBOT_TEST_POSTGRES` names a server (see
//! tests/pg/mod.rs).

mod balancer;
mod fake_discord;
mod pg;
mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::bot::Parts;
use deploybot::chat::shell::{self, Identity, SharedBuffer};
use deploybot::chat::Tone;
use deploybot::clock::SystemClock;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use deploybot::model::DeploymentState;
use deploybot::service::Service;
use deploybot::store::postgres::PostgresStore;
use sandbox::{NewStatus, Sandbox};
use support::{parse_config, seed, wait_for, RecordingChat, Said, SECRET};

const BOUND: Duration = Duration::from_secs(20);

async fn instance(sb: &Sandbox, url: &str) -> (Service, Arc<RecordingChat>) {
    let text = format!(
        "{}\n[storage]\nurl = \"{url}\"\n",
        support::with_webhook("10ms")
    );
    let config = Arc::new(parse_config(&text, sb, &sb.token()));
    let github = HttpGitHub::with_timeout(
        &config.github.api_url,
        Arc::new(StaticToken::new(sb.token().into())),
        Duration::from_secs(10),
    )
    .unwrap();
    let chat = Arc::new(RecordingChat::new(SharedBuffer::default()));
    let service = Service::start(Parts {
        config,
        github: Arc::new(github),
        chat: chat.clone(),
        store: Arc::new(PostgresStore::open(url, 4).await.unwrap()),
        clock: Arc::new(SystemClock),
        adapter: shell::ADAPTER.to_string(),
    })
    .await
    .unwrap();
    (service, chat)
}

/// Final-state messages about deployment `id` in a chat: edits to success, and the
/// requester's notice.
fn finals(chat: &RecordingChat, id: u64) -> (usize, usize) {
    let said = chat.said.lock().unwrap().clone();
    let edits = said
        .iter()
        .filter(|s| {
            let m = s.message();
            m.tone == Tone::Progress(DeploymentState::Success)
                && m.mention.is_none()
                && m.title.contains(&format!("#{id} "))
        })
        .count();
    let notices = said
        .iter()
        .filter(|s| matches!(s, Said::Sent { .. }) && s.message().mention.is_some())
        .count();
    (edits, notices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_delivered_to_the_standby_is_applied_once_by_the_leader() {
    let Some(admin) = pg::server("a_status_delivered_to_the_standby_is_applied_once_by_the_leader")
    else {
        return;
    };
    pg::with_fresh(&admin, |url| async move {
        let sb = Sandbox::start().await.unwrap();
        seed(&sb);
        let (leader, leader_chat) = instance(&sb, &url).await;
        tokio::time::timeout(BOUND, leader.lease().leading())
            .await
            .expect("the first instance leads");
        let (standby, standby_chat) = instance(&sb, &url).await;
        assert!(!standby.lease().is_leader());

        // A deploy through the leader (it holds the chat).
        let identity = Identity {
            user: "alice".into(),
            roles: vec!["release".into()],
            channel: "deploys".into(),
        };
        shell::run(
            &leader.bot,
            &identity,
            "deploy api/topic to staging\n".as_bytes(),
            "!",
        )
        .await;
        let id = sb.deployments("acme/api")[0]["id"].as_u64().unwrap();

        // GitHub delivers the statuses to the standby only.
        let standby_hook = format!("http://{}/webhook", standby.webhook_addr().unwrap());
        sb.add_webhook(&standby_hook, SECRET);
        sb.create_deployment_status("acme/api", id, NewStatus::new("in_progress"));
        sb.create_deployment_status("acme/api", id, NewStatus::new("success"));
        let answered = || {
            sb.deliveries()
                .into_iter()
                .filter(|d| d.event == "deployment_status")
                .filter_map(|d| d.response_status)
                .collect::<Vec<_>>()
        };
        wait_for(BOUND, "both deliveries answered", || {
            (answered().len() == 2).then_some(())
        })
        .await;
        assert_eq!(answered(), [202, 202], "the standby takes them in");

        // The leader shows them: the final state once, the requester told once.
        wait_for(BOUND, "the final state on the leader", || {
            (finals(&leader_chat, id) == (1, 1)).then_some(())
        })
        .await;
        leader.bot.tracker().flush(BOUND).await;
        assert_eq!(finals(&leader_chat, id), (1, 1));
        let standby_said = standby_chat.said.lock().unwrap().clone();
        assert!(
            standby_said.is_empty(),
            "the standby says nothing: {standby_said:#?}"
        );
        standby.stop(Duration::from_secs(5)).await;
        leader.stop(Duration::from_secs(5)).await;
        sb.shutdown();
    })
    .await;
}

// Two Discord adapters ------------------------------------------------------------

use balancer::Balancer;
use deploybot::bot::Bot;
use deploybot::chat::discord::{DiscordBot, RunError};
use deploybot::lease::Lease;
use fake_discord::{FakeDiscord, APP_ID, DEPLOYS, GUILD, RANDOM, RELEASE};
use serde_json::{json, Value};

const ALICE: (u64, &str) = (100_000_000_000_000_001, "alice");
const BOB: (u64, &str) = (100_000_000_000_000_002, "bob");
/// The lease the tests run with (`[storage] lease_ttl`): a take-over within about 4 s.
const LEASE_TTL: &str = "3s";

/// One `deploybot run` in this process: the Discord adapter and its service.
struct Live {
    bot: Bot,
    lease: Lease,
    webhook: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), RunError>>>,
}

impl Live {
    async fn start(fake: &FakeDiscord, sb: &Sandbox, url: &str) -> Live {
        let text = support::discord_config(
            &fake.url(),
            GUILD,
            &format!("url = \"{url}\"\npool_size = 4\nlease_ttl = \"{LEASE_TTL}\""),
            "127.0.0.1:0",
            "",
        );
        let config = parse_config(&text, sb, &sb.token());
        let discord = DiscordBot::new(Arc::new(config), Arc::new(SystemClock))
            .await
            .expect("the Discord adapter starts");
        let bot = discord.bot().clone();
        let lease = discord.lease().clone();
        let webhook = format!(
            "http://{}/webhook",
            discord.webhook_addr().expect("webhook server")
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(discord.run(async {
            let _ = stopped.await;
        }));
        Live {
            bot,
            lease,
            webhook,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn metrics(&self) -> String {
        self.bot.metrics().encode()
    }

    /// The value of the metric line starting with `name` (labels included), 0 if absent.
    fn metric(&self, name: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The sum of every line of metric `name`, whatever its labels.
    fn sum(&self, name: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
            assert!(
                matches!(stopped, Ok(Ok(Ok(())))),
                "a clean stop: {stopped:?}"
            );
        }
    }
}

/// A fake Discord, a seeded sandbox and two adapters on one database: the first leads
/// (its gateway connected, its slash commands registered), the second stands by.
/// GitHub's deliveries go through a round-robin balancer in front of both.
struct Pair {
    fake: FakeDiscord,
    sb: Sandbox,
    a: Live,
    b: Live,
    balancer: Balancer,
}

impl Pair {
    async fn start(url: &str) -> Pair {
        let fake = FakeDiscord::start().await;
        let sb = Sandbox::start().await.expect("sandbox");
        seed(&sb);
        let a = Live::start(&fake, &sb, url).await;
        tokio::time::timeout(BOUND, a.lease.leading())
            .await
            .expect("the first instance leads");
        wait_for(BOUND, "the leader's gateway and slash commands", || {
            (fake.identifies() == 1 && !fake.calls_to("PUT", "/commands").is_empty()).then_some(())
        })
        .await;
        let b = Live::start(&fake, &sb, url).await;
        let balancer = Balancer::start(vec![a.webhook.clone(), b.webhook.clone()]).await;
        sb.add_webhook(&balancer.url(), SECRET);
        assert!(!b.lease.is_leader(), "the second instance stands by");
        Pair {
            fake,
            sb,
            a,
            b,
            balancer,
        }
    }

    async fn stop(self) {
        self.b.stop().await;
        self.a.stop().await;
        self.sb.shutdown();
    }

    fn deployment_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .sb
            .deployments("acme/api")
            .iter()
            .filter_map(|d| d["id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The channel message that tracks deployment `id` (from its payload).
    fn message_of(&self, id: u64) -> u64 {
        let d = self
            .sb
            .deployments("acme/api")
            .into_iter()
            .find(|d| d["id"] == id)
            .expect("the deployment");
        d["payload"]["deploybot"]["chat"]["message"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .expect("the payload names its message")
    }

    /// Deploys api/topic to staging by typing it (through the leader's gateway); the
    /// deployment's id, once its message says it was created.
    async fn deploy_typed(&self) -> u64 {
        let before = self.deployment_ids().len();
        self.fake
            .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
        self.created(before).await
    }

    async fn created(&self, before: usize) -> u64 {
        let id = wait_for(BOUND, "a new deployment", || {
            let ids = self.deployment_ids();
            (ids.len() > before).then(|| ids[ids.len() - 1])
        })
        .await;
        let message = self.message_of(id);
        wait_for(BOUND, "its message to say it was created", || {
            self.fake
                .message(message)
                .filter(|m| title(m).contains(&format!("Created deployment #{id} ")))
        })
        .await;
        id
    }

    /// Renders of deployment `id` in its final state (success) — posts or edits of its
    /// message — and notices mentioning the requester.
    fn finals(&self, id: u64) -> (usize, usize) {
        let message = self.message_of(id);
        let deployment = format!("Deployment #{id} of api/topic ");
        let renders = self
            .fake
            .edits_titled(DEPLOYS, message, &[&deployment, ": success"]);
        let notice = format!("#{id} ");
        let notices = self
            .fake
            .mentions_titled(DEPLOYS, ALICE.0, &[&notice, " succeeded "]);
        (renders, notices)
    }

    /// Waits until deployment `id`'s message shows success, then for both instances'
    /// pending renders.
    async fn settled(&self, id: u64) {
        let message = self.message_of(id);
        wait_for(
            BOUND,
            &format!("deployment #{id} shown as succeeded"),
            || {
                self.fake
                    .message(message)
                    .filter(|m| title(m).ends_with(": success"))
            },
        )
        .await;
        wait_for(BOUND, &format!("the notice of #{id}"), || {
            (self.finals(id).1 > 0).then_some(())
        })
        .await;
        self.a.bot.tracker().flush(BOUND).await;
        self.b.bot.tracker().flush(BOUND).await;
    }

    /// Every post and edit of deployment `id`'s message, one line each (for failures).
    fn renders(&self, id: u64) -> String {
        let message = self.message_of(id);
        self.fake
            .calls()
            .iter()
            .filter(|c| c.path.contains(&format!("/channels/{DEPLOYS}/messages")))
            .filter(|c| {
                c.created == Some(message)
                    || c.path.ends_with(&message.to_string())
                    || title(&c.body).contains(&format!("#{id} "))
            })
            .map(|c| {
                format!(
                    "{} {} {:?} {}",
                    c.method,
                    c.path,
                    title(&c.body),
                    c.body["content"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Channel posts in #deploys whose title contains `text`.
    fn posts(&self, text: &str) -> usize {
        self.fake
            .calls_to("POST", &format!("/channels/{DEPLOYS}/messages"))
            .iter()
            .filter(|c| title(&c.body).contains(text))
            .count()
    }
}

fn title(m: &Value) -> String {
    m["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A test against a fresh database, skipped (saying so) without a server.
async fn on_postgres<F: std::future::Future<Output = ()>>(
    test: &str,
    body: impl FnOnce(String) -> F,
) {
    let Some(admin) = pg::server(test) else {
        return;
    };
    pg::with_fresh(&admin, body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_two_instances_a_text_and_a_slash_command_each_make_one_deployment_and_one_reply() {
    on_postgres(
        "through_two_instances_a_text_and_a_slash_command",
        |url| async move {
            let p = Pair::start(&url).await;
            let typed = p.deploy_typed().await;
            let before = p.deployment_ids().len();
            let (_, token) = p.fake.slash(
                2,
                DEPLOYS,
                (ALICE.0, ALICE.1, &[RELEASE]),
                "deploy",
                json!([
                    {"name": "app", "type": 3, "value": "api"},
                    {"name": "ref", "type": 3, "value": "topic"},
                    {"name": "environment", "type": 3, "value": "staging"},
                ]),
            );
            let slashed = p.created(before).await;
            let follow_up = format!("/webhooks/{APP_ID}/{token}/messages/@original");
            wait_for(BOUND, "the slash command's follow-up", || {
                (!p.fake.calls_to("PATCH", &follow_up).is_empty()).then_some(())
            })
            .await;
            // GitHub reports both deployments' progress, the balancer spreading the
            // deliveries over both instances.
            for id in [typed, slashed] {
                p.sb.create_deployment_status("acme/api", id, NewStatus::new("in_progress"));
                p.sb.create_deployment_status("acme/api", id, NewStatus::new("success"));
            }
            p.settled(typed).await;
            p.settled(slashed).await;

            assert_eq!(p.deployment_ids(), [typed, slashed], "one deployment each");
            let posts =
                p.sb.requests()
                    .into_iter()
                    .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
                    .count();
            assert_eq!(posts, 2, "one POST /deployments each");
            assert_eq!(
                p.posts("Creating a deployment of api/topic"),
                2,
                "one reply each"
            );
            assert_eq!(
                p.fake.calls_to("PATCH", &follow_up).len(),
                1,
                "one follow-up"
            );
            assert_eq!(
                p.fake.calls_to("POST", "/callback").len(),
                1,
                "one deferral"
            );
            for id in [typed, slashed] {
                assert_eq!(
                    p.finals(id),
                    (1, 1),
                    "#{id}: shown once, alice told once\n{}",
                    p.renders(id)
                );
            }
            // Every answer came from the leader; the standby took deliveries in.
            let deploys = "deploybot_commands_total{command=\"deploy\",decision=\"allowed\"}";
            assert_eq!(p.a.metric(deploys), 2.0, "{}", p.a.metrics());
            assert_eq!(p.b.metric(deploys), 0.0, "{}", p.b.metrics());
            let log = p.balancer.log();
            assert!(
                log.iter().any(|(i, _)| *i == 0) && log.iter().any(|(i, _)| *i == 1),
                "deliveries reached both: {log:?}"
            );
            assert!(log.iter().all(|(_, s)| (200..300).contains(s)), "{log:?}");
            assert_eq!(p.fake.identifies(), 1, "one gateway");
            p.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_statuses_spread_over_both_instances_shows_each_final_state_once() {
    on_postgres(
        "a_burst_of_statuses_spread_over_both_instances",
        |url| async move {
            let p = Pair::start(&url).await;
            // An odd number of deployments, so that round robin sends each deployment's
            // statuses to both instances in turn.
            let mut ids = Vec::new();
            for _ in 0..5 {
                ids.push(p.deploy_typed().await);
            }
            let steps = 12;
            for step in 0..steps {
                for &id in &ids {
                    p.sb.create_deployment_status(
                        "acme/api",
                        id,
                        NewStatus {
                            description: Some(format!("step {step}")),
                            ..NewStatus::new("in_progress")
                        },
                    );
                }
            }
            for &id in &ids {
                p.sb.create_deployment_status("acme/api", id, NewStatus::new("success"));
            }
            for &id in &ids {
                p.settled(id).await;
            }
            for &id in &ids {
                assert_eq!(
                    p.finals(id),
                    (1, 1),
                    "#{id}: one final render, one notice\n{}",
                    p.renders(id)
                );
            }
            let log = p.balancer.log();
            let statuses = ids.len() * (steps + 1);
            assert!(log.len() >= statuses, "{} deliveries: {log:?}", log.len());
            assert!(log.iter().all(|(_, s)| (200..300).contains(s)), "{log:?}");
            let to_b = log.iter().filter(|(i, _)| *i == 1).count();
            assert!(
                to_b * 3 >= log.len(),
                "about half went to the standby: {log:?}"
            );
            // Only the leader renders: the standby posted and edited nothing.
            assert_eq!(
                p.b.sum("deploybot_chat_requests_total"),
                0.0,
                "{}",
                p.b.metrics()
            );
            assert!(p.a.sum("deploybot_chat_requests_total") > 0.0);
            p.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_past_its_lease_answers_nothing_on_its_still_open_gateway() {
    on_postgres(
        "a_leader_past_its_lease_answers_nothing",
        |url| async move {
            let p = Pair::start(&url).await;
            // The leader stops renewing (a partition from the database, a stalled keeper):
            // its role never changes as far as its gateway loop knows, so its gateway stays
            // connected; only its deadline passes. The standby takes the lease and its own
            // gateway.
            p.a.lease.abandon();
            wait_for(
                BOUND,
                "the standby to lead with a gateway of its own",
                || {
                    (p.b.lease.is_leader()
                        && p.fake.identifies() == 2
                        && p.fake.calls_to("PUT", "/commands").len() == 2)
                        .then_some(())
                },
            )
            .await;
            assert!(!p.a.lease.is_leader(), "past its deadline");
            // A command arrives on both gateway sessions: the new leader's and the old one's.
            let answers = || {
                p.fake
                    .calls_to("POST", &format!("/channels/{RANDOM}/messages"))
                    .len()
            };
            p.fake.say_everywhere(RANDOM, ALICE, &[], "!locks");
            let fenced = "deploybot_gateway_events_fenced_total";
            let locks = "deploybot_commands_total{command=\"locks\",decision=\"allowed\"}";
            // A command is counted when its audit entry is written, after its answer.
            let counted = || p.a.metric(locks) + p.b.metric(locks);
            wait_for(
                BOUND,
                "the new leader's answer (counted) and the old one's fence",
                || {
                    ((answers() >= 1 && counted() >= 1.0 && p.a.metric(fenced) >= 1.0)
                        || answers() >= 2)
                        .then_some(())
                },
            )
            .await;
            assert_eq!(p.a.metric(locks), 0.0, "the old leader handled nothing");
            assert_eq!(p.b.metric(locks), 1.0, "the new leader answered");
            assert_eq!(answers(), 1, "answered once");
            assert_eq!(p.a.metric(fenced), 1.0, "{}", p.a.metrics());
            p.stop().await;
        },
    )
    .await;
}

/// `user` with the release role, in #deploys, as the Discord adapter makes requests.
fn typed_in_deploys(user: (u64, &str), text: &str) -> deploybot::chat::Request {
    use deploybot::chat::{Addressing, ChatUser, Conversation, Request};
    Request {
        conversation: Conversation {
            adapter: "discord".into(),
            channel: DEPLOYS.to_string(),
            channel_name: Some("deploys".into()),
            thread: None,
            interaction: None,
        },
        message_id: None,
        user: ChatUser {
            id: user.0.to_string(),
            name: user.1.to_string(),
            roles: vec!["release".into()],
        },
        text: text.to_string(),
        addressing: Addressing::Prefix,
        pressed: None,
    }
}

/// Only the leader receives commands (it alone holds the gateway), so two instances
/// handle commands at once only in a hand-over: the old leader finishing a command it
/// received before its deadline while the new one handles the next. Here alice's
/// `lock` comes through the leader's gateway while bob's, at the same moment, is
/// handled by the other instance's core (`Bot::handle`, as its gateway handler
/// would); then both cores at the same moment. The store's primary key lets exactly
/// one win, whichever instance (either user wins, from run to run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_locking_one_environment_through_both_instances_exactly_one_wins() {
    on_postgres(
        "two_users_locking_one_environment_through_both_instances",
        |url| async move {
            let p = Pair::start(&url).await;
            let mut winners = Vec::new();
            for env in ["staging", "qa", "production"] {
                let line = format!("lock {env} on api");
                let before_won = p.posts(&format!(" locked {env} on api until "));
                let before_lost = p.posts(&format!("{env} on api is already locked by "));
                p.fake.say(DEPLOYS, ALICE, &[RELEASE], &format!("!{line}"));
                p.b.bot.handle(typed_in_deploys(BOB, &line)).await;
                wait_for(BOUND, &format!("both answers about {env}"), || {
                    let won = p.posts(&format!(" locked {env} on api until ")) - before_won;
                    let lost =
                        p.posts(&format!("{env} on api is already locked by ")) - before_lost;
                    (won + lost >= 2).then_some((won, lost))
                })
                .await;
                let won = p.posts(&format!(" locked {env} on api until ")) - before_won;
                let lost = p.posts(&format!("{env} on api is already locked by ")) - before_lost;
                assert_eq!((won, lost), (1, 1), "{env}: one wins, one is refused");
                let locks =
                    p.a.bot
                        .store()
                        .locks(chrono::Utc::now())
                        .await
                        .expect("locks");
                let held: Vec<_> = locks.iter().filter(|l| l.environment == env).collect();
                assert_eq!(held.len(), 1, "{env}: {locks:?}");
                winners.push(held[0].holder_name.clone());
            }
            // And both cores at the very same moment, each instance handling one.
            let line = "lock staging on web";
            let (first, second) = tokio::join!(
                p.a.bot.handle(typed_in_deploys(ALICE, line)),
                p.b.bot.handle(typed_in_deploys(BOB, line)),
            );
            let decisions = format!("{first:?} / {second:?}");
            let won = p.posts(" locked staging on web until ");
            let lost = p.posts("staging on web is already locked by ");
            assert_eq!(
                (won, lost),
                (1, 1),
                "web: one wins, one is refused: {decisions}"
            );
            let held =
                p.a.bot
                    .store()
                    .lock("web", "staging", chrono::Utc::now())
                    .await
                    .expect("the lock");
            winners.push(held.expect("held").holder_name);
            let lock = "deploybot_commands_total{command=\"lock\",decision=\"allowed\"}";
            assert_eq!(
                p.a.metric(lock) + p.b.metric(lock),
                4.0,
                "one winner per environment"
            );
            eprintln!("winners: {winners:?}");
            p.stop().await;
        },
    )
    .await;
}
