//! The core: one [`Bot`] per process. Adapters hand it [`Request`]s; it parses them with
//! the `commands` crate and runs the matching flow in `src/flow/<command>.rs`, which
//! talks to GitHub, chat and storage only through the [`GitHub`], [`Chat`] and
//! [`Store`] ports.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::{Command, ParseError};
use dashmap::DashMap;

use crate::chat::{Addressing, Chat, Conversation, Message, MessageId, MeteredChat, Request};
use crate::clock::Clock;
use crate::config::Config;
use crate::flow::{self, Decision, Outcome};
use crate::github::{GitHub, GitHubError, Repository};
use crate::intents::Intents;
use crate::metrics::{Metrics, Readiness, Status};
use crate::model::RepoName;
use crate::store::group::GroupWriter;
use crate::store::{AuditEntry, Press, Store};
use crate::tracker::Tracker;
use crate::waits::Waits;

/// The longest line the bot reads as a command (Discord's own message limit).
pub const MAX_LINE: usize = 2000;
/// How long `/readyz` waits for the store to take a write.
const STORAGE_PROBE: Duration = Duration::from_secs(2);
/// Repository facts (default branch, html URL) change rarely; ask GitHub at most this often.
const REPOSITORY_TTL: Duration = Duration::from_secs(300);
/// How long webhook delivery ids are remembered, to drop redeliveries.
pub const DELIVERY_IDS_KEPT_HOURS: i64 = 80;

/// Branch names, for autocompletion: briefly cached, as people type several letters.
const BRANCHES_TTL: Duration = Duration::from_secs(60);

/// What a bot is made of: the config and the three ports, plus a clock.
pub struct Parts {
    pub config: Arc<Config>,
    pub github: Arc<dyn GitHub>,
    pub chat: Arc<dyn Chat>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The chat adapter's name (`"shell"`, `"discord"`), written into payloads.
    pub adapter: String,
}

/// Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    github: Arc<dyn GitHub>,
    chat: Arc<dyn Chat>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tracker: Tracker,
    writer: GroupWriter,
    intents: Arc<Intents>,
    /// `deploy … when green`: this process's side of the waits.
    waits: Arc<Waits>,
    metrics: Arc<Metrics>,
    repositories: DashMap<RepoName, (Repository, DateTime<Utc>)>,
    branches: DashMap<RepoName, (Vec<String>, DateTime<Utc>)>,
}

