//! `deploybot demo`'s suggested list, followed in order as its guide prints it, works
//! without a surprise: each line answers what the guide says it does (the refusals it
//! promises, and nothing else refused), against the demo's own seed and config.

mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::bot::Parts;
use deploybot::chat::shell::{self, Identity, SharedBuffer, ShellChat};
use deploybot::clock::SystemClock;
use deploybot::demo;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use deploybot::service::{store_from, Service};
use sandbox::{Deployer, Sandbox};
use support::wait_for;

/// What each line of the guide must answer (a substring), and whether the guide
/// promises a refusal for it.
#[rustfmt::skip]
const EXPECTED: &[(&str, &str, bool)] = &[
    ("deploy api/topic to staging", "Created deployment", false),
    ("deploy api/broken to staging", "ci/build: failure", true),
    ("deploy! api/broken to staging", "Created deployment", false),
    ("deploy api to production", "type `yes` to go ahead", false),
    ("yes", "Created deployment", false),
    ("deploy! api/broken to production", "that takes the oncall role", true),
    ("deploy api/nope to staging", "api has no ref `nope`", true),
    ("deploy api staging", "did you mean `deploy api to staging`?", true),
    ("deploy web to prod", "Created deployment", false),
    ("deploys api", "deployments of api", false),
    ("where is api", "Environments of api", false),
    ("rollback api in staging", "rollback: puts back", false),
    ("lock staging on api -- testing", "you locked staging on api", false),
    ("deploy web queue", "you are #1 in line for staging on web (behind sam's lock)", false),
    ("unlock! staging on web", "you, your turn: staging on web is free and reserved for you", false),
    ("deploy web", "Created deployment", false),
    ("why production on api", "you can deploy api to production now", false),
    ("audit", "in #deploys", false),
    ("help", "deploybot commands", false),
];

/// The commands of the guide's list, in order, with the `yes` it asks for.
fn guide_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for line in demo::GUIDE.lines().filter(|l| l.starts_with("  ")) {
        let command = line.trim_start().split("  ").next().unwrap_or_default();
        lines.push(command.to_string());
        if line.contains("answer `yes`") {
            lines.push("yes".to_string());
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_suggested_list_works_in_order() {
    let lines = guide_lines();
    let listed: Vec<&str> = EXPECTED.iter().map(|(l, _, _)| *l).collect();
    assert_eq!(lines, listed, "the guide's list and this test's differ");

    let sb = Sandbox::start().await.expect("sandbox");
    demo::seed(&sb);
    demo::seed_history(&sb).await.expect("history");
    sb.set_deployer(Deployer {
        fail_refs: vec!["broken".into()],
        ..Deployer::auto(Duration::from_millis(10))
    });
    let secret = "demo-test-secret-0123456789";
    let config = Arc::new(demo::config(&sb, secret).expect("demo config"));
    let github = HttpGitHub::new(
        &config.github.api_url,
        Arc::new(StaticToken::new(sb.token().into())),
    )
    .expect("client");
    let out = SharedBuffer::default();
    let service = Service::start(Parts {
        config: config.clone(),
        github: Arc::new(github),
        chat: Arc::new(ShellChat::new(Box::new(out.clone()))),
        store: store_from(&config).await.expect("store"),
        clock: Arc::new(SystemClock),
        adapter: shell::ADAPTER.to_string(),
    })
    .await
    .expect("service");
    demo::seed_lock(&service.bot).await.expect("lock");
    sb.add_webhook(
        &format!("http://{}/webhook", service.webhook_addr().unwrap()),
        secret,
    );
    let identity = Identity {
        user: "you".into(),
        roles: vec!["release".into()],
        channel: "deploys".into(),
    };

    let mut seen = 0;
    for &(line, expected, refused) in EXPECTED {
        shell::run(&service.bot, &identity, format!("{line}\n").as_bytes(), "!").await;
        // A person reads the answer before typing on: let the deployer finish.
        wait_for(
            Duration::from_secs(10),
            "every deployment to finish",
            || {
                ["acme/api", "acme/web"]
                    .iter()
                    .flat_map(|repo| sb.deployments(repo).into_iter().map(move |d| (repo, d)))
                    .all(|(repo, d)| {
                        let statuses = sb.deployment_statuses(repo, d["id"].as_u64().unwrap());
                        statuses.first().is_some_and(|s| {
                            ["success", "failure", "error", "inactive"]
                                .contains(&s["state"].as_str().unwrap_or(""))
                        })
                    })
                    .then_some(())
            },
        )
        .await;
        let text = out.text();
        let answer = text[seen..].to_string();
        seen = text.len();
        assert!(
            answer.contains(expected),
            "`{line}` should answer {expected:?}:\n{answer}"
        );
        if !refused {
            assert!(
                !answer.contains("🚫") && !answer.contains("Not deployed"),
                "`{line}` was refused, which the guide does not promise:\n{answer}"
            );
        }
    }
    service.stop(Duration::from_secs(5)).await;
}
