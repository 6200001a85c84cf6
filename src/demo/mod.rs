//! `deploybot demo`: the whole loop on a fresh machine — the shell adapter, an
//! in-process GitHub sandbox seeded with a small believable history, its simulated
//! deployer, and signed webhooks back into the bot. No tokens, no network.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sandbox::{Deployer, Sandbox};

use crate::bot::Parts;
use crate::chat::shell::{self, Identity, ShellChat};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::github::client::HttpGitHub;
use crate::github::token::StaticToken;
use crate::service::{store_from, Service};

pub const CONFIG: &str = include_str!("demo.toml");

/// How long each step of the simulated deployer takes: slow enough to watch.
pub const STEP: Duration = Duration::from_millis(700);

/// Seeds `acme/api` and `acme/web` with branches in every state the demo shows.
pub fn seed(sandbox: &Sandbox) {
    let api = "acme/api";
    sandbox.create_repo(api, "main");
    sandbox.commit(api, "main", "Add health endpoint");
    sandbox.commit(api, "main", "Bump dependencies");
    sandbox.set_status(api, "main", "ci/build", "success");
    sandbox.set_status(api, "main", "security", "success");

    sandbox.create_branch(api, "topic", "main");
    sandbox.commit(api, "topic", "Faster login page");
    sandbox.set_status(api, "topic", "ci/build", "success");
    sandbox.set_status(api, "topic", "security", "success");

    sandbox.create_branch(api, "feature/login", "main");
    sandbox.commit(api, "feature/login", "New login flow");
    sandbox.set_status(api, "feature/login", "ci/build", "success");
    sandbox.set_status(api, "feature/login", "security", "pending");

    sandbox.create_branch(api, "broken", "main");
    sandbox.commit(api, "broken", "Refactor everything");
    sandbox.set_status(api, "broken", "ci/build", "failure");
    sandbox.set_status(api, "broken", "security", "success");

    let web = "acme/web";
    sandbox.create_repo(web, "trunk");
    sandbox.commit(web, "trunk", "Landing page");
}

/// A believable past: `main` of acme/api went to staging successfully before the
/// demo starts (made through the sandbox's REST API, as a deployer's CI would), so
/// that `rollback api in staging` has something to go back to once `topic` is live.
/// Run before the simulated deployer and the webhook are set up: nothing announces it.
pub async fn seed_history(sandbox: &Sandbox) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("could not seed the demo's history: {e}");
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/repos/acme/api/deployments", sandbox.url()))
        .bearer_auth(sandbox.token())
        .header("user-agent", "deploybot-demo")
        .json(&serde_json::json!({
            "ref": "main",
            "environment": "staging",
            "required_contexts": [],
            "auto_merge": false,
            "description": "an earlier deploy of main, by CI",
        }))
        .send()
        .await
        .map_err(|e| failed(&e))?
        .json()
        .await
        .map_err(|e| failed(&e))?;
    let id = created["id"]
        .as_u64()
        .ok_or_else(|| failed(&format!("GitHub answered {created}")))?;
    for state in ["in_progress", "success"] {
        sandbox.create_deployment_status("acme/api", id, sandbox::NewStatus::new(state));
    }
    Ok(())
}

/// A colleague's lock, so that the demo can show the queue: `sam` is load-testing web's
/// staging, and whoever deploys there waits in line.
pub async fn seed_lock(bot: &crate::bot::Bot) -> Result<(), String> {
    let now = bot.now();
    let lock = crate::store::Lock {
        app: "web".into(),
        environment: "staging".into(),
        holder_id: "sam".into(),
        holder_name: "sam".into(),
        reason: Some("load testing".into()),
        created_at: now,
        expires_at: crate::clock::later(now, std::time::Duration::from_secs(4 * 3600)),
        warned: false,
        conversation: crate::chat::Conversation {
            adapter: shell::ADAPTER.to_string(),
            channel: "deploys".into(),
            channel_name: Some("deploys".into()),
            thread: None,
            interaction: None,
        },
    };
    bot.store()
        .take_lock(&lock, now)
        .await
        .map(|_| ())
        .map_err(|e| format!("could not seed the demo's lock: {e}"))
}

