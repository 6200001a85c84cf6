//! `queue [ENV] [on APP]` lists who waits for an environment; this module also holds
//! the rest of the queue's life, which several flows and housekeeping share:
//!
//! * [`check`] (from `deploy::local_checks`): is the environment *busy* for this
//!   requester — someone else's turn, someone else's lock, or (with `concurrency`) as
//!   many deployments there not in a final state as allowed, or others in line first?
//!   Busy refuses with a Queue button, or, for `deploy … queue`, joins the queue.
//! * [`created`] (from the deploy flow, once a deployment exists): the requester's
//!   turn is used, and with `auto_lock` the environment is locked for them.
//! * [`hand_over`]: when the environment is free, the first in line gets the turn
//!   (one winner, the store's `take_turn`): reserved for `queue_grace`, or their
//!   command run for them (`queue = "deploy"`), every rule checked again.
//! * [`sweep`] (housekeeping, leader only): turns that passed, automatic locks whose
//!   deployment finished, lock reminders, and hand-overs a missed hook or a restart
//!   left undone.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::{Deploy, Queue};

use crate::bot::Bot;
use crate::chat::{Action, Addressing, ChatUser, Message, Request, Tone};
use crate::config::{AppConfig, EnvConfig, QueueMode};
use crate::flow::{answer_stop, Decision, Outcome, Stop};
use crate::github::human_duration;
use crate::history::ago;
use crate::model::RepoName;
use crate::store::queue::{Joined, QueueEntry, QueueState};
use crate::store::{Lock, StoreError, Tracked};

/// What keeps an environment from someone right now.
#[derive(Debug, Clone)]
pub enum Busy {
    /// Someone else's turn in the queue.
    Reserved(QueueEntry),
    /// Someone else's lock.
    Locked(Lock),
    /// As many deployments there as `concurrency` allows have not reached a final state.
    Running(Box<Tracked>),
    /// Others are in line first.
    Waiting(QueueEntry),
}

impl Busy {
    /// "alice's lock", "#5 api/main (in progress)", "bob's turn".
    fn short(&self) -> String {
        match self {
            Busy::Reserved(e) => format!("{}'s turn", e.user_name),
            Busy::Locked(l) => format!("{}'s lock", l.holder_name),
            Busy::Running(t) => format!("#{} {}", t.deployment_id, label(t)),
            Busy::Waiting(e) => e.user_name.clone(),
        }
    }

    /// The refusal's title.
    fn title(&self, place: &str, now: DateTime<Utc>) -> String {
        match self {
            Busy::Reserved(e) => format!(
                "{place} is reserved for {} until {}",
                e.user_name,
                until(e.reserved_until.unwrap_or(now))
            ),
            Busy::Locked(l) => format!("{place} is locked by {}", l.holder_name),
            Busy::Running(t) => format!("{place} is busy: {}", running(t, now)),
            Busy::Waiting(e) => format!("{} is first in line for {place}", e.user_name),
        }
    }
}

/// `api/main`.
fn label(t: &Tracked) -> String {
    format!(
        "{}/{}",
        t.app.clone().unwrap_or_else(|| t.repository.to_string()),
        t.git_ref
    )
}

/// "#5 api/main is still in progress, started 2m ago by alice".
fn running(t: &Tracked, now: DateTime<Utc>) -> String {
    let who = t
        .requester
        .as_ref()
        .map(|(_, name)| name.clone())
        .or_else(|| t.creator.clone())
        .unwrap_or_else(|| "someone".into());
    format!(
        "#{} {} is still in progress, started {} by {who}",
        t.deployment_id,
        label(t),
        ago(now, t.created_at)
    )
}

fn until(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

fn place(app: &str, env: &str) -> String {
    format!("{env} on {app}")
}

fn settings_of<'a>(bot: &'a Bot, app: &str, env: &str) -> Option<(&'a AppConfig, &'a EnvConfig)> {
    let config = bot.config();
    let app = config.app(app)?;
    let env = app.environment(config, env)?;
    Some((app, env))
}

fn grace(bot: &Bot, env: &EnvConfig) -> Duration {
    env.queue
        .queue_grace
        .unwrap_or(bot.config().defaults.queue_grace)
}

