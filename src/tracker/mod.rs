//! The tracker: one live progress message per deployment.
//!
//! Status events arrive from the webhook server, the poller, or a restart's catch-up,
//! in any order and possibly more than once. For each deployment the tracker keeps
//! (in the store) the last state it accepted; a status is accepted only if it moves
//! the deployment forward (a final state never changes, an older or repeated status
//! changes nothing). The message is then re-rendered from the stored state, at most
//! once per `edit_interval` per message; the render always reads the latest state, so
//! the final one is always delivered. When a deployment ends, its requester is
//! mentioned once.
//!
//! Routing: deployments are keyed by (repository, deployment id); events for a
//! repository no app is configured with are ignored (and counted). A deployment's
//! message comes from the store, else from the deployment's `payload.deploybot.chat`
//! (another instance, or a bot that lost its database) — but only when the payload
//! carries a valid mac ([`crate::routing`]): deploybot wrote it. Any other deployment
//! is one made elsewhere: announced in the app's `notify_channel`, never editing a
//! message or mentioning a user named in its payload. Every post goes only to a
//! channel the app allows (its `channels`, or its `notify_channel`).

pub mod render;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::chat::{Chat, Conversation, MessageId};
use crate::clock::Clock;
use crate::config::{AppConfig, Config};
use crate::github::{Conditional, DeploybotPayload, Deployment, DeploymentStatus, GitHub};
use crate::metrics::{Metrics, Untrusted};
use crate::model::{DeploymentId, DeploymentState, RepoName};
use crate::routing::{Rejected, RoutingKey, Signed, KEY_SETTING};
use crate::store::group::GroupWriter;
use crate::store::{Store, StoreError, Tracked, Write, Written};

/// What the tracker's per-deployment state is keyed by: the repository (lowercased:
/// GitHub's names are case-insensitive) and the deployment id.
type Key = (String, DeploymentId);

fn key(repo: &RepoName, id: DeploymentId) -> Key {
    (repo.lowercase(), id)
}

/// What happened to a status event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The deployment moved forward; its message will be updated.
    Accepted,
    /// Older than, or the same as, what is known (out of order, or a repeat).
    Stale,
    /// Not a deployment the bot tracks or can route.
    Untracked,
    /// For a repository no app is configured with: ignored.
    Ignored,
}

/// What [`Tracker::status_on_arrival`] did.
#[derive(Debug)]
pub enum OnArrival {
    /// Applied and committed with its delivery id (or not: the error says why).
    Applied(Result<Written, StoreError>),
    /// Not applied here: the status, for the inbox to apply.
    Left(Box<DeploymentStatus>),
}

#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    /// Writes go through the group commit.
    writer: GroupWriter,
    /// Unsettled records, as last written (every write goes through this tracker, under
    /// the deployment's state lock): reads never wait for the store.
    cache: DashMap<Key, Tracked>,
    /// Held (shared) by each status from its record's write until the commit, and
    /// (exclusively) by [`Tracker::forget_cached`]: memory is only forgotten when no
    /// record in it is ahead of the store.
    writing: tokio::sync::RwLock<()>,
    chat: Arc<dyn Chat>,
    github: Arc<dyn GitHub>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// The routing key, read from (or first written to) the store once.
    routing_key: tokio::sync::OnceCell<RoutingKey>,
    /// The chat adapter this instance speaks; messages of another adapter cannot be edited here.
    adapter: String,
    /// Serialises state changes per deployment.
    state_locks: DashMap<Key, Arc<tokio::sync::Mutex<()>>>,
    /// Serialises renders per deployment, so edits of one message never overtake each other.
    render_locks: DashMap<Key, Arc<tokio::sync::Mutex<()>>>,
    slots: Mutex<HashMap<Key, Slot>>,
    session: Mutex<Vec<(RepoName, DeploymentId)>>,
    /// Set by [`Tracker::halt`]: nothing more is rendered.
    halted: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

#[derive(Default)]
struct Slot {
    last_edit: Option<tokio::time::Instant>,
    scheduled: bool,
}

