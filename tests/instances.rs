//! Two instances on one PostgreSQL database, in one process: the leader applies every
//! webhook event, whichever instance GitHub delivered it to, so each status is shown
//! once and the requester is told once. Runs when `DEPLOYBOT_TEST_POSTGRES` names a
//! server (see tests/pg/mod.rs).

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