fn store_failed(what: &str, e: StoreError) -> Stop {
    Stop::failed(Message::new(Tone::Failed, format!("could not {what}: {e}")))
}

/// The deployments of `app` in `env` that have not reached a final state, oldest first.
/// One unfinished past `stuck_timeout` (its message says it looks stuck) no longer
/// holds the environment: a deployer that never reports must not block it for good.
async fn in_progress(
    bot: &Bot,
    app: &AppConfig,
    env: &EnvConfig,
) -> Result<Vec<Tracked>, StoreError> {
    let stuck = crate::clock::earlier(bot.now(), bot.config().defaults.stuck_timeout);
    let mut list: Vec<Tracked> = bot
        .store()
        .unfinished()
        .await?
        .into_iter()
        .filter(|t| {
            t.repository == app.repository
                && t.environment.eq_ignore_ascii_case(env.name.as_str())
                && !t.state.is_final()
                && !t.given_up
                && !t.warned_stuck
                && t.created_at > stuck
        })
        .collect();
    list.sort_by_key(|t| t.created_at);
    Ok(list)
}

/// What keeps `app`'s `env` from `user_id` now, given its open queue entries.
async fn busy_for(
    bot: &Bot,
    app: &AppConfig,
    env: &EnvConfig,
    user_id: &str,
    queue: &[QueueEntry],
) -> Result<Option<Busy>, StoreError> {
    let now = bot.now();
    if let Some(turn) = queue
        .iter()
        .find(|e| e.state == QueueState::Turn && e.user_id != user_id)
    {
        return Ok(Some(Busy::Reserved(turn.clone())));
    }
    let lock = bot
        .store()
        .lock(app.name.as_str(), env.name.as_str(), now)
        .await?;
    let holds_lock = lock.as_ref().is_some_and(|l| l.holder_id == user_id);
    if let Some(lock) = lock.filter(|_| !holds_lock) {
        return Ok(Some(Busy::Locked(lock)));
    }
    if let Some(limit) = env.queue.concurrency {
        let running = in_progress(bot, app, env).await?;
        if running.len() >= limit as usize {
            return Ok(Some(Busy::Running(Box::new(running[0].clone()))));
        }
    }
    // Nobody has the turn: someone waiting ahead goes first (they wait for the lock's
    // holder, who deploys as they please).
    let mine = queue.iter().find(|e| e.user_id == user_id);
    let has_turn = mine.is_some_and(|e| e.state == QueueState::Turn);
    if !has_turn && !holds_lock {
        if let Some(first) = queue
            .iter()
            .find(|e| e.user_id != user_id && mine.is_none_or(|m| e.position < m.position))
        {
            return Ok(Some(Busy::Waiting(first.clone())));
        }
    }
    Ok(None)
}