impl Tracker {
    pub fn new(
        config: Arc<Config>,
        writer: GroupWriter,
        chat: Arc<dyn Chat>,
        github: Arc<dyn GitHub>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        adapter: &str,
    ) -> Tracker {
        Tracker {
            inner: Arc::new(Inner {
                config,
                store: writer.store().clone(),
                writer,
                cache: DashMap::new(),
                writing: tokio::sync::RwLock::new(()),
                chat,
                github,
                clock,
                metrics,
                routing_key: tokio::sync::OnceCell::new(),
                adapter: adapter.to_string(),
                state_locks: DashMap::new(),
                render_locks: DashMap::new(),
                slots: Mutex::new(HashMap::new()),
                session: Mutex::new(Vec::new()),
                halted: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// The record of `id` in `repo`: from memory, else from the store (and kept in
    /// memory). Callers hold its state lock: a record read from the store could
    /// otherwise replace in memory the newer one a status remembered meanwhile, whose
    /// write has not committed yet. [`Tracker::current`] takes the lock.
    async fn get(&self, repo: &RepoName, id: DeploymentId) -> Result<Option<Tracked>, StoreError> {
        let k = key(repo, id);
        if let Some(t) = self.inner.cache.get(&k) {
            return Ok(Some(t.clone()));
        }
        let t = self.inner.store.tracked(repo, id).await?;
        if let Some(t) = t.as_ref().filter(|t| !t.is_settled()) {
            self.inner.cache.insert(k, t.clone());
        }
        Ok(t)
    }

    /// [`Tracker::get`] for callers that do not hold the record's state lock.
    async fn current(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Option<Tracked>, StoreError> {
        let lock = self.state_lock(&key(repo, id));
        let _guard = lock.lock().await;
        self.get(repo, id).await
    }

    /// Writes a record (committed when this returns). Callers hold its state lock.
    async fn put(&self, t: &Tracked) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(Write::Put(Box::new(t.clone())))
            .await?;
        self.remember(t);
        Ok(())
    }

    /// Inserts a record unless there is one; `true` if it was new.
    async fn insert(&self, t: &Tracked) -> Result<bool, StoreError> {
        let written = self
            .inner
            .writer
            .write(Write::Insert(Box::new(t.clone())))
            .await?;
        let new = written == Written::Inserted(true);
        if new {
            self.remember(t);
        }
        Ok(new)
    }

    /// Keeps an unsettled record in memory; a settled one is forgotten (nothing more
    /// happens to it, so memory follows the deployments still running).
    fn remember(&self, t: &Tracked) {
        let k = key(&t.repository, t.deployment_id);
        if t.is_settled() {
            self.inner.cache.remove(&k);
        } else {
            self.inner.cache.insert(k, t.clone());
        }
    }

    /// Drops the per-deployment locks and render slots nobody uses (a lock that no
    /// task holds or waits for is made again when needed).
    fn forget_idle(&self) {
        self.inner
            .state_locks
            .retain(|_, lock| Arc::strong_count(lock) > 1);
        self.inner
            .render_locks
            .retain(|_, lock| Arc::strong_count(lock) > 1);
        let cache = &self.inner.cache;
        self.inner
            .slots
            .lock()
            .expect("slots lock")
            .retain(|k, slot| slot.scheduled || cache.contains_key(k));
    }

    /// Forgets every record held in memory: the next event reads the store. For an
    /// instance that becomes the leader, whose copies may be older than the store.
    /// Waits for the statuses whose write is in flight: a render that found their
    /// record forgotten would read the store before their commit, show the older
    /// state, and (its slot still taken) leave the newer one unshown.
    pub async fn forget_cached(&self) {
        let _no_write_in_flight = self.inner.writing.write().await;
        self.inner.cache.clear();
    }

    fn state_lock(&self, k: &Key) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.state_locks.entry(k.clone()).or_default().clone()
    }

    /// The key of the mac that proves deploybot wrote a payload: generated at first
    /// start and kept in the store (so a restarted bot, and instances sharing the
    /// store, share it).
    pub async fn routing_key(&self) -> Result<RoutingKey, StoreError> {
        self.inner
            .routing_key
            .get_or_try_init(|| async {
                let fresh = RoutingKey::generate().to_hex();
                let stored = self
                    .inner
                    .store
                    .setting_or_insert(KEY_SETTING, &fresh)
                    .await?;
                RoutingKey::from_hex(&stored).ok_or_else(|| {
                    StoreError(format!(
                        "the stored `{KEY_SETTING}` is not a 32-byte hex key"
                    ))
                })
            })
            .await
            .cloned()
    }

    /// The app configured with `repo` (case-insensitive).
    fn app_for(&self, repo: &RepoName) -> Option<&AppConfig> {
        self.inner
            .config
            .apps
            .iter()
            .find(|a| a.repository.is(repo))
    }

    /// Whether an event about deployment `d` can change anything deploybot shows,
    /// decided from the configuration alone, before anything is stored: its repository
    /// is an app's, and either the deployment says deploybot made it (a
    /// `payload.deploybot`, valid or not: that is checked when it is applied) or the
    /// app announces deployments made elsewhere (`notify_channel`). Every other event
    /// is answered and dropped: with an organisation webhook, that is most of them.
    pub fn follows(&self, repo: &RepoName, d: &Deployment) -> bool {
        let Some(app) = self.configured(repo, d.id) else {
            return false;
        };
        app.notify_channel.is_some() || d.payload.get("deploybot").is_some()
    }

    /// The app of `repo`, or `None` (logged and counted) when none is configured.
    fn configured(&self, repo: &RepoName, id: DeploymentId) -> Option<&AppConfig> {
        let app = self.app_for(repo);
        if app.is_none() {
            tracing::warn!(repository = %repo, %id, "ignoring an event for a repository no app is configured with");
            self.inner.metrics.webhook_ignored_repository();
        }
        app
    }

    /// Whether the app's channel rules allow posting in `to`: one of its `channels`
    /// (all when empty), or its `notify_channel`. Fills in the channel's name when
    /// only its id was known.
    async fn may_post(&self, app: &AppConfig, to: &mut Conversation) -> bool {
        if to.channel_name.is_none() {
            to.channel_name = self.inner.chat.channel_name(to).await;
        }
        let name = to.channel_name.as_deref();
        let is = |c: &str| {
            c.eq_ignore_ascii_case(&to.channel) || name.is_some_and(|n| n.eq_ignore_ascii_case(c))
        };
        app.allows_channel(&to.channel, name) || app.notify_channel.as_deref().is_some_and(is)
    }

    /// Whether deploybot wrote `p` for deployment `d` of `repo`: its mac verifies.
    async fn verify(
        &self,
        repo: &RepoName,
        d: &Deployment,
        p: &DeploybotPayload,
    ) -> Result<Result<(), Rejected>, StoreError> {
        let key = self.routing_key().await?;
        Ok(key.verify(&Signed::of(repo, d, p), d.created_at))
    }

    /// The deploy flow created a deployment and posted (or failed to post) its message.
    pub async fn started(&self, t: Tracked) -> Result<(), StoreError> {
        let id = t.deployment_id;
        let repo = t.repository.clone();
        let k = key(&repo, id);
        {
            let lock = self.state_lock(&k);
            let _guard = lock.lock().await;
            if !self.insert(&t).await? {
                // A fast deployer's status got here first and adopted it from the
                // payload; keep its state, add what only the flow knows.
                if let Some(mut existing) = self.get(&repo, id).await? {
                    existing.message_id = existing.message_id.or(t.message_id);
                    existing.notes = t.notes;
                    existing.compare_url = t.compare_url;
                    existing.forced = t.forced;
                    existing.reason = t.reason;
                    existing.html_url = t.html_url;
                    existing.requester = t.requester.or(existing.requester);
                    existing.request_id = t.request_id.or(existing.request_id);
                    // What the flow adds is worth showing, even after a final state.
                    existing.final_rendered = false;
                    self.put(&existing).await?;
                }
            }
        }
        self.inner
            .session
            .lock()
            .expect("session lock")
            .push((repo.clone(), id));
        // The first render is awaited: the requester sees "created" before the command
        // returns. Later ones are scheduled.
        let first = {
            let mut slots = self.inner.slots.lock().expect("slots lock");
            let slot = slots.entry(k.clone()).or_default();
            if slot.scheduled {
                false // a status already scheduled a render; it will show the latest
            } else {
                slot.last_edit = Some(tokio::time::Instant::now());
                true
            }
        };
        if first {
            self.render(&repo, id).await?;
        }
        Ok(())
    }

    /// Deployments this process created, for "finish in-flight work" on exit.
    pub fn session_deployments(&self) -> Vec<(RepoName, DeploymentId)> {
        self.inner.session.lock().expect("session lock").clone()
    }

    /// A status for deployment `id` of `repo`. `deployment` (from a webhook) lets the
    /// tracker adopt a deployment it has no record of.
    pub async fn status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        deployment: Option<&Deployment>,
        status: &DeploymentStatus,
    ) -> Result<Applied, StoreError> {
        let Some(state) = status.state() else {
            tracing::info!(%id, state = %status.state, "ignoring an unknown deployment state");
            return Ok(Applied::Stale);
        };
        if self.configured(repo, id).is_none() {
            return Ok(Applied::Ignored);
        }
        let k = key(repo, id);
        let lock = self.state_lock(&k);
        let _guard = lock.lock().await;
        // Before `get`, which keeps what it reads from the store in memory too.
        let in_memory = self.inner.cache.contains_key(&k);
        let mut t = match self.get(repo, id).await? {
            Some(t) => t,
            None => {
                let adopted = match deployment.filter(|d| d.id == id) {
                    Some(d) => self.adopt(repo, d).await?,
                    None => None,
                };
                match adopted {
                    Some(t) => t,
                    None => return Ok(Applied::Untracked),
                }
            }
        };
        if !moves_forward(&t, state, status.id) {
            if in_memory {
                // Memory may be ahead of the store (the write of the event that moved
                // it failed, and this is that event applied again): write it.
                self.put(&t).await?;
            } else {
                // Keep a record even of a deployment adopted by a stale event, so the
                // next event finds it.
                self.insert(&t).await?;
            }
            return Ok(Applied::Stale);
        }
        self.advance(&mut t, state, status);
        // In memory at once, and rendered while the write commits: the inbox entry
        // that brought the event is removed only once this returns, after the commit.
        let writing = self.inner.writing.read().await;
        let written = self
            .inner
            .writer
            .submit(Write::Put(Box::new(t.clone())))
            .await?;
        self.remember(&t);
        drop(_guard);
        self.schedule(repo, id);
        written.await?;
        drop(writing);
        Ok(Applied::Accepted)
    }

    /// A status applied in the webhook request that brought it, when that is cheap and
    /// safe: the deployment's record is in memory and the status moves it forward. The
    /// record and the delivery id are committed in one transaction, with nothing in
    /// the inbox (a crash after the commit leaves a record the restart's catch-up
    /// renders); only then is the record kept in memory and its message rendered, so
    /// an error leaves nothing changed and the delivery is to be sent again.
    /// [`OnArrival::Left`] (with the status back) when that is not the case: nothing
    /// was done, the inbox applies it. Owns what it needs, so that it can be left to
    /// finish by itself (a commit queued goes on even when nobody waits for it).
    pub async fn status_on_arrival(
        self,
        repo: RepoName,
        id: DeploymentId,
        status: Box<DeploymentStatus>,
        delivery: Option<String>,
    ) -> OnArrival {
        let Some(state) = status.state() else {
            return OnArrival::Left(status);
        };
        let k = key(&repo, id);
        if !self.inner.cache.contains_key(&k) {
            return OnArrival::Left(status);
        }
        let lock = self.state_lock(&k);
        let guard = lock.lock().await;
        let Some(mut t) = self.inner.cache.get(&k).map(|t| t.clone()) else {
            return OnArrival::Left(status);
        };
        if !moves_forward(&t, state, status.id) {
            return OnArrival::Left(status);
        }
        self.advance(&mut t, state, &status);
        let write = Write::AdmitApplied {
            delivery,
            at: self.inner.clock.now(),
            record: Box::new(t.clone()),
        };
        let written = self.inner.writer.write(write).await;
        if written.is_ok() {
            self.remember(&t);
            drop(guard);
            self.schedule(&repo, id);
        }
        OnArrival::Applied(written)
    }

    /// Moves `t` to `status` (which moves it forward).
    fn advance(&self, t: &mut Tracked, state: DeploymentState, status: &DeploymentStatus) {
        let now = self.inner.clock.now();
        t.state = state;
        t.status_id = Some(status.id);
        t.status_description = status.description.clone().filter(|d| !d.trim().is_empty());
        if let Some(url) = status.log_link() {
            t.log_url = Some(url.to_string());
        }
        if let Some(url) = status.environment_link() {
            t.environment_url = Some(url.to_string());
        }
        if state.is_final() {
            t.finished_at = Some(status.created_at.unwrap_or(now).max(t.created_at));
        }
    }

    /// A `deployment` event. Deployments made elsewhere (no deploybot payload, or one
    /// without a valid mac) are announced in the app's `notify_channel`, and tracked
    /// there.
    pub async fn deployment_created(
        &self,
        repo: &RepoName,
        d: &Deployment,
    ) -> Result<(), StoreError> {
        if self.configured(repo, d.id).is_none() {
            return Ok(());
        }
        if let Some(p) = d.deploybot() {
            if self.verify(repo, d, &p).await?.is_ok() {
                return Ok(()); // ours (or another instance's): its flow tracks it
            }
        }
        let k = key(repo, d.id);
        let inserted = {
            let lock = self.state_lock(&k);
            let _guard = lock.lock().await;
            if self.get(repo, d.id).await?.is_some() {
                return Ok(());
            }
            let Some(t) = self.adopt(repo, d).await? else {
                return Ok(());
            };
            self.insert(&t).await?
        };
        if inserted {
            self.schedule(repo, d.id);
        }
        Ok(())
    }

    /// A record for a deployment the store does not know: routed by its payload if
    /// deploybot made it (a valid mac, made for this deployment, to a channel the app
    /// allows), else to the app's notify channel as made elsewhere.
    async fn adopt(&self, repo: &RepoName, d: &Deployment) -> Result<Option<Tracked>, StoreError> {
        let Some(app) = self.app_for(repo) else {
            return Ok(None);
        };
        let Some(p) = d.deploybot() else {
            return Ok(self.made_elsewhere(app, repo, d, None));
        };
        let untrusted = |why: Untrusted, detail: &str| {
            tracing::warn!(
                repository = %repo,
                id = %d.id,
                why = detail,
                "not routing a deployment by its payload.deploybot; treating it as made elsewhere"
            );
            self.inner.metrics.untrusted_event(why);
        };
        let note = "⚠️ its payload claims deploybot made it, but deploybot did not: it was not routed to the chat message the payload names";
        match self.verify(repo, d, &p).await? {
            Ok(()) => {}
            Err(Rejected::OutOfWindow) => {
                untrusted(Untrusted::ReplayedPayload, Rejected::OutOfWindow.as_str());
                return Ok(self.made_elsewhere(app, repo, d, Some(note)));
            }
            Err(why) => {
                untrusted(Untrusted::UnverifiedPayload, why.as_str());
                return Ok(self.made_elsewhere(app, repo, d, Some(note)));
            }
        }
        if p.chat.adapter != self.inner.adapter {
            tracing::info!(id = %d.id, adapter = %p.chat.adapter, "deployment belongs to another chat adapter; not routing");
            return Ok(None);
        }
        // A valid payload belongs to the one deployment it was made for: a copy of it
        // in another deployment is a replay.
        if let Some(first) = self
            .inner
            .store
            .tracked_by_request(repo, &p.request_id)
            .await?
        {
            if first.deployment_id != d.id {
                untrusted(
                    Untrusted::ReplayedPayload,
                    "its request id belongs to another deployment",
                );
                return Ok(self.made_elsewhere(app, repo, d, Some(note)));
            }
        }
        let mut conversation = Conversation {
            adapter: p.chat.adapter.clone(),
            channel: p.chat.channel.clone(),
            channel_name: None,
            thread: p.chat.thread.clone(),
            interaction: None,
        };
        if !self.may_post(app, &mut conversation).await {
            untrusted(
                Untrusted::ChannelNotAllowed,
                "its channel is not one the app allows",
            );
            return Ok(self.made_elsewhere(app, repo, d, None));
        }
        let mut t = Tracked {
            app: Some(app.name.to_string()),
            ..Tracked::new(repo, d, conversation)
        };
        t.request_id = Some(p.request_id);
        t.message_id = p.chat.message;
        t.requester = Some((p.user.id, p.user.name));
        t.hosts = p.hosts;
        t.reason = p.reason;
        if let Some(name) = p.app {
            t.app = Some(name);
        }
        Ok(Some(t))
    }

    /// A record for a deployment made elsewhere, announced in the app's notify
    /// channel (none when it has none): nothing from its payload is used.
    fn made_elsewhere(
        &self,
        app: &AppConfig,
        repo: &RepoName,
        d: &Deployment,
        note: Option<&str>,
    ) -> Option<Tracked> {
        let channel = app.notify_channel.clone()?;
        let mut t = Tracked {
            app: Some(app.name.to_string()),
            ..Tracked::new(
                repo,
                d,
                Conversation {
                    adapter: self.inner.adapter.clone(),
                    channel: channel.clone(),
                    channel_name: Some(channel),
                    thread: None,
                    interaction: None,
                },
            )
        };
        t.notes.extend(note.map(str::to_string));
        Some(t)
    }

    /// Schedules a render of `id`'s message, respecting the per-message edit interval.
    fn schedule(&self, repo: &RepoName, id: DeploymentId) {
        let interval = self.inner.config.defaults.edit_interval;
        let k = key(repo, id);
        let repo = repo.clone();
        let delay = {
            let mut slots = self.inner.slots.lock().expect("slots lock");
            let slot = slots.entry(k.clone()).or_default();
            if slot.scheduled {
                return; // the pending render will read the latest state
            }
            slot.scheduled = true;
            slot.last_edit
                .map(|t| {
                    t.checked_add(interval).map_or(interval, |at| {
                        at.saturating_duration_since(tokio::time::Instant::now())
                    })
                })
                .unwrap_or(Duration::ZERO)
        };
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            {
                // Cleared before reading: a status stored after this point schedules
                // another render, so none is ever lost.
                let mut slots = this.inner.slots.lock().expect("slots lock");
                let slot = slots.entry(k).or_default();
                slot.scheduled = false;
                slot.last_edit = Some(tokio::time::Instant::now());
            }
            if let Err(e) = this.render(&repo, id).await {
                tracing::warn!(%id, error = %e, "could not update a deployment's message");
            }
            if this.inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                this.inner.idle.notify_waiters();
            }
        });
    }

    /// Stops all rendering, as a dying process would.
    pub fn halt(&self) {
        self.inner.halted.store(true, Ordering::SeqCst);
    }

    async fn render(&self, repo: &RepoName, id: DeploymentId) -> Result<(), StoreError> {
        if self.inner.halted.load(Ordering::SeqCst) {
            return Ok(());
        }
        let k = key(repo, id);
        let render_lock = self
            .inner
            .render_locks
            .entry(k.clone())
            .or_default()
            .clone();
        let _render = render_lock.lock().await;
        let Some(t) = self.current(repo, id).await? else {
            return Ok(());
        };
        // Renders of one message run one after the other: one that finds the final
        // state already shown (the watchdog's retry raced the render it retries) has
        // nothing to add.
        if t.state.is_final() && t.final_rendered {
            return Ok(());
        }
        // The app's rules hold for every post, whatever the route: a record whose
        // repository or channel the config no longer allows is not shown (and no
        // longer followed).
        let mut to = t.conversation.clone();
        let allowed = match self.app_for(repo) {
            Some(app) => self.may_post(app, &mut to).await,
            None => false,
        };
        if !allowed {
            tracing::warn!(repository = %repo, %id, channel = %t.conversation.channel, "not posting: the config does not allow this repository or channel");
            self.inner
                .metrics
                .untrusted_event(Untrusted::ChannelNotAllowed);
            let lock = self.state_lock(&k);
            let _guard = lock.lock().await;
            if let Some(mut latest) = self.get(repo, id).await? {
                latest.given_up = true;
                self.put(&latest).await?;
            }
            return Ok(());
        }
        let now = self.inner.clock.now();
        let message = render::progress(&t, now);
        // Post anew only when the message is gone: after any other failure (which may
        // be transient, or may even have been applied) a new post would leave a
        // duplicate. A failed render leaves the state unsettled; the watchdog retries it.
        let shown = match &t.message_id {
            Some(mid) => match self
                .inner
                .chat
                .edit(&t.conversation, &MessageId(mid.clone()), &message)
                .await
            {
                Ok(()) => Ok(None),
                Err(e) if e.gone => {
                    tracing::info!(%id, error = %e, "the progress message is gone; posting it anew");
                    self.inner
                        .chat
                        .send(&t.conversation, &message)
                        .await
                        .map(Some)
                }
                Err(e) => Err(e),
            },
            None => self
                .inner
                .chat
                .send(&t.conversation, &message)
                .await
                .map(Some),
        };
        let posted = match shown {
            Ok(posted) => posted,
            Err(e) => {
                tracing::warn!(%id, error = %e, "could not update a deployment's message; will retry");
                return Ok(());
            }
        };

        // Record what this render did, against the latest stored state.
        let announce = {
            let lock = self.state_lock(&k);
            let _guard = lock.lock().await;
            let Some(mut latest) = self.get(repo, id).await? else {
                return Ok(());
            };
            let mut changed = false;
            if let Some(MessageId(mid)) = posted {
                latest.message_id = Some(mid);
                changed = true;
            }
            let mut announce = None;
            if t.state.is_final() && latest.state == t.state {
                if !latest.final_rendered {
                    latest.final_rendered = true;
                    changed = true;
                }
                if !latest.announced {
                    // At most once: marked before sending.
                    latest.announced = true;
                    changed = true;
                    announce = render::finished(&latest, now);
                }
            }
            if changed {
                self.put(&latest).await?;
            }
            announce.map(|m| (latest.conversation.clone(), m))
        };
        if let Some((conversation, message)) = announce {
            if let Err(e) = self.inner.chat.send(&conversation, &message).await {
                tracing::warn!(%id, error = %e, "could not notify the requester");
            }
        }
        Ok(())
    }

    /// Waits until every scheduled render has run (bounded).
    pub async fn flush(&self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Waits (bounded) until the given deployments have settled: final state rendered.
    /// Returns those that had not.
    pub async fn settle(
        &self,
        ids: &[(RepoName, DeploymentId)],
        bound: Duration,
    ) -> Vec<(RepoName, DeploymentId)> {
        let deadline = tokio::time::Instant::now() + bound;
        let pending = loop {
            let mut pending = Vec::new();
            for (repo, id) in ids {
                if let Ok(Some(t)) = self.current(repo, *id).await {
                    if !t.is_settled() {
                        pending.push((repo.clone(), *id));
                    }
                }
            }
            if pending.is_empty() || tokio::time::Instant::now() >= deadline {
                break pending;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.flush(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        pending
    }

    /// Warns on messages of deployments with no status after `status_timeout`, or
    /// unfinished after `stuck_timeout`. Called periodically; tests call it with a
    /// moved clock.
    pub async fn check_timeouts(&self) -> Result<(), StoreError> {
        let now = self.inner.clock.now();
        let defaults = &self.inner.config.defaults;
        // A deployment no deployer ever finished is not followed (nor polled) forever.
        let give_up =
            (defaults.stuck_timeout.saturating_mul(4)).max(Duration::from_secs(24 * 3600));
        self.forget_idle();
        for t in self.inner.store.unfinished().await? {
            let id = t.deployment_id;
            let repo = t.repository.clone();
            if t.state.is_final() {
                // Its final render failed (chat was down): try again.
                self.schedule(&repo, id);
                continue;
            }
            let lock = self.state_lock(&key(&repo, id));
            let guard = lock.lock().await;
            let Some(mut t) = self.get(&repo, id).await? else {
                continue;
            };
            let age = (now - t.created_at).to_std().unwrap_or_default();
            let mut changed = false;
            if t.state == DeploymentState::Created
                && !t.warned_no_status
                && age >= defaults.status_timeout
            {
                t.warned_no_status = true;
                changed = true;
            }
            if !t.state.is_final() && !t.warned_stuck && age >= defaults.stuck_timeout {
                t.warned_stuck = true;
                changed = true;
            }
            if !t.given_up && age >= give_up {
                t.given_up = true;
                changed = true;
            }
            if changed {
                self.put(&t).await?;
                drop(guard);
                self.schedule(&repo, id);
            }
        }
        Ok(())
    }

    /// After a restart: one read of each unfinished deployment's latest status, and
    /// every unsettled message re-rendered, so nothing stays wrong.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let unfinished = self.inner.store.unfinished().await?;
        for t in &unfinished {
            if !t.state.is_final() {
                match self
                    .inner
                    .github
                    .deployment_statuses(&t.repository, t.deployment_id, Some(1))
                    .await
                {
                    Ok(statuses) => {
                        if let Some(s) = statuses.first() {
                            self.status(&t.repository, t.deployment_id, None, s).await?;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(id = %t.deployment_id, error = %e, "catch-up read failed");
                    }
                }
            }
            self.schedule(&t.repository, t.deployment_id);
        }
        Ok(unfinished.len())
    }

    /// One polling round: each unfinished deployment's latest status, conditionally
    /// (a 304 costs no rate limit). Finished deployments are not polled.
    pub async fn poll_once(&self) -> Result<(), StoreError> {
        for t in self.inner.store.unfinished().await? {
            if t.state.is_final() {
                continue;
            }
            let answer = self
                .inner
                .github
                .latest_status_if_changed(&t.repository, t.deployment_id, t.etag.as_deref())
                .await;
            match answer {
                Ok(Conditional::NotModified) => {}
                Ok(Conditional::Modified { value, etag }) => {
                    // The ETag is kept only once the status is applied: if applying
                    // fails, the next poll must not get a 304 for it.
                    if let Some(status) = value {
                        self.status(&t.repository, t.deployment_id, None, &status)
                            .await?;
                    }
                    let lock = self.state_lock(&key(&t.repository, t.deployment_id));
                    let _guard = lock.lock().await;
                    if let Some(mut latest) = self.get(&t.repository, t.deployment_id).await? {
                        latest.etag = etag;
                        self.put(&latest).await?;
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %t.deployment_id, error = %e, "polling failed");
                }
            }
        }
        Ok(())
    }
}

/// A status moves a deployment forward if it is further along its life, or the same
/// step reported later (a newer `in_progress` with a new description). Nothing moves a
/// deployment out of a final state.
fn moves_forward(t: &Tracked, state: DeploymentState, status_id: u64) -> bool {
    if t.state.is_final() {
        return false;
    }
    let (old, new) = (t.state.progress_rank(), state.progress_rank());
    new > old || (new == old && status_id > t.status_id.unwrap_or(0))
}
