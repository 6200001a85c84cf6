//! `bot.toml`: loading, `${VAR}` interpolation and validation.
//!
//! The file is read into "raw" structs that keep each value's byte span, then
//! checked and turned into [`Config`]. Every error names the file, line, column and
//! key, because the person reading it is editing that file. Secrets are
//! [`SecretString`]s from the moment they leave the parser, so `Debug` and logs never
//! show them.

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

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub url: String,
}

/// Who may do what. `None` = everyone; `Some([])` = nobody. Entries are role names
/// or `user:<id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub deploy: Option<Vec<String>>,
    pub force: Option<Vec<String>>,
    pub lock: Option<Vec<String>>,
}

impl Rules {
    /// The more specific rules win, key by key.
    pub fn overlay(&self, specific: &Rules) -> Rules {
        Rules {
            deploy: specific.deploy.clone().or_else(|| self.deploy.clone()),
            force: specific.force.clone().or_else(|| self.force.clone()),
            lock: specific.lock.clone().or_else(|| self.lock.clone()),
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
}

impl Config {
    /// The path to read: `--config`, else `$DEPLOYBOT_CONFIG`, else `./bot.toml`.
    pub fn path_from(flag: Option<PathBuf>) -> PathBuf {
        flag.or_else(|| std::env::var_os(CONFIG_ENV_VAR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Reads and validates a file, taking `${VAR}`s from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
        Self::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `env` answers `${VAR}` lookups (injectable for tests).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let cx = Cx { text, path, env };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            cx.error(
                e.span(),
                e.message().trim_end().replace('\n', " ").to_string(),
            )
        })?;
        cx.build(raw)
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
        let _ = writeln!(s, "  storage: {}", self.storage.url);
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    deploy: Option<S<Vec<S<String>>>>,
    force: Option<S<Vec<S<String>>>>,
    lock: Option<S<Vec<S<String>>>>,
    lock_ttl: Option<S<String>>,
    confirm_timeout: Option<S<String>>,
    status_timeout: Option<S<String>>,
    stuck_timeout: Option<S<String>>,
    edit_interval: Option<S<String>>,
    audit_retention: Option<S<String>>,
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
}

/// The validation context: the text (for line/column), the path and `${VAR}` lookup.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Cx<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let location = span.map(|s| line_col(self.text, s.start));
        ConfigError {
            file: self.path.to_path_buf(),
            location: Some(location.unwrap_or((1, 1))),
            message: message.into(),
        }
    }

    fn at<T>(&self, v: &S<T>, message: impl Into<String>) -> ConfigError {
        self.error(Some(v.span()), message)
    }

    /// A string with `${VAR}` replaced; `$${` stays a literal `${`.
    fn string(&self, v: &S<String>, key: &str) -> Result<String, ConfigError> {
        interpolate(v.get_ref(), self.env).map_err(|e| match e {
            InterpolationError::Missing(var) => self.at(
                v,
                format!("{key}: environment variable `{var}` is not set (export it, or write the value here)"),
            ),
            InterpolationError::Unclosed => self.at(
                v,
                format!("{key}: `${{` without a closing `}}` (write `$${{` for a literal `${{`)"),
            ),
        })
    }

    fn non_empty(&self, v: &S<String>, key: &str) -> Result<String, ConfigError> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            return Err(self.at(v, format!("{key} is empty")));
        }
        Ok(s)
    }

    fn duration(&self, v: &Option<S<String>>, key: &str) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let s = self.string(v, key)?;
        match config_duration(s.trim()) {
            Some(d) if !d.is_zero() => Ok(Some(d)),
            _ => Err(self.at(
                v,
                format!(
                    "{key}: `{s}` is not a duration; write e.g. \"500ms\", \"90s\", \"15m\", \"2h\" or \"1d\""
                ),
            )),
        }
    }

    fn role_list(
        &self,
        v: &Option<S<Vec<S<String>>>>,
        key: &str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
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
        prefix: &str,
    ) -> Result<Rules, ConfigError> {
        Ok(Rules {
            deploy: self.role_list(deploy, &format!("{prefix}deploy"))?,
            force: self.role_list(force, &format!("{prefix}force"))?,
            lock: self.role_list(lock, &format!("{prefix}lock"))?,
        })
    }

    fn payload(
        &self,
        v: &Option<S<toml::Table>>,
        key: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
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
            let json = toml_to_json(value, self.env).map_err(|var| {
                self.at(
                    table,
                    format!("{key}.{k}: environment variable `{var}` is not set"),
                )
            })?;
            out.insert(k.clone(), json);
        }
        Ok(out)
    }

    fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let github = self.github(&raw.github)?;
        let discord = raw.discord.as_ref().map(|d| self.discord(d)).transpose()?;
        let webhook = raw.webhook.as_ref().map(|w| self.webhook(w)).transpose()?;
        let metrics = match &raw.metrics {
            Some(m) => Some(MetricsConfig {
                listen: self.address(&m.get_ref().listen, "metrics.listen", "127.0.0.1:9187")?,
            }),
            None => None,
        };
        let log = match &raw.log {
            Some(l) => self.log(l.get_ref())?,
            None => LogConfig::default(),
        };
        let storage = match &raw.storage {
            Some(s) => {
                let url = self.non_empty(&s.url, "storage.url")?;
                if !url.starts_with("sqlite:") {
                    return Err(self.at(
                        &s.url,
                        format!("storage.url: `{url}` is not supported; use \"sqlite://deploybot.db\" (a file) or \"sqlite::memory:\""),
                    ));
                }
                StorageConfig { url }
            }
            None => StorageConfig {
                url: "sqlite://deploybot.db".into(),
            },
        };
        let defaults = match &raw.defaults {
            Some(d) => self.defaults(d)?,
            None => Defaults::default(),
        };

        let mut apps = Vec::new();
        for (name, app) in &raw.apps {
            apps.push(self.app(name, app)?);
        }
        if apps.is_empty() {
            return Err(self.error(
                None,
                "no apps configured: add an [apps.NAME] table with `repository = \"owner/name\"` and at least one [apps.NAME.environments.ENV]",
            ));
        }

        let mut aliases = BTreeMap::new();
        for (alias, target) in &raw.aliases {
            let key = format!("aliases.{alias}");
            let target_name = self.non_empty(target, &key)?;
            check_word(alias).map_err(|m| self.at(target, format!("{key}: alias {m}")))?;
            if !apps.iter().any(|a| {
                a.environments
                    .iter()
                    .any(|e| e.name.as_str() == target_name)
            }) {
                let known: Vec<String> = apps
                    .iter()
                    .flat_map(|a| a.environments.iter().map(|e| e.name.to_string()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                return Err(self.at(
                    target,
                    format!(
                        "{key}: no app has an environment `{target_name}`; environments: {}",
                        known.join(", ")
                    ),
                ));
            }
            // An alias named like a real environment would hide it for good.
            if let Some(app) = apps.iter().find(|a| {
                a.environments
                    .iter()
                    .any(|e| e.name.as_str().eq_ignore_ascii_case(alias))
            }) {
                return Err(self.at(
                    target,
                    format!(
                        "{key}: `{alias}` is also an environment of app {} and would hide it; rename the alias",
                        app.name
                    ),
                ));
            }
            aliases.insert(alias.to_ascii_lowercase(), Environment::new(target_name));
        }

        // Default environments may be aliases; resolve them now so the rest of the bot
        // only ever sees real names.
        for (app, (_, raw_app)) in apps.iter_mut().zip(&raw.apps) {
            if let Some(v) = &raw_app.get_ref().default_environment {
                let wanted =
                    self.non_empty(v, &format!("apps.{}.default_environment", app.name))?;
                let real = aliases
                    .get(&wanted.to_ascii_lowercase())
                    .map_or(wanted.as_str(), |e| e.as_str())
                    .to_string();
                match app
                    .environments
                    .iter()
                    .find(|e| e.name.as_str().eq_ignore_ascii_case(&real))
                {
                    Some(e) => app.default_environment = Some(e.name.clone()),
                    None => {
                        return Err(self.at(
                            v,
                            format!(
                                "apps.{}.default_environment: `{wanted}` is not one of its environments ({})",
                                app.name,
                                app.environment_names().join(", ")
                            ),
                        ))
                    }
                }
            }
        }

        Ok(Config {
            source: self.path.to_path_buf(),
            github,
            discord,
            webhook,
            metrics,
            log,
            storage,
            aliases,
            defaults,
            apps,
        })
    }

    fn github(&self, raw: &S<RawGitHub>) -> Result<GitHubConfig, ConfigError> {
        let g = raw.get_ref();
        let api_url = match &g.api_url {
            Some(v) => {
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
                url.trim_end_matches('/').to_string()
            }
            None => "https://api.github.com".to_string(),
        };
        let auth = match (&g.token, &g.app) {
            (Some(token), None) => GitHubAuth::Token(SecretString::from(self.non_empty(token, "github.token")?)),
            (None, Some(app)) => {
                let a = app.get_ref();
                let key = self.non_empty(&a.private_key_path, "github.app.private_key_path")?;
                let key_path = self.path.parent().unwrap_or(Path::new(".")).join(key);
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
            api_url,
            auth,
            poll_interval: self.duration(&g.poll_interval, "github.poll_interval")?,
        })
    }

    fn discord(&self, raw: &S<RawDiscord>) -> Result<DiscordConfig, ConfigError> {
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
    fn address(&self, v: &S<String>, key: &str, example: &str) -> Result<SocketAddr, ConfigError> {
        let s = self.non_empty(v, key)?;
        s.trim().parse::<SocketAddr>().map_err(|_| {
            self.at(
                v,
                format!("{key}: `{s}` is not an address; write IP:PORT, e.g. \"{example}\""),
            )
        })
    }

    fn log(&self, l: &RawLog) -> Result<LogConfig, ConfigError> {
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

    fn webhook(&self, raw: &S<RawWebhook>) -> Result<WebhookConfig, ConfigError> {
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

    fn defaults(&self, d: &RawDefaults) -> Result<Defaults, ConfigError> {
        let base = Defaults::default();
        Ok(Defaults {
            rules: self.rules(&d.deploy, &d.force, &d.lock, "defaults.")?,
            lock_ttl: self
                .duration(&d.lock_ttl, "defaults.lock_ttl")?
                .unwrap_or(base.lock_ttl),
            confirm_timeout: self
                .duration(&d.confirm_timeout, "defaults.confirm_timeout")?
                .unwrap_or(base.confirm_timeout),
            status_timeout: self
                .duration(&d.status_timeout, "defaults.status_timeout")?
                .unwrap_or(base.status_timeout),
            stuck_timeout: self
                .duration(&d.stuck_timeout, "defaults.stuck_timeout")?
                .unwrap_or(base.stuck_timeout),
            edit_interval: self
                .duration(&d.edit_interval, "defaults.edit_interval")?
                .unwrap_or(base.edit_interval),
            audit_retention: self
                .duration(&d.audit_retention, "defaults.audit_retention")?
                .unwrap_or(base.audit_retention),
        })
    }

    fn app(&self, name: &str, raw: &S<RawApp>) -> Result<AppConfig, ConfigError> {
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
        let rules = self.rules(&a.deploy, &a.force, &a.lock, &format!("{key}."))?;

        let mut environments: Vec<EnvConfig> = Vec::new();
        for (env_name, env) in &a.environments {
            let ekey = format!("{key}.environments.{env_name}");
            check_word(env_name)
                .map_err(|m| self.at(env, format!("{ekey}: environment name {m}")))?;
            if environments
                .iter()
                .any(|e| e.name.as_str().eq_ignore_ascii_case(env_name))
            {
                return Err(self.at(env, format!("{ekey}: defined twice (names ignore case)")));
            }
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
            environments.push(EnvConfig {
                name: Environment::new(env_name.clone()),
                required_contexts,
                auto_merge: e.auto_merge.unwrap_or(false),
                production: e.production.unwrap_or(false),
                transient: e.transient.unwrap_or(false),
                confirm: e.confirm.unwrap_or(false),
                payload: self.payload(&e.payload, &format!("{ekey}.payload"))?,
                rules: self.rules(&e.deploy, &e.force, &e.lock, &format!("{ekey}."))?,
            });
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

/// Durations in the config: the chat syntax (`90s`, `15m`, `2h`, `1d`, `1h30m`), plus
/// milliseconds (`500ms`) for short intervals.
fn config_duration(s: &str) -> Option<Duration> {
    match s.strip_suffix("ms") {
        Some(n) => n.trim().parse::<u64>().ok().map(Duration::from_millis),
        None => commands::parse_duration(s),
    }
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

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
