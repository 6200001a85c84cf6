//! Intents: deployments deploybot asked GitHub to create and whose outcome it does not
//! know (yet).
//!
//! The deploy flow records an [`Intent`] in the store *before* `POST /deployments`
//! and closes it once the outcome is known (a tracked deployment, or a refusal). An
//! intent left open — the process died while GitHub's answer was in flight, or GitHub
//! never answered usably — is reconciled here, in the background: at start, then with
//! backoff. Reconciling means looking the deployment up by the `request_id` in its
//! payload, exactly as a lost answer is ([`find_deployment`]); it never re-POSTs.
//! Found: the deployment is adopted as a tracked deployment with the intent's chat
//! message, and the tracker follows it from its current status. Not found: the message
//! says it was not created and that it is safe to deploy again. Intents older than
//! [`MAX_AGE`] are closed with a message saying the outcome stayed unknown.
//!
//! "Not in GitHub's list" means "not created" only once no request of ours can still be
//! creating it: at once for an intent of a previous process (it is gone, and the lookup
//! backs off a few seconds), else once the intent is [`Patience::not_created_after`] old.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::bot::Bot;
use crate::chat::{Message, MessageId, Tone};
use crate::github::{find_deployment, human_duration, Deployment};
use crate::store::{AuditEntry, Intent, IntentResolution, StoreError};

/// Intents older than this are not looked up any more: closed, and the message says so.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two background checks of one intent.
const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// How long the deploy flow waits for GitHub before it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Without an outcome after this long (from the command), the message says "still
    /// trying (GitHub is slow)…". It also bounds the pre-flight lookups.
    pub still_trying: Duration,
    /// Without an outcome after this long, the command answers "not known yet":
    /// deploybot keeps checking in the background and updates the message.
    pub answer_within: Duration,
    /// After the flow's own lookups gave up, the first background check waits this long
    /// (then twice as long each time, up to 10 minutes).
    pub recheck_after: Duration,
    /// An intent of this process is called "not created" when GitHub's list lacks it
    /// and it is at least this old (GitHub had time to finish a request we abandoned).
    pub not_created_after: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            still_trying: Duration::from_secs(10),
            answer_within: Duration::from_secs(30),
            recheck_after: Duration::from_secs(30),
            not_created_after: Duration::from_secs(120),
        }
    }
}

/// This process's side of intents: which have a create in flight here, when each
/// orphaned one is checked next, and the background tasks (which a crash takes along).
pub struct Intents {
    started_at: DateTime<Utc>,
    patience: RwLock<Patience>,
    creating: Mutex<HashSet<String>>,
    next_check: Mutex<HashMap<String, (tokio::time::Instant, Duration)>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    reconciling: AtomicBool,
}

impl Intents {
    pub fn new(started_at: DateTime<Utc>) -> Intents {
        Intents {
            started_at,
            patience: RwLock::new(Patience::default()),
            creating: Mutex::new(HashSet::new()),
            next_check: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            reconciling: AtomicBool::new(false),
        }
    }

    pub fn patience(&self) -> Patience {
        *self.patience.read().expect("patience lock")
    }

    /// Replaces the default patience (tests use short bounds).
    pub fn set_patience(&self, patience: Patience) {
        *self.patience.write().expect("patience lock") = patience;
    }

