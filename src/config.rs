//! `bot.toml`: loading, `${VAR}` interpolation and validation.
//!
//! The file is read into "raw" structs that keep each value's byte span, then
//! checked and turned into [`Config`]. Every error names the file, line, column and
//! key, because the person reading it is editing that file, and every error is
//! reported at once (all missing `${VAR}`s, every bad value), so one round of edits
//! fixes them all. What works but is probably not meant comes back as warnings
//! ([`Loaded::warnings`]). Secrets are [`SecretString`]s from the moment they leave
//! the parser, so `Debug` and logs never show them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;

use crate::model::{AppName, Environment, RepoName};

/// Where the config is read from when `--config` is not given.
pub const CONFIG_ENV_VAR: &str = "DEPLOYBOT_CONFIG";
pub const DEFAULT_CONFIG_PATH: &str = "bot.toml";

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub source: PathBuf,
    pub github: GitHubConfig,
    pub discord: Option<DiscordConfig>,
    pub webhook: Option<WebhookConfig>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served on their own; `None`:
    /// on the webhook listener (if any).
    pub metrics: Option<MetricsConfig>,
    pub log: LogConfig,
    pub storage: StorageConfig,
    /// Lower-cased alias → environment name.
    pub aliases: BTreeMap<String, Environment>,
    pub defaults: Defaults,
    /// In file order.
    pub apps: Vec<AppConfig>,
    /// `[[freeze]]` windows, in file order.
    pub freezes: Vec<FreezeConfig>,
}

/// A `[[freeze]]` window from the config: when, why, and for which apps and
/// environments (empty: every one).
#[derive(Debug, Clone)]
pub struct FreezeConfig {
    pub window: crate::freeze::Window,
    pub reason: String,
    /// Apps it applies to; empty = every app.
    pub apps: Vec<AppName>,
    /// Environments (real names, aliases resolved); empty = every environment.
    pub environments: Vec<Environment>,
    /// Where it is written: `bot.toml:42`.
    pub origin: String,
}

impl FreezeConfig {
    /// Whether it covers deploying `app` to `env`.
    pub fn covers(&self, app: &str, env: &str) -> bool {
        (self.apps.is_empty() || self.apps.iter().any(|a| a.as_str() == app))
            && (self.environments.is_empty() || self.environments.iter().any(|e| e.as_str() == env))
    }
}

#[derive(Debug)]
pub struct GitHubConfig {
    /// Without a trailing slash: `https://api.github.com` or `https://HOST/api/v3`.
    pub api_url: String,
    pub auth: GitHubAuth,
    /// Poll unfinished deployments for statuses (for teams without a webhook).
    pub poll_interval: Option<Duration>,
}

#[derive(Debug)]
pub enum GitHubAuth {
    Token(SecretString),
    App {
        app_id: u64,
        private_key_path: PathBuf,
        installation_id: u64,
    },
}

#[derive(Debug)]
pub struct DiscordConfig {
    pub token: SecretString,
    pub prefix: String,
    pub guild_ids: Vec<u64>,
    pub proxy_url: Option<String>,
}

#[derive(Debug)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    pub path: String,
    pub secret: SecretString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human lines (with colours) on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, or `deploybot=debug,serenity=warn`. `None`: the
    /// command's default. `DEPLOYBOT_LOG`, then `RUST_LOG`, override it.
    pub level: Option<String>,
    pub format: LogFormat,
}

/// Paths the operator's endpoints take on a listener they share with the webhook.
pub const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Clone)]
pub struct StorageConfig {
    /// `sqlite://…`, `sqlite::memory:`, or `postgres://…` / `postgresql://…`.
    pub url: String,
    /// PostgreSQL: the most connections the store opens (SQLite ignores it).
    pub pool_size: u32,
    /// PostgreSQL: how long the leader lease lasts (`src/lease.rs`; renewed every
    /// third of it). SQLite ignores it.
    pub lease_ttl: Duration,
}

/// `[storage] pool_size` when absent.
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// The largest `[storage] pool_size` accepted.
pub const MAX_POOL_SIZE: u32 = 100;
/// `[storage] lease_ttl` when absent: a standby takes over within about 15 s.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// Which store a `[storage] url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    Sqlite,
    Postgres,
}

impl StorageBackend {
    /// The backend of `url`, by its scheme.
    pub fn of(url: &str) -> Option<StorageBackend> {
        if url.starts_with("sqlite:") {
            Some(StorageBackend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(StorageBackend::Postgres)
        } else {
            None
        }
    }
}

impl StorageConfig {
    pub fn backend(&self) -> StorageBackend {
        // A `StorageConfig` that exists has a URL of a known scheme.
        StorageBackend::of(&self.url).unwrap_or(StorageBackend::Sqlite)
    }

    /// The URL without its password: what summaries, logs and errors show.
    pub fn shown_url(&self) -> String {
        crate::store::postgres::redacted(&self.url)
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &self.shown_url())
            .field("pool_size", &self.pool_size)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

/// Who may do what. `None` = everyone; `Some([])` = nobody. Entries are role names
/// or `user:<id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub deploy: Option<Vec<String>>,
    pub force: Option<Vec<String>>,
    pub lock: Option<Vec<String>>,
    /// Who may `freeze` and `unfreeze`; unset at every level: whoever may lock.
    pub freeze: Option<Vec<String>>,
}

impl Rules {
    /// The more specific rules win, key by key.
    pub fn overlay(&self, specific: &Rules) -> Rules {
        Rules {
            deploy: specific.deploy.clone().or_else(|| self.deploy.clone()),
            force: specific.force.clone().or_else(|| self.force.clone()),
            lock: specific.lock.clone().or_else(|| self.lock.clone()),
            freeze: specific.freeze.clone().or_else(|| self.freeze.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub rules: Rules,
    pub lock_ttl: Duration,
    pub confirm_timeout: Duration,
    pub status_timeout: Duration,
    pub stuck_timeout: Duration,
    pub edit_interval: Duration,
    pub audit_retention: Duration,
    /// How long the first in line keeps a freed environment (`queue_grace`).
    pub queue_grace: Duration,
    /// A lock held longer reminds its holder, once per this interval.
    pub lock_remind_after: Duration,
    /// How long `deploy … when green` waits for the checks (an environment may differ).
    pub when_green_timeout: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            rules: Rules::default(),
            lock_ttl: Duration::from_secs(4 * 3600),
            confirm_timeout: Duration::from_secs(60),
            status_timeout: Duration::from_secs(60),
            stuck_timeout: Duration::from_secs(30 * 60),
            edit_interval: Duration::from_secs(1),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            queue_grace: Duration::from_secs(5 * 60),
            lock_remind_after: Duration::from_secs(2 * 3600),
            when_green_timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub name: AppName,
    pub repository: RepoName,
    pub default_environment: Option<Environment>,
    /// Channels it may be deployed from (names without `#`, or ids); empty = anywhere.
    pub channels: Vec<String>,
    pub notify_channel: Option<String>,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub rules: Rules,
    /// In file order.
    pub environments: Vec<EnvConfig>,
}

#[derive(Debug, Clone)]
pub struct EnvConfig {
    pub name: Environment,
    /// `None`: the key is omitted and GitHub checks every context. `Some([])`: none.
    pub required_contexts: Option<Vec<String>>,
    pub auto_merge: bool,
    pub production: bool,
    pub transient: bool,
    pub confirm: bool,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub rules: Rules,
    /// Queue, concurrency, automatic lock and lock reminders.
    pub queue: QueueSettings,
    /// `None`: `[defaults] when_green_timeout`.
    pub when_green_timeout: Option<Duration>,
}

impl EnvConfig {
    /// How long `deploy … when green` waits for the checks here.
    pub fn when_green_timeout(&self, defaults: &Defaults) -> Duration {
        self.when_green_timeout
            .unwrap_or(defaults.when_green_timeout)
    }
}

// --- queue, concurrency, auto-lock, lock reminders (src/flow/queue.rs) ---

/// What the first in line gets when the environment frees up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// The environment is reserved for them for `queue_grace`: they deploy or lose the turn.
    #[default]
    Reserve,
    /// Their original command is run for them, every rule checked again.
    Deploy,
}

/// An environment's queue settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueSettings {
    /// At most this many deployments not in a final state at once; `None`: no limit
    /// (`concurrency = 0`). Default 1 for `production = true`, else no limit.
    pub concurrency: Option<u32>,
    pub mode: QueueMode,
    /// `None`: `[defaults] queue_grace`.
    pub queue_grace: Option<Duration>,
    /// Lock the environment for the requester while their deployment runs.
    pub auto_lock: bool,
    /// How long an automatic lock outlives its deployment's final state.
    pub auto_lock_grace: Duration,
    /// `None`: `[defaults] lock_remind_after`.
    pub lock_remind_after: Option<Duration>,
}

/// `auto_lock_grace` when absent.
pub const DEFAULT_AUTO_LOCK_GRACE: Duration = Duration::from_secs(5 * 60);
const QUEUE_GRACE: Bounds = bounds(30 * SEC, DAY);
const AUTO_LOCK_GRACE: Bounds = bounds(0, DAY);
const LOCK_REMIND_AFTER: Bounds = bounds(60 * SEC, 7 * DAY);

// --- end of queue settings ---

/// A valid configuration and what is worth saying about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Settings that work but are probably not what was meant, in file order.
    /// `check-config` prints them; `run` and `shell` log them at warn.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// The path to read: `--config`, else `$DEPLOYBOT_CONFIG`, else `./bot.toml`.
    pub fn path_from(flag: Option<PathBuf>) -> PathBuf {
        flag.or_else(|| std::env::var_os(CONFIG_ENV_VAR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Reads and validates a file, taking `${VAR}`s from the process environment.
    /// Every error in the file comes back, in file order; warnings come with the
    /// config.
    pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            location: None,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "no such file; copy bot.toml.example to {} or pass --config PATH",
                    path.display()
                ),
                _ => format!("cannot read: {e}"),
            },
        })?;
        Self::check(&text, path, &|name| std::env::var(name).ok())
    }

    /// Validates config text as [`Config::load`] does; `env` answers `${VAR}` lookups
    /// (injectable for tests). Files the config names (the GitHub App's private key)
    /// are read, relative to `path`'s directory.
    pub fn check(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigErrors> {
        let cx = Cx {
            text,
            path,
            env,
            errors: RefCell::default(),
            warnings: RefCell::default(),
        };
        let config = cx.run();
        let Cx {
            errors, warnings, ..
        } = cx;
        let mut errors = errors.into_inner();
        let mut warnings = warnings.into_inner();
        errors.sort_by_key(|e| e.location);
        errors.dedup();
        warnings.sort_by_key(|w| w.location);
        warnings.dedup();
        match config {
            Some(config) if errors.is_empty() => Ok(Loaded { config, warnings }),
            _ if errors.is_empty() => Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                location: None,
                message: "invalid configuration".into(),
            }])),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// [`Config::check`] for callers that only want the config (tests, the demo): the
    /// first error, and no warnings.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::check(text, path, env)
            .map(|loaded| loaded.config)
            .map_err(|mut errors| errors.0.swap_remove(0))
    }

    /// Finds an app by name, ignoring case.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps
            .iter()
            .find(|a| a.name.as_str().eq_ignore_ascii_case(name))
    }

    pub fn app_names(&self) -> Vec<&str> {
        self.apps.iter().map(|a| a.name.as_str()).collect()
    }

    /// Applies `[aliases]` (case-insensitive); unknown names come back unchanged.
    pub fn unalias<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases
            .get(&name.to_ascii_lowercase())
            .map_or(name, |e| e.as_str())
    }

    /// The rules for an app in an environment: environment over app over `[defaults]`.
    pub fn rules(&self, app: &AppConfig, env: &EnvConfig) -> Rules {
        self.defaults.rules.overlay(&app.rules).overlay(&env.rules)
    }

    /// A human summary for `check-config`. Never includes secrets.
    pub fn summary(&self) -> String {
        use fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "{}: OK", self.source.display());
        let auth = match &self.github.auth {
            GitHubAuth::Token(_) => "personal access token".to_string(),
            GitHubAuth::App {
                app_id,
                installation_id,
                ..
            } => format!("GitHub App {app_id}, installation {installation_id}"),
        };
        let _ = writeln!(s, "  github:  {} ({auth})", self.github.api_url);
        if let Some(p) = self.github.poll_interval {
            let _ = writeln!(s, "           polls statuses every {}s", p.as_secs());
        }
        match &self.discord {
            Some(d) => {
                let guilds = if d.guild_ids.is_empty() {
                    "slash commands registered globally".to_string()
                } else {
                    format!("slash commands in guild(s) {:?}", d.guild_ids)
                };
                let _ = writeln!(s, "  discord: prefix `{}`, {guilds}", d.prefix);
            }
            None => {
                let _ = writeln!(s, "  discord: not configured (only `shell` and `demo`)");
            }
        }
        match &self.webhook {
            Some(w) => {
                let _ = writeln!(s, "  webhook: http://{}{} (signed)", w.listen, w.path);
            }
            None => {
                let _ = writeln!(s, "  webhook: not configured");
            }
        }
        let _ = writeln!(s, "  storage: {}", self.storage.shown_url());
        if !self.aliases.is_empty() {
            let list: Vec<String> = self
                .aliases
                .iter()
                .map(|(a, e)| format!("{a} → {e}"))
                .collect();
            let _ = writeln!(s, "  aliases: {}", list.join(", "));
        }
        let _ = writeln!(s, "  apps:");
        for app in &self.apps {
            let default = app
                .default_environment
                .as_ref()
                .map(|e| format!(", default {e}"))
                .unwrap_or_default();
            let channels = if app.channels.is_empty() {
                String::new()
            } else {
                format!(", from #{}", app.channels.join(", #"))
            };
            let _ = writeln!(
                s,
                "    {} → {}{default}{channels}",
                app.name, app.repository
            );
            for env in &app.environments {
                let mut notes = Vec::new();
                match &env.required_contexts {
                    None => notes.push("all checks".to_string()),
                    Some(c) if c.is_empty() => notes.push("no checks".to_string()),
                    Some(c) => notes.push(format!("checks {}", c.join(", "))),
                }
                if env.production {
                    notes.push("production".into());
                }
                if env.transient {
                    notes.push("transient".into());
                }
                if env.confirm {
                    notes.push("confirm".into());
                }
                if env.auto_merge {
                    notes.push("auto-merge".into());
                }
                let rules = self.rules(app, env);
                for (what, who) in [
                    ("deploy", &rules.deploy),
                    ("force", &rules.force),
                    ("lock", &rules.lock),
                    ("freeze", &rules.freeze),
                ] {
                    if let Some(who) = who {
                        let who = if who.is_empty() {
                            "nobody".to_string()
                        } else {
                            who.join(", ")
                        };
                        notes.push(format!("{what}: {who}"));
                    }
                }
                let _ = writeln!(s, "      {}: {}", env.name, notes.join("; "));
            }
        }
        if !self.freezes.is_empty() {
            let _ = writeln!(s, "  freezes:");
            for f in &self.freezes {
                let names = |v: Vec<&str>| {
                    if v.is_empty() {
                        "every".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                let _ = writeln!(
                    s,
                    "    {} ({}): {}; apps: {}; environments: {}",
                    f.window,
                    f.origin,
                    f.reason,
                    names(f.apps.iter().map(|a| a.as_str()).collect()),
                    names(f.environments.iter().map(|e| e.as_str()).collect()),
                );
            }
        }
        s
    }
}

