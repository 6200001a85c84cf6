//! Shared test support: a sandbox GitHub, a bot wired to it, and the shell adapter
//! driven line by line. Every integration test builds on this; nothing is copied.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deploybot::bot::Bot;
use deploybot::chat::shell::{self, Identity, SharedBuffer, ShellChat};
use deploybot::clock::SystemClock;
use deploybot::config::Config;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use sandbox::{RecordedRequest, Sandbox};

/// A config for tests; `${SANDBOX_URL}` / `${SANDBOX_TOKEN}` point at the sandbox.
pub const CONFIG: &str = r#"
[github]
api_url = "${SANDBOX_URL}"
token = "${SANDBOX_TOKEN}"

[aliases]
prod = "production"

[apps.api]
repository = "acme/api"
default_environment = "staging"
channels = ["deploys"]
payload = { service = "api", region = "eu" }

[apps.api.environments.staging]
required_contexts = ["ci/build"]

[apps.api.environments.qa]
required_contexts = []
auto_merge = true
transient = true

[apps.api.environments.production]
production = true
deploy = ["release", "oncall"]
force = ["oncall"]
payload = { region = "us", replicas = 6 }

[apps.web]
repository = "acme/web"

[apps.web.environments.staging]
required_contexts = []

[apps.ghost]
repository = "acme/ghost"
default_environment = "staging"

[apps.ghost.environments.staging]
"#;

/// The repositories most tests use.
///
/// acme/api (default branch `main`): `topic` green, `broken` with ci/build failing and
/// security pending, `stale` behind main, `conflicted` behind main and conflicting.
/// acme/web (default branch `trunk`). acme/ghost does not exist on GitHub.
pub fn seed(sb: &Sandbox) {
    let api = "acme/api";
    sb.create_repo(api, "main");
    sb.set_status(api, "main", "ci/build", "success");
    sb.create_branch(api, "topic", "main");
    sb.commit(api, "topic", "Faster login");
    sb.set_status(api, "topic", "ci/build", "success");
    sb.set_status(api, "topic", "security", "success");
    sb.create_branch(api, "broken", "main");
    sb.commit(api, "broken", "Oops");
    sb.set_status(api, "broken", "ci/build", "failure");
    sb.set_status(api, "broken", "security", "pending");
    sb.create_branch(api, "stale", "main");
    sb.create_branch(api, "conflicted", "main");
    sb.commit(api, "conflicted", "Edit the same line");
    sb.commit(api, "main", "Move on");
    sb.set_status(api, "main", "ci/build", "success");
    sb.set_merge_conflict(api, "conflicted", true);
    sb.create_repo("acme/web", "trunk");
    sb.commit("acme/web", "trunk", "Landing page");
}

pub struct TestBot {
    pub sandbox: Sandbox,
    pub bot: Bot,
    pub out: SharedBuffer,
    printed: std::sync::Mutex<usize>,
}

pub struct Options {
    pub config: String,
    pub token: Option<String>,
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: CONFIG.to_string(),
            token: None,
            timeout: Duration::from_secs(10),
        }
    }
}

pub fn parse_config(text: &str, sb: &Sandbox, token: &str) -> Config {
    let url = sb.url();
    let token = token.to_string();
    Config::parse(text, Path::new("test.toml"), &|name| match name {
        "SANDBOX_URL" => Some(url.clone()),
        "SANDBOX_TOKEN" => Some(token.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("test config: {e}"))
}

impl TestBot {
    pub async fn start() -> TestBot {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> TestBot {
        let sandbox = Sandbox::start().await.expect("sandbox");
        seed(&sandbox);
        let token = options.token.unwrap_or_else(|| sandbox.token());
        let config = Arc::new(parse_config(&options.config, &sandbox, &token));
        let github = HttpGitHub::with_timeout(
            &config.github.api_url,
            Arc::new(StaticToken::new(token.into())),
            options.timeout,
        )
        .expect("client");
        let out = SharedBuffer::default();
        let bot = Bot::new(
            config,
            Arc::new(github),
            Arc::new(ShellChat::new(Box::new(out.clone()))),
            Arc::new(SystemClock),
        );
        TestBot {
            sandbox,
            bot,
            out,
            printed: std::sync::Mutex::new(0),
        }
    }

    /// Types `line` in the shell as `user` with `roles` in #channel; returns what the
    /// bot printed in answer.
    pub async fn say_as(&self, user: &str, roles: &[&str], channel: &str, line: &str) -> String {
        let identity = Identity {
            user: user.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            channel: channel.to_string(),
        };
        let input = format!("{line}\n");
        shell::run(&self.bot, &identity, input.as_bytes(), "!").await;
        self.take_output()
    }

    /// `alice`, a developer with the release role, in #deploys.
    pub async fn say(&self, line: &str) -> String {
        self.say_as("alice", &["dev", "release"], "deploys", line)
            .await
    }

    /// Everything printed since the last call.
    pub fn take_output(&self) -> String {
        let all = self.out.text();
        let mut seen = self.printed.lock().unwrap();
        let new = all[*seen..].to_string();
        *seen = all.len();
        new
    }

    /// Requests that created deployments, in order.
    pub fn deployment_posts(&self) -> Vec<RecordedRequest> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
            .collect()
    }
}

/// Polls `f` until it returns `Some`, for at most `bound`; panics with `what` after.
pub async fn wait_for<T>(bound: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {bound:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
