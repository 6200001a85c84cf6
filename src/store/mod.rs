//! The store port: deploybot's own state, which must survive a restart. GitHub keeps
//! the deploy history; this keeps which chat message tracks which deployment, webhook
//! deliveries already seen, locks, pending confirmations and the audit log.
//!
//! [`sqlite::SqliteStore`] and [`postgres::PostgresStore`] implement it with sqlx and
//! embedded migrations (`migrations/`, `migrations-postgres/`), with the same
//! semantics: `tests/store_contract.rs` runs one suite against both.

pub mod group;
pub mod migrate;
pub mod postgres;
pub mod queue;
pub mod sqlite;
mod sqlite_writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::Conversation;
use crate::github::Deployment;
use crate::model::{DeploymentId, DeploymentState, RepoName};

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError(format!("corrupt record: {e}"))
    }
}

/// A deployment whose progress message the bot keeps up to date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub deployment_id: DeploymentId,
    pub repository: RepoName,
    /// `payload.deploybot.request_id`, for deployments deploybot made.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The configured app, when known.
    pub app: Option<String>,
    pub environment: String,
    pub git_ref: String,
    pub sha: String,
    pub task: String,
    pub conversation: Conversation,
    /// The progress message; `None` until one was posted.
    pub message_id: Option<String>,
    /// Chat user id and name of who asked (None for deployments made elsewhere).
    pub requester: Option<(String, String)>,
    /// GitHub login of the creator, for deployments made elsewhere.
    pub creator: Option<String>,
    /// The repository's web page (for the deployments link).
    pub html_url: Option<String>,
    pub hosts: Vec<String>,
    pub reason: Option<String>,
    pub forced: bool,
    /// Lines from the deploy flow worth keeping on the message (auto-merge, recovery,
    /// how the ref relates to what was live).
    pub notes: Vec<String>,
    /// The compare view between what was live and this ref.
    #[serde(default)]
    pub compare_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: DeploymentState,
    /// The id of the status that set `state` (ids grow; a lower one is older).
    pub status_id: Option<u64>,
    pub status_description: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The requester was notified of the final state.
    pub announced: bool,
    /// The message shows the final state.
    pub final_rendered: bool,
    /// Unfinished for so long that the bot stopped following it.
    #[serde(default)]
    pub given_up: bool,
    pub warned_no_status: bool,
    pub warned_stuck: bool,
    /// ETag of the last statuses read, for conditional polling.
    pub etag: Option<String>,
}

impl Tracked {
    /// A fresh record for GitHub's deployment `d`, just created, to be shown in
    /// `conversation`: nothing posted, no status, no routing data yet.
    pub fn new(repository: &RepoName, d: &Deployment, conversation: Conversation) -> Tracked {
        Tracked {
            deployment_id: d.id,
            repository: repository.clone(),
            request_id: None,
            app: None,
            environment: d.environment.clone(),
            git_ref: d.git_ref.clone(),
            sha: d.sha.to_string(),
            task: d.task.clone(),
            conversation,
            message_id: None,
            requester: None,
            creator: d.creator.as_ref().map(|c| c.login.clone()),
            html_url: None,
            hosts: Vec::new(),
            reason: None,
            forced: false,
            notes: Vec::new(),
            compare_url: None,
            created_at: d.created_at,
            state: DeploymentState::Created,
            status_id: None,
            status_description: None,
            log_url: None,
            environment_url: None,
            finished_at: None,
            announced: false,
            final_rendered: false,
            given_up: false,
            warned_no_status: false,
            warned_stuck: false,
            etag: None,
        }
    }

    /// Nothing left to do: the final state is shown (and announced), or the bot gave up.
    pub fn is_settled(&self) -> bool {
        (self.state.is_final() && self.final_rendered) || self.given_up
    }
}

/// A webhook delivery to admit into the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// The inbox key: the delivery id, or a generated one when there is none.
    pub key: String,
    /// `X-GitHub-Delivery`, de-duplicated when present.
    pub delivery: Option<String>,
    /// The parsed event (JSON of `inbox::Work`).
    pub event: String,
    pub at: DateTime<Utc>,
}

/// Inbox keys made up for deliveries without an `X-GitHub-Delivery` id start with this
/// (GitHub's ids are UUIDs, so they never do).
pub const GENERATED_KEY: &str = "deploybot:";