/// For deploys: refuses (with a Queue button) while the environment is busy for the
/// requester, or joins its queue for `deploy … queue`. Called by
/// `deploy::local_checks` before the lock check, which it includes.
pub async fn check(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    cmd: &Deploy,
) -> Result<(), Stop> {
    let store = bot.store();
    let (a, e) = (app.name.as_str(), env.name.as_str());
    let mut queue = store
        .queue(Some(a), Some(e))
        .await
        .map_err(|e| store_failed("read the queue", e))?;
    // A turn that passed ends now (housekeeping may not have run yet), and a free
    // environment with people waiting and nobody's turn is given out first.
    let now = bot.now();
    let passed = |q: &QueueEntry| {
        q.state == QueueState::Turn && q.reserved_until.is_some_and(|until| until <= now)
    };
    if queue.iter().any(passed) {
        expire_turns(bot)
            .await
            .map_err(|e| store_failed("end a passed turn", e))?;
        queue = store
            .queue(Some(a), Some(e))
            .await
            .map_err(|e| store_failed("read the queue", e))?;
    }
    if !queue.is_empty() && queue.iter().all(|e| e.state == QueueState::Waiting) {
        hand_over(bot, a, e).await;
        queue = store
            .queue(Some(a), Some(e))
            .await
            .map_err(|e| store_failed("read the queue", e))?;
    }
    let busy = busy_for(bot, app, env, &request.user.id, &queue)
        .await
        .map_err(|e| store_failed("check whether the environment is busy", e))?;
    let Some(busy) = busy else {
        return Ok(());
    };
    if cmd.queue {
        return Err(join(bot, request, app, env, cmd, &busy).await);
    }
    let here = place(a, e);
    let mut stop = match &busy {
        // The lock's own refusal says who and what may be typed (`lock!` for some).
        Busy::Locked(_) => match crate::flow::lock::check(bot, app, env, &request.user).await {
            Err(stop) => stop,
            Ok(()) => return Ok(()),
        },
        other => {
            let rule = match other {
                Busy::Running(_) => "concurrency",
                _ => "queue",
            };
            let mut m = Message::refused(other.title(&here, now));
            if let Busy::Running(t) = other {
                m = m.line(format!(
                    "{} allows {} deployment{} at a time (`concurrency`)",
                    env.name,
                    env.queue.concurrency.unwrap_or(1),
                    if env.queue.concurrency == Some(1) {
                        ""
                    } else {
                        "s"
                    }
                ));
                if let Some((_, name)) = &t.requester {
                    m = m.line(format!("ask {name}, or wait for it to finish"));
                }
            }
            Stop::refused(rule, m.field("rule", rule))
        }
    };
    // A rollback (or a `yes`) is not a line to queue; a typed deploy is.
    if matches!(
        commands::parse(&request.text),
        Ok(commands::Command::Deploy(_))
    ) {
        let queued = commands::Command::Deploy(Deploy {
            queue: true,
            ..cmd.clone()
        })
        .to_string();
        // The button's typed twin is its hint on platforms without buttons.
        stop.message = stop.message.action(Action::Queue { command: queued });
    }
    Err(stop)
}

/// `deploy … queue` on a busy environment: joins its queue, and says where they stand.
async fn join(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    cmd: &Deploy,
    busy: &Busy,
) -> Stop {
    let now = bot.now();
    let (a, e) = (app.name.as_str(), env.name.as_str());
    let here = place(a, e);
    let command = commands::Command::Deploy(Deploy {
        queue: false,
        ..cmd.clone()
    })
    .to_string();
    let entry = QueueEntry {
        app: a.to_string(),
        environment: e.to_string(),
        position: 0,
        user_id: request.user.id.clone(),
        user_name: request.user.name.clone(),
        roles: request.user.roles.clone(),
        command,
        conversation: request.conversation.clone(),
        joined_at: now,
        state: QueueState::Waiting,
        told_at: None,
        reserved_until: None,
    };
    let (entry, already) = match bot.store().join_queue(&entry).await {
        Ok(Joined::Joined(entry)) => (entry, false),
        Ok(Joined::Already(entry)) => (entry, true),
        Err(err) => return store_failed("join the queue", err).on(app, Some(env)),
    };
    let queue = bot
        .store()
        .queue(Some(a), Some(e))
        .await
        .unwrap_or_default();
    let ahead: Vec<&QueueEntry> = queue
        .iter()
        .filter(|q| q.position < entry.position && q.user_id != entry.user_id)
        .collect();
    // People count, not what blocks them: behind alice's lock and bob, you are #2.
    let position = ahead.len() + 1;
    let mut behind: Vec<String> = Vec::new();
    if !matches!(busy, Busy::Reserved(_) | Busy::Waiting(_)) {
        behind.push(busy.short());
    }
    behind.extend(ahead.iter().map(|q| match q.state {
        QueueState::Turn => format!("{}'s turn", q.user_name),
        _ => q.user_name.clone(),
    }));
    let behind = if behind.is_empty() {
        String::new()
    } else {
        format!(" (behind {})", behind.join(", then "))
    };
    let title = format!(
        "{}{}, you are #{position} in line for {here}{behind}",
        if already { "already in line: " } else { "" },
        request.user.name,
    );
    let mode = match env.queue.mode {
        QueueMode::Reserve => format!(
            "when it frees up you are told here, and it is yours for {} to deploy with `{}`",
            human_duration(grace(bot, env)),
            entry.command
        ),
        QueueMode::Deploy => format!(
            "when it frees up, deploybot runs `{}` for you (every rule checked again)",
            entry.command
        ),
    };
    let m = Message::new(Tone::Info, title)
        .line(busy.title(&here, now))
        .line(mode)
        .line(format!("to leave the line, type `dequeue {e} on {a}`"));
    Stop {
        message: m,
        decision: Decision::Pending("queue"),
        app: Some(a.to_string()),
        environment: Some(e.to_string()),
    }
}

