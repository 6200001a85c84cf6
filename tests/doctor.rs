//! `deploybot doctor`, the real binary, against the sandbox (GitHub) and the fake
//! Discord on loopback: every check that passes, and each one that fails, says so.

mod fake_discord;

use fake_discord::{FakeDiscord, BOT_ROLE, DEPLOYS, FLAG_MESSAGE_CONTENT_LIMITED, GUILD, OPS};
use sandbox::{Access, AppHook, RepoHook, Sandbox, TokenSpec};

const GITHUB_TOKEN: &str = "ghp_doctor_do_not_print_me";
const DISCORD_TOKEN: &str = "discord.doctor.do-not-print-me";
const SECRET: &str = "webhook-doctor-do-not-print-me";
const HOOK_URL: &str = "https://deploybot.example.com/webhook";

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sandbox/tests/it/keys/");
const APP_ID: u64 = 77;
const INSTALLATION: u64 = 4242;

/// GitHub: acme/api and acme/web, each with a correct webhook; the token is a classic
/// one with `repo`, admin of both.
async fn github() -> Sandbox {
    let sb = Sandbox::start().await.expect("sandbox");
    sb.create_repo("acme/api", "main");
    sb.create_repo("acme/web", "trunk");
    sb.add_token_with(GITHUB_TOKEN, TokenSpec::classic(&["repo"]).admin(true));
    for repo in ["acme/api", "acme/web"] {
        sb.add_repo_hook(repo, RepoHook::new(HOOK_URL).secret(SECRET));
    }
    sb
}

/// Discord: the bot token is checked, Message Content is on, commands are registered
/// in the guild.
async fn discord() -> FakeDiscord {
    let d = FakeDiscord::start().await;
    d.require_token(DISCORD_TOKEN);
    let commands: Vec<&str> = commands::all_help().iter().map(|h| h.name).collect();
    d.set_commands(Some(GUILD), &commands);
    d
}

struct Setup {
    github_auth: String,
    discord: Option<String>,
    extra: String,
}

impl Setup {
    fn token() -> Setup {
        Setup {
            github_auth: "token = \"${GITHUB_TOKEN}\"\n".into(),
            discord: None,
            extra: String::new(),
        }
    }

    fn with_discord(mut self, d: &FakeDiscord) -> Setup {
        self.discord = Some(format!(
            "[discord]\ntoken = \"${{DISCORD_TOKEN}}\"\nguild_ids = [\"{GUILD}\"]\nproxy_url = \"{}\"\n",
            d.url()
        ));
        self
    }
}

struct Outcome {
    ok: bool,
    stdout: String,
}

impl Outcome {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The one line starting with `mark` that contains every `part`.
    #[track_caller]
    fn line(&self, mark: char, parts: &[&str]) -> &str {
        let found: Vec<&str> = self
            .lines()
            .into_iter()
            .filter(|l| l.starts_with(mark) && parts.iter().all(|p| l.contains(p)))
            .collect();
        assert!(
            !found.is_empty(),
            "no `{mark}` line with {parts:?} in:\n{}",
            self.stdout
        );
        found[0]
    }

    #[track_caller]
    fn no_line(&self, mark: char, parts: &[&str]) {
        assert!(
            !self
                .lines()
                .iter()
                .any(|l| l.starts_with(mark) && parts.iter().all(|p| l.contains(p))),
            "unexpected `{mark}` line with {parts:?} in:\n{}",
            self.stdout
        );
    }
}

/// Runs `deploybot doctor --config DIR/bot.toml` with the secrets in the environment;
/// checks that no secret is printed, whatever happened.
async fn doctor(sb: &Sandbox, setup: Setup, github_token: &str) -> Outcome {
    doctor_with(sb, setup, github_token, false).await
}

