//! Waits: deploys waiting for their ref's checks (`deploy … when green`), this
//! process's side.
//!
//! The waits themselves are in the store ([`crate::store::Wait`]), so a restart, or
//! another instance taking the lead, goes on with them; what is here is only what
//! spares GitHub: when each wait was last evaluated, and with how many webhook pokes
//! (a wait is evaluated again when a `status` / `check_run` / `check_suite` webhook
//! for its commit came in since, or [`POLL_EVERY`] later in any case — so a missed
//! webhook still ends the wait), the message last shown, and which waits are being
//! evaluated right now (one evaluation per wait at a time in this process; across
//! processes the store's conditional close decides who deploys).
//!
//! [`Follow`] is the webhook server's handle: it counts a check event on the waits for
//! its commit (a committed write, so the 2xx answer is honest) and wakes the leader's
//! loop ([`Waits::notified`]); it does no chat or GitHub I/O itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use tokio::sync::Notify;

use crate::chat::Message;
use crate::model::RepoName;
use crate::store::{Store, StoreError, Wait};

/// A wait's checks are read at least this often (by the bot's clock), webhooks or not.
pub const POLL_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Seen {
    pokes: u64,
    at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Waits {
    notify: Notify,
    seen: DashMap<String, Seen>,
    shown: DashMap<String, Message>,
    busy: DashMap<String, ()>,
}

/// Held while a wait is evaluated; dropping it frees the wait.
pub struct Busy<'a> {
    waits: &'a Waits,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.waits.busy.remove(&self.id);
    }
}

impl Waits {
    /// Wakes the leader's loop: a check event came in.
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Whether `wait` is due an evaluation now: never evaluated by this process (a new
    /// leader or a restart catches up), poked since, or [`POLL_EVERY`] passed.
    pub fn due(&self, wait: &Wait, now: DateTime<Utc>) -> bool {
        match self.seen.get(&wait.id) {
            None => true,
            Some(seen) => {
                wait.pokes != seen.pokes || now >= crate::clock::later(seen.at, POLL_EVERY)
            }
        }
    }

    /// Records an evaluation of `wait` (with the pokes it was read with).
    pub fn evaluated(&self, wait: &Wait, at: DateTime<Utc>) {
        self.seen.insert(
            wait.id.clone(),
            Seen {
                pokes: wait.pokes,
                at,
            },
        );
    }

    /// Claims `id` for one evaluation in this process; `None` while another runs.
    pub fn claim(&self, id: &str) -> Option<Busy<'_>> {
        match self.busy.entry(id.to_string()) {
            dashmap::Entry::Occupied(_) => None,
            dashmap::Entry::Vacant(v) => {
                v.insert(());
                Some(Busy {
                    waits: self,
                    id: id.to_string(),
                })
            }
        }
    }

    /// Whether `message` differs from what the wait's message shows (and remembers it).
    pub fn changed(&self, id: &str, message: &Message) -> bool {
        if self.shown.get(id).is_some_and(|m| *m == *message) {
            return false;
        }
        self.shown.insert(id.to_string(), message.clone());
        true
    }

    /// Forgets a closed wait.
    pub fn forget(&self, id: &str) {
        self.seen.remove(id);
        self.shown.remove(id);
    }
}

/// The webhook server's side: check events in, counted on the waits they concern.
#[derive(Clone)]
pub struct Follow {
    pub store: Arc<dyn Store>,
    pub waits: Arc<Waits>,
}

impl Follow {
    /// Counts a check event for `sha` of `repository` on its open waits and wakes the
    /// leader; `Ok(0)` when nobody waits for that commit (nothing stored).
    pub async fn checks_changed(
        &self,
        repository: &RepoName,
        sha: &str,
    ) -> Result<u64, StoreError> {
        let n = self.store.poke_waits(repository, sha).await?;
        if n > 0 {
            self.waits.notify();
        }
        Ok(n)
    }
}
