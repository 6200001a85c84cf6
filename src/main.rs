//! The `deploybot` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use deploybot::chat::discord::DiscordBot;
use deploybot::chat::shell::{self, Identity, ShellChat};
use deploybot::clock::SystemClock;
use deploybot::config::{Config, ConfigWarning, Loaded, LogConfig, LogFormat};
use deploybot::service::Service;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "deploybot",
    version,
    about = "ChatOps for GitHub Deployments: deploy from chat, watch it happen"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The real bot: Discord gateway + webhook server.
    Run {
        /// Config file [default: $DEPLOYBOT_CONFIG, else ./bot.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The same bot with this terminal as its chat: each line is a message from --user.
    Shell {
        /// Config file [default: $DEPLOYBOT_CONFIG, else ./bot.toml]
        #[arg(long)]
        config: Option<PathBuf>,
        /// Who is typing.
        #[arg(long, default_value_t = default_user())]
        user: String,
        /// A role the user has (repeat for several), as Discord roles would be.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The channel the lines are said in (apps may be limited to channels).
        #[arg(long, default_value = "shell")]
        channel: String,
    },
    /// The whole loop on this machine: shell + a local GitHub sandbox + a simulated
    /// deployer. No tokens, no network.
    Demo {
        #[arg(long, default_value = "you")]
        user: String,
        #[arg(long = "role", value_name = "ROLE", default_values_t = ["release".to_string()])]
        roles: Vec<String>,
        #[arg(long, default_value = "deploys")]
        channel: String,
    },
    /// Validates the config and prints a summary; exits 1 with file:line:col on error.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Checks the config against the real GitHub and Discord; exits 1 if anything is wrong.
    ///
    /// GitHub: the credentials and their scopes or App permissions, access to each
    /// app's repository, the webhook's settings. Discord (with [discord]): the bot
    /// token, privileged intents, servers, slash commands and channel permissions. One
    /// line per check: `✓` fine, `✗` wrong (with what to do), `!` a warning.
    Doctor {
        /// Config file [default: $DEPLOYBOT_CONFIG, else ./bot.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Copies a SQLite store into PostgreSQL (locks, confirmations, followed
    /// deployments, the inbox, delivery ids, the audit log, settings). Safe to re-run:
    /// rows already copied are skipped. Run it with deploybot stopped, then point
    /// `[storage] url` at PostgreSQL.
    MigrateStore {
        /// The SQLite store, e.g. sqlite://deploybot.db
        #[arg(long)]
        from: String,
        /// The PostgreSQL store, e.g. postgres://deploybot@db.example/deploybot
        #[arg(long)]
        to: String,
    },
}

fn default_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "me".to_string())
}

/// Logs go to stderr. The filter: `DEPLOYBOT_LOG`, else `RUST_LOG`, else `[log] level`,
/// else the command's default. The format: `[log] format`; `auto` is human lines on a
/// terminal and JSON lines otherwise (systemd, Docker, Kubernetes). No colours unless
/// stderr is a terminal.
fn init_logging(log: &LogConfig, default: &str) {
    use std::io::IsTerminal;
    let from_env = ["DEPLOYBOT_LOG", "RUST_LOG"].iter().find_map(|var| {
        let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        match tracing_subscriber::EnvFilter::builder().parse(&value) {
            Ok(filter) => Some(filter),
            Err(e) => {
                eprintln!("deploybot: ignoring {var}={value:?}: {e}");
                None
            }
        }
    });
    let filter = from_env.unwrap_or_else(|| {
        tracing_subscriber::EnvFilter::new(log.level.as_deref().unwrap_or(default))
    });
    let terminal = std::io::stderr().is_terminal();
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.init();
    }
}

/// Loads the config, or prints every error in it (one `file:line:col: message` a
/// line) and gives the exit code.
fn load(config: Option<PathBuf>) -> Result<Loaded, ExitCode> {
    let path = Config::path_from(config);
    Config::load(&path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::FAILURE
    })
}

/// Warnings go to the log once it is set up (`run`, `shell`, `doctor`).
fn log_warnings(warnings: &[ConfigWarning]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, Kubernetes).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything opens a file or a socket: idle connections must not exhaust the
    // common soft limit of 1,024 descriptors.
    deploybot::server::raise_fd_limit();
    match cli.command {
        Cmd::MigrateStore { from, to } => {
            match deploybot::store::migrate::migrate(&from, &to, 4).await {
                Ok(report) => {
                    print!("{report}");
                    println!(
                        "done: point [storage] url at {} and start deploybot",
                        deploybot::store::postgres::redacted(&to)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("deploybot migrate-store: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::CheckConfig { config } => {
            let Loaded { config, warnings } = match load(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            // Warnings do not fail the check: the bot would start with them.
            for w in &warnings {
                eprintln!("{w}");
            }
            print!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Cmd::Doctor { config } => {
            let Loaded { config, warnings } = match load(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config.log, "warn");
            log_warnings(&warnings);
            let report = deploybot::doctor::run(&config).await;
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Shell {
            config,
            user,
            roles,
            channel,
        } => {
            let (config, warnings) = match load(config) {
                Ok(c) => (Arc::new(c.config), c.warnings),
                Err(code) => return code,
            };
            init_logging(&config.log, "warn");
            log_warnings(&warnings);
            let prefix = config
                .discord
                .as_ref()
                .map_or("!".to_string(), |d| d.prefix.clone());
            let settle = config.defaults.status_timeout;
            let service = match Service::from_config(
                config,
                Arc::new(ShellChat::stdout()),
                shell::ADAPTER,
                Arc::new(SystemClock),
            )
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let identity = Identity {
                user,
                roles,
                channel,
            };
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            shell::run(&service.bot, &identity, stdin, &prefix).await;
            service.stop(settle).await;
            ExitCode::SUCCESS
        }
        Cmd::Demo {
            user,
            roles,
            channel,
        } => {
            init_logging(&LogConfig::default(), "warn");
            let identity = Identity {
                user,
                roles,
                channel,
            };
            match deploybot::demo::run(identity).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Run { config } => {
            let (config, warnings) = match load(config) {
                Ok(c) => (Arc::new(c.config), c.warnings),
                Err(code) => return code,
            };
            init_logging(&config.log, "info");
            log_warnings(&warnings);
            let bot = match DiscordBot::new(config, Arc::new(SystemClock)).await {
                Ok(bot) => bot,
                Err(e) => {
                    eprintln!("deploybot: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match bot.run(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("deploybot: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
