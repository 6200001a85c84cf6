//! GitHub App authentication end to end: a `[github.app]` config, the bot signing a JWT,
//! exchanging it at the sandbox for an installation token, reusing that token, renewing
//! it within five minutes of its expiry, and saying what to fix when GitHub refuses.
//!
//! The key pair is the sandbox's test-only one (sandbox/tests/it/keys/README.md).

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deploybot::chat::shell::{self, Identity, SharedBuffer, ShellChat};
use deploybot::clock::SystemClock;
use deploybot::config::{Config, GitHubAuth};
use deploybot::github::token;
use deploybot::service::Service;
use sandbox::{Access, Fault, RecordedRequest, Sandbox};
use secrecy::ExposeSecret;
use serde_json::json;
use support::{seed, CONFIG};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sandbox/tests/it/keys/");
const APP_KEY: &str = "test-app.private-key.pem";
const OTHER_KEY: &str = "other-app.private-key.pem";
/// Where the configs below say the key is, relative to the config file.
const KEY_FILE: &str = "deploybot-app.private-key.pem";

/// The seeded sandbox with App 4242 (the test key) installed as 77.
async fn sandbox() -> Sandbox {
    let sb = Sandbox::start().await.expect("sandbox");
    seed(&sb);
    let public = std::fs::read_to_string(format!("{KEYS}test-app.public.pem")).unwrap();
    sb.add_app(APP_ID, &public);
    sb.add_installation(APP_ID, INSTALLATION, Access::Full);
    sb
}

/// The tests' usual config with `[github.app]` instead of a token, written to
/// `dir/bot.toml` beside a copy of `key` (one of the test keys), and loaded from there.
fn app_config(dir: &Path, sb: &Sandbox, app_id: u64, installation_id: u64, key: &str) -> Config {
    std::fs::copy(format!("{KEYS}{key}"), dir.join(KEY_FILE)).expect("copy the key");
    let app = format!(
        "\n[github.app]\napp_id = {app_id}\nprivate_key_path = \"{KEY_FILE}\"\ninstallation_id = {installation_id}\n"
    );
    let text = format!(
        "{}\n[storage]\nurl = \"sqlite://{}\"\n",
        CONFIG.replacen("token = \"${SANDBOX_TOKEN}\"\n", &app, 1),
        dir.join("deploybot.db").display()
    );
    let path = dir.join("bot.toml");
    std::fs::write(&path, &text).expect("write the config");
    let url = sb.url();
    Config::parse(&text, &path, &|name| {
        (name == "SANDBOX_URL").then(|| url.clone())
    })
    .unwrap_or_else(|e| panic!("app config: {e}"))
}

/// The bot as `deploybot shell` runs it: everything from the config.
struct AppBot {
    service: Service,
    out: SharedBuffer,
    printed: Mutex<usize>,
}

impl AppBot {
    async fn start(config: Config) -> Result<AppBot, String> {
        let out = SharedBuffer::default();
        let chat = Arc::new(ShellChat::new(Box::new(out.clone())));
        let service = Service::from_config(
            Arc::new(config),
            chat,
            shell::ADAPTER,
            Arc::new(SystemClock),
        )
        .await?;
        Ok(AppBot {
            service,
            out,
            printed: Mutex::new(0),
        })
    }

    /// Types `line` as alice (dev, release) in #deploys; returns what the bot printed.
    async fn say(&self, line: &str) -> String {
        let alice = Identity {
            user: "alice".into(),
            roles: vec!["dev".into(), "release".into()],
            channel: "deploys".into(),
        };
        shell::run(
            &self.service.bot,
            &alice,
            format!("{line}\n").as_bytes(),
            "!",
        )
        .await;
        let all = self.out.text();
        let mut printed = self.printed.lock().unwrap();
        let new = all[*printed..].to_string();
        *printed = all.len();
        new
    }
}

fn is_exchange(r: &RecordedRequest) -> bool {
    r.method == "POST"
        && r.path.starts_with("/app/installations/")
        && r.path.ends_with("/access_tokens")
}

/// `POST /app/installations/{id}/access_tokens` requests, in order.
fn exchanges(sb: &Sandbox) -> Vec<RecordedRequest> {
    sb.requests().into_iter().filter(is_exchange).collect()
}

/// Every REST call made with an installation token (everything but the exchanges).
fn api_calls(sb: &Sandbox) -> Vec<RecordedRequest> {
    sb.requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/app/"))
        .collect()
}