/// A deployment was created for `request`: their turn (if any) is used, and with
/// `auto_lock` the environment is locked for them until its final state plus
/// `auto_lock_grace`. Called by the deploy flow once the tracker has it.
pub async fn created(bot: &Bot, request: &Request, app: &AppConfig, env: &EnvConfig, t: &Tracked) {
    let now = bot.now();
    let (a, e) = (app.name.as_str(), env.name.as_str());
    if let Err(err) = bot
        .store()
        .close_turn(a, e, &request.user.id, QueueState::Deployed, now)
        .await
    {
        tracing::warn!(error = %err, "cannot close a queue turn; it ends at its reservation");
    }
    if !env.queue.auto_lock {
        return;
    }
    let reason = format!("deploying #{} {}", t.deployment_id, label(t));
    let lock = Lock {
        app: a.to_string(),
        environment: e.to_string(),
        holder_id: request.user.id.clone(),
        holder_name: request.user.name.clone(),
        reason: Some(reason.clone()),
        created_at: now,
        expires_at: crate::clock::later(now, bot.config().defaults.lock_ttl),
        warned: false,
        conversation: request.conversation.clone(),
    };
    let deployment = format!("{}#{}", t.repository, t.deployment_id);
    match bot.store().take_auto_lock(&lock, &deployment, now).await {
        Ok(true) => {
            bot.reply(
                request,
                Message::info(format!(
                    "🔒 {} is locked for {} while #{} deploys",
                    place(a, e),
                    request.user.name,
                    t.deployment_id
                ))
                .line(format!(
                    "released {} after it finishes (`auto_lock`)",
                    human_duration(env.queue.auto_lock_grace)
                ))
                .field("reason", reason),
            )
            .await;
        }
        // Held already (their own lock, or one taken meanwhile): left as it is.
        Ok(false) => {}
        Err(err) => tracing::warn!(error = %err, "cannot take an automatic lock"),
    }
}

/// Gives `app`'s `env` to the first in line, if it is free and nobody has the turn.
///
/// Boxed: a hand-over may run a deploy (`queue = "deploy"`), whose checks may hand
/// over again, and the type of a future cannot contain itself.
pub fn hand_over<'a>(
    bot: &'a Bot,
    app: &'a str,
    env: &'a str,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        if let Err(e) = try_hand_over(bot, app, env).await {
            tracing::warn!(error = %e, app, environment = env, "queue hand-over failed; housekeeping tries again");
        }
    })
}

async fn try_hand_over(bot: &Bot, a: &str, e: &str) -> Result<(), StoreError> {
    let Some((app, env)) = settings_of(bot, a, e) else {
        return Ok(());
    };
    let queue = bot.store().queue(Some(a), Some(e)).await?;
    let Some(first) = queue.first() else {
        return Ok(());
    };
    if queue.iter().any(|q| q.state == QueueState::Turn) {
        return Ok(());
    }
    if busy_for(bot, app, env, &first.user_id, &queue)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = bot.now();
    let grace = grace(bot, env);
    let Some(entry) = bot
        .store()
        .take_turn(a, e, now, crate::clock::later(now, grace))
        .await?
    else {
        return Ok(());
    };
    let here = place(a, e);
    match env.queue.mode {
        QueueMode::Reserve => {
            let mut m = Message::new(
                Tone::Success,
                format!(
                    "🟢 {}, your turn: {here} is free and reserved for you until {} ({})",
                    entry.user_name,
                    until(entry.reserved_until.unwrap_or(now)),
                    human_duration(grace)
                ),
            )
            .line(format!("deploy now: `{}`", entry.command))
            .line(format!(
                "not deployed by then, the turn passes to the next in line; `dequeue {e} on {a}` gives it up now"
            ));
            m.mention = Some(entry.user_id.clone());
            bot.say(&entry.conversation, &m).await;
        }
        QueueMode::Deploy => {
            let mut m = Message::new(
                Tone::Success,
                format!(
                    "🟢 {}, your turn: {here} is free; deploying `{}` for you",
                    entry.user_name, entry.command
                ),
            );
            m.mention = Some(entry.user_id.clone());
            bot.say(&entry.conversation, &m).await;
            // In a task of its own: the command goes through `Bot::handle` (parse,
            // every rule, audit) as them, and may itself hand over again.
            let bot = bot.clone();
            let run: Pin<Box<dyn Future<Output = ()> + Send>> =
                Box::pin(async move { run_for(&bot, entry).await });
            tokio::spawn(run);
        }
    }
    Ok(())
}