impl AppConfig {
    /// Finds an environment by name or alias, ignoring case.
    pub fn environment<'a>(&'a self, config: &Config, name: &str) -> Option<&'a EnvConfig> {
        let name = config.unalias(name);
        self.environments
            .iter()
            .find(|e| e.name.as_str().eq_ignore_ascii_case(name))
    }

    pub fn environment_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }

    /// Whether it may be deployed from this channel (by name or id).
    pub fn allows_channel(&self, channel_id: &str, channel_name: Option<&str>) -> bool {
        self.channels.is_empty()
            || self
                .channels
                .iter()
                .any(|c| c == channel_id || channel_name.is_some_and(|n| c.eq_ignore_ascii_case(n)))
    }
}

/// A config error, shown as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a place in the file.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error in a config file (at least one), in file order. `Display` puts each on
/// its own line, as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something that works but is probably not what was meant, shown as
/// `file:line:col: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => write!(
                f,
                "{}:{line}:{col}: warning: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: warning: {}", self.file.display(), self.message),
        }
    }
}

// ---------------------------------------------------------------------------------
// Raw, spanned shapes of the file. `deny_unknown_fields` turns a typo into an error at
// the typo, instead of a setting silently ignored.

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    github: S<RawGitHub>,
    discord: Option<S<RawDiscord>>,
    webhook: Option<S<RawWebhook>>,
    metrics: Option<S<RawMetrics>>,
    log: Option<S<RawLog>>,
    storage: Option<RawStorage>,
    #[serde(default)]
    aliases: IndexMap<String, S<String>>,
    defaults: Option<RawDefaults>,
    #[serde(default)]
    apps: IndexMap<String, S<RawApp>>,
    #[serde(default)]
    freeze: Vec<S<RawFreeze>>,
}

/// One `[[freeze]]` table: weekly (`from = "Fri 16:00"`) or dated
/// (`from = "2026-12-23"`), told apart by `from`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    from: S<String>,
    until: S<String>,
    timezone: Option<S<String>>,
    reason: S<String>,
    apps: Option<S<Vec<S<String>>>>,
    environments: Option<S<Vec<S<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitHub {
    api_url: Option<S<String>>,
    token: Option<S<String>>,
    app: Option<S<RawGitHubApp>>,
    poll_interval: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitHubApp {
    app_id: S<u64>,
    private_key_path: S<String>,
    installation_id: S<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscord {
    token: S<String>,
    prefix: Option<S<String>>,
    #[serde(default)]
    guild_ids: Vec<S<String>>,
    proxy_url: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    listen: S<String>,
    path: Option<S<String>>,
    secret: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<S<String>>,
    format: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: S<String>,
    /// Any TOML value, so a wrong type is reported with its key (checked in `storage`).
    pool_size: Option<S<toml::Value>>,
    lease_ttl: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    deploy: Option<S<Vec<S<String>>>>,
    force: Option<S<Vec<S<String>>>>,
    lock: Option<S<Vec<S<String>>>>,
    freeze: Option<S<Vec<S<String>>>>,
    lock_ttl: Option<S<String>>,
    confirm_timeout: Option<S<String>>,
    status_timeout: Option<S<String>>,
    stuck_timeout: Option<S<String>>,
    edit_interval: Option<S<String>>,
    audit_retention: Option<S<String>>,
    queue_grace: Option<S<String>>,
    lock_remind_after: Option<S<String>>,
    when_green_timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    repository: S<String>,
    default_environment: Option<S<String>>,
    #[serde(default)]
    channels: Vec<S<String>>,
    notify_channel: Option<S<String>>,
    payload: Option<S<toml::Table>>,
    deploy: Option<S<Vec<S<String>>>>,
    force: Option<S<Vec<S<String>>>>,
    lock: Option<S<Vec<S<String>>>>,
    freeze: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    environments: IndexMap<String, S<RawEnv>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    required_contexts: Option<S<Vec<S<String>>>>,
    auto_merge: Option<bool>,
    production: Option<bool>,
    transient: Option<bool>,
    confirm: Option<bool>,
    payload: Option<S<toml::Table>>,
    deploy: Option<S<Vec<S<String>>>>,
    force: Option<S<Vec<S<String>>>>,
    lock: Option<S<Vec<S<String>>>>,
    // Queue settings (QueueSettings).
    concurrency: Option<S<toml::Value>>,
    queue: Option<S<String>>,
    queue_grace: Option<S<String>>,
    auto_lock: Option<bool>,
    auto_lock_grace: Option<S<String>>,
    lock_remind_after: Option<S<String>>,
    when_green_timeout: Option<S<String>>,
    freeze: Option<S<Vec<S<String>>>>,
}

/// The validation context: the text (for line/column), the path, `${VAR}` lookup, and
/// what has been found so far.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: RefCell<Vec<ConfigError>>,
    warnings: RefCell<Vec<ConfigWarning>>,
}

/// Why a part of the config could not be built: an error to report, or one that has
/// been reported already (a missing `${VAR}`, found by [`Cx::scan`] up front).
enum Fail {
    Error(ConfigError),
    Reported,
}

impl From<ConfigError> for Fail {
    fn from(e: ConfigError) -> Self {
        Fail::Error(e)
    }
}

type R<T> = Result<T, Fail>;

/// Durations each key accepts, so a typo (`100ms` for `100s`) or an absurd value
/// (`100000000d`, which would overflow a date later) is refused here.
struct Bounds {
    min: Duration,
    max: Duration,
}

const fn bounds(min_ms: u64, max_secs: u64) -> Bounds {
    Bounds {
        min: Duration::from_millis(min_ms),
        max: Duration::from_secs(max_secs),
    }
}

const SEC: u64 = 1000;
const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
const POLL_INTERVAL: Bounds = bounds(SEC, HOUR);
const EDIT_INTERVAL: Bounds = bounds(10, MIN);
const CONFIRM_TIMEOUT: Bounds = bounds(10 * SEC, DAY);
// The same bounds as `lock ... for DURATION` in chat: one rule for every lock.
const LOCK_TTL: Bounds = Bounds {
    min: commands::MIN_LOCK,
    max: commands::MAX_LOCK,
};
const STATUS_TIMEOUT: Bounds = bounds(SEC, DAY);
const STUCK_TIMEOUT: Bounds = bounds(60 * SEC, 7 * DAY);
const AUDIT_RETENTION: Bounds = bounds(DAY * SEC, 3650 * DAY);
const WHEN_GREEN_TIMEOUT: Bounds = bounds(MIN * SEC, 7 * DAY);
// Shorter than 3 s leaves a renewal (every third of it) too little time; longer than
// 5 min leaves commands unanswered for as long after a leader dies.
const LEASE_TTL: Bounds = bounds(3 * SEC, 5 * MIN);

/// `500ms`, `1s`, `1m30s`, `2h`, `1d`.
fn show_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) || d.subsec_millis() != 0 && d < Duration::from_secs(60) {
        format!("{}ms", d.as_millis())
    } else {
        commands::format_duration(d)
    }
}

/// Keys whose values are secrets: never echoed, even in part.
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    ["token", "secret", "password", "key"]
        .iter()
        .any(|w| last.contains(w))
}

/// Keys that hold a credential itself, where an environment variable's *name* is a
/// likely slip for `${NAME}`.
const CREDENTIAL_KEYS: [&str; 3] = ["github.token", "discord.token", "webhook.secret"];