/// One write of a group commit.
#[derive(Debug, Clone)]
pub enum Write {
    /// Records the delivery id (unless seen) and the event in the inbox.
    Admit(Arrival),
    /// A delivery the tracker applied on arrival (its deployment was in memory): its
    /// id (unless seen) and the record the event moved forward, in one transaction,
    /// with nothing in the inbox. The record is written even when the id was seen:
    /// it is the tracker's latest state either way.
    AdmitApplied {
        delivery: Option<String>,
        at: DateTime<Utc>,
        record: Box<Tracked>,
    },
    /// Inserts or replaces a tracked record.
    Put(Box<Tracked>),
    /// Inserts a tracked record unless one exists.
    Insert(Box<Tracked>),
    /// An inbox entry was applied: removes it.
    Applied(String),
}

impl Write {
    /// Which writes of `batch` a later one makes pointless: a `Put` followed, in the
    /// same batch, by another `Put` (or `AdmitApplied`) of the same record (the last
    /// one wins, and the transaction is all or nothing) with no `Insert` of it in
    /// between (whose answer depends on what is there). A status and the render that
    /// showed it are often queued while one commit runs: their record is then written
    /// once. An `AdmitApplied` is never skipped (its delivery id is recorded).
    pub(super) fn superseded(batch: &[Write]) -> Vec<bool> {
        let mut later = std::collections::HashSet::new();
        let mut skip = vec![false; batch.len()];
        for (i, w) in batch.iter().enumerate().rev() {
            match w {
                Write::Put(t) => {
                    skip[i] = !later.insert((repo_key(&t.repository), t.deployment_id));
                }
                Write::AdmitApplied { record: t, .. } => {
                    later.insert((repo_key(&t.repository), t.deployment_id));
                }
                Write::Insert(t) => {
                    later.remove(&(repo_key(&t.repository), t.deployment_id));
                }
                Write::Admit(_) | Write::Applied(_) => {}
            }
        }
        skip
    }
}

/// A repository as the key of tracked rows: GitHub's names are case-insensitive.
pub(super) fn repo_key(repo: &RepoName) -> String {
    repo.lowercase()
}

/// What one [`Write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The delivery is new and its event is in the inbox (or, `AdmitApplied`, applied).
    Admitted,
    /// The delivery id was already seen (or came earlier in the same batch).
    Duplicate,
    /// `Insert`: whether the record was new.
    Inserted(bool),
    Done,
}

/// A deployment deploybot is about to create, recorded before `POST /deployments`, so
/// that a crash (or a GitHub that never answers) while the answer is in flight does not
/// lose it: the deployment is looked up later by `request_id`, never re-POSTed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// `payload.deploybot.request_id` of the deployment.
    pub request_id: String,
    pub app: String,
    pub repository: RepoName,
    pub environment: String,
    pub git_ref: String,
    pub task: String,
    /// Where it was asked, and the "Creating a deployment…" message (`None` if chat
    /// could not post it).
    pub conversation: Conversation,
    pub message_id: Option<String>,
    /// Chat user id and name of who asked.
    pub requester: (String, String),
    /// The command that would deploy it again (for "safe to deploy again: …").
    pub command: String,
    /// `api/topic`, for messages.
    pub label: String,
    pub created_at: DateTime<Utc>,
    /// What the tracked record needs beyond GitHub's deployment.
    pub html_url: Option<String>,
    pub hosts: Vec<String>,
    pub reason: Option<String>,
    pub forced: bool,
    pub notes: Vec<String>,
    pub compare_url: Option<String>,
}

impl Intent {
    /// The tracked record of the deployment this intent became.
    pub fn tracked(&self, d: &Deployment) -> Tracked {
        Tracked {
            request_id: Some(self.request_id.clone()),
            app: Some(self.app.clone()),
            message_id: self.message_id.clone(),
            requester: Some(self.requester.clone()),
            creator: None,
            html_url: self.html_url.clone(),
            hosts: self.hosts.clone(),
            reason: self.reason.clone(),
            forced: self.forced,
            notes: self.notes.clone(),
            compare_url: self.compare_url.clone(),
            ..Tracked::new(&self.repository, d, self.conversation.clone())
        }
    }
}

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentResolution {
    /// The deployment exists; it is a tracked deployment now.
    Created,
    /// GitHub answered and created nothing (checks, conflict, validation, 202 twice).
    Refused,
    /// The request failed before it could have reached GitHub (credentials, network).
    Failed,
    /// Looked up after the fact: GitHub has no deployment with this request id.
    NotCreated,
    /// Nobody could find out in time (older than the bound); the message says so.
    Abandoned,
}