/// [`doctor`], the config named by `--config`, or by `$DEPLOYBOT_CONFIG` when `via_env`.
async fn doctor_with(sb: &Sandbox, setup: Setup, github_token: &str, via_env: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    let config = format!(
        "[github]\napi_url = \"{}\"\n{}\n{}\n[webhook]\nlisten = \"127.0.0.1:0\"\npath = \"/webhook\"\nsecret = \"${{DEPLOYBOT_WEBHOOK_SECRET}}\"\n\n[apps.api]\nrepository = \"acme/api\"\nchannels = [\"deploys\"]\nnotify_channel = \"ops\"\n\n[apps.api.environments.staging]\n\n[apps.web]\nrepository = \"acme/web\"\n\n[apps.web.environments.staging]\n{}",
        sb.url(),
        setup.github_auth,
        setup.discord.unwrap_or_default(),
        setup.extra,
    );
    std::fs::write(&path, config).unwrap();
    // The App's key, for the configs that use [github.app].
    let key = "test-app.private-key.pem";
    std::fs::copy(format!("{KEYS}{key}"), dir.path().join(key)).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_deploybot"));
    cmd.arg("doctor").env_remove("DEPLOYBOT_CONFIG");
    if via_env {
        // Run elsewhere, so ./bot.toml cannot be what is found.
        cmd.env("DEPLOYBOT_CONFIG", &path)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
    } else {
        cmd.arg("--config").arg(&path);
    }
    let out = cmd
        .env("GITHUB_TOKEN", github_token)
        .env("DISCORD_TOKEN", DISCORD_TOKEN)
        .env("DEPLOYBOT_WEBHOOK_SECRET", SECRET)
        .output()
        .await
        .expect("run deploybot doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for secret in [GITHUB_TOKEN, DISCORD_TOKEN, SECRET, github_token] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret was printed:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("✓ ") || l.starts_with("✗ ") || l.starts_with("! ")),
        "every line is one check:\n{stdout}\n{stderr}"
    );
    Outcome {
        ok: out.status.success(),
        stdout,
    }
}

#[tokio::test]
async fn everything_fine_is_all_ticks_and_exit_0() {
    let sb = github().await;
    let d = discord().await;
    let out = doctor(&sb, Setup::token().with_discord(&d), GITHUB_TOKEN).await;
    assert!(out.ok, "{}", out.stdout);
    assert!(
        out.lines().iter().all(|l| l.starts_with('✓')),
        "{}",
        out.stdout
    );
    out.line('✓', &["GitHub accepts the token", "sandbox-user"]);
    out.line('✓', &["classic token scopes: repo"]);
    for repo in ["acme/api", "acme/web"] {
        out.line('✓', &[repo, "can write"]);
        out.line('✓', &[repo, "deployments can be read"]);
        out.line(
            '✓',
            &[repo, "GraphQL answers", "deploy: the POST + 1 query"],
        );
        out.line('✓', &[repo, "webhook", HOOK_URL, "JSON, with a secret"]);
    }
    out.line('✓', &["Discord accepts the bot token", "deploybot"]);
    out.line('✓', &["Message Content Intent is enabled"]);
    out.line('✓', &["1 server", "Acme"]);
    out.line('✓', &["slash commands registered", "/deploy", "/help"]);
    out.line('✓', &["#deploys in Acme", "can read, post and embed"]);
    out.line('✓', &["#ops in Acme", "can read, post and embed"]);
    // It asked the real endpoints, with the credentials of the config.
    let asked: Vec<String> = sb.requests().iter().map(|r| r.path.clone()).collect();
    for path in [
        "/user",
        "/repos/acme/api",
        "/repos/acme/api/deployments",
        "/repos/acme/web/hooks",
    ] {
        assert!(asked.iter().any(|p| p == path), "{path} not in {asked:?}");
    }
    assert!(!d.calls_to("GET", "/oauth2/applications/@me").is_empty());
    assert!(!d
        .calls_to("GET", &format!("/guilds/{GUILD}/members/"))
        .is_empty());
}

#[tokio::test]
async fn without_graphql_the_doctor_says_why_commands_cost_more_requests() {
    let sb = github().await;
    // A proxy that passes REST only, or an old GitHub Enterprise Server.
    sb.set_graphql(false);
    let out = doctor(&sb, Setup::token(), GITHUB_TOKEN).await;
    assert!(out.ok, "a warning, not a failure: {}", out.stdout);
    let line = out.line(
        '!',
        &[
            "acme/api: GitHub's GraphQL API is not there (404",
            "/graphql",
        ],
    );
    assert!(
        line.contains("reads over REST instead")
            && line.contains("more GitHub requests per command"),
        "{line}"
    );
}