impl Cx<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let location = span.map(|s| line_col(self.text, s.start));
        ConfigError {
            file: self.path.to_path_buf(),
            location: Some(location.unwrap_or((1, 1))),
            message: message.into(),
        }
    }

    fn at<T>(&self, v: &S<T>, message: impl Into<String>) -> Fail {
        Fail::Error(self.error(Some(v.span()), message))
    }

    fn push(&self, e: ConfigError) {
        self.errors.borrow_mut().push(e);
    }

    fn warn(&self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.borrow_mut().push(ConfigWarning {
            file: self.path.to_path_buf(),
            location: Some(line_col(self.text, span.start)),
            message: message.into(),
        });
    }

    /// The part, if it could be built; its error is kept for the report otherwise,
    /// and checking goes on with the next part.
    fn keep<T>(&self, r: R<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Fail::Error(e)) => {
                self.push(e);
                None
            }
            Err(Fail::Reported) => None,
        }
    }

    /// Parses, scans and builds; errors and warnings are left in `self`.
    fn run(&self) -> Option<Config> {
        let doc = match toml::de::DeTable::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                self.push(self.error(e.span(), one_line(e.message())));
                return None;
            }
        };
        self.scan(doc.get_ref(), "");
        match toml::from_str::<RawConfig>(self.text) {
            Ok(raw) => self.build(raw),
            Err(e) => {
                self.push(self.error(e.span(), one_line(e.message())));
                None
            }
        }
    }

    /// Every string in the file, before anything is built: each missing `${VAR}` and
    /// unclosed `${` is an error (all of them, not just the first), and text that
    /// looks like a variable written wrong is a warning.
    fn scan(&self, table: &toml::de::DeTable<'_>, prefix: &str) {
        for (k, v) in table.iter() {
            let key = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.scan_value(v, &key);
        }
    }

    fn scan_value(&self, v: &S<toml::de::DeValue<'_>>, key: &str) {
        use toml::de::DeValue;
        match v.get_ref() {
            DeValue::String(s) => self.scan_string(s, v.span(), key),
            DeValue::Array(items) => {
                for item in items {
                    self.scan_value(item, key);
                }
            }
            DeValue::Table(t) => self.scan(t, key),
            _ => {}
        }
    }

    fn scan_string(&self, s: &str, span: Range<usize>, key: &str) {
        let (missing, unclosed) = interpolation_problems(s, self.env);
        for var in missing {
            self.push(self.error(
                Some(span.clone()),
                format!("{key}: environment variable `{var}` is not set (export it, or write the value here)"),
            ));
        }
        if unclosed {
            self.push(self.error(
                Some(span.clone()),
                format!("{key}: `${{` without a closing `}}` (write `$${{` for a literal `${{`)"),
            ));
        }
        let secret = is_secret_key(key);
        for var in bare_variables(s) {
            // In a secret, only a value that is nothing but `$NAME` is named back.
            if secret && s.trim() != format!("${var}") {
                continue;
            }
            self.warn(
                span.clone(),
                format!("{key}: `${var}` is not replaced (only `${{VAR}}` is); write `${{{var}}}`"),
            );
        }
        if CREDENTIAL_KEYS.contains(&key) && looks_like_a_variable_name(s) {
            self.warn(
                span.clone(),
                format!("{key}: `{s}` looks like the name of an environment variable, not its value; did you mean `${{{s}}}`?"),
            );
        }
    }

    /// A string with `${VAR}` replaced; `$${` stays a literal `${`. A missing variable
    /// was reported by the scan.
    fn string(&self, v: &S<String>, _key: &str) -> R<String> {
        interpolate(v.get_ref(), self.env).map_err(|_| Fail::Reported)
    }

    fn non_empty(&self, v: &S<String>, key: &str) -> R<String> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            return Err(self.at(v, format!("{key} is empty")));
        }
        Ok(s)
    }

    fn duration(&self, v: &Option<S<String>>, key: &str, b: &Bounds) -> R<Option<Duration>> {
        let Some(v) = v else { return Ok(None) };
        let s = self.string(v, key)?;
        let Some(d) = config_duration(s.trim()) else {
            return Err(self.at(
                v,
                format!(
                    "{key}: `{s}` is not a duration; write e.g. \"500ms\", \"90s\", \"15m\", \"2h\", \"1h30m\", \"4 hours\" or \"1d\" (at least {}, at most {})",
                    show_duration(b.min),
                    show_duration(b.max)
                ),
            ));
        };
        if d < b.min {
            return Err(self.at(
                v,
                format!(
                    "{key}: `{s}` is too short; at least {}",
                    show_duration(b.min)
                ),
            ));
        }
        if d > b.max {
            return Err(self.at(
                v,
                format!("{key}: `{s}` is too long; at most {}", show_duration(b.max)),
            ));
        }
        Ok(Some(d))
    }

    fn role_list(&self, v: &Option<S<Vec<S<String>>>>, key: &str) -> R<Option<Vec<String>>> {
        let Some(list) = v else { return Ok(None) };
        let mut out = Vec::new();
        for entry in list.get_ref() {
            let s = self.non_empty(entry, key)?;
            if let Some(id) = s.strip_prefix("user:") {
                if id.trim().is_empty() {
                    return Err(self.at(
                        entry,
                        format!("{key}: `user:` needs an id, e.g. \"user:123456789\""),
                    ));
                }
            }
            out.push(s);
        }
        Ok(Some(out))
    }

    fn rules(
        &self,
        deploy: &Option<S<Vec<S<String>>>>,
        force: &Option<S<Vec<S<String>>>>,
        lock: &Option<S<Vec<S<String>>>>,
        freeze: &Option<S<Vec<S<String>>>>,
        prefix: &str,
    ) -> R<Rules> {
        Ok(Rules {
            deploy: self.role_list(deploy, &format!("{prefix}deploy"))?,
            force: self.role_list(force, &format!("{prefix}force"))?,
            lock: self.role_list(lock, &format!("{prefix}lock"))?,
            freeze: self.role_list(freeze, &format!("{prefix}freeze"))?,
        })
    }

    fn payload(
        &self,
        v: &Option<S<toml::Table>>,
        key: &str,
    ) -> R<serde_json::Map<String, serde_json::Value>> {
        let Some(table) = v else {
            return Ok(serde_json::Map::new());
        };
        if table.get_ref().contains_key("deploybot") {
            return Err(self.at(
                table,
                format!("{key}.deploybot is reserved: deploybot writes its own routing data there; pick another key"),
            ));
        }
        let mut out = serde_json::Map::new();
        for (k, value) in table.get_ref() {
            let json = toml_to_json(value, self.env).map_err(|_| Fail::Reported)?;
            out.insert(k.clone(), json);
        }
        Ok(out)
    }

    fn build(&self, raw: RawConfig) -> Option<Config> {
        let github = self.keep(self.github(&raw.github));
        if raw.webhook.is_none() && raw.github.get_ref().poll_interval.is_none() {
            self.warn(
                raw.github.span(),
                "no live status: neither [webhook] nor [github] poll_interval is set, so deployments are created but their progress never reaches chat; add a [webhook] table (listen, secret) and point a GitHub webhook at it, or set poll_interval = \"15s\" under [github]",
            );
        }
        let discord = raw.discord.as_ref().map(|d| self.keep(self.discord(d)));
        let webhook = raw.webhook.as_ref().map(|w| self.keep(self.webhook(w)));
        let metrics = raw.metrics.as_ref().map(|m| {
            self.keep(
                self.address(&m.get_ref().listen, "metrics.listen", "127.0.0.1:9187")
                    .map(|listen| MetricsConfig { listen }),
            )
        });
        let log = match &raw.log {
            Some(l) => self.keep(self.log(l.get_ref())),
            None => Some(LogConfig::default()),
        };
        let storage = match &raw.storage {
            Some(s) => self.keep(self.storage(s)),
            None => Some(StorageConfig {
                url: "sqlite://deploybot.db".into(),
                pool_size: DEFAULT_POOL_SIZE,
                lease_ttl: DEFAULT_LEASE_TTL,
            }),
        };
        let defaults = match &raw.defaults {
            Some(d) => self.keep(self.defaults(d)),
            None => Some(Defaults::default()),
        };

        // Names are typed in chat, where case does not matter: two that differ only by
        // case would be one name there.
        let mut apps = Vec::new();
        let mut all_built = true;
        for (i, (name, app)) in raw.apps.iter().enumerate() {
            if let Some((first, _)) = raw
                .apps
                .iter()
                .take(i)
                .find(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                self.push(self.error(
                    Some(app.span()),
                    format!("apps.{name}: the same name as [apps.{first}] (names ignore case, as chat does); rename one"),
                ));
                all_built = false;
                continue;
            }
            match self.keep(self.app(name, app)) {
                Some(a) => apps.push(a),
                None => all_built = false,
            }
        }
        if raw.apps.is_empty() {
            self.push(self.error(
                None,
                "no apps configured: add an [apps.NAME] table with `repository = \"owner/name\"` and at least one [apps.NAME.environments.ENV]",
            ));
        }

        // Aliases are checked against the environment names in the file, so an app
        // with an error elsewhere does not make its environments look missing.
        let env_names: Vec<&str> = raw
            .apps
            .values()
            .flat_map(|a| a.get_ref().environments.keys().map(String::as_str))
            .collect();
        let mut aliases = BTreeMap::new();
        for (i, (alias, target)) in raw.aliases.iter().enumerate() {
            if let Some((first, _)) = raw
                .aliases
                .iter()
                .take(i)
                .find(|(other, _)| other.eq_ignore_ascii_case(alias))
            {
                self.push(self.error(
                    Some(target.span()),
                    format!("aliases.{alias}: the same alias as `{first}` (names ignore case); keep one"),
                ));
                continue;
            }
            if let Some(e) = self.keep(self.alias(alias, target, &raw, &env_names)) {
                aliases.insert(alias.to_ascii_lowercase(), e);
            }
        }

        // Default environments may be aliases; resolve them now so the rest of the bot
        // only ever sees real names.
        for app in apps.iter_mut() {
            let raw_app = raw
                .apps
                .iter()
                .find(|(n, _)| n.as_str() == app.name.as_str())
                .map(|(_, a)| a.get_ref());
            if let Some(v) = raw_app.and_then(|a| a.default_environment.as_ref()) {
                // Naming an alias that has an error of its own: that error says it.
                let broken_alias = interpolate(v.get_ref(), self.env).is_ok_and(|wanted| {
                    raw.aliases.keys().any(|a| a.eq_ignore_ascii_case(&wanted))
                        && !aliases.contains_key(&wanted.to_ascii_lowercase())
                });
                if broken_alias {
                    continue;
                }
                app.default_environment = self.keep(self.default_environment(app, v, &aliases));
            }
        }

        let freezes = self.freezes(&raw, &apps, &aliases);

        if !all_built {
            return None;
        }
        Some(Config {
            source: self.path.to_path_buf(),
            github: github?,
            discord: discord.map(|d| d.ok_or(())).transpose().ok()?,
            webhook: webhook.map(|w| w.ok_or(())).transpose().ok()?,
            metrics: metrics.map(|m| m.ok_or(())).transpose().ok()?,
            log: log?,
            storage: storage?,
            aliases,
            defaults: defaults?,
            apps,
            freezes: freezes?,
        })
    }

    // --- freeze windows -------------------------------------------------------------

    /// Every `[[freeze]]` table, each on its own so every bad one is reported. Apps and
    /// environments are checked against those that were built.
    fn freezes(
        &self,
        raw: &RawConfig,
        apps: &[AppConfig],
        aliases: &BTreeMap<String, Environment>,
    ) -> Option<Vec<FreezeConfig>> {
        let mut out = Vec::new();
        let mut ok = true;
        for f in &raw.freeze {
            match self.keep(self.freeze(f, raw, apps, aliases)) {
                Some(f) => out.push(f),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn freeze(
        &self,
        raw: &S<RawFreeze>,
        file: &RawConfig,
        apps: &[AppConfig],
        aliases: &BTreeMap<String, Environment>,
    ) -> R<FreezeConfig> {
        use crate::freeze::{parse_timezone, DateOrTime, WeekTime, Window};
        let f = raw.get_ref();
        let tz = match &f.timezone {
            Some(v) => {
                let s = self.non_empty(v, "freeze.timezone")?;
                parse_timezone(s.trim()).map_err(|m| self.at(v, format!("freeze.timezone: {m}")))?
            }
            None => chrono_tz::UTC,
        };
        let from = self.non_empty(&f.from, "freeze.from")?;
        let until = self.non_empty(&f.until, "freeze.until")?;
        let dated = from.trim().starts_with(|c: char| c.is_ascii_digit());
        let window = if dated {
            let start = DateOrTime::parse(&from)
                .map_err(|m| self.at(&f.from, format!("freeze.from: {m}")))?;
            let end = DateOrTime::parse(&until).map_err(|m| {
                self.at(
                    &f.until,
                    format!("freeze.until: {m} (`from` is a date, so `until` is one too)"),
                )
            })?;
            let (from_at, until_at) = (start.instant(tz, false), end.instant(tz, true));
            if until_at <= from_at {
                return Err(self.at(
                    &f.until,
                    format!("freeze.until: `{until}` is not after `from` (`{from}`); the window would be empty — swap them, or fix the date"),
                ));
            }
            Window::Dated {
                from: from_at,
                until: until_at,
                tz,
            }
        } else {
            let start = WeekTime::parse(&from)
                .map_err(|m| self.at(&f.from, format!("freeze.from: {m}")))?;
            let end = WeekTime::parse(&until).map_err(|m| {
                self.at(
                    &f.until,
                    format!("freeze.until: {m} (`from` is a weekday, so `until` is one too)"),
                )
            })?;
            if start == end {
                return Err(self.at(
                    &f.until,
                    format!("freeze.until: `{until}` is the same as `from`; a weekly window needs two different times"),
                ));
            }
            Window::Weekly {
                from: start,
                until: end,
                tz,
            }
        };
        let reason = self.non_empty(&f.reason, "freeze.reason")?;
        let mut scope_apps = Vec::new();
        for a in f.apps.iter().flat_map(|l| l.get_ref()) {
            let name = self.non_empty(a, "freeze.apps")?;
            let Some(app) = apps
                .iter()
                .find(|x| x.name.as_str().eq_ignore_ascii_case(&name))
            else {
                if file.apps.keys().any(|k| k.eq_ignore_ascii_case(&name)) {
                    return Err(Fail::Reported); // the app's own error says what is wrong
                }
                let known: Vec<&str> = apps.iter().map(|x| x.name.as_str()).collect();
                return Err(self.at(
                    a,
                    format!(
                        "freeze.apps: no app `{name}`; the apps are {}",
                        known.join(", ")
                    ),
                ));
            };
            scope_apps.push(app.name.clone());
        }
        let mut scope_envs = Vec::new();
        for e in f.environments.iter().flat_map(|l| l.get_ref()) {
            let name = self.non_empty(e, "freeze.environments")?;
            let real = aliases
                .get(&name.to_ascii_lowercase())
                .map_or(name.clone(), |e| e.to_string());
            let candidates: Vec<&AppConfig> = apps
                .iter()
                .filter(|a| scope_apps.is_empty() || scope_apps.contains(&a.name))
                .collect();
            let found = candidates.iter().find_map(|a| {
                a.environments
                    .iter()
                    .find(|x| x.name.as_str().eq_ignore_ascii_case(&real))
            });
            let Some(env) = found else {
                if apps.len() < file.apps.len() {
                    return Err(Fail::Reported); // maybe in an app with an error of its own
                }
                let mut known: Vec<&str> = candidates
                    .iter()
                    .flat_map(|a| a.environments.iter().map(|x| x.name.as_str()))
                    .collect();
                known.sort_unstable();
                known.dedup();
                return Err(self.at(
                    e,
                    format!(
                        "freeze.environments: no environment `{name}`{}; the environments are {}",
                        if scope_apps.is_empty() {
                            ""
                        } else {
                            " in those apps"
                        },
                        known.join(", ")
                    ),
                ));
            };
            scope_envs.push(env.name.clone());
        }
        let (line, _) = line_col(self.text, raw.span().start);
        Ok(FreezeConfig {
            window,
            reason,
            apps: scope_apps,
            environments: scope_envs,
            origin: format!(
                "{}:{line}",
                self.path.file_name().map_or_else(
                    || self.path.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            ),
        })
    }

    fn storage(&self, s: &RawStorage) -> R<StorageConfig> {
        let url = self.non_empty(&s.url, "storage.url")?;
        let shown = crate::store::postgres::redacted(&url);
        match StorageBackend::of(&url) {
            Some(StorageBackend::Sqlite) => {}
            Some(StorageBackend::Postgres) => {
                // What the store would refuse at start (a bad port, an unknown
                // sslmode) is refused here, without connecting.
                if let Err(e) =
                    <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)
                {
                    return Err(self.at(
                        &s.url,
                        format!("storage.url: `{shown}` is not a valid PostgreSQL URL ({e}); write e.g. \"postgres://deploybot:${{DEPLOYBOT_DB_PASSWORD}}@db.internal:5432/deploybot?sslmode=require\""),
                    ));
                }
            }
            None => {
                return Err(self.at(
                    &s.url,
                    format!("storage.url: `{shown}` is not supported; use \"sqlite://deploybot.db\" (a file), \"sqlite::memory:\" or \"postgres://user:password@host:5432/database\""),
                ));
            }
        }
        let pool_size = match &s.pool_size {
            None => DEFAULT_POOL_SIZE,
            Some(v) => match v.get_ref() {
                toml::Value::Integer(n) if (1..=i64::from(MAX_POOL_SIZE)).contains(n) => *n as u32,
                toml::Value::Integer(n) => {
                    return Err(self.at(
                        v,
                        format!("storage.pool_size: {n} is out of range; at least 1, at most {MAX_POOL_SIZE} connections"),
                    ));
                }
                other => {
                    return Err(self.at(
                        v,
                        format!("storage.pool_size: `{other}` is not a whole number; write e.g. pool_size = {DEFAULT_POOL_SIZE} (1 to {MAX_POOL_SIZE} connections)"),
                    ));
                }
            },
        };
        let lease_ttl = self
            .duration(&s.lease_ttl, "storage.lease_ttl", &LEASE_TTL)?
            .unwrap_or(DEFAULT_LEASE_TTL);
        Ok(StorageConfig {
            url,
            pool_size,
            lease_ttl,
        })
    }

    fn alias(
        &self,
        alias: &str,
        target: &S<String>,
        raw: &RawConfig,
        env_names: &[&str],
    ) -> R<Environment> {
        let key = format!("aliases.{alias}");
        let target_name = self.non_empty(target, &key)?;
        check_word(alias).map_err(|m| self.at(target, format!("{key}: alias {m}")))?;
        if !env_names.contains(&target_name.as_str()) {
            let known: std::collections::BTreeSet<&str> = env_names.iter().copied().collect();
            return Err(self.at(
                target,
                format!(
                    "{key}: no app has an environment `{target_name}`; environments: {}",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        // An alias named like a real environment would hide it for good.
        if let Some((app, _)) = raw.apps.iter().find(|(_, a)| {
            a.get_ref()
                .environments
                .keys()
                .any(|e| e.eq_ignore_ascii_case(alias))
        }) {
            return Err(self.at(
                target,
                format!(
                    "{key}: `{alias}` is also an environment of app {app} and would hide it; rename the alias"
                ),
            ));
        }
        Ok(Environment::new(target_name))
    }

    fn default_environment(
        &self,
        app: &AppConfig,
        v: &S<String>,
        aliases: &BTreeMap<String, Environment>,
    ) -> R<Environment> {
        let wanted = self.non_empty(v, &format!("apps.{}.default_environment", app.name))?;
        let real = aliases
            .get(&wanted.to_ascii_lowercase())
            .map_or(wanted.as_str(), |e| e.as_str());
        match app
            .environments
            .iter()
            .find(|e| e.name.as_str().eq_ignore_ascii_case(real))
        {
            Some(e) => Ok(e.name.clone()),
            None => Err(self.at(
                v,
                format!(
                    "apps.{}.default_environment: `{wanted}` is not one of its environments ({})",
                    app.name,
                    app.environment_names().join(", ")
                ),
            )),
        }
    }

    fn api_url(&self, v: &S<String>) -> R<String> {
        let url = self.non_empty(v, "github.api_url")?;
        let parsed = reqwest::Url::parse(&url).map_err(|e| {
            self.at(v, format!("github.api_url: `{url}` is not a URL ({e}); e.g. \"https://api.github.com\" or \"https://HOST/api/v3\""))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.at(
                v,
                "github.api_url must start with https:// (or http:// for a local sandbox)",
            ));
        }
        let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
        if host == "github.com" || host == "www.github.com" {
            return Err(self.at(
                v,
                format!("github.api_url: `{url}` is GitHub's web site, not its API; write \"https://api.github.com\" (or leave api_url out)"),
            ));
        }
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let api_path = parsed
            .path_segments()
            .is_some_and(|mut segments| segments.any(|s| s.eq_ignore_ascii_case("api")));
        if !loopback && !host.starts_with("api.") && !api_path {
            let mut fixed = parsed.clone();
            fixed.set_path("/api/v3");
            self.warn(
                v.span(),
                format!("github.api_url: `{url}` looks like a web address, not an API; GitHub Enterprise Server's API is at \"{}\"", fixed.as_str().trim_end_matches('/')),
            );
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    fn github(&self, raw: &S<RawGitHub>) -> R<GitHubConfig> {
        let g = raw.get_ref();
        let api_url = match &g.api_url {
            Some(v) => self.keep(self.api_url(v)),
            None => Some("https://api.github.com".to_string()),
        };
        let poll_interval =
            self.keep(self.duration(&g.poll_interval, "github.poll_interval", &POLL_INTERVAL));
        let auth = match (&g.token, &g.app) {
            (Some(token), None) => GitHubAuth::Token(SecretString::from(self.non_empty(token, "github.token")?)),
            (None, Some(app)) => {
                let a = app.get_ref();
                let key = self.non_empty(&a.private_key_path, "github.app.private_key_path")?;
                let key_path = self.path.parent().unwrap_or(Path::new(".")).join(key);
                if let Err(e) = crate::github::token::read_private_key(&key_path) {
                    let message = match e {
                        crate::github::GitHubError::Credentials { message } => message,
                        other => other.to_string(),
                    };
                    return Err(self.at(
                        &a.private_key_path,
                        format!("github.app.private_key_path: {message}"),
                    ));
                }
                GitHubAuth::App {
                    app_id: *a.app_id.get_ref(),
                    private_key_path: key_path,
                    installation_id: *a.installation_id.get_ref(),
                }
            }
            (Some(token), Some(_)) => {
                return Err(self.at(
                    token,
                    "github: set either `token` or [github.app], not both",
                ))
            }
            (None, None) => {
                return Err(self.at(
                    raw,
                    "github: no credentials; set `token = \"${GITHUB_TOKEN}\"` (a token with repo_deployment) or a [github.app] table",
                ))
            }
        };
        Ok(GitHubConfig {
            api_url: api_url.ok_or(Fail::Reported)?,
            auth,
            poll_interval: poll_interval.ok_or(Fail::Reported)?,
        })
    }

    fn discord(&self, raw: &S<RawDiscord>) -> R<DiscordConfig> {
        let d = raw.get_ref();
        let token = SecretString::from(self.non_empty(&d.token, "discord.token")?);
        let prefix = match &d.prefix {
            Some(p) => {
                let p = self.string(p, "discord.prefix")?;
                if p.is_empty() || p.chars().any(char::is_whitespace) {
                    return Err(self.at(
                        d.prefix.as_ref().unwrap_or(&d.token),
                        "discord.prefix must be non-empty and without spaces, e.g. \"!\"",
                    ));
                }
                p
            }
            None => "!".to_string(),
        };
        let mut guild_ids = Vec::new();
        for g in &d.guild_ids {
            let s = self.non_empty(g, "discord.guild_ids")?;
            guild_ids.push(s.trim().parse::<u64>().map_err(|_| {
                self.at(g, format!("discord.guild_ids: `{s}` is not a guild id (a number, as a string: \"123456789012345678\")"))
            })?);
        }
        let proxy_url = d
            .proxy_url
            .as_ref()
            .map(|p| self.non_empty(p, "discord.proxy_url"))
            .transpose()?;
        Ok(DiscordConfig {
            token,
            prefix,
            guild_ids,
            proxy_url,
        })
    }

    /// An `IP:PORT` to listen on.
    fn address(&self, v: &S<String>, key: &str, example: &str) -> R<SocketAddr> {
        let s = self.non_empty(v, key)?;
        s.trim().parse::<SocketAddr>().map_err(|_| {
            self.at(
                v,
                format!("{key}: `{s}` is not an address; write IP:PORT, e.g. \"{example}\""),
            )
        })
    }

    fn log(&self, l: &RawLog) -> R<LogConfig> {
        let level = match &l.level {
            Some(v) => {
                let level = self.non_empty(v, "log.level")?;
                if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&level) {
                    return Err(self.at(
                        v,
                        format!("log.level: `{level}` is not a level or filter ({e}); write \"info\", \"debug\" or e.g. \"deploybot=debug,serenity=warn\""),
                    ));
                }
                Some(level)
            }
            None => None,
        };
        let format = match &l.format {
            Some(v) => match self.non_empty(v, "log.format")?.to_ascii_lowercase().as_str() {
                "auto" => LogFormat::Auto,
                "human" | "text" | "pretty" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => {
                    return Err(self.at(
                        v,
                        format!("log.format: `{other}` is not a format; write \"auto\" (human on a terminal, JSON otherwise), \"human\" or \"json\""),
                    ))
                }
            },
            None => LogFormat::Auto,
        };
        Ok(LogConfig { level, format })
    }

    fn webhook(&self, raw: &S<RawWebhook>) -> R<WebhookConfig> {
        let w = raw.get_ref();
        let listen = self.address(&w.listen, "webhook.listen", "0.0.0.0:8787")?;
        let path = match &w.path {
            Some(p) => {
                let p = self.non_empty(p, "webhook.path")?;
                if !p.starts_with('/') {
                    return Err(self.at(
                        w.path.as_ref().unwrap_or(&w.listen),
                        format!("webhook.path must start with `/`, e.g. \"/webhook\" (got `{p}`)"),
                    ));
                }
                if OPS_PATHS.contains(&p.as_str()) {
                    return Err(self.at(
                        w.path.as_ref().unwrap_or(&w.listen),
                        format!("webhook.path `{p}` is taken by the operator's endpoints ({}); use e.g. \"/webhook\"", OPS_PATHS.join(", ")),
                    ));
                }
                p
            }
            None => "/webhook".to_string(),
        };
        let secret = self.non_empty(&w.secret, "webhook.secret")?;
        if secret.len() < 16 {
            return Err(self.at(
                &w.secret,
                "webhook.secret is shorter than 16 characters; use a long random value (e.g. `openssl rand -hex 32`) and the same one in GitHub's webhook settings",
            ));
        }
        Ok(WebhookConfig {
            listen,
            path,
            secret: SecretString::from(secret),
        })
    }

    /// Each key on its own, so every bad one is reported.
    fn defaults(&self, d: &RawDefaults) -> R<Defaults> {
        let base = Defaults::default();
        let rules = self.keep(self.rules(&d.deploy, &d.force, &d.lock, &d.freeze, "defaults."));
        let duration = |v: &Option<S<String>>, key: &str, b: &Bounds, default: Duration| {
            self.keep(self.duration(v, key, b))
                .map(|d| d.unwrap_or(default))
        };
        let lock_ttl = duration(&d.lock_ttl, "defaults.lock_ttl", &LOCK_TTL, base.lock_ttl);
        let confirm_timeout = duration(
            &d.confirm_timeout,
            "defaults.confirm_timeout",
            &CONFIRM_TIMEOUT,
            base.confirm_timeout,
        );
        let status_timeout = duration(
            &d.status_timeout,
            "defaults.status_timeout",
            &STATUS_TIMEOUT,
            base.status_timeout,
        );
        let stuck_timeout = duration(
            &d.stuck_timeout,
            "defaults.stuck_timeout",
            &STUCK_TIMEOUT,
            base.stuck_timeout,
        );
        let edit_interval = duration(
            &d.edit_interval,
            "defaults.edit_interval",
            &EDIT_INTERVAL,
            base.edit_interval,
        );
        let audit_retention = duration(
            &d.audit_retention,
            "defaults.audit_retention",
            &AUDIT_RETENTION,
            base.audit_retention,
        );
        let queue_grace = duration(
            &d.queue_grace,
            "defaults.queue_grace",
            &QUEUE_GRACE,
            base.queue_grace,
        );
        let lock_remind_after = duration(
            &d.lock_remind_after,
            "defaults.lock_remind_after",
            &LOCK_REMIND_AFTER,
            base.lock_remind_after,
        );
        let when_green_timeout = duration(
            &d.when_green_timeout,
            "defaults.when_green_timeout",
            &WHEN_GREEN_TIMEOUT,
            base.when_green_timeout,
        );
        let reported = || Fail::Reported;
        Ok(Defaults {
            queue_grace: queue_grace.ok_or_else(reported)?,
            lock_remind_after: lock_remind_after.ok_or_else(reported)?,
            rules: rules.ok_or_else(reported)?,
            lock_ttl: lock_ttl.ok_or_else(reported)?,
            confirm_timeout: confirm_timeout.ok_or_else(reported)?,
            status_timeout: status_timeout.ok_or_else(reported)?,
            stuck_timeout: stuck_timeout.ok_or_else(reported)?,
            edit_interval: edit_interval.ok_or_else(reported)?,
            audit_retention: audit_retention.ok_or_else(reported)?,
            when_green_timeout: when_green_timeout.ok_or_else(reported)?,
        })
    }

    fn app(&self, name: &str, raw: &S<RawApp>) -> R<AppConfig> {
        let a = raw.get_ref();
        let key = format!("apps.{name}");
        check_word(name).map_err(|m| self.at(raw, format!("{key}: app name {m}")))?;
        let repo_s = self.non_empty(&a.repository, &format!("{key}.repository"))?;
        let repository = RepoName::parse(&repo_s).ok_or_else(|| {
            self.at(
                &a.repository,
                format!("{key}.repository: `{repo_s}` is not `owner/name`, e.g. \"acme/api\""),
            )
        })?;
        let mut channels = Vec::new();
        for c in &a.channels {
            channels.push(
                self.non_empty(c, &format!("{key}.channels"))?
                    .trim_start_matches('#')
                    .to_string(),
            );
        }
        let notify_channel = a
            .notify_channel
            .as_ref()
            .map(|c| {
                self.non_empty(c, &format!("{key}.notify_channel"))
                    .map(|c| c.trim_start_matches('#').to_string())
            })
            .transpose()?;
        let payload = self.payload(&a.payload, &format!("{key}.payload"))?;
        let rules = self.rules(&a.deploy, &a.force, &a.lock, &a.freeze, &format!("{key}."))?;

        let mut environments: Vec<EnvConfig> = Vec::new();
        let mut all_built = true;
        for (i, (env_name, env)) in a.environments.iter().enumerate() {
            if let Some((first, _)) = a
                .environments
                .iter()
                .take(i)
                .find(|(other, _)| other.eq_ignore_ascii_case(env_name))
            {
                self.push(self.error(
                    Some(env.span()),
                    format!("{key}.environments.{env_name}: the same name as [{key}.environments.{first}] (names ignore case, as chat does); rename one"),
                ));
                all_built = false;
                continue;
            }
            match self.keep(self.environment(&key, env_name, env)) {
                Some(e) => environments.push(e),
                None => all_built = false,
            }
        }
        if !all_built {
            return Err(Fail::Reported);
        }
        if environments.is_empty() {
            return Err(self.at(
                raw,
                format!("{key} has no environments: add e.g. [{key}.environments.staging]"),
            ));
        }
        Ok(AppConfig {
            name: AppName::new(name),
            repository,
            default_environment: None, // resolved once aliases are known
            channels,
            notify_channel,
            payload,
            rules,
            environments,
        })
    }

    fn environment(&self, key: &str, env_name: &str, env: &S<RawEnv>) -> R<EnvConfig> {
        let ekey = format!("{key}.environments.{env_name}");
        check_word(env_name).map_err(|m| self.at(env, format!("{ekey}: environment name {m}")))?;
        let e = env.get_ref();
        let required_contexts = match &e.required_contexts {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for c in list.get_ref() {
                    out.push(self.non_empty(c, &format!("{ekey}.required_contexts"))?);
                }
                Some(out)
            }
        };
        Ok(EnvConfig {
            name: Environment::new(env_name),
            required_contexts,
            auto_merge: e.auto_merge.unwrap_or(false),
            production: e.production.unwrap_or(false),
            transient: e.transient.unwrap_or(false),
            confirm: e.confirm.unwrap_or(false),
            payload: self.payload(&e.payload, &format!("{ekey}.payload"))?,
            rules: self.rules(&e.deploy, &e.force, &e.lock, &e.freeze, &format!("{ekey}."))?,
            queue: self.queue_settings(&ekey, e)?,
            when_green_timeout: self.duration(
                &e.when_green_timeout,
                &format!("{ekey}.when_green_timeout"),
                &WHEN_GREEN_TIMEOUT,
            )?,
        })
    }

    /// An environment's queue, concurrency, auto-lock and reminder keys.
    fn queue_settings(&self, ekey: &str, e: &RawEnv) -> R<QueueSettings> {
        let production = e.production.unwrap_or(false);
        let concurrency = match &e.concurrency {
            None => production.then_some(1),
            Some(v) => match v.get_ref() {
                toml::Value::Integer(0) => None,
                toml::Value::Integer(n) if (1..=1000).contains(n) => Some(*n as u32),
                other => {
                    return Err(self.at(
                        v,
                        format!("{ekey}.concurrency: `{other}` is not a number of deployments; write e.g. concurrency = 1 (one at a time), or 0 for no limit"),
                    ))
                }
            },
        };
        let mode = match &e.queue {
            None => QueueMode::Reserve,
            Some(v) => match self.string(v, &format!("{ekey}.queue"))?.trim() {
                "reserve" => QueueMode::Reserve,
                "deploy" => QueueMode::Deploy,
                other => {
                    return Err(self.at(
                        v,
                        format!("{ekey}.queue: `{other}` is not a queue mode; write \"reserve\" (the first in line gets queue_grace to deploy) or \"deploy\" (their command is run for them)"),
                    ))
                }
            },
        };
        Ok(QueueSettings {
            concurrency,
            mode,
            queue_grace: self.duration(
                &e.queue_grace,
                &format!("{ekey}.queue_grace"),
                &QUEUE_GRACE,
            )?,
            auto_lock: e.auto_lock.unwrap_or(false),
            auto_lock_grace: self
                .duration(
                    &e.auto_lock_grace,
                    &format!("{ekey}.auto_lock_grace"),
                    &AUTO_LOCK_GRACE,
                )?
                .unwrap_or(DEFAULT_AUTO_LOCK_GRACE),
            lock_remind_after: self.duration(
                &e.lock_remind_after,
                &format!("{ekey}.lock_remind_after"),
                &LOCK_REMIND_AFTER,
            )?,
        })
    }
}

/// App, environment and alias names are typed in chat, so they use a charset the
/// command language accepts as one word.
fn check_word(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "`{name}` may only use letters, digits, `-`, `_` and `.` (it is typed in chat)"
        ));
    }
    Ok(())
}

/// Durations in the config: exactly what chat takes ([`commands::parse_duration_phrase`]:
/// `90s`, `15m`, `2h`, `1d`, `1h30m`, `4 hours`, `90 minutes`), plus milliseconds
/// (`500ms`) for short intervals.
fn config_duration(s: &str) -> Option<Duration> {
    match s.strip_suffix("ms") {
        Some(n) if n.trim().bytes().all(|b| b.is_ascii_digit()) => {
            n.trim().parse::<u64>().ok().map(Duration::from_millis)
        }
        _ => commands::parse_duration_phrase(s),
    }
}

/// A parser's message on one line (the report has one line per error).
fn one_line(message: &str) -> String {
    message.trim_end().replace('\n', " ")
}

/// Every `${VAR}` in `s` that `env` does not know, and whether a `${` is unclosed.
fn interpolation_problems(s: &str, env: &dyn Fn(&str) -> Option<String>) -> (Vec<String>, bool) {
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            rest = lit;
        } else if let Some(var) = after.strip_prefix('{') {
            let Some(end) = var.find('}') else {
                return (missing, true);
            };
            let name = &var[..end];
            if env(name).is_none() && !missing.iter().any(|m| m == name) {
                missing.push(name.to_string());
            }
            rest = &var[end + 1..];
        } else {
            rest = after;
        }
    }
    (missing, false)
}

/// `$NAME` (capitals, digits, `_`) without braces: a shell habit that is not replaced.
fn bare_variables(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            rest = lit;
            continue;
        }
        if let Some(var) = after.strip_prefix('{') {
            rest = var.find('}').map_or("", |end| &var[end + 1..]);
            continue;
        }
        let run = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..run];
        if looks_like_a_variable_name(name) && !found.iter().any(|f| f == name) {
            found.push(name.to_string());
        }
        rest = &after[run..];
    }
    found
}