fn authorization(r: &RecordedRequest) -> String {
    r.header("authorization")
        .unwrap_or_else(|| panic!("{} {} has no Authorization", r.method, r.path))
        .to_string()
}

#[tokio::test]
async fn an_app_config_loads_and_deploys_with_an_installation_token() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY);
    match &config.github.auth {
        GitHubAuth::App {
            app_id,
            private_key_path,
            installation_id,
        } => {
            assert_eq!((*app_id, *installation_id), (APP_ID, INSTALLATION));
            // Relative to the config file, not to the working directory.
            assert_eq!(private_key_path, &dir.path().join(KEY_FILE));
        }
        GitHubAuth::Token(_) => panic!("[github.app] is read as an App"),
    }
    assert!(config
        .summary()
        .contains("GitHub App 4242, installation 77"));

    let bot = AppBot::start(config).await.expect("the bot starts");
    let out = bot.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment #1"), "{out}");

    let post = sb
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/repos/acme/api/deployments")
        .expect("the deployment was posted");
    let auth = authorization(&post);
    assert!(
        auth.starts_with("Bearer ghs_"),
        "an installation token, not {auth}"
    );
    // GitHub records the App's bot as the creator.
    assert_eq!(
        sb.deployments("acme/api")[0]["creator"]["login"],
        "sandbox-app-4242[bot]"
    );

    // The token came from one exchange, with a JWT GitHub's rules accept: RS256 by the
    // App's key, iss = the App id, iat backdated, at most 10 minutes long.
    let exchanges = exchanges(&sb);
    assert_eq!(exchanges.len(), 1);
    let jwt = authorization(&exchanges[0])
        .strip_prefix("Bearer ")
        .expect("Bearer JWT")
        .to_string();
    let public = std::fs::read(format!("{KEYS}test-app.public.pem")).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["4242"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .expect("a JWT signed by the App's key")
    .claims;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let now = chrono::Utc::now().timestamp();
    assert!(iat <= now - 30, "iat is backdated: {iat} vs {now}");
    assert!(exp > now && exp - iat <= 600, "{claims}");
}

#[tokio::test]
async fn one_installation_token_serves_many_commands() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = AppBot::start(app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY))
        .await
        .unwrap();
    let out = bot.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment #1"), "{out}");
    let out = bot.say("deploy web to staging").await;
    assert!(out.contains("Created deployment #2"), "{out}");
    let out = bot.say("deploys api").await;
    assert!(out.contains("topic"), "{out}");
    let out = bot.say("where is api").await;
    assert!(out.contains("staging"), "{out}");

    assert_eq!(exchanges(&sb).len(), 1, "one token for every command");
    let calls = api_calls(&sb);
    assert!(calls.len() >= 6, "{} calls", calls.len());
    let tokens: HashSet<String> = calls.iter().map(authorization).collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens.iter().all(|t| t.starts_with("Bearer ghs_")));
}

#[tokio::test]
async fn a_token_within_five_minutes_of_expiry_is_renewed() {
    let sb = sandbox().await;
    // A 4-minute token is always within 5 minutes of its expiry: every call renews.
    sb.set_installation_token_ttl(Duration::from_secs(4 * 60));
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY);
    let bot = AppBot::start(config).await.unwrap();
    let out = bot.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment #1"), "{out}");
    bot.say("deploys api").await;

    let calls = api_calls(&sb);
    assert!(calls.len() >= 4, "{} calls", calls.len());
    assert_eq!(exchanges(&sb).len(), calls.len(), "one renewal per call");
    let short_lived: HashSet<String> = calls.iter().map(authorization).collect();
    assert_eq!(short_lived.len(), calls.len(), "each call has a new token");

    // An hour-long token: renewed once more (the cached one has < 5 minutes left), then
    // kept.
    sb.set_installation_token_ttl(Duration::from_secs(3600));
    sb.clear_requests();
    bot.say("deploys api").await;
    let out = bot.say("where is api").await;
    assert!(out.contains("staging"), "{out}");
    assert_eq!(exchanges(&sb).len(), 1);
    let tokens: HashSet<String> = api_calls(&sb).iter().map(authorization).collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens.is_disjoint(&short_lived));
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_current_token_while_it_lasts() {
    let sb = sandbox().await;
    sb.set_installation_token_ttl(Duration::from_secs(4 * 60));
    let dir = tempfile::tempdir().unwrap();
    let bot = AppBot::start(app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY))
        .await
        .unwrap();
    bot.say("deploy api/topic to staging").await;
    let issued: HashSet<String> = api_calls(&sb).iter().map(authorization).collect();

    // GitHub fails every renewal now; the current token still has about 4 minutes.
    sb.inject(
        Fault::status(
            "POST",
            "/access_tokens",
            500,
            json!({"message": "Server Error"}),
        )
        .times(1000),
    );
    sb.clear_requests();
    let out = bot.say("deploy api/topic to production").await;
    assert!(out.contains("Created deployment #2"), "{out}");
    assert!(!exchanges(&sb).is_empty(), "renewal was attempted");
    let used: HashSet<String> = api_calls(&sb).iter().map(authorization).collect();
    assert_eq!(used.len(), 1, "{used:?}");
    assert!(used.is_subset(&issued), "the last token issued is reused");
}