#[tokio::test]
async fn the_config_can_come_from_deploybot_config() {
    let sb = github().await;
    let out = doctor_with(&sb, Setup::token(), GITHUB_TOKEN, true).await;
    assert!(out.ok, "{}", out.stdout);
    out.line('✓', &["acme/web", "deployments can be read"]);
}

#[tokio::test]
async fn a_token_with_only_repo_status_is_told_to_add_repo_deployment() {
    let sb = github().await;
    sb.add_token_with("ghp_status_only_1234", TokenSpec::classic(&["repo:status"]));
    let out = doctor(&sb, Setup::token(), "ghp_status_only_1234").await;
    assert!(!out.ok, "{}", out.stdout);
    let line = out.line(
        '✗',
        &["lacks the scope repo_deployment", "it has: repo:status"],
    );
    assert!(
        line.contains("/settings/tokens and tick repo_deployment (or repo, which includes it)"),
        "{line}"
    );
    // repo:status is there: only the missing scope is named.
    out.no_line('✗', &["lacks the scopes"]);
    // Private repositories hide from it, and the doctor says what would fix it.
    out.line(
        '✗',
        &[
            "acme/api: the token cannot see this repository",
            "repo scope",
        ],
    );
    out.line('!', &["no repo scope"]);
}

#[tokio::test]
async fn a_repository_the_token_cannot_see_is_named() {
    let sb = github().await;
    sb.add_token_with(
        "ghp_api_only_123456",
        TokenSpec::classic(&["repo"])
            .admin(true)
            .repositories(&["acme/api"]),
    );
    let out = doctor(&sb, Setup::token(), "ghp_api_only_123456").await;
    assert!(!out.ok, "{}", out.stdout);
    let line = out.line('✗', &["acme/web: the token cannot see this repository"]);
    assert!(
        line.contains("grant") && line.contains("[apps.web] repository"),
        "{line}"
    );
    out.no_line('✗', &["acme/api"]);
    out.line('✓', &["acme/api", "deployments can be read"]);
}

#[tokio::test]
async fn a_bad_github_token_is_refused_with_where_to_make_a_new_one() {
    let sb = github().await;
    let out = doctor(&sb, Setup::token(), "ghp_revoked_000000").await;
    assert!(!out.ok);
    let line = out.line('✗', &["GitHub refused the token", "Bad credentials"]);
    assert!(
        line.contains(&format!("{}/settings/tokens", sb.url())) && line.contains("repo_deployment"),
        "{line}"
    );
    // Nothing else is tried with a token GitHub refuses.
    out.no_line('✗', &["acme/api"]);
}

#[tokio::test]
async fn a_read_only_collaborator_cannot_deploy() {
    let sb = github().await;
    sb.add_token_with(
        "github_pat_readonly_1",
        TokenSpec::fine_grained(Access::ReadOnly),
    );
    let out = doctor(&sb, Setup::token(), "github_pat_readonly_1").await;
    assert!(!out.ok, "{}", out.stdout);
    out.line('✓', &["fine-grained", "does not list its permissions"]);
    out.line('✗', &["acme/api", "can only read", "Write role"]);
    // Webhooks need admin: a warning that says what to check by hand, not a failure.
    out.line(
        '!',
        &[
            "acme/api: cannot read the webhook settings",
            "admin:repo_hook",
            "application/json",
        ],
    );
}