/// `GITHUB_TOKEN`: capitals, digits and at least one `_`, starting with a capital.
fn looks_like_a_variable_name(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.contains('_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    (line, col)
}

#[derive(Debug, PartialEq, Eq)]
enum InterpolationError {
    Missing(String),
    Unclosed,
}

fn interpolate(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            out.push_str("${");
            rest = lit;
        } else if let Some(var) = after.strip_prefix('{') {
            let end = var.find('}').ok_or(InterpolationError::Unclosed)?;
            let name = &var[..end];
            out.push_str(&env(name).ok_or_else(|| InterpolationError::Missing(name.to_string()))?);
            rest = &var[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Payload tables become JSON; their strings are interpolated too.
fn toml_to_json(
    v: &toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        toml::Value::String(s) => J::String(interpolate(s, env).map_err(|e| match e {
            InterpolationError::Missing(var) => var,
            InterpolationError::Unclosed => "${".to_string(),
        })?),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(
            a.iter()
                .map(|x| toml_to_json(x, env))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, x)| Ok((k.clone(), toml_to_json(x, env)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(name: &str) -> Option<String> {
        match name {
            "GITHUB_TOKEN" => Some("ghp_secret_value".into()),
            "DISCORD_TOKEN" => Some("discord-secret".into()),
            "DEPLOYBOT_WEBHOOK_SECRET" => Some("a-long-webhook-secret-value".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("bot.toml"), &env)
    }

    const MINIMAL: &str = r#"
[github]
token = "${GITHUB_TOKEN}"

[apps.api]
repository = "acme/api"
default_environment = "stg"

[apps.api.environments.staging]
required_contexts = ["ci/build"]

[apps.api.environments.production]
production = true

[aliases]
stg = "staging"
"#;

    #[test]
    fn the_example_config_loads() {
        let text = include_str!("../bot.toml.example");
        let config = Config::parse(text, Path::new("bot.toml.example"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.discord.is_some());
        assert!(config.webhook.is_some());
        assert!(config.app("api").is_some());
        let summary = config.summary();
        assert!(!summary.contains("ghp_secret_value"), "{summary}");
        assert!(!summary.contains("discord-secret"), "{summary}");
    }

    #[test]
    fn interpolates_variables_and_keeps_them_secret() {
        let config = parse(MINIMAL).unwrap();
        match &config.github.auth {
            GitHubAuth::Token(t) => assert_eq!(t.expose_secret(), "ghp_secret_value"),
            other => panic!("{other:?}"),
        }
        let debug = format!("{config:?}");
        assert!(!debug.contains("ghp_secret_value"), "{debug}");
    }

    #[test]
    fn missing_variable_is_named_with_its_location() {
        let text = MINIMAL.replace("GITHUB_TOKEN", "NOPE_TOKEN");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.location, Some((3, 9)));
        assert!(err.message.contains("`NOPE_TOKEN`"), "{err}");
        assert!(
            err.to_string().starts_with("bot.toml:3:9: github.token"),
            "{err}"
        );
    }

    #[test]
    fn literal_dollar_brace_is_escaped_by_doubling() {
        assert_eq!(interpolate("a$${b}c", &env).unwrap(), "a${b}c");
        assert_eq!(interpolate("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(interpolate("${x", &env), Err(InterpolationError::Unclosed));
    }

    #[test]
    fn required_contexts_absent_empty_and_listed_stay_distinct() {
        let text = MINIMAL.replace(
            "[apps.api.environments.production]",
            "[apps.api.environments.qa]\nrequired_contexts = []\n\n[apps.api.environments.production]",
        );
        let config = parse(&text).unwrap();
        let api = config.app("api").unwrap();
        assert_eq!(
            api.environment(&config, "staging")
                .unwrap()
                .required_contexts,
            Some(vec!["ci/build".to_string()])
        );
        assert_eq!(
            api.environment(&config, "qa").unwrap().required_contexts,
            Some(vec![])
        );
        assert_eq!(
            api.environment(&config, "production")
                .unwrap()
                .required_contexts,
            None
        );
    }

    #[test]
    fn aliases_and_default_environment_resolve() {
        let config = parse(MINIMAL).unwrap();
        let api = config.app("API").unwrap();
        assert_eq!(
            api.default_environment.as_ref().unwrap().as_str(),
            "staging"
        );
        assert_eq!(
            api.environment(&config, "STG").unwrap().name.as_str(),
            "staging"
        );
        assert_eq!(api.environment_names(), vec!["staging", "production"]);
    }

    #[test]
    fn typo_in_a_key_is_reported_at_the_key() {
        let text = MINIMAL.replace("production = true", "prodution = true");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.location.unwrap().0, 13, "{err}");
        assert!(err.message.contains("prodution"), "{err}");
    }

    /// MINIMAL and one `[[freeze]]` table from line 18 on.
    fn with_freeze(lines: &str) -> String {
        format!("{MINIMAL}\n[[freeze]]\n{lines}\n")
    }

    #[test]
    fn freeze_windows_are_read_with_their_scope_and_origin() {
        let text = format!(
            "{}[[freeze]]\nfrom = \"2026-12-23\"\nuntil = \"2027-01-02\"\nreason = \"holidays\"\n",
            with_freeze(
                "from = \"fri 16:00\"\nuntil = \"Monday 08:00\"\ntimezone = \"Europe/Berlin\"\nreason = \"weekend\"\napps = [\"API\"]\nenvironments = [\"stg\"]"
            )
        );
        let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let [weekend, holidays] = config.freezes.as_slice() else {
            panic!("{:?}", config.freezes);
        };
        assert_eq!(weekend.origin, "bot.toml:18");
        assert_eq!(weekend.reason, "weekend");
        // Names as configured, the alias resolved.
        assert!(weekend.covers("api", "staging"));
        assert!(!weekend.covers("api", "production"));
        assert_eq!(
            weekend.window.to_string(),
            "every week from Fri 16:00 to Mon 08:00 Europe/Berlin"
        );
        assert_eq!(holidays.origin, "bot.toml:25");
        assert!(holidays.covers("api", "production"));
        assert!(holidays.covers("web", "anything"));
        assert_eq!(
            holidays.window.to_string(),
            "from Wed 2026-12-23 00:00 UTC to Sun 2027-01-03 00:00 UTC"
        );
    }

    #[test]
    fn bad_freeze_windows_name_file_line_and_key() {
        let weekly = |from: &str, until: &str, tz: &str| {
            with_freeze(&format!(
                "from = \"{from}\"\nuntil = \"{until}\"\ntimezone = \"{tz}\"\nreason = \"weekend\""
            ))
        };
        let cases = [
            (
                weekly("Fri 16:00", "Mon 08:00", "Europe/Berlinn"),
                (21, 12),
                "freeze.timezone: `Europe/Berlinn` is not a time zone; use an IANA name such as \"Europe/Berlin\"",
            ),
            (
                weekly("Fry 16:00", "Mon 08:00", "UTC"),
                (19, 8),
                "freeze.from: `Fry` is not a day of the week; write Mon, Tue",
            ),
            (
                weekly("Fri 16:00", "Mon 8h", "UTC"),
                (20, 9),
                "freeze.until: `8h` is not a time of day; write it as HH:MM",
            ),
            (
                weekly("Fri 16:00", "2026-12-23", "UTC"),
                (20, 9),
                "(`from` is a weekday, so `until` is one too)",
            ),
            (
                weekly("Fri 16:00", "Fri 16:00", "UTC"),
                (20, 9),
                "freeze.until: `Fri 16:00` is the same as `from`",
            ),
            (
                weekly("2027-01-02", "2026-12-23", "UTC"),
                (20, 9),
                "freeze.until: `2026-12-23` is not after `from` (`2027-01-02`)",
            ),
            (
                weekly("2026-13-01", "2026-12-23", "UTC"),
                (19, 8),
                "freeze.from: `2026-13-01` is not a date; write YYYY-MM-DD",
            ),
            (
                with_freeze("from = \"Fri 16:00\"\nuntil = \"Mon 08:00\"\nreason = \"x\"\nenvironments = [\"qa\"]"),
                (22, 17),
                "freeze.environments: no environment `qa`; the environments are production, staging",
            ),
            (
                with_freeze("from = \"Fri 16:00\"\nuntil = \"Mon 08:00\"\nreason = \"x\"\napps = [\"apj\"]"),
                (22, 9),
                "freeze.apps: no app `apj`; the apps are api",
            ),
            (
                with_freeze("from = \"Fri 16:00\"\nuntil = \"Mon 08:00\"\nreason = \" \""),
                (21, 10),
                "freeze.reason is empty",
            ),
        ];
        for (text, location, message) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.message.contains(message), "{err} (wanted {message})");
            assert_eq!(err.location, Some(location), "{err}");
            assert!(err.to_string().starts_with("bot.toml:"), "{err}");
        }
    }

    #[test]
    fn bad_values_name_key_and_fix() {
        let cases = [
            (
                MINIMAL.replace("acme/api", "acme"),
                (6, 14),
                "apps.api.repository: `acme` is not `owner/name`",
            ),
            (
                MINIMAL.replace(
                    "default_environment = \"stg\"",
                    "default_environment = \"qa\"",
                ),
                (7, 23),
                "`qa` is not one of its environments (staging, production)",
            ),
            (
                MINIMAL.replace("stg = \"staging\"", "stg = \"stagin\""),
                (16, 7),
                "no app has an environment `stagin`",
            ),
            (
                format!("{MINIMAL}\n[defaults]\nlock_ttl = \"soon\"\n"),
                (19, 12),
                "defaults.lock_ttl: `soon` is not a duration",
            ),
            (
                format!("{MINIMAL}\n[webhook]\nlisten = \"127.0.0.1:8787\"\nsecret = \"short\"\n"),
                (20, 10),
                "webhook.secret is shorter than 16",
            ),
            (
                MINIMAL.replace(
                    "[apps.api.environments.staging]",
                    "[apps.api.environments.\"stag ing\"]",
                ),
                (9, 1),
                "may only use letters",
            ),
        ];
        for (text, location, message) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.message.contains(message), "{err} (wanted {message})");
            assert_eq!(err.location, Some(location), "{err}");
        }
    }

    fn with_storage(lines: &str) -> String {
        format!("{MINIMAL}\n[storage]\n{lines}\n")
    }

    #[test]
    fn storage_takes_sqlite_and_postgres_urls_and_a_pool_size() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.storage.url, "sqlite://deploybot.db");
        assert_eq!(config.storage.backend(), StorageBackend::Sqlite);
        assert_eq!(config.storage.pool_size, DEFAULT_POOL_SIZE);
        for url in [
            "postgres://bot:s3cret@db.internal:5432/deploybot?sslmode=require",
            "postgresql://bot:s3cret@db.internal/deploybot",
        ] {
            let config = parse(&with_storage(&format!("url = \"{url}\"\npool_size = 25"))).unwrap();
            assert_eq!(config.storage.backend(), StorageBackend::Postgres, "{url}");
            assert_eq!(config.storage.url, url);
            assert_eq!(config.storage.pool_size, 25);
            // The password is never shown.
            let summary = config.summary();
            assert!(summary.contains("bot:***@db.internal"), "{summary}");
            let debug = format!("{config:?}");
            assert!(
                !summary.contains("s3cret") && !debug.contains("s3cret"),
                "{debug}"
            );
        }
        for edge in [1, MAX_POOL_SIZE] {
            let text = with_storage(&format!("url = \"postgres://db/x\"\npool_size = {edge}"));
            assert_eq!(parse(&text).unwrap().storage.pool_size, edge);
        }
    }

    #[test]
    fn the_lease_ttl_defaults_to_10s_and_takes_3s_to_5m() {
        assert_eq!(parse(MINIMAL).unwrap().storage.lease_ttl, DEFAULT_LEASE_TTL);
        for (text, want) in [("3s", 3), ("45s", 45), ("5m", 300)] {
            let lines = format!("url = \"postgres://db/x\"\nlease_ttl = \"{text}\"");
            let config = parse(&with_storage(&lines)).unwrap();
            assert_eq!(
                config.storage.lease_ttl,
                Duration::from_secs(want),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_storage_values_name_file_line_and_key() {
        let cases = [
            (
                "url = \"postgres://db/x\"\npool_size = 0",
                (20, 13),
                "storage.pool_size: 0 is out of range; at least 1, at most 100",
            ),
            (
                "url = \"postgres://db/x\"\npool_size = 101",
                (20, 13),
                "storage.pool_size: 101 is out of range",
            ),
            (
                "url = \"postgres://db/x\"\npool_size = -3",
                (20, 13),
                "storage.pool_size: -3 is out of range",
            ),
            (
                "url = \"postgres://db/x\"\npool_size = \"ten\"",
                (20, 13),
                "storage.pool_size: `\"ten\"` is not a whole number; write e.g. pool_size = 10",
            ),
            (
                "url = \"postgres://db/x\"\npool_size = 2.5",
                (20, 13),
                "storage.pool_size: `2.5` is not a whole number",
            ),
            (
                "url = \"mysql://u:hunter2@db/x\"",
                (19, 7),
                "storage.url: `mysql://u:***@db/x` is not supported",
            ),
            (
                "url = \"postgres://u:hunter2@db:notaport/x\"",
                (19, 7),
                "storage.url: `postgres://u:***@db:notaport/x` is not a valid PostgreSQL URL",
            ),
            (
                "url = \"postgres://db/x?sslmode=sometimes\"",
                (19, 7),
                "is not a valid PostgreSQL URL",
            ),
            (
                "url = \"postgres://db/x\"\nlease_ttl = \"2s\"",
                (20, 13),
                "storage.lease_ttl: `2s` is too short; at least 3s",
            ),
            (
                "url = \"postgres://db/x\"\nlease_ttl = \"6m\"",
                (20, 13),
                "storage.lease_ttl: `6m` is too long; at most 5m",
            ),
            (
                "url = \"postgres://db/x\"\nlease_ttl = \"soon\"",
                (20, 13),
                "storage.lease_ttl: `soon` is not a duration",
            ),
        ];
        for (lines, location, message) in cases {
            let err = parse(&with_storage(lines)).unwrap_err();
            assert!(err.message.contains(message), "{err} (wanted {message})");
            assert!(!err.message.contains("hunter2"), "{err}");
            assert_eq!(err.location, Some(location), "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("bot.toml:{}:{}: storage.", location.0, location.1)),
                "{err}"
            );
        }
    }

    #[test]
    fn an_alias_may_not_hide_an_environment() {
        let text = MINIMAL.replace(
            "[apps.api.environments.production]",
            "[apps.api.environments.prod]\n\n[apps.api.environments.production]",
        ) + "prod = \"production\"\n";
        let err = parse(&text).unwrap_err();
        assert!(
            err.message
                .contains("`prod` is also an environment of app api"),
            "{err}"
        );
        assert!(err.location.is_some());
    }

    #[test]
    fn credentials_are_required_and_exclusive() {
        let err = parse("[github]\napi_url = \"https://ghe.example/api/v3\"\n[apps.a]\nrepository = \"o/a\"\n[apps.a.environments.x]\n").unwrap_err();
        assert!(err.message.contains("no credentials"), "{err}");
        let err = parse("[github]\ntoken = \"x\"\n[github.app]\napp_id = 1\nprivate_key_path = \"k.pem\"\ninstallation_id = 2\n[apps.a]\nrepository = \"o/a\"\n[apps.a.environments.x]\n").unwrap_err();
        assert!(err.message.contains("not both"), "{err}");
    }

    #[test]
    fn payload_extras_are_json_and_deploybot_key_is_reserved() {
        let text = MINIMAL.replace(
            "production = true",
            "production = true\npayload = { region = \"eu\", replicas = 3, token = \"${GITHUB_TOKEN}\" }",
        );
        let config = parse(&text).unwrap();
        let prod = config
            .app("api")
            .unwrap()
            .environment(&config, "production")
            .unwrap();
        assert_eq!(prod.payload["region"], "eu");
        assert_eq!(prod.payload["replicas"], 3);
        assert_eq!(prod.payload["token"], "ghp_secret_value");
        let bad = MINIMAL.replace("production = true", "payload = { deploybot = 1 }");
        assert!(parse(&bad).unwrap_err().message.contains("reserved"));
    }

    #[test]
    fn rules_overlay_environment_over_app_over_defaults() {
        let text = format!("{MINIMAL}\n[defaults]\ndeploy = [\"dev\"]\nlock = [\"ops\"]\n")
            .replace(
                "production = true",
                "production = true\ndeploy = [\"release\"]\nforce = []",
            );
        let config = parse(&text).unwrap();
        let api = config.app("api").unwrap();
        let prod = config.rules(api, api.environment(&config, "production").unwrap());
        assert_eq!(prod.deploy, Some(vec!["release".to_string()]));
        assert_eq!(prod.force, Some(vec![]));
        assert_eq!(prod.lock, Some(vec!["ops".to_string()]));
        let stg = config.rules(api, api.environment(&config, "staging").unwrap());
        assert_eq!(stg.deploy, Some(vec!["dev".to_string()]));
        assert_eq!(stg.force, None);
    }

    fn check(text: &str) -> Result<Loaded, ConfigErrors> {
        Config::check(text, Path::new("bot.toml"), &env)
    }

    fn warnings(text: &str) -> Vec<String> {
        check(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const WITH_WEBHOOK: &str =
        "\n[webhook]\nlisten = \"127.0.0.1:8787\"\nsecret = \"${DEPLOYBOT_WEBHOOK_SECRET}\"\n";

    #[test]
    fn every_missing_variable_is_reported_at_once() {
        let text = format!(
            "{}\n[discord]\ntoken = \"${{NOPE_DISCORD}}\"\nproxy_url = \"http://${{NOPE_HOST}}:${{NOPE_PORT}}\"\n[webhook]\nlisten = \"127.0.0.1:8787\"\nsecret = \"${{NOPE_SECRET}}\"\n",
            MINIMAL
                .replace("GITHUB_TOKEN", "NOPE_TOKEN")
                .replace("production = true", "production = true\npayload = { key = \"${NOPE_PAYLOAD}\" }")
        );
        let errors = check(&text).unwrap_err();
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected = [
            ("bot.toml:3:9: github.token", "NOPE_TOKEN"),
            (
                "bot.toml:14:19: apps.api.environments.production.payload.key",
                "NOPE_PAYLOAD",
            ),
            ("bot.toml:20:9: discord.token", "NOPE_DISCORD"),
            ("bot.toml:21:13: discord.proxy_url", "NOPE_HOST"),
            ("bot.toml:21:13: discord.proxy_url", "NOPE_PORT"),
            ("bot.toml:24:10: webhook.secret", "NOPE_SECRET"),
        ];
        assert_eq!(lines.len(), expected.len(), "{errors}");
        for (line, (start, var)) in lines.iter().zip(expected) {
            assert!(
                line.starts_with(start) && line.contains(&format!("`{var}` is not set")),
                "{line} (wanted {start} … {var})"
            );
        }
        // One error a line, in file order.
        assert_eq!(errors.to_string().lines().count(), expected.len());
    }

    #[test]
    fn errors_in_different_places_are_reported_together() {
        let text = format!(
            "{}\n[defaults]\nlock_ttl = \"soon\"\nedit_interval = \"2h\"\n",
            MINIMAL.replace("acme/api", "acme")
        ) + "\n[webhook]\nlisten = \"nowhere\"\nsecret = \"short\"\n";
        let errors = check(&text).unwrap_err();
        let text = errors.to_string();
        for wanted in [
            "apps.api.repository: `acme` is not `owner/name`",
            "defaults.lock_ttl: `soon` is not a duration",
            "defaults.edit_interval: `2h` is too long; at most 1m",
            "webhook.listen: `nowhere` is not an address",
        ] {
            assert!(text.contains(wanted), "{text} (wanted {wanted})");
        }
    }

    #[test]
    fn variables_written_wrong_are_warnings_with_the_fix() {
        let w = warnings(&(MINIMAL.replace("${GITHUB_TOKEN}", "$GITHUB_TOKEN") + WITH_WEBHOOK));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "bot.toml:3:9: warning: github.token: `$GITHUB_TOKEN` is not replaced"
            ) && w[0].contains("write `${GITHUB_TOKEN}`"),
            "{w:?}"
        );
        let w = warnings(&(MINIMAL.replace("${GITHUB_TOKEN}", "GITHUB_TOKEN") + WITH_WEBHOOK));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("bot.toml:3:9: warning: github.token:")
                && w[0].contains("did you mean `${GITHUB_TOKEN}`?"),
            "{w:?}"
        );
        let w = warnings(
            &(MINIMAL.replace(
                "production = true",
                "production = true\npayload = { home = \"$HOME_DIR/x\" }",
            ) + WITH_WEBHOOK),
        );
        assert!(w.iter().any(|w| w.contains("write `${HOME_DIR}`")), "{w:?}");
        // A literal secret that happens to hold `$ABC` is not echoed back.
        let w = warnings(&(MINIMAL.replace("${GITHUB_TOKEN}", "ghp_a$XYZ_b") + WITH_WEBHOOK));
        assert!(w.is_empty(), "{w:?}");
        // Nor are prices, `$${` or lowercase text.
        let w = warnings(
            &(MINIMAL.replace("production = true", "production = true\npayload = { a = \"costs $5\", b = \"$${X_Y}\", c = \"$lower\" }")
                + WITH_WEBHOOK),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn no_webhook_and_no_polling_is_a_warning_naming_both_fixes() {
        let w = warnings(MINIMAL);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("bot.toml:2:1: warning: no live status")
                && w[0].contains("[webhook]")
                && w[0].contains("poll_interval"),
            "{w:?}"
        );
        assert!(warnings(&(MINIMAL.to_string() + WITH_WEBHOOK)).is_empty());
        let polling = MINIMAL.replace(
            "token = \"${GITHUB_TOKEN}\"",
            "token = \"${GITHUB_TOKEN}\"\npoll_interval = \"15s\"",
        );
        assert!(warnings(&polling).is_empty());
    }

    fn with_app_key(dir: &Path, key: Option<&str>) -> Result<Loaded, ConfigErrors> {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/sandbox/tests/it/keys/");
        if let Some(key) = key {
            std::fs::copy(format!("{keys}{key}"), dir.join("app.pem")).unwrap();
        }
        let text = MINIMAL.replace(
            "token = \"${GITHUB_TOKEN}\"",
            "poll_interval = \"15s\"\n[github.app]\napp_id = 1\nprivate_key_path = \"app.pem\"\ninstallation_id = 2",
        );
        Config::check(&text, &dir.join("bot.toml"), &env)
    }

    #[test]
    fn the_app_private_key_is_read_and_must_be_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = with_app_key(dir.path(), None).unwrap_err().to_string();
        assert!(
            missing.contains(
                ":6:20: github.app.private_key_path: cannot read the GitHub App private key"
            ) && missing.contains("app.pem"),
            "{missing}"
        );
        let public = with_app_key(dir.path(), Some("test-app.public.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            public.contains("github.app.private_key_path:")
                && public.contains("app.pem is not an RSA private key in PEM form"),
            "{public}"
        );
        let loaded = with_app_key(dir.path(), Some("test-app.private-key.pem"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            loaded.config.github.auth,
            GitHubAuth::App {
                app_id: 1,
                installation_id: 2,
                ..
            }
        ));
    }

    #[test]
    fn api_url_must_be_the_api_not_the_web_site() {
        for web in [
            "https://github.com",
            "https://www.github.com/",
            "https://GitHub.com/acme",
        ] {
            let text = MINIMAL.replace("token = ", &format!("api_url = \"{web}\"\ntoken = "))
                + WITH_WEBHOOK;
            let err = check(&text).unwrap_err().to_string();
            assert!(
                err.starts_with("bot.toml:3:11: github.api_url:")
                    && err.contains("write \"https://api.github.com\""),
                "{err}"
            );
        }
        let ghe = MINIMAL.replace(
            "token = ",
            "api_url = \"https://ghe.example.com\"\ntoken = ",
        ) + WITH_WEBHOOK;
        let w = warnings(&ghe);
        assert!(
            w.len() == 1 && w[0].contains("\"https://ghe.example.com/api/v3\""),
            "{w:?}"
        );
        for fine in [
            "https://api.github.com",
            "https://ghe.example.com/api/v3",
            "https://api.acme.ghe.com",
            "http://127.0.0.1:3000",
            "http://localhost:8080/",
        ] {
            let text = MINIMAL.replace("token = ", &format!("api_url = \"{fine}\"\ntoken = "))
                + WITH_WEBHOOK;
            assert!(warnings(&text).is_empty(), "{fine}");
        }
    }

    #[test]
    fn durations_take_the_chat_forms_and_are_bounded_per_key() {
        let with = |key: &str, value: &str| {
            let text = if key == "poll_interval" {
                MINIMAL.replace(
                    "token = \"${GITHUB_TOKEN}\"",
                    &format!("token = \"${{GITHUB_TOKEN}}\"\npoll_interval = \"{value}\""),
                )
            } else {
                format!("{MINIMAL}\n[defaults]\n{key} = \"{value}\"\n")
            };
            check(&text).map(|l| l.config)
        };
        let ok = [
            ("lock_ttl", "4 hours", 4 * 3600),
            ("lock_ttl", "90 minutes", 5400),
            ("lock_ttl", "1h 30m", 5400),
            ("lock_ttl", "1h30m", 5400),
            ("confirm_timeout", "2m", 120),
            ("audit_retention", "1w", 7 * 86_400),
            ("poll_interval", "15s", 15),
            ("when_green_timeout", "2h", 7200),
        ];
        for (key, value, secs) in ok {
            let config = with(key, value).unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            let got = match key {
                "lock_ttl" => config.defaults.lock_ttl,
                "confirm_timeout" => config.defaults.confirm_timeout,
                "audit_retention" => config.defaults.audit_retention,
                "when_green_timeout" => config.defaults.when_green_timeout,
                _ => config.github.poll_interval.unwrap(),
            };
            assert_eq!(got, Duration::from_secs(secs), "{key} = {value}");
        }
        let config = with("edit_interval", "500ms").unwrap();
        assert_eq!(config.defaults.edit_interval, Duration::from_millis(500));

        let refused = [
            (
                "poll_interval",
                "100ms",
                "github.poll_interval: `100ms` is too short; at least 1s",
            ),
            ("poll_interval", "2h", "at most 1h"),
            (
                "confirm_timeout",
                "100000000d",
                "defaults.confirm_timeout: `100000000d` is too long; at most 1d",
            ),
            (
                "confirm_timeout",
                "99999999999999999999d",
                "is not a duration",
            ),
            ("edit_interval", "5ms", "at least 10ms"),
            ("lock_ttl", "0s", "at least 1m"),
            ("lock_ttl", "365d", "at most 7d"),
            ("status_timeout", "2d", "at most 1d"),
            ("stuck_timeout", "30s", "at least 1m"),
            ("audit_retention", "1h", "at least 1d"),
            ("audit_retention", "11000d", "at most 3650d"),
            ("lock_ttl", "4 hours ago", "is not a duration"),
            ("when_green_timeout", "10s", "at least 1m"),
            ("when_green_timeout", "8d", "at most 7d"),
        ];
        for (key, value, wanted) in refused {
            let err = with(key, value).unwrap_err().to_string();
            assert!(
                err.contains(wanted),
                "{key} = {value}: {err} (wanted {wanted})"
            );
        }
    }

    #[test]
    fn names_that_differ_only_in_case_are_refused() {
        let text = format!(
            "{MINIMAL}\n[apps.API]\nrepository = \"acme/api2\"\n[apps.API.environments.staging]\n"
        );
        let err = check(&text).unwrap_err().to_string();
        assert!(
            err.contains("apps.API: the same name as [apps.api]"),
            "{err}"
        );
        let text = MINIMAL.replace(
            "[apps.api.environments.production]",
            "[apps.api.environments.Staging]\n\n[apps.api.environments.production]",
        );
        let err = check(&text).unwrap_err().to_string();
        assert!(
            err.contains(
                "apps.api.environments.Staging: the same name as [apps.api.environments.staging]"
            ),
            "{err}"
        );
        let err = check(&format!("{MINIMAL}STG = \"production\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aliases.STG: the same alias as `stg`"),
            "{err}"
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    /// The README's configuration reference against the keys the code accepts.
    mod reference {
        use std::cell::RefCell;
        use std::collections::{BTreeMap, BTreeSet};
        use std::fmt;

        use serde::de::value::{BorrowedStrDeserializer, UsizeDeserializer};
        use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
        use serde::Deserialize;

        use super::super::RawConfig;
        use super::*;

        #[derive(Debug)]
        struct Stop(String);

        impl fmt::Display for Stop {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for Stop {}

        impl de::Error for Stop {
            fn custom<T: fmt::Display>(msg: T) -> Self {
                Stop(msg.to_string())
            }
        }

        /// What `toml::Spanned` asks a deserializer for (serde_spanned's private name).
        const SPANNED: &str = "$__serde_spanned_private_Spanned";

        /// Leaf keys seen, and whether each took any value (a free-form TOML value).
        type Seen = RefCell<BTreeMap<String, bool>>;

        /// A deserializer that answers every struct with all its `fields`, every map
        /// with one entry named by a placeholder, every list with one element, and
        /// records the dotted path of every leaf: the keys the `Raw*` structs accept.
        struct Keys<'a> {
            path: String,
            seen: &'a Seen,
        }

        impl<'a> Keys<'a> {
            fn at(&self, key: &str) -> Keys<'a> {
                Keys {
                    path: if self.path.is_empty() {
                        key.to_string()
                    } else {
                        format!("{}.{key}", self.path)
                    },
                    seen: self.seen,
                }
            }

            fn leaf(&self, free: bool) {
                self.seen.borrow_mut().insert(self.path.clone(), free);
            }

            /// The name the README writes for "any name" under a map.
            fn placeholder(&self) -> &'static str {
                match self.path.rsplit('.').next() {
                    Some("apps") => "NAME",
                    Some("environments") => "ENV",
                    Some("aliases") => "ALIAS",
                    _ => "KEY",
                }
            }
        }

        impl<'de> Deserializer<'de> for Keys<'_> {
            type Error = Stop;

            fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.leaf(true);
                v.visit_str("x")
            }
            fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.leaf(false);
                v.visit_bool(false)
            }
            fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.leaf(false);
                v.visit_u64(1)
            }
            fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.leaf(false);
                v.visit_i64(1)
            }
            fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.leaf(false);
                v.visit_str("x")
            }
            fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                self.deserialize_str(v)
            }
            fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                v.visit_some(self)
            }
            fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                v.visit_seq(One { keys: Some(self) })
            }
            fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
                let name = self.placeholder();
                let entry = self.at(name);
                let value = v.visit_map(Entries {
                    entries: vec![(name, entry)],
                    value: None,
                })?;
                // A map of free-form values (`payload`) is one key: the table.
                let mut seen = self.seen.borrow_mut();
                let inner = format!("{}.{name}", self.path);
                if seen.get(&inner) == Some(&true) {
                    seen.remove(&inner);
                    seen.insert(self.path.clone(), false);
                }
                Ok(value)
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                name: &'static str,
                fields: &'static [&'static str],
                v: V,
            ) -> Result<V::Value, Stop> {
                if name == SPANNED {
                    // start, end, then the value itself at the same path.
                    return v.visit_map(Spanned {
                        fields,
                        next: 0,
                        keys: Some(self),
                    });
                }
                let entries = fields.iter().map(|f| (*f, self.at(f))).collect();
                v.visit_map(Entries {
                    entries,
                    value: None,
                })
            }

            serde::forward_to_deserialize_any! {
                i8 i16 i32 u8 u16 u32 f32 f64 char bytes byte_buf unit unit_struct
                newtype_struct tuple tuple_struct enum identifier ignored_any i128 u128
            }
        }

        struct One<'a> {
            keys: Option<Keys<'a>>,
        }

        impl<'de> SeqAccess<'de> for One<'_> {
            type Error = Stop;
            fn next_element_seed<T: DeserializeSeed<'de>>(
                &mut self,
                seed: T,
            ) -> Result<Option<T::Value>, Stop> {
                self.keys.take().map(|k| seed.deserialize(k)).transpose()
            }
        }

        struct Entries<'a> {
            entries: Vec<(&'static str, Keys<'a>)>,
            value: Option<Keys<'a>>,
        }

        impl<'de> MapAccess<'de> for Entries<'_> {
            type Error = Stop;
            fn next_key_seed<K: DeserializeSeed<'de>>(
                &mut self,
                seed: K,
            ) -> Result<Option<K::Value>, Stop> {
                if self.entries.is_empty() {
                    return Ok(None);
                }
                let (key, keys) = self.entries.remove(0);
                self.value = Some(keys);
                seed.deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            fn next_value_seed<V: DeserializeSeed<'de>>(
                &mut self,
                seed: V,
            ) -> Result<V::Value, Stop> {
                seed.deserialize(self.value.take().expect("a key first"))
            }
        }

        struct Spanned<'a> {
            fields: &'static [&'static str],
            next: usize,
            keys: Option<Keys<'a>>,
        }

        impl<'de> MapAccess<'de> for Spanned<'_> {
            type Error = Stop;
            fn next_key_seed<K: DeserializeSeed<'de>>(
                &mut self,
                seed: K,
            ) -> Result<Option<K::Value>, Stop> {
                let Some(field) = self.fields.get(self.next) else {
                    return Ok(None);
                };
                self.next += 1;
                seed.deserialize(BorrowedStrDeserializer::new(field))
                    .map(Some)
            }
            fn next_value_seed<V: DeserializeSeed<'de>>(
                &mut self,
                seed: V,
            ) -> Result<V::Value, Stop> {
                if self.next < self.fields.len() {
                    seed.deserialize(UsizeDeserializer::new(0))
                } else {
                    seed.deserialize(self.keys.take().expect("one value"))
                }
            }
        }

        /// Every key the config code accepts, as `apps.NAME.environments.ENV.confirm`.
        fn accepted() -> BTreeSet<String> {
            let seen = Seen::default();
            RawConfig::deserialize(Keys {
                path: String::new(),
                seen: &seen,
            })
            .unwrap_or_else(|e| panic!("walking the Raw structs: {e}"));
            seen.into_inner().into_keys().collect()
        }

        /// A documented key: its dotted path and its example, from the README's
        /// `#### \`[SECTION]\`` tables under "## Configuration".
        fn documented() -> Vec<(String, String)> {
            let readme = include_str!("../README.md");
            let start = readme
                .find("\n## Configuration\n")
                .expect("## Configuration");
            let section = &readme[start + 1..];
            let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
            let mut table = None;
            let mut out = Vec::new();
            for line in section[..end].lines() {
                if let Some(h) = line.strip_prefix("#### `[") {
                    table = h.strip_suffix("]`").map(str::to_string);
                    continue;
                }
                if line.starts_with('#') {
                    table = None;
                }
                let (Some(table), Some(row)) = (&table, line.strip_prefix("| `")) else {
                    continue;
                };
                let cells: Vec<&str> = row.split(" | ").collect();
                let key = cells[0].trim_end_matches('`');
                let example = cells
                    .get(3)
                    .map(|c| c.trim().trim_matches('`').to_string())
                    .unwrap_or_default();
                out.push((format!("{table}.{key}"), example));
            }
            out
        }

        #[test]
        fn the_readme_documents_every_accepted_key_and_no_other() {
            let accepted = accepted();
            assert!(
                accepted.contains("apps.NAME.environments.ENV.confirm"),
                "{accepted:?}"
            );
            assert!(accepted.contains("apps.NAME.payload"), "{accepted:?}");
            assert!(accepted.contains("aliases.ALIAS"), "{accepted:?}");
            assert!(accepted.contains("github.app.app_id"), "{accepted:?}");
            let documented: BTreeSet<String> = documented().into_iter().map(|(k, _)| k).collect();
            let missing: Vec<&String> = accepted.difference(&documented).collect();
            let unknown: Vec<&String> = documented.difference(&accepted).collect();
            assert!(
                missing.is_empty() && unknown.is_empty(),
                "README.md's configuration reference is out of date.\n  accepted but not documented: {missing:?}\n  documented but not accepted: {unknown:?}"
            );
        }

        /// A config made of every documented example: `NAME` is `api`, `ENV` is
        /// `staging`, `ALIAS` is `stg`.
        fn example_config(skip: &str) -> String {
            let mut sections: Vec<(String, Vec<String>)> = Vec::new();
            for (path, example) in documented() {
                if path.starts_with(skip) {
                    continue;
                }
                assert!(!example.is_empty(), "{path}: no example in README.md");
                let (table, key) = path.rsplit_once('.').unwrap();
                let table = table.replace("NAME", "api").replace("ENV", "staging");
                let key = if key == "ALIAS" { "stg" } else { key };
                let line = format!("{key} = {example}");
                match sections.iter_mut().find(|(t, _)| *t == table) {
                    Some((_, lines)) => lines.push(line),
                    None => sections.push((table, vec![line])),
                }
            }
            // `freeze` is an array of tables: `[[freeze]]`.
            let header = |t: &str| {
                if t == "freeze" {
                    format!("[[{t}]]")
                } else {
                    format!("[{t}]")
                }
            };
            sections
                .iter()
                .map(|(t, lines)| format!("{}\n{}\n", header(t), lines.join("\n")))
                .collect::<Vec<_>>()
                .join("\n")
        }

        #[test]
        fn every_documented_example_is_accepted() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::copy(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/sandbox/tests/it/keys/test-app.private-key.pem"
                ),
                dir.path().join("deploybot.private-key.pem"),
            )
            .unwrap();
            let path = dir.path().join("bot.toml");
            // `token` and `[github.app]` exclude each other: one config with each.
            for skip in ["github.app.", "github.token"] {
                let text = example_config(skip);
                let loaded = Config::check(&text, &path, &env)
                    .unwrap_or_else(|e| panic!("{e}\n--- the config:\n{text}"));
                assert!(
                    loaded.warnings.is_empty(),
                    "{:?}\n--- the config:\n{text}",
                    loaded.warnings
                );
            }
        }

        #[test]
        fn the_example_file_has_every_key() {
            let mut found = BTreeSet::new();
            let mut table = String::new();
            for line in include_str!("../bot.toml.example").lines() {
                let line = line.trim_start_matches(['#', ' ']);
                // `[[freeze]]`: an array of tables, read as the table it repeats.
                if let Some(t) = line.strip_prefix('[').map(|t| t.trim_start_matches('[')) {
                    let Some((t, _)) = t.split_once(']') else {
                        continue;
                    };
                    let parts: Vec<&str> = t.split('.').collect();
                    table = match parts.as_slice() {
                        ["apps", _] => "apps.NAME".to_string(),
                        ["apps", _, "environments", _] => "apps.NAME.environments.ENV".to_string(),
                        _ => t.to_string(),
                    };
                    continue;
                }
                let Some((key, _)) = line.split_once('=') else {
                    continue;
                };
                let key = key.trim();
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let key = if table == "aliases" { "ALIAS" } else { key };
                found.insert(format!("{table}.{key}"));
            }
            let missing: Vec<String> = accepted().difference(&found).cloned().collect();
            assert!(
                missing.is_empty(),
                "bot.toml.example lacks (commented or not): {missing:?}"
            );
        }
    }
}