    /// Runs `work` in a task of its own, which [`Intents::abort_all`] ends.
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let handle = tokio::spawn(work);
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle.abort_handle());
        handle
    }

    /// A create for `request_id` is in flight in this process until the guard drops:
    /// the reconciler leaves it alone meanwhile.
    pub fn creating(self: &Arc<Self>, request_id: &str) -> Creating {
        self.creating
            .lock()
            .expect("creating lock")
            .insert(request_id.to_string());
        Creating {
            intents: self.clone(),
            request_id: request_id.to_string(),
        }
    }

    fn is_creating(&self, request_id: &str) -> bool {
        self.creating
            .lock()
            .expect("creating lock")
            .contains(request_id)
    }

    /// Creates still in flight here.
    pub fn in_flight(&self) -> usize {
        self.creating.lock().expect("creating lock").len()
    }

    /// Checks `request_id` in the background after `after` (the first wait).
    pub fn check_later(&self, request_id: &str, after: Duration) {
        self.next_check.lock().expect("next_check lock").insert(
            request_id.to_string(),
            (tokio::time::Instant::now() + after, after),
        );
    }

    fn due(&self, request_id: &str) -> bool {
        self.next_check
            .lock()
            .expect("next_check lock")
            .get(request_id)
            .is_none_or(|(at, _)| *at <= tokio::time::Instant::now())
    }

    fn back_off(&self, request_id: &str, first: Duration) {
        let mut next = self.next_check.lock().expect("next_check lock");
        let wait = next
            .get(request_id)
            .map(|(_, wait)| (*wait * 2).min(MAX_BACKOFF))
            .unwrap_or(first)
            .max(Duration::from_millis(100));
        next.insert(
            request_id.to_string(),
            (tokio::time::Instant::now() + wait, wait),
        );
    }

    fn forget(&self, request_id: &str) {
        self.next_check
            .lock()
            .expect("next_check lock")
            .remove(request_id);
    }

    /// Waits (bounded) until no create is in flight here; returns how many still are.
    pub async fn settle(&self, bound: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let n = self.in_flight();
            if n == 0 || tokio::time::Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends every background task at once, as a dying process would.
    pub fn abort_all(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

/// See [`Intents::creating`].
pub struct Creating {
    intents: Arc<Intents>,
    request_id: String,
}

impl Drop for Creating {
    fn drop(&mut self) {
        if let Ok(mut creating) = self.intents.creating.lock() {
            creating.remove(&self.request_id);
        }
    }
}

/// Starts a reconciliation round in the background unless one is running.
pub fn spawn_reconcile(bot: &Bot) {
    let intents = bot.intents();
    if intents.reconciling.swap(true, Ordering::SeqCst) {
        return;
    }
    let this = bot.clone();
    intents.spawn(async move {
        let result = reconcile(&this).await;
        this.intents().reconciling.store(false, Ordering::SeqCst);
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "reconciled deployments whose creation was unknown"),
            Err(e) => tracing::warn!(error = %e, "reconciling unfinished deployments failed"),
        }
    });
}

/// One round: every open intent that is due and not being created here right now.
/// Returns how many were closed.
pub async fn reconcile(bot: &Bot) -> Result<usize, StoreError> {
    let intents = bot.intents();
    let patience = intents.patience();
    let mut closed = 0;
    for intent in bot.store().open_intents().await? {
        let id = intent.request_id.as_str();
        if intents.is_creating(id) || !intents.due(id) {
            continue;
        }
        let now = bot.now();
        let age = (now - intent.created_at).to_std().unwrap_or_default();
        if age >= MAX_AGE {
            if abandon(bot, &intent).await? {
                closed += 1;
            }
            intents.forget(id);
            continue;
        }
        let found = find_deployment(
            bot.github(),
            &intent.repository,
            &intent.git_ref,
            &intent.environment,
            &intent.task,
            id,
        )
        .await;
        // Made by a process that is gone: nothing of ours is still sending it.
        let orphan = intent.created_at < intents.started_at;
        match found {
            Ok(Some(d)) => {
                adopt(bot, &intent, d).await?;
                closed += 1;
                intents.forget(id);
            }
            Ok(None) if orphan || age >= patience.not_created_after => {
                if not_created(bot, &intent).await? {
                    closed += 1;
                }
                intents.forget(id);
            }
            Ok(None) => intents.back_off(id, patience.recheck_after),
            Err(e) => {
                tracing::info!(request_id = id, error = %e, "cannot look up a deployment yet; will try again");
                intents.back_off(id, patience.recheck_after);
            }
        }
    }
    Ok(closed)
}