#[tokio::test]
async fn a_webhook_sending_form_data_or_unsigned_is_wrong() {
    let sb = Sandbox::start().await.unwrap();
    sb.create_repo("acme/api", "main");
    sb.create_repo("acme/web", "trunk");
    sb.add_token_with(GITHUB_TOKEN, TokenSpec::classic(&["repo"]).admin(true));
    let form = sb.add_repo_hook(
        "acme/api",
        RepoHook::new(HOOK_URL).secret(SECRET).content_type("form"),
    );
    sb.add_repo_hook("acme/web", RepoHook::new(HOOK_URL).events(&["push"]));
    let out = doctor(&sb, Setup::token(), GITHUB_TOKEN).await;
    assert!(!out.ok, "{}", out.stdout);
    let line = out.line(
        '✗',
        &["acme/api: webhook", "application/x-www-form-urlencoded"],
    );
    assert!(
        line.contains("set Content type to application/json")
            && line.contains(&format!("/acme/api/settings/hooks/{form}")),
        "{line}"
    );
    out.no_line('✗', &["acme/api", "no secret"]);
    out.line('✗', &["acme/web: webhook", "no secret", "[webhook] secret"]);
    out.line(
        '✗',
        &[
            "acme/web: webhook",
            "does not send deployment_status",
            "Deployment statuses",
        ],
    );
    out.no_line('✗', &["acme/web", "content type"]);
}

#[tokio::test]
async fn a_missing_webhook_is_wrong_unless_the_bot_polls() {
    let sb = Sandbox::start().await.unwrap();
    sb.create_repo("acme/api", "main");
    sb.create_repo("acme/web", "trunk");
    sb.add_token_with(GITHUB_TOKEN, TokenSpec::classic(&["repo"]).admin(true));
    sb.add_repo_hook(
        "acme/api",
        RepoHook::new("https://elsewhere.example.com/hook").secret(SECRET),
    );
    let out = doctor(&sb, Setup::token(), GITHUB_TOKEN).await;
    assert!(!out.ok);
    out.line(
        '✗',
        &[
            "acme/api: no webhook posts to …/webhook",
            "elsewhere.example.com",
            "settings/hooks/new",
        ],
    );
    out.line(
        '✗',
        &["acme/web: no webhook posts to …/webhook", "no webhooks"],
    );

    let mut polling = Setup::token();
    polling.github_auth.push_str("poll_interval = \"15s\"\n");
    let out = doctor(&sb, polling, GITHUB_TOKEN).await;
    assert!(out.ok, "{}", out.stdout);
    out.line('!', &["acme/web: no webhook", "polling"]);
}

#[tokio::test]
async fn the_message_content_intent_off_says_where_to_switch_it_on() {
    let sb = github().await;
    let d = discord().await;
    d.set_application_flags(0);
    let out = doctor(&sb, Setup::token().with_discord(&d), GITHUB_TOKEN).await;
    assert!(!out.ok, "{}", out.stdout);
    let line = out.line('✗', &["Message Content Intent is off", "text commands"]);
    assert!(
        line.contains("Developer Portal")
            && line.contains("Bot › Privileged Gateway Intents › Message Content Intent"),
        "{line}"
    );
    // The limited flag (fewer than 100 servers) counts as on; no other intent is checked.
    d.set_application_flags(FLAG_MESSAGE_CONTENT_LIMITED);
    let out = doctor(&sb, Setup::token().with_discord(&d), GITHUB_TOKEN).await;
    assert!(out.ok, "{}", out.stdout);
    out.no_line('✓', &["Server Members"]);
}

#[tokio::test]
async fn a_bad_discord_token_is_refused() {
    let sb = github().await;
    let d = discord().await;
    d.require_token("another.token.entirely");
    let out = doctor(&sb, Setup::token().with_discord(&d), GITHUB_TOKEN).await;
    assert!(!out.ok);
    let line = out.line('✗', &["Discord refused the bot token"]);
    assert!(
        line.contains("Reset Token") && line.contains("[discord] token"),
        "{line}"
    );
    // GitHub was still checked.
    out.line('✓', &["GitHub accepts the token"]);
}

#[tokio::test]
async fn a_bot_in_no_server_gets_the_invite_url() {
    let sb = github().await;
    let d = discord().await;
    d.leave_guild();
    let out = doctor(&sb, Setup::token().with_discord(&d), GITHUB_TOKEN).await;
    assert!(!out.ok);
    let line = out.line('✗', &["the bot is in no server"]);
    assert!(
        line.contains(&format!(
            "https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions=274877991936",
            fake_discord::APP_ID
        )),
        "{line}"
    );
}

