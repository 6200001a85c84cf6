//! The store port: deploybot's own state, which must survive a restart. GitHub keeps
//! the deploy history; this keeps which chat message tracks which deployment, webhook
//! deliveries already seen, locks, pending confirmations and the audit log.
//!
//! [`sqlite::SqliteStore`] implements it with sqlx and embedded migrations.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::Conversation;
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
    /// Lines from the deploy flow worth keeping on the message (auto-merge, recovery).
    pub notes: Vec<String>,
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
    pub warned_no_status: bool,
    pub warned_stuck: bool,
    /// ETag of the last statuses read, for conditional polling.
    pub etag: Option<String>,
}

impl Tracked {
    /// Nothing left to do: the final state is shown (and announced).
    pub fn is_settled(&self) -> bool {
        self.state.is_final() && self.final_rendered
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts unless a record for this deployment exists; `true` if inserted.
    async fn insert_tracked(&self, t: &Tracked) -> Result<bool, StoreError>;
    async fn put_tracked(&self, t: &Tracked) -> Result<(), StoreError>;
    async fn tracked(&self, id: DeploymentId) -> Result<Option<Tracked>, StoreError>;
    /// Deployments not yet settled: still running, or their final state not yet shown.
    async fn unfinished(&self) -> Result<Vec<Tracked>, StoreError>;

    /// Records a webhook delivery id; `true` the first time it is seen. Keeps at most
    /// `keep` ids (the oldest go first).
    async fn first_delivery(
        &self,
        id: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> Result<bool, StoreError>;
}