impl Bot {
    pub fn new(parts: Parts) -> Bot {
        let metrics = Arc::new(Metrics::new());
        parts.github.observe(metrics.clone());
        if parts.chat.connected_at_start() {
            metrics.health.set_chat(Status::ready());
        }
        let chat: Arc<dyn Chat> = Arc::new(MeteredChat::new(parts.chat, metrics.clone()));
        let writer = GroupWriter::new(parts.store.clone(), metrics.clone());
        let tracker = Tracker::new(
            parts.config.clone(),
            writer.clone(),
            chat.clone(),
            parts.github.clone(),
            parts.clock.clone(),
            metrics.clone(),
            &parts.adapter,
        );
        let intents = Arc::new(Intents::new(parts.clock.now()));
        Bot {
            inner: Arc::new(Inner {
                config: parts.config,
                github: parts.github,
                chat,
                store: parts.store,
                clock: parts.clock,
                tracker,
                writer,
                intents,
                waits: Arc::new(Waits::default()),
                metrics,
                repositories: DashMap::new(),
                branches: DashMap::new(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn github(&self) -> &dyn GitHub {
        self.inner.github.as_ref()
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn tracker(&self) -> &Tracker {
        &self.inner.tracker
    }

    /// The group commit the webhook path writes through.
    pub fn writer(&self) -> &GroupWriter {
        &self.inner.writer
    }

    /// Deployments whose creation's outcome is not known yet: this process's side.
    pub fn intents(&self) -> &Arc<Intents> {
        &self.inner.intents
    }

    /// Deploys waiting for green checks: this process's side (the waits are stored).
    pub fn waits(&self) -> &Arc<Waits> {
        &self.inner.waits
    }

    /// The counters behind `/metrics` and the readiness behind `/readyz`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Whether the bot can do its job now: storage takes a write (probed now, within
    /// `STORAGE_PROBE`), chat is connected, GitHub accepted the credentials.
    pub async fn readiness(&self) -> Readiness {
        let health = &self.inner.metrics.health;
        // In a task of its own: a caller that gives up (a probe's HTTP client timing out)
        // never cancels the store in the middle of a statement.
        let store = self.inner.store.clone();
        let probe = tokio::spawn(async move { store.ping().await });
        health.set_storage(match tokio::time::timeout(STORAGE_PROBE, probe).await {
            Ok(Ok(Ok(()))) => Status::ready(),
            Ok(Ok(Err(e))) => Status::not_ready(e.to_string()),
            Ok(Err(e)) => Status::not_ready(format!("storage check failed: {e}")),
            Err(_) => Status::not_ready(format!(
                "storage did not answer within {}s",
                STORAGE_PROBE.as_secs()
            )),
        });
        Readiness::from_health(health)
    }

    /// Refreshes the store's gauges, then encodes every metric.
    pub async fn metrics_text(&self) -> String {
        match self.inner.store.gauges(self.now()).await {
            Ok(g) => self.inner.metrics.store_gauges(&g),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count locks and confirmations for /metrics")
            }
        }
        self.inner.metrics.encode()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Handles one line said to the bot. Never fails: every problem becomes a reply,
    /// and every command attempt becomes an audit entry. Returns what the attempt came
    /// to (`None` for a line that is not a command).
    ///
    /// A button's line ([`Request::pressed`]) is run once per message: a second press
    /// is answered with who used it and when, and what to type to do it again. A
    /// refused press does not use the button up, so someone who may can still press it.
    pub async fn handle(&self, request: Request) -> Option<Decision> {
        // Before anything reads it: a huge line is refused whole, never parsed or echoed.
        let length = request.text.chars().count();
        if length > MAX_LINE {
            self.reply(
                &request,
                Message::refused(format!(
                    "that line is {length} characters long; commands are at most {MAX_LINE}"
                ))
                .line("type `help` for the list of commands"),
            )
            .await;
            let outcome = Outcome::new(Decision::Refused("syntax")).detail("line too long");
            self.record(&request, "invalid", &outcome).await;
            return Some(outcome.decision);
        }
        let command = match commands::parse(&request.text) {
            Ok(command) => command,
            Err(ParseError::NotACommand) => {
                // A prefix may be shared with other bots: stay quiet unless spoken to.
                if request.addressing == Addressing::Direct && !request.text.trim().is_empty() {
                    let word: String = request
                        .text
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(40)
                        .collect();
                    self.reply(
                        &request,
                        Message::refused(format!("I don't know the command `{word}`"))
                            .line("type `help` for the list of commands"),
                    )
                    .await;
                }
                return None;
            }
            Err(ParseError::Invalid {
                command,
                problem,
                suggestion,
                usage,
            }) => {
                let title = match suggestion {
                    Some(s) => format!("{problem} — did you mean `{s}`?"),
                    None => problem.clone(),
                };
                let message = Message::refused(title).line(format!("usage: {usage}"));
                self.reply(&request, message).await;
                let outcome = Outcome::new(Decision::Refused("syntax")).detail(problem);
                self.record(&request, command, &outcome).await;
                return Some(outcome.decision);
            }
        };
        tracing::info!(
            user = %request.user.name,
            channel = %request.conversation.display(),
            command = %command,
            "command"
        );
        let name = command.name();
        let press = match self.claim_press(&request).await {
            Ok(press) => press,
            Err(outcome) => {
                self.record(&request, name, &outcome).await;
                return Some(outcome.decision);
            }
        };
        let outcome = match command {
            Command::Deploy(c) if c.when_green => flow::when_green::run(self, &request, c).await,
            Command::Deploy(c) => flow::deploy::run(self, &request, c).await,
            Command::Deploys(c) => flow::deploys::run(self, &request, c).await,
            Command::Environments(c) => flow::environments::run(self, &request, c).await,
            Command::WhatsOn(c) => flow::whats_on::run(self, &request, c).await,
            Command::Rollback(c) => flow::rollback::run(self, &request, c).await,
            Command::Lock(c) => flow::lock::run(self, &request, c).await,
            Command::Unlock(c) => flow::unlock::run(self, &request, c).await,
            Command::Locks(_) => flow::locks::run(self, &request).await,
            Command::Queue(c) => flow::queue::run(self, &request, c).await,
            Command::Dequeue(c) => flow::dequeue::run(self, &request, c).await,
            Command::Freeze(c) => flow::freeze::run(self, &request, c).await,
            Command::Unfreeze(c) => flow::unfreeze::run(self, &request, c).await,
            Command::Why(c) => flow::why::run(self, &request, c).await,
            Command::Audit(c) => flow::audit::run(self, &request, c).await,
            Command::Confirm(c) => flow::confirm::confirm(self, &request, c).await,
            Command::Cancel(c) => flow::when_green::cancel(self, &request, c).await,
            Command::Help(c) => flow::help::run(self, &request, c).await,
            Command::Version(_) => flow::version::run(self, &request).await,
        };
        if let Some(press) = press.filter(|_| matches!(outcome.decision, Decision::Refused(_))) {
            if let Err(e) = self.inner.store.release_press(&press).await {
                tracing::warn!(error = %e, "could not free a button whose press was refused");
            }
        }
        self.record(&request, name, &outcome).await;
        Some(outcome.decision)
    }

    /// Takes the request's button, if it came from one: `Ok(None)` for a typed line,
    /// `Ok(Some(press))` for the first use of that message's buttons, `Err` (already
    /// answered) for a later one or when the store cannot tell.
    async fn claim_press(&self, request: &Request) -> Result<Option<Press>, Outcome> {
        let Some(pressed) = &request.pressed else {
            return Ok(None);
        };
        let press = Press {
            message: format!("{}:{}", request.conversation.adapter, pressed.message),
            user_id: request.user.id.clone(),
            user_name: request.user.name.clone(),
            command: request.text.clone(),
            at: self.now(),
        };
        match self.inner.store.claim_press(&press).await {
            Ok(None) => Ok(Some(press)),
            Ok(Some(earlier)) => {
                let who = if earlier.user_id == request.user.id {
                    "you".to_string()
                } else {
                    earlier.user_name.clone()
                };
                self.reply(
                    request,
                    Message::refused(format!(
                        "this button was already used: {who} pressed it {} (`{}`); nothing was done now",
                        crate::history::ago(self.now(), earlier.at),
                        earlier.command
                    ))
                    .line(format!("to do it again anyway, type `{}`", request.text)),
                )
                .await;
                Err(Outcome::new(Decision::Refused("button already used"))
                    .detail(format!("pressed by {} first", earlier.user_name)))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record a button press");
                self.reply(
                    request,
                    Message::new(
                        crate::chat::Tone::Failed,
                        "deploybot cannot record this button press (its storage is failing): nothing was done",
                    )
                    .line(format!("type `{}` instead, or try again in a minute", request.text)),
                )
                .await;
                Err(Outcome::new(Decision::Failed).detail(e.to_string()))
            }
        }
    }

    /// Writes the audit entry of a command attempt (also of a deploy a wait started).
    pub(crate) async fn record(&self, request: &Request, command: &str, outcome: &Outcome) {
        let entry = AuditEntry {
            at: self.now(),
            adapter: request.conversation.adapter.clone(),
            channel: request
                .conversation
                .channel_name
                .clone()
                .unwrap_or_else(|| request.conversation.channel.clone()),
            user_id: request.user.id.clone(),
            user_name: request.user.name.clone(),
            text: request.text.chars().take(500).collect(),
            command: command.to_string(),
            app: outcome.app.clone(),
            environment: outcome.environment.clone(),
            decision: outcome.decision.as_str().to_string(),
            rule: outcome.decision.rule().map(str::to_string),
            deployment_id: outcome.deployment.map(|d| d.0),
            detail: outcome.detail.clone(),
        };
        let metrics = &self.inner.metrics;
        metrics.command(command, outcome.decision.as_str());
        if matches!(command, "deploy" | "rollback" | "confirm") {
            match outcome.decision {
                Decision::Refused(rule) => metrics.deployment_refused(rule),
                Decision::Allowed if outcome.deployment.is_some() => metrics.deployment_created(
                    outcome.app.as_deref().unwrap_or("-"),
                    outcome.environment.as_deref().unwrap_or("-"),
                ),
                _ => {}
            }
        }
        if let Err(e) = self.inner.store.audit(&entry).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }

    /// Housekeeping, called every few seconds (and by tests with a moved clock):
    /// status timeouts, lock expiry warnings and expiry, confirmation expiry, audit
    /// retention.
    pub async fn tick(&self) {
        let failed = |task: &'static str, e: &dyn std::fmt::Display| {
            self.inner.metrics.background_failure(task);
            tracing::warn!(error = %e, task, "housekeeping step failed; it runs again in a few seconds");
        };
        if let Err(e) = self.inner.tracker.check_timeouts().await {
            failed("watchdog", &e);
        }
        if let Err(e) = flow::lock::sweep(self).await {
            failed("lock_expiry", &e);
        }
        // Queue turns, automatic locks, lock reminders, hand-overs (src/flow/queue.rs).
        if let Err(e) = flow::queue::sweep(self).await {
            failed("queue", &e);
        }
        if let Err(e) = flow::confirm::expire(self).await {
            failed("confirmation_expiry", &e);
        }
        // `deploy … when green`: timeouts, and the poll that ends a wait whose webhook
        // was missed.
        if let Err(e) = flow::when_green::sweep(self).await {
            failed("when_green", &e);
        }
        let before = crate::clock::earlier(self.now(), self.config().defaults.audit_retention);
        if let Err(e) = self.inner.store.prune_audit(before).await {
            failed("audit_retention", &e);
        }
        // Delivery ids: GitHub lets a delivery be redelivered for 3 days; keep them longer.
        if let Err(e) = self
            .inner
            .store
            .prune_deliveries(self.now() - chrono::Duration::hours(DELIVERY_IDS_KEPT_HOURS))
            .await
        {
            failed("pruning", &e);
        }
        // Finished deployments and answered questions: kept a week, for restarts and
        // for anyone reading the database; GitHub keeps the history itself.
        if let Err(e) = self
            .inner
            .store
            .prune_settled(self.now() - chrono::Duration::days(7))
            .await
        {
            failed("pruning", &e);
        }
    }

    /// Posts a message in the request's conversation. Chat failures are logged, not
    /// returned: there is nobody else to tell.
    pub async fn reply(&self, request: &Request, message: Message) -> Option<MessageId> {
        self.say(&request.conversation, &message).await
    }

    pub async fn say(&self, to: &Conversation, message: &Message) -> Option<MessageId> {
        match self.inner.chat.send(to, message).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(channel = %to.display(), error = %e, "could not post a message");
                None
            }
        }
    }

    /// Edits a message; a failure is logged (for notes that are not worth a new post).
    pub async fn edit(&self, to: &Conversation, id: &MessageId, message: &Message) -> bool {
        match self.inner.chat.edit(to, id, message).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(channel = %to.display(), error = %e, "could not edit a message");
                false
            }
        }
    }

    /// Edits a message, or posts it anew when there is nothing to edit.
    pub async fn update(
        &self,
        to: &Conversation,
        id: Option<&MessageId>,
        message: &Message,
    ) -> Option<MessageId> {
        match id {
            Some(id) => match self.inner.chat.edit(to, id, message).await {
                Ok(()) => Some(id.clone()),
                Err(e) => {
                    tracing::warn!(channel = %to.display(), error = %e, "could not edit a message; posting anew");
                    self.say(to, message).await
                }
            },
            None => self.say(to, message).await,
        }
    }

    /// The repository behind an app, cached for a few minutes.
    pub async fn repository(&self, repo: &RepoName) -> Result<Repository, GitHubError> {
        if let Some(repository) = self.cached_repository(repo) {
            return Ok(repository);
        }
        let repository = self.inner.github.repository(repo).await?;
        self.remember_repository(repo, repository.clone());
        Ok(repository)
    }

    /// The cached repository, if fresh; never asks GitHub.
    pub fn cached_repository(&self, repo: &RepoName) -> Option<Repository> {
        let entry = self.inner.repositories.get(repo)?;
        let (repository, at) = entry.value();
        (self.now() - *at < chrono::Duration::from_std(REPOSITORY_TTL).unwrap_or_default())
            .then(|| repository.clone())
    }

    /// Caches a repository that came with another answer (the deploy pre-flight).
    pub fn remember_repository(&self, repo: &RepoName, repository: Repository) {
        self.inner
            .repositories
            .insert(repo.clone(), (repository, self.now()));
    }

    /// Branch names of a repository (first 100), cached briefly: for autocompletion.
    pub async fn branches(&self, repo: &RepoName) -> Result<Vec<String>, GitHubError> {
        let now = self.now();
        if let Some(entry) = self.inner.branches.get(repo) {
            let (names, at) = entry.value();
            if now - *at < chrono::Duration::from_std(BRANCHES_TTL).unwrap_or_default() {
                return Ok(names.clone());
            }
        }
        let names = self.inner.github.branches(repo, 100).await?;
        self.inner
            .branches
            .insert(repo.clone(), (names.clone(), now));
        Ok(names)
    }
}