#[tokio::test]
async fn channel_permissions_and_slash_commands() {
    let sb = github().await;
    let d = FakeDiscord::start().await;
    d.require_token(DISCORD_TOKEN);
    // Nothing registered yet (the bot never ran): a warning, not a failure.
    // #ops denies the bot's role Send Messages; #deploys hides from @everyone but
    // lets the bot's role in.
    d.set_overwrites(
        OPS,
        vec![FakeDiscord::overwrite(
            BOT_ROLE,
            0,
            0,
            fake_discord::SEND_MESSAGES,
        )],
    );
    d.set_overwrites(
        DEPLOYS,
        vec![
            FakeDiscord::overwrite(GUILD, 0, 0, fake_discord::VIEW_CHANNEL),
            FakeDiscord::overwrite(BOT_ROLE, 0, fake_discord::VIEW_CHANNEL, 0),
        ],
    );
    let mut setup = Setup::token().with_discord(&d);
    setup.extra = "\n[apps.ghost]\nrepository = \"acme/api\"\nchannels = [\"nowhere\"]\n\n[apps.ghost.environments.staging]\n".into();
    let out = doctor(&sb, setup, GITHUB_TOKEN).await;
    assert!(!out.ok, "{}", out.stdout);
    out.line(
        '!',
        &["slash commands not registered", "/deploy", "deploybot run"],
    );
    let line = out.line('✗', &["#ops in Acme: the bot lacks Send Messages"]);
    assert!(
        !line.contains("View Channel") && line.contains("Edit Channel › Permissions"),
        "{line}"
    );
    out.line('✓', &["#deploys in Acme", "can read, post and embed"]);
    out.line(
        '✗',
        &[
            "channel nowhere",
            "[apps.ghost] channels",
            "none of the bot's servers",
        ],
    );
}

/// A GitHub App (the sandbox's test key) installed with `access`, with its own webhook.
async fn app_setup(access: Access, hook: AppHook) -> Sandbox {
    let sb = Sandbox::start().await.unwrap();
    sb.create_repo("acme/api", "main");
    sb.create_repo("acme/web", "trunk");
    let public = std::fs::read_to_string(format!("{KEYS}test-app.public.pem")).unwrap();
    sb.add_app(APP_ID, &public);
    sb.add_installation(APP_ID, INSTALLATION, access);
    sb.set_app_hook(APP_ID, hook);
    sb
}

fn app_auth() -> Setup {
    Setup {
        github_auth: format!(
            "\n[github.app]\napp_id = {APP_ID}\nprivate_key_path = \"test-app.private-key.pem\"\ninstallation_id = {INSTALLATION}\n"
        ),
        discord: None,
        extra: String::new(),
    }
}

#[tokio::test]
async fn a_github_app_with_what_it_needs_passes() {
    let sb = app_setup(Access::Full, AppHook::new(HOOK_URL).secret(SECRET)).await;
    let out = doctor(&sb, app_auth(), "ghp_unused_by_apps").await;
    assert!(out.ok, "{}", out.stdout);
    out.line('✓', &["GitHub App", "accepts the private key"]);
    out.line(
        '✓',
        &["installation 4242 has deployments: write, statuses: write"],
    );
    out.line('✓', &["acme/api: visible"]);
    out.line('✓', &["acme/web", "deployments can be read"]);
    out.line('✓', &["the App's webhook", "JSON, with a secret"]);
    // The App's own webhook is used: the repositories' are not asked for.
    assert!(!sb.requests().iter().any(|r| r.path.ends_with("/hooks")));
}

#[tokio::test]
async fn a_github_app_missing_a_permission_names_it() {
    let sb = app_setup(
        Access::ReadOnly,
        AppHook::new(HOOK_URL).content_type("form"),
    )
    .await;
    let out = doctor(&sb, app_auth(), "ghp_unused_by_apps").await;
    assert!(!out.ok, "{}", out.stdout);
    let line = out.line(
        '✗',
        &["installation 4242 lacks deployments: write (has read)"],
    );
    assert!(line.contains("accept"), "{line}");
    out.no_line('✗', &["statuses:"]);
    out.line(
        '✗',
        &["the App's webhook", "application/x-www-form-urlencoded"],
    );
    out.line('✗', &["the App's webhook", "no secret"]);
}