#[tokio::test]
async fn token_source_caches_and_renews() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY);
    let source = token::from_config(&config.github.api_url, &config.github.auth).unwrap();
    let first = source.token().await.unwrap();
    let second = source.token().await.unwrap();
    assert!(first.expose_secret().starts_with("ghs_"));
    assert_eq!(first.expose_secret(), second.expose_secret());
    assert_eq!(exchanges(&sb).len(), 1);

    // Concurrent callers share one exchange.
    let fresh = token::from_config(&config.github.api_url, &config.github.auth).unwrap();
    let (a, b, c) = tokio::join!(fresh.token(), fresh.token(), fresh.token());
    let distinct: HashSet<String> = [a, b, c]
        .into_iter()
        .map(|t| t.unwrap().expose_secret().to_string())
        .collect();
    assert_eq!(distinct.len(), 1);
    assert_eq!(exchanges(&sb).len(), 2);

    sb.set_installation_token_ttl(Duration::from_secs(4 * 60));
    let short = token::from_config(&config.github.api_url, &config.github.auth).unwrap();
    let x = short.token().await.unwrap();
    let y = short.token().await.unwrap();
    assert_ne!(x.expose_secret(), y.expose_secret());
    assert_eq!(exchanges(&sb).len(), 4);
}

/// What the bot answers to a deploy with these credentials; nothing must be deployed.
async fn deploy_with(app_id: u64, installation_id: u64, key: &str) -> String {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = AppBot::start(app_config(dir.path(), &sb, app_id, installation_id, key))
        .await
        .expect("the key is read at start; GitHub is asked on the first command");
    let out = bot.say("deploy api/topic to staging").await;
    assert!(sb.deployments("acme/api").is_empty(), "{out}");
    assert!(
        api_calls(&sb).is_empty(),
        "nothing but exchanges reached GitHub"
    );
    assert!(!exchanges(&sb).is_empty(), "GitHub was asked for a token");
    assert!(
        out.contains("deploybot could not get GitHub credentials"),
        "{out}"
    );
    out
}

#[tokio::test]
async fn a_wrong_app_id_or_key_is_explained_in_chat() {
    let wrong_id = deploy_with(4243, INSTALLATION, APP_KEY).await;
    assert!(
        wrong_id.contains("A JSON web token could not be decoded")
            && wrong_id.contains("check [github.app] app_id")
            && wrong_id.contains("private_key_path is a private key of that App"),
        "{wrong_id}"
    );
    let wrong_key = deploy_with(APP_ID, INSTALLATION, OTHER_KEY).await;
    assert!(
        wrong_key.contains("GitHub refused the GitHub App JWT for app 4242")
            && wrong_key.contains("check [github.app] app_id"),
        "{wrong_key}"
    );
    let wrong_installation = deploy_with(APP_ID, 78, APP_KEY).await;
    assert!(
        wrong_installation.contains("GitHub App 4242 has no installation 78")
            && wrong_installation.contains("check [github.app] installation_id"),
        "{wrong_installation}"
    );
}

#[tokio::test]
async fn an_unusable_key_file_stops_the_start() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY);
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let missing = AppBot::start(config).await.err().expect("no key, no start");
    assert!(
        missing.contains("cannot read the GitHub App private key")
            && missing.contains(KEY_FILE)
            && missing.contains("private_key_path"),
        "{missing}"
    );

    let config = app_config(dir.path(), &sb, APP_ID, INSTALLATION, APP_KEY);
    // The public half is not what GitHub gives an App to sign with.
    std::fs::copy(
        format!("{KEYS}test-app.public.pem"),
        dir.path().join(KEY_FILE),
    )
    .unwrap();
    let public = AppBot::start(config).await.err().expect("a public key");
    assert!(
        public.contains("is not an RSA private key in PEM form"),
        "{public}"
    );
    assert!(sb.requests().is_empty(), "nothing was sent");
}