pub const GUIDE: &str = "\
deploybot demo — you are `{user}` (roles: {roles}) in #{channel}; GitHub is a local sandbox at {url}
A simulated deployer answers each deployment: queued → in progress → success (a ref named
`broken` fails once it is deployed). Try these, one per line; Ctrl-D to quit:
  deploy api/topic to staging          a green branch: created, then live progress to success
  deploy api/broken to staging         checks failed: each failing context is listed
  deploy! api/broken to staging        forced: checks skipped (anyone may force on staging); the deploy fails
  deploy api to production             the default branch (asked from GitHub); production asks: answer `yes`
  deploy! api/broken to production     refused: forcing production needs the oncall role and a reason
  deploy api/nope to staging           GitHub has no such ref
  deploy api staging                   almost a command: deploybot suggests the fix
  deploy web to prod                   another app; `prod` is an alias
  deploys api                          recent deployments, from GitHub
  where is api                         what is live in each environment
  rollback api in staging              broken failed there: put back what was live before it (topic)
  lock staging on api -- testing       only you may deploy there now (`locks`, `unlock staging on api`)
  deploy web queue                     sam holds a lock on web's staging: you wait in line (`queue` lists it)
  unlock! staging on web               release sam's lock (sam is told): the first in line, you, is told it is theirs
  deploy web                           your turn: created
  why production on api                what would stop you deploying there
  audit                                who did what
  help                                 every command
Run it again with `--role oncall` to hold the keys to production.
";

pub fn guide(identity: &Identity, url: &str) -> String {
    GUIDE
        .replace("{user}", &identity.user)
        .replace("{roles}", &identity.roles.join(", "))
        .replace("{channel}", &identity.channel)
        .replace("{url}", url)
}

/// Starts the sandbox, seeds it and runs the shell on stdin until EOF.
pub async fn run(identity: Identity) -> Result<(), String> {
    let sandbox = Sandbox::start()
        .await
        .map_err(|e| format!("could not start the GitHub sandbox on 127.0.0.1: {e}"))?;
    seed(&sandbox);
    seed_history(&sandbox).await?;
    sandbox.set_deployer(Deployer {
        fail_refs: vec!["broken".into()],
        ..Deployer::auto(STEP)
    });
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let config = Arc::new(config(&sandbox, &secret)?);
    let github = HttpGitHub::new(
        &config.github.api_url,
        Arc::new(StaticToken::new(sandbox.token().into())),
    )
    .map_err(|e| e.to_string())?;
    let store = store_from(&config).await?;
    let service = Service::start(Parts {
        config: config.clone(),
        github: Arc::new(github),
        chat: Arc::new(ShellChat::stdout()),
        store,
        clock: Arc::new(SystemClock),
        adapter: shell::ADAPTER.to_string(),
    })
    .await?;
    seed_lock(&service.bot).await?;
    let webhook = service
        .webhook_addr()
        .ok_or("the demo config has no [webhook]")?;
    let path = config
        .webhook
        .as_ref()
        .map_or("/webhook", |w| w.path.as_str());
    sandbox.add_webhook(&format!("http://{webhook}{path}"), &secret);

    print!("{}", guide(&identity, &sandbox.url()));
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    shell::run(&service.bot, &identity, stdin, "!").await;
    // Let the deployments started here finish, so piped input shows the whole story.
    service.stop(Duration::from_secs(30)).await;
    sandbox.shutdown();
    Ok(())
}

/// The demo's config, pointed at a running sandbox.
pub fn config(sandbox: &Sandbox, webhook_secret: &str) -> Result<Config, String> {
    let url = sandbox.url();
    let token = sandbox.token();
    let secret = webhook_secret.to_string();
    Config::parse(CONFIG, Path::new("demo.toml"), &|name| match name {
        "SANDBOX_URL" => Some(url.clone()),
        "SANDBOX_TOKEN" => Some(token.clone()),
        "DEMO_WEBHOOK_SECRET" => Some(secret.clone()),
        _ => None,
    })
    .map_err(|e| e.to_string())
}