/// `queue = "deploy"`: runs `entry`'s command as its requester; a refusal ends their
/// turn (the refusal was answered by the flow) and the next in line is told.
async fn run_for(bot: &Bot, entry: QueueEntry) {
    let request = Request {
        conversation: entry.conversation.clone(),
        message_id: None,
        user: ChatUser {
            id: entry.user_id.clone(),
            name: entry.user_name.clone(),
            roles: entry.roles.clone(),
        },
        text: entry.command.clone(),
        addressing: Addressing::Direct,
        pressed: None,
    };
    let decision = bot.handle(request).await;
    if matches!(
        decision,
        Some(Decision::Refused(_) | Decision::Failed) | None
    ) {
        let now = bot.now();
        match bot
            .store()
            .close_turn(
                &entry.app,
                &entry.environment,
                &entry.user_id,
                QueueState::Refused,
                now,
            )
            .await
        {
            Ok(Some(_)) => {
                let mut m = Message::info(format!(
                    "{}'s turn for {} ended: the deploy was not made (see above)",
                    entry.user_name,
                    place(&entry.app, &entry.environment)
                ))
                .line(format!(
                    "to line up again, type `{} queue`",
                    entry.command.split(" -- ").next().unwrap_or(&entry.command)
                ));
                m.mention = Some(entry.user_id.clone());
                bot.say(&entry.conversation, &m).await;
                hand_over(bot, &entry.app, &entry.environment).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot end a queue turn"),
        }
    }
}

/// Ends the turns that passed, telling their holders.
async fn expire_turns(bot: &Bot) -> Result<(), StoreError> {
    let now = bot.now();
    for lost in bot.store().expire_turns(now).await? {
        let mut m = Message::info(format!(
            "⌛ {}, your turn for {} passed (it was yours until {})",
            lost.user_name,
            place(&lost.app, &lost.environment),
            until(lost.reserved_until.unwrap_or(now))
        ))
        .line(format!(
            "to line up again, type `{} queue`",
            lost.command.split(" -- ").next().unwrap_or(&lost.command)
        ));
        m.mention = Some(lost.user_id.clone());
        bot.say(&lost.conversation, &m).await;
    }
    Ok(())
}

/// Housekeeping: turns that passed, automatic locks whose deployment finished, lock
/// reminders, and hand-overs of every queue whose environment is free.
pub async fn sweep(bot: &Bot) -> Result<(), StoreError> {
    let now = bot.now();
    let store = bot.store();
    expire_turns(bot).await?;
    // Closed entries are kept a week, for anyone reading the database.
    store.prune_queue(now - chrono::Duration::days(7)).await?;
    let auto = store.auto_locks(now).await?;
    for (lock, deployment) in &auto {
        release_auto_lock(bot, lock, deployment, now).await?;
    }
    remind(bot, &auto, now).await?;
    let mut queues: Vec<(String, String)> = store
        .queue(None, None)
        .await?
        .into_iter()
        .map(|q| (q.app, q.environment))
        .collect();
    queues.dedup();
    for (app, env) in queues {
        hand_over(bot, &app, &env).await;
    }
    Ok(())
}

/// An automatic lock whose deployment reached its final state ends `auto_lock_grace`
/// after it (lock expiry then removes it and announces it).
async fn release_auto_lock(
    bot: &Bot,
    lock: &Lock,
    deployment: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some((repo, id)) = deployment.rsplit_once('#') else {
        return Ok(());
    };
    let (Some(repo), Ok(id)) = (RepoName::parse(repo), id.parse::<u64>()) else {
        return Ok(());
    };
    let grace = settings_of(bot, &lock.app, &lock.environment)
        .map(|(_, env)| env.queue.auto_lock_grace)
        .unwrap_or(crate::config::DEFAULT_AUTO_LOCK_GRACE);
    let finished = match bot
        .store()
        .tracked(&repo, crate::model::DeploymentId(id))
        .await?
    {
        Some(t) if t.state.is_final() => t.finished_at.unwrap_or(now),
        Some(t) if t.given_up => now,
        Some(_) => return Ok(()),
        // Forgotten (pruned): nothing left to wait for.
        None => now,
    };
    bot.store()
        .end_auto_lock(
            &lock.app,
            &lock.environment,
            deployment,
            crate::clock::later(finished, grace),
        )
        .await?;
    Ok(())
}

/// Reminds holders of locks held longer than `lock_remind_after`, once per interval
/// (the store's `remind_lock` decides, so restarts and other instances do not repeat
/// it). Automatic locks end with their deployment and are not reminded of.
async fn remind(bot: &Bot, auto: &[(Lock, String)], now: DateTime<Utc>) -> Result<(), StoreError> {
    let config = bot.config();
    for lock in bot.store().locks(now).await? {
        if auto
            .iter()
            .any(|(l, _)| l.app == lock.app && l.environment == lock.environment)
        {
            continue;
        }
        let every = settings_of(bot, &lock.app, &lock.environment)
            .and_then(|(_, env)| env.queue.lock_remind_after)
            .unwrap_or(config.defaults.lock_remind_after);
        let due = crate::clock::earlier(now, every);
        if lock.created_at > due || !bot.store().remind_lock(&lock, due, now).await? {
            continue;
        }
        let here = place(&lock.app, &lock.environment);
        let keep = commands::Command::Lock(commands::Lock {
            force: false,
            environment: lock.environment.clone(),
            app: Some(lock.app.clone()),
            duration: None,
            reason: lock.reason.clone(),
        })
        .to_string();
        let mut m = Message::new(
            Tone::Warning,
            format!(
                "🔒 {}, you have held the lock on {here} for {}",
                lock.holder_name,
                human_duration((now - lock.created_at).to_std().unwrap_or_default())
            ),
        )
        .line(crate::flow::lock::describe(&lock, now))
        .line(format!(
            "still need it? Keep renews it for `lock_ttl` ({}); Unlock releases it. Asked again in {} otherwise",
            human_duration(config.defaults.lock_ttl),
            human_duration(every)
        ))
        .action(Action::Unlock {
            command: format!("unlock {here}"),
        })
        .action(Action::Keep { command: keep });
        m.mention = Some(lock.holder_id.clone());
        bot.say(&lock.conversation, &m).await;
    }
    Ok(())
}

/// For `why ENV`: what the queue and `concurrency` say for `user_id` now (a line, and
/// the blocker's rule when they stop a deploy). A lock is `why`'s own line.
pub async fn why(
    bot: &Bot,
    app: &AppConfig,
    env: &EnvConfig,
    user_id: &str,
) -> (Option<String>, Option<&'static str>) {
    let now = bot.now();
    let here = place(app.name.as_str(), env.name.as_str());
    let queue = match bot
        .store()
        .queue(Some(app.name.as_str()), Some(env.name.as_str()))
        .await
    {
        Ok(queue) => queue,
        Err(e) => return (Some(format!("❔ queue: unknown ({e})")), None),
    };
    match busy_for(bot, app, env, user_id, &queue).await {
        Err(e) => (Some(format!("❔ queue: unknown ({e})")), None),
        Ok(Some(Busy::Locked(_))) => (None, None),
        Ok(Some(busy @ Busy::Running(_))) => (
            Some(format!(
                "🚫 concurrency: {} (`deploy … queue` waits in line)",
                busy.title(&here, now)
            )),
            Some("concurrency"),
        ),
        Ok(Some(busy)) => (
            Some(format!(
                "🚫 queue: {} (`deploy … queue` waits in line)",
                busy.title(&here, now)
            )),
            Some("queue"),
        ),
        Ok(None) => (
            Some(match (queue.len(), env.queue.concurrency) {
                (0, None) => "✅ queue: nobody in line".to_string(),
                (0, Some(n)) => format!(
                    "✅ queue: nobody in line; {n} unfinished deployment{} at a time (`concurrency`)",
                    if n == 1 { "" } else { "s" }
                ),
                _ => "✅ queue: it is your turn".to_string(),
            }),
            None,
        ),
    }
}

/// `queue [ENV] [on APP]`: the queues, in order, and what keeps each environment busy.
pub async fn run(bot: &Bot, request: &Request, cmd: Queue) -> Outcome {
    match list(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

async fn list(bot: &Bot, request: &Request, cmd: &Queue) -> Result<Outcome, Stop> {
    let now = bot.now();
    let (app, env) = match &cmd.environment {
        Some(e) => {
            let (app, env) =
                crate::flow::lock::target(bot, request, e, cmd.app.as_deref(), "queue")?;
            (Some(app), Some(env))
        }
        None => match &cmd.app {
            Some(a) => (
                Some(
                    crate::resolve::app(bot.config(), &request.conversation, Some(a), |a| {
                        format!("queue on {a}")
                    })
                    .map_err(crate::flow::unknown)?,
                ),
                None,
            ),
            None => (None, None),
        },
    };
    let entries = bot
        .store()
        .queue(app.map(|a| a.name.as_str()), env.map(|e| e.name.as_str()))
        .await
        .map_err(|e| store_failed("read the queue", e))?;
    let outcome = match app {
        Some(app) => Outcome::allowed().on(app, env),
        None => Outcome::allowed(),
    };
    if entries.is_empty() {
        let what = match (app, env) {
            (Some(a), Some(e)) => place(a.name.as_str(), e.name.as_str()),
            (Some(a), None) => format!("any environment of {}", a.name),
            _ => "any environment".to_string(),
        };
        let mut m = Message::info(format!("Nobody is in line for {what}"));
        if let (Some(a), Some(e)) = (app, env) {
            if let Ok(Some(busy)) = busy_for(bot, a, e, "", &[]).await {
                m = m.line(busy.title(&place(a.name.as_str(), e.name.as_str()), now));
            }
        }
        m = m.line("to wait for a busy environment, add `queue` to the deploy: `deploy api to production queue`");
        bot.reply(request, m).await;
        return Ok(outcome);
    }
    let mut m = Message::info(format!(
        "{} in line",
        match entries.len() {
            1 => "1 person".to_string(),
            n => format!("{n} people"),
        }
    ));
    let mut current: Option<(String, String)> = None;
    let mut n = 0;
    for q in &entries {
        let key = (q.app.clone(), q.environment.clone());
        if current.as_ref() != Some(&key) {
            n = 0;
            let here = place(&q.app, &q.environment);
            let mut head = format!("{here}: free");
            if let Some((a, e)) = settings_of(bot, &q.app, &q.environment) {
                if let Ok(Some(busy)) = busy_for(bot, a, e, "", &[]).await {
                    head = busy.title(&here, now);
                }
            }
            m = m.line(head);
            current = Some(key);
        }
        n += 1;
        m = m.line(match q.state {
            QueueState::Turn => format!(
                "{n}. {} — their turn, until {} (`{}`)",
                q.user_name,
                until(q.reserved_until.unwrap_or(now)),
                q.command
            ),
            _ => format!(
                "{n}. {} — waiting since {} (`{}`)",
                q.user_name,
                ago(now, q.joined_at),
                q.command
            ),
        });
    }
    m = m.line("`dequeue ENV` leaves a line");
    bot.reply(request, m).await;
    Ok(outcome)
}
