//! `deploybot demo`: the whole loop on a fresh machine — the shell adapter, an
//! in-process GitHub sandbox seeded with a small believable history, and (once the
//! sandbox's simulated deployer is on) statuses flowing back. No tokens, no network.

use std::path::Path;
use std::sync::Arc;

use sandbox::Sandbox;

use crate::bot::Bot;
use crate::chat::shell::{self, Identity, ShellChat};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::github::client::HttpGitHub;
use crate::github::token::StaticToken;

pub const CONFIG: &str = include_str!("demo.toml");

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

pub const GUIDE: &str = "\
deploybot demo — you are `{user}` (roles: {roles}) in #{channel}; GitHub is a local sandbox at {url}
Try these (one per line; Ctrl-D to quit):
  deploy api/topic to staging          a green branch: a deployment is created
  deploy api                           the default branch, asked from GitHub, to api's default environment
  deploy api/broken to staging         checks failed: each failing context is listed
  deploy! api/broken to staging        forced: checks skipped (anyone may force on staging)
  deploy! api/broken to production     refused: forcing production needs the oncall role and a reason
  deploy api/nope to staging           GitHub has no such ref
  deploy api staging                   almost a command: deploybot suggests the fix
  deploy web to prod                   another app; `prod` is an alias
  deploys api                          recent deployments, from GitHub
  where is api                         what is live in each environment
  help                                 every command
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
    let config = Arc::new(config(&sandbox)?);
    let github = HttpGitHub::new(
        &config.github.api_url,
        Arc::new(StaticToken::new(sandbox.token().into())),
    )
    .map_err(|e| e.to_string())?;
    let bot = Bot::new(
        config,
        Arc::new(github),
        Arc::new(ShellChat::stdout()),
        Arc::new(SystemClock),
    );
    print!("{}", guide(&identity, &sandbox.url()));
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    shell::run(&bot, &identity, stdin, "!").await;
    sandbox.shutdown();
    Ok(())
}

/// The demo's config, pointed at a running sandbox.
pub fn config(sandbox: &Sandbox) -> Result<Config, String> {
    let url = sandbox.url();
    let token = sandbox.token();
    Config::parse(CONFIG, Path::new("demo.toml"), &|name| match name {
        "SANDBOX_URL" => Some(url.clone()),
        "SANDBOX_TOKEN" => Some(token.clone()),
        _ => None,
    })
    .map_err(|e| e.to_string())
}