impl IntentResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::NotCreated => "not_created",
            Self::Abandoned => "abandoned",
        }
    }
}

// ----- waits (`deploy … when green`) -----

/// A deploy waiting for its ref's checks: everything needed to deploy it later as the
/// person who asked, from any instance, after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    /// Short id shown in chat (`cancel ID`).
    pub id: String,
    /// The canonical command, `deploy … when green`.
    pub command: String,
    /// Who asked: chat id, name and roles (the deploy runs as them, rules re-checked).
    pub requester_id: String,
    pub requester_name: String,
    pub requester_roles: Vec<String>,
    pub conversation: Conversation,
    /// The one live message (`None` until posted; a column of its own).
    pub message_id: Option<String>,
    pub app: String,
    pub repository: RepoName,
    pub environment: String,
    pub git_ref: String,
    /// The commit the ref pointed to when asked: only that commit is deployed.
    pub sha: String,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// How many check webhooks were seen for its commit (a column of its own).
    #[serde(default)]
    pub pokes: u64,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResolution {
    /// The checks passed; the closer runs the deploy.
    Green,
    /// A check failed.
    Failed,
    /// The ref no longer points at the commit asked for.
    Moved,
    TimedOut,
    Cancelled,
    /// The checks could not be read for the whole wait, or its app is gone.
    Abandoned,
}

impl WaitResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Failed => "failed",
            Self::Moved => "moved",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub locks: u64,
    pub confirmations: u64,
    pub tracked: u64,
    /// SQLite's WAL checkpoints since the store opened (none on PostgreSQL).
    pub checkpoints: Option<Checkpoints>,
}

/// What the SQLite checkpointer has done since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// Rounds that copied the whole WAL into the database file (the next commit
    /// starts the WAL over).
    pub caught_up: u64,
    /// Rounds that copied part of it: commits went on meanwhile, or a reader (a
    /// backup, an open `sqlite3` prompt) holds the rest.
    pub partial: u64,
    /// Rounds that failed (an I/O error, a full disk).
    pub failed: u64,
    /// WAL pages the latest round left uncopied.
    pub pages_behind: u64,
}

/// A lock on an app's environment: only its holder may deploy there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub app: String,
    pub environment: String,
    pub holder_id: String,
    pub holder_name: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The holder was told it is about to expire.
    pub warned: bool,
    /// Where it was taken: notices about it go there.
    pub conversation: Conversation,
}

/// The answer to taking a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockTaken {
    /// Taken (or, for its holder, renewed).
    Taken,
    /// Someone else holds it.
    HeldBy(Box<Lock>),
}

/// A freeze made in chat: nobody deploys in its scope (but by break-glass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// The app frozen; `None` for every app.
    pub app: Option<String>,
    /// The environment frozen; `None` for every environment.
    pub environment: Option<String>,
    pub holder_id: String,
    pub holder_name: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// `None`: until `unfreeze`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Where it was made: who froze it is told there when it is lifted.
    pub conversation: Conversation,
}

impl Freeze {
    /// Whether it is in force at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    /// Whether it stops deploying `app` to `environment`.
    pub fn covers(&self, app: &str, environment: &str) -> bool {
        self.app.as_deref().is_none_or(|a| a == app)
            && self.environment.as_deref().is_none_or(|e| e == environment)
    }
}

/// A deploy waiting for its requester to confirm it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub id: String,
    pub requester_id: String,
    pub requester_name: String,
    pub conversation: Conversation,
    /// The command to run once confirmed, in canonical form.
    pub command: String,
    /// What is being confirmed, for people.
    pub summary: String,
    /// The question's message, edited when it is answered or expires.
    pub message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: ConfirmationState,
    /// The deployment that was live when the question was asked (`None`: nothing was).
    pub expected_live: Option<u64>,
    /// For a rollback: the sha it would put back.
    pub expected_target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationState {
    Pending,
    Confirmed,
    Cancelled,
    Expired,
}

impl ConfirmationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "confirmed" => Self::Confirmed,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => Self::Pending,
        }
    }
}