/// The deployment exists: from now on the tracker owns its message, from the status
/// GitHub has now (the restart's catch-up may have run before it was tracked).
async fn adopt(bot: &Bot, intent: &Intent, d: Deployment) -> Result<(), StoreError> {
    let id = d.id;
    let mut tracked = intent.tracked(&d);
    tracked
        .notes
        .push("deploybot lost GitHub's answer, then found the deployment by its request id".into());
    bot.tracker().started(tracked).await?;
    // Closed once tracked: a crash in between adopts it again, harmlessly.
    let closed = bot
        .store()
        .close_intent(
            &intent.request_id,
            IntentResolution::Created,
            Some(id),
            bot.now(),
        )
        .await?;
    if closed {
        bot.metrics()
            .deployment_created(&intent.app, &intent.environment);
        audit(
            bot,
            intent,
            "allowed",
            Some(id.0),
            format!("deployment #{id} found by its request id after GitHub's answer was lost"),
        )
        .await;
    }
    match bot
        .github()
        .deployment_statuses(&intent.repository, id, Some(1))
        .await
    {
        Ok(statuses) => {
            if let Some(s) = statuses.first() {
                bot.tracker()
                    .status(&intent.repository, id, None, s)
                    .await?;
            }
        }
        Err(e) => {
            tracing::warn!(%id, error = %e, "cannot read an adopted deployment's status; polling or the next status will")
        }
    }
    Ok(())
}

/// GitHub has no such deployment: say so, and that deploying again is safe.
async fn not_created(bot: &Bot, intent: &Intent) -> Result<bool, StoreError> {
    let message = Message::new(
        Tone::Failed,
        format!(
            "Not deployed: the deployment of {} to {} was not created",
            intent.label, intent.environment
        ),
    )
    .line("deploybot lost contact before GitHub answered, and GitHub has no deployment for this request")
    .line(format!("it is safe to deploy again: `{}`", intent.command));
    close(
        bot,
        intent,
        &message,
        IntentResolution::NotCreated,
        "not created (looked up by its request id)",
    )
    .await
}

/// Too old to keep looking.
async fn abandon(bot: &Bot, intent: &Intent) -> Result<bool, StoreError> {
    let message = Message::new(
        Tone::Warning,
        format!(
            "Unknown: deploybot could not find out whether GitHub created the deployment of {} to {}",
            intent.label, intent.environment
        ),
    )
    .line(format!(
        "it stopped checking after {}; check `deploys {} in {}` before deploying again",
        human_duration(MAX_AGE),
        intent.app,
        intent.environment
    ));
    close(
        bot,
        intent,
        &message,
        IntentResolution::Abandoned,
        "outcome unknown; gave up",
    )
    .await
}

/// Shows `message` on the intent's chat message, closes the intent as `resolution`,
/// and audits it as failed — once, by whoever closed it.
async fn close(
    bot: &Bot,
    intent: &Intent,
    message: &Message,
    resolution: IntentResolution,
    detail: &str,
) -> Result<bool, StoreError> {
    show(bot, intent, message).await;
    let closed = bot
        .store()
        .close_intent(&intent.request_id, resolution, None, bot.now())
        .await?;
    if closed {
        audit(bot, intent, "failed", None, detail.into()).await;
    }
    Ok(closed)
}

async fn show(bot: &Bot, intent: &Intent, message: &Message) {
    let mid = intent.message_id.clone().map(MessageId);
    bot.update(&intent.conversation, mid.as_ref(), message)
        .await;
}

/// What a background resolution did, in the audit log (as the requester's deploy).
pub async fn audit(
    bot: &Bot,
    intent: &Intent,
    decision: &str,
    deployment: Option<u64>,
    detail: String,
) {
    let conversation = &intent.conversation;
    let entry = AuditEntry {
        at: bot.now(),
        adapter: conversation.adapter.clone(),
        channel: conversation
            .channel_name
            .clone()
            .unwrap_or_else(|| conversation.channel.clone()),
        user_id: intent.requester.0.clone(),
        user_name: intent.requester.1.clone(),
        text: intent.command.chars().take(500).collect(),
        command: "deploy".into(),
        app: Some(intent.app.clone()),
        environment: Some(intent.environment.clone()),
        decision: decision.to_string(),
        rule: None,
        deployment_id: deployment,
        detail: Some(detail),
    };
    if let Err(e) = bot.store().audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}