/// The queue, concurrency, auto-lock and reminder keys (`QueueSettings`).
#[cfg(test)]
mod queue_settings_tests {
    use super::*;

    const BASE: &str = r#"
[github]
token = "t"

[apps.api]
repository = "acme/api"

[apps.api.environments.staging]

[apps.api.environments.production]
production = true
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("bot.toml"), &|_| None)
    }

    fn env<'a>(config: &'a Config, name: &str) -> &'a EnvConfig {
        config
            .app("api")
            .unwrap()
            .environment(config, name)
            .unwrap()
    }

    #[test]
    fn production_deploys_one_at_a_time_by_default_and_the_rest_have_no_limit() {
        let config = parse(BASE).unwrap();
        let production = &env(&config, "production").queue;
        assert_eq!(production.concurrency, Some(1));
        assert_eq!(production.mode, QueueMode::Reserve);
        assert!(!production.auto_lock);
        assert_eq!(production.auto_lock_grace, DEFAULT_AUTO_LOCK_GRACE);
        assert_eq!(env(&config, "staging").queue.concurrency, None);
        assert_eq!(config.defaults.queue_grace, Duration::from_secs(300));
        assert_eq!(config.defaults.lock_remind_after, Duration::from_secs(7200));

        let text = BASE.replace(
            "production = true\n",
            "production = true\nconcurrency = 0\nqueue = \"deploy\"\nqueue_grace = \"10m\"\nauto_lock = true\nauto_lock_grace = \"1m\"\nlock_remind_after = \"1h\"\n",
        ) + "\n[defaults]\nqueue_grace = \"2m\"\nlock_remind_after = \"3h\"\n";
        let config = parse(&text).unwrap();
        let q = &env(&config, "production").queue;
        assert_eq!(q.concurrency, None);
        assert_eq!(q.mode, QueueMode::Deploy);
        assert_eq!(q.queue_grace, Some(Duration::from_secs(600)));
        assert!(q.auto_lock);
        assert_eq!(q.auto_lock_grace, Duration::from_secs(60));
        assert_eq!(q.lock_remind_after, Some(Duration::from_secs(3600)));
        assert_eq!(config.defaults.queue_grace, Duration::from_secs(120));
        assert_eq!(
            config.defaults.lock_remind_after,
            Duration::from_secs(3 * 3600)
        );
    }

    #[test]
    fn bad_queue_settings_name_the_file_position_key_and_the_fix() {
        for (setting, location, wanted) in [
            ("concurrency = \"one\"", (12, 15), "apps.api.environments.production.concurrency: `\"one\"` is not a number of deployments; write e.g. concurrency = 1"),
            ("concurrency = -1", (12, 15), "0 for no limit"),
            ("queue = \"later\"", (12, 9), "apps.api.environments.production.queue: `later` is not a queue mode; write \"reserve\""),
            ("queue_grace = \"5s\"", (12, 15), "apps.api.environments.production.queue_grace: `5s` is too short; at least 30s"),
            ("lock_remind_after = \"soon\"", (12, 21), "apps.api.environments.production.lock_remind_after: `soon` is not a duration"),
        ] {
            let text = BASE.replace("production = true\n", &format!("production = true\n{setting}\n"));
            let err = parse(&text).unwrap_err();
            assert_eq!(err.location, Some(location), "{setting}: {err}");
            assert!(err.to_string().starts_with("bot.toml:"), "{err}");
            assert!(err.message.contains(wanted), "{setting}: {err}");
        }
    }
}