/// Why a confirmation could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfirmable {
    NotFound,
    /// Only the requester can answer.
    NotYours(Confirmation),
    /// Already confirmed, cancelled or expired.
    Closed(Confirmation),
}

/// A use of a message's next-step buttons: who pressed, what it ran, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    /// The platform and its message id, e.g. `discord:1234`.
    pub message: String,
    pub user_id: String,
    pub user_name: String,
    pub command: String,
    pub at: DateTime<Utc>,
}

/// One command attempt, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub adapter: String,
    pub channel: String,
    pub user_id: String,
    pub user_name: String,
    /// The raw text as typed (or the text twin of a slash command or button).
    pub text: String,
    /// The command name (`deploy`, `lock`…), or `invalid`.
    pub command: String,
    pub app: Option<String>,
    pub environment: Option<String>,
    /// `allowed`, `refused` or `failed`.
    pub decision: String,
    /// The rule that refused, when refused.
    pub rule: Option<String>,
    pub deployment_id: Option<u64>,
    pub detail: Option<String>,
}

/// The queue, lock reminders and automatic locks live in their own trait
/// ([`queue::QueueStore`], `src/store/queue.rs`); every store has them.
#[async_trait]
pub trait Store: queue::QueueStore + Send + Sync {
    /// Inserts unless a record for this deployment (repository and id) exists; `true`
    /// if inserted.
    async fn insert_tracked(&self, t: &Tracked) -> Result<bool, StoreError>;
    async fn put_tracked(&self, t: &Tracked) -> Result<(), StoreError>;
    /// The record of deployment `id` of `repo` (case-insensitive): both must match.
    async fn tracked(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Option<Tracked>, StoreError>;
    /// The oldest record in `repo` made for `request_id`, if any.
    async fn tracked_by_request(
        &self,
        repo: &RepoName,
        request_id: &str,
    ) -> Result<Option<Tracked>, StoreError>;
    /// Deployments not yet settled: still running, or their final state not yet shown.
    async fn unfinished(&self) -> Result<Vec<Tracked>, StoreError>;

    /// Commits `batch` in one transaction (the group commit of [`group::GroupWriter`]):
    /// one answer per write, in order. Tracked records are written in batch order (the
    /// last put of a record wins); a backend may group the rest by kind (admitted
    /// deliveries, applied inbox entries), since none of them depends on another write
    /// of its batch. When it fails nothing of the batch is kept.
    async fn write(&self, batch: Vec<Write>) -> Result<Vec<Written>, StoreError>;
    /// Inbox entries (admitted, not yet applied) received before `before`, oldest
    /// first, at most `limit`.
    async fn inbox(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Arrival>, StoreError>;
    /// Forgets delivery ids received before `before` (GitHub lets a delivery be
    /// redelivered for 3 days; older ids are never seen again). Uses the age index:
    /// costs what it deletes.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Takes the lock unless someone else holds an unexpired one. The holder taking it
    /// again renews it (new reason and expiry). Expired locks are removed first, in the
    /// same transaction; the table's key makes two racing takers impossible.
    async fn take_lock(&self, lock: &Lock, now: DateTime<Utc>) -> Result<LockTaken, StoreError>;
    /// Replaces any lock (a take-over); returns the one replaced, if any.
    async fn replace_lock(
        &self,
        lock: &Lock,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError>;
    /// Removes the lock if `holder_id` still holds it; returns it if it was unexpired.
    /// (Checking the holder in the same statement means a take-over that lands between
    /// reading the lock and releasing it is never released by accident.)
    async fn remove_lock(
        &self,
        app: &str,
        environment: &str,
        holder_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError>;
    /// The unexpired lock on an app's environment.
    async fn lock(
        &self,
        app: &str,
        environment: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError>;
    /// Every unexpired lock, oldest first.
    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError>;
    /// Unexpired locks that expire before `before` and whose holder was not warned;
    /// marks them warned.
    async fn locks_to_warn(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<Lock>, StoreError>;
    /// Deletes expired locks and returns them.
    async fn expire_locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError>;

    /// Freezes `freeze`'s scope (app and environment, `None` for every one), replacing
    /// the freeze already there (one row per scope: the key decides); returns the one
    /// replaced, if it was still in force.
    async fn freeze(
        &self,
        freeze: &Freeze,
        now: DateTime<Utc>,
    ) -> Result<Option<Freeze>, StoreError>;
    /// Lifts the freeze on exactly this scope; returns it if it was still in force.
    async fn unfreeze(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Freeze>, StoreError>;
    /// Every freeze in force, oldest first.
    async fn freezes(&self, now: DateTime<Utc>) -> Result<Vec<Freeze>, StoreError>;

    async fn add_confirmation(&self, c: &Confirmation) -> Result<(), StoreError>;
    async fn set_confirmation_message(&self, id: &str, message_id: &str) -> Result<(), StoreError>;
    /// Moves a pending, unexpired confirmation of `user_id` to `to` (confirmed or
    /// cancelled), exactly once.
    async fn close_confirmation(
        &self,
        id: &str,
        user_id: &str,
        to: ConfirmationState,
        now: DateTime<Utc>,
    ) -> Result<Result<Confirmation, Unconfirmable>, StoreError>;
    /// Pending, unexpired confirmations in a channel, newest first.
    async fn pending_confirmations(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Confirmation>, StoreError>;
    /// The newest confirmation `requester_id` was asked in a channel, in whatever
    /// state (a pending one past its expiry reads as expired): what a `yes` with
    /// nothing open refers to.
    async fn latest_confirmation(
        &self,
        channel: &str,
        requester_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Confirmation>, StoreError>;
    /// Marks pending confirmations past their expiry as expired and returns them.
    async fn expire_confirmations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Confirmation>, StoreError>;

    /// Records a deployment about to be created (before its `POST /deployments`).
    async fn add_intent(&self, intent: &Intent) -> Result<(), StoreError>;
    /// Closes an open intent, exactly once: `true` for the caller that closed it,
    /// `false` if it was already closed (or never recorded). Whoever closes it owns
    /// the final word on its message.
    async fn close_intent(
        &self,
        request_id: &str,
        resolution: IntentResolution,
        deployment: Option<DeploymentId>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Intents not closed yet, oldest first.
    async fn open_intents(&self) -> Result<Vec<Intent>, StoreError>;

    // ----- waits (`deploy … when green`) -----
    /// Records an open wait, unless one is open for its app and environment already
    /// (a unique key: of two racing, one is recorded): `None` when recorded, else that
    /// other wait. An id already used is an error.
    async fn add_wait(&self, wait: &Wait) -> Result<Option<Wait>, StoreError>;
    async fn set_wait_message(&self, id: &str, message_id: &str) -> Result<(), StoreError>;
    /// Open waits, oldest first.
    async fn open_waits(&self) -> Result<Vec<Wait>, StoreError>;
    /// Counts a check webhook for `sha` of `repository` on its open waits; returns how
    /// many waits that concerns (0: nobody waits for this commit).
    async fn poke_waits(&self, repository: &RepoName, sha: &str) -> Result<u64, StoreError>;
    /// Closes an open wait, exactly once: `true` for the caller that closed it. Only
    /// the caller that closes it as [`WaitResolution::Green`] deploys.
    async fn close_wait(
        &self,
        id: &str,
        resolution: WaitResolution,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first, optionally for one app and/or environment.
    async fn audit_entries(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Deletes entries older than `before` (retention); returns how many.
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Proves the store can take a write now (`/readyz`): fails when the database is
    /// unreachable, locked by another process, or read-only.
    async fn ping(&self) -> Result<(), StoreError>;
    /// What `/metrics` shows of the store: unexpired locks, pending unexpired
    /// confirmations, deployments still followed.
    async fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges, StoreError>;

    /// Deletes what no longer matters: settled tracked deployments, answered or
    /// expired confirmations and closed intents last touched before `before`. Returns
    /// how many rows.
    async fn prune_settled(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a use of `press.message`'s buttons, once: `None` when this is the first,
    /// else the earlier use, unchanged. The database decides (a primary key), so two
    /// presses racing, on one instance or several, get one winner.
    async fn claim_press(&self, press: &Press) -> Result<Option<Press>, StoreError>;
    /// Forgets `press` (a use that changed nothing), if it is still the one recorded.
    async fn release_press(&self, press: &Press) -> Result<(), StoreError>;

    /// The value of setting `name`; when there is none yet, `value` is stored first.
    /// Racing callers (several instances starting at once) all get the one value stored.
    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError>;
}
