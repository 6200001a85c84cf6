//! `deploy`: the effect of [`commands::Deploy`].
//!
//! Resolve (app, ref, environment) → policy (channel, roles, force and its reason,
//! locks) → pre-flight (what is live there, and how the ref compares) → confirmation
//! when the environment asks for it or the ref would roll back production → post a
//! "creating…" message → `POST /deployments` (never blindly retried; one retry after a
//! 202 auto-merge, which creates nothing) → hand the message to the tracker. The
//! message id goes into the deployment's payload, so status events find it again.

use std::sync::Arc;

use commands::Deploy;
use serde_json::json;

use crate::bot::Bot;
use crate::chat::{Action, Message, MessageId, Request, Tone};
use crate::config::{AppConfig, EnvConfig};
use crate::flow::{answer_stop, unknown, Decision, Outcome, Stop};
use crate::github::{
    create_deployment_once, Comparison, ContextState, CreateOutcome, CreateResult,
    DeploybotPayload, GitHubError, NewDeployment, PayloadChat, PayloadUser, Preflight,
    PreflightQuery,
};
use crate::history::Entry;
use crate::model::DeploymentId;
use crate::policy::{self, Need};
use crate::routing::{RoutingKey, Signed};
use crate::store::{Confirmation, ConfirmationState, Intent, IntentResolution, Tracked};
use crate::tracker::render;
use crate::{flow, intents, resolve};

/// GitHub's limit for a deployment description.
const DESCRIPTION_MAX: usize = 140;

/// Runs a deploy typed in chat: asks for confirmation where needed.
pub async fn run(bot: &Bot, request: &Request, cmd: Deploy) -> Outcome {
    run_with(bot, request, cmd, None).await
}

/// Runs a deploy its requester just confirmed: every check runs again (a lock may
/// have appeared meanwhile), only the question is not asked twice.
pub async fn run_confirmed(
    bot: &Bot,
    request: &Request,
    cmd: Deploy,
    confirmation: &Confirmation,
) -> Outcome {
    run_with(bot, request, cmd, Some(confirmation)).await
}

/// What differs when a deploy is not a plain `deploy` (a rollback).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Replaces the task in the deployment's description ("rollback of #41").
    pub description: Option<String>,
    /// Extra lines for the progress message.
    pub notes: Vec<String>,
    /// The command a confirmation re-runs (default: the deploy itself).
    pub command: Option<String>,
    /// What a confirmation asks about (default: "deploy APP/REF to ENV").
    pub summary: Option<String>,
    /// How the target is shown (default: `app/ref`).
    pub label: Option<String>,
    /// Going back is the point: no "this is behind what is live" confirmation.
    pub intentional_rollback: bool,
    /// For a rollback: the sha it puts back (a confirmation holds only for that sha).
    pub target_sha: Option<String>,
    /// For a rollback: the deployment it replaces (kept in the payload).
    pub rollback_of: Option<DeploymentId>,
    /// For a confirmed rollback: why the question no longer holds (what to go back to
    /// changed), so it is asked anew.
    pub stale: Option<String>,
    /// When the command started, if before the deploy path (a rollback's own lookups):
    /// the answer deadlines count from there.
    pub started: Option<tokio::time::Instant>,
    /// The message that shows the outcome (a `when green` wait's live message), instead
    /// of a new one.
    pub message: Option<MessageId>,
}

async fn run_with(
    bot: &Bot,
    request: &Request,
    cmd: Deploy,
    confirmed: Option<&Confirmation>,
) -> Outcome {
    run_deploy(bot, request, cmd, confirmed, Context::default()).await
}

/// The whole deploy, shared by `deploy`, its confirmation and `rollback`.
pub async fn run_deploy(
    bot: &Bot,
    request: &Request,
    cmd: Deploy,
    confirmed: Option<&Confirmation>,
    context: Context,
) -> Outcome {
    // The deadlines of this command: its pre-flight lookups, "still trying", and the
    // answer it gives even when GitHub has not.
    let started = context.started.unwrap_or_else(tokio::time::Instant::now);
    let mut plan = match plan(bot, request, &cmd, started).await {
        Ok(plan) => plan,
        Err(stop) if context.message.is_some() => {
            let outcome = stop.outcome();
            bot.update(
                &request.conversation,
                context.message.as_ref(),
                &stop.message,
            )
            .await;
            return outcome;
        }
        Err(stop) => {
            return answer_stop(bot, request, after_yes(bot, request, confirmed, stop).await).await
        }
    };
    if let Some(label) = &context.label {
        plan.label = label.clone();
    }
    match confirmed {
        None => {
            if let Some(reasons) = plan.needs_confirmation(&cmd, context.intentional_rollback) {
                return ask(bot, request, &cmd, &plan, reasons, &context).await;
            }
        }
        // The answer is for the situation that was described: if what is live changed
        // since, the question no longer holds, and the new one is asked.
        Some(c) => {
            let stale = context.stale.clone().or_else(|| plan.changed_since(c));
            if let Some(why) = stale {
                flow::confirm::settle_question(
                    bot,
                    c,
                    Message::info(format!("“{}”: not deployed — {why}", c.summary))
                        .line("asked again below"),
                )
                .await;
                let mut reasons = vec![format!("⚠️ {why}; so deploybot asks again")];
                reasons.extend(
                    plan.needs_confirmation(&cmd, context.intentional_rollback)
                        .unwrap_or_default(),
                );
                return ask(bot, request, &cmd, &plan, reasons, &context).await;
            }
            flow::confirm::settle_question(
                bot,
                c,
                Message::new(
                    Tone::Success,
                    format!("confirmed by {}: {}", request.user.name, c.summary),
                ),
            )
            .await;
        }
    }
    execute(bot, request, &cmd, plan, context, started).await
}

/// A refusal after `yes`: the question says it was answered but not deployed (never
/// "confirmed"), and the refusal follows.
pub async fn after_yes(
    bot: &Bot,
    request: &Request,
    confirmed: Option<&Confirmation>,
    stop: Stop,
) -> Stop {
    if let Some(c) = confirmed {
        flow::confirm::settle_question(
            bot,
            c,
            Message::info(format!(
                "{} answered yes to “{}”, but it was not deployed: {}",
                request.user.name, c.summary, stop.message.title
            )),
        )
        .await;
    }
    stop
}

/// Everything decided before creating the deployment.
pub struct Plan {
    pub app: AppConfig,
    pub env: EnvConfig,
    pub git_ref: String,
    /// `api/topic`, for messages.
    pub label: String,
    html_url: Option<String>,
    may_force: bool,
    /// What is live in the environment now, and how the ref compares to it. When a
    /// lookup fails, the error says why (and production asks before going ahead).
    live: Option<Entry>,
    live_unknown: Option<String>,
    comparison: Option<Comparison>,
    comparison_unknown: Option<String>,
    /// When forcing: the checks that are not green (what force skips).
    bypassed: Option<Vec<ContextState>>,
}

impl Plan {
    /// Why this deploy must be confirmed first, if it must.
    fn needs_confirmation(&self, cmd: &Deploy, rollback: bool) -> Option<Vec<String>> {
        let mut reasons = Vec::new();
        if self.env.confirm {
            reasons.push(format!(
                "{} asks for confirmation before every deploy",
                self.env.name
            ));
        }
        if self.env.production && !cmd.force && !rollback {
            if let Some(e) = &self.live_unknown {
                reasons.push(format!(
                    "⚠️ deploybot could not tell what is live in {} ({e}), so it cannot rule out a rollback",
                    self.env.name
                ));
            } else if let Some(e) = &self.comparison_unknown {
                reasons.push(format!(
                    "⚠️ deploybot could not compare {} with what is live in {} ({e}), so it cannot rule out a rollback",
                    self.label, self.env.name
                ));
            }
            if let Some(c) = &self.comparison {
                if c.status == "behind" || c.status == "diverged" {
                    reasons.push(format!(
                        "⚠️ deploying it to {} rolls back {} commit{} that {} live there",
                        self.env.name,
                        c.behind_by,
                        plural(c.behind_by),
                        if c.behind_by == 1 { "is" } else { "are" }
                    ));
                }
            }
        }
        (!reasons.is_empty()).then_some(reasons)
    }
}

impl Plan {
    /// Why a confirmation no longer holds, if it does not.
    fn changed_since(&self, c: &Confirmation) -> Option<String> {
        let now_live = self.live.as_ref().map(|l| l.deployment.id.0);
        if let Some(e) = &self.live_unknown {
            return Some(format!(
                "deploybot cannot check that what is live in {} is unchanged ({e})",
                self.env.name
            ));
        }
        if now_live == c.expected_live {
            return None;
        }
        Some(match &self.live {
            Some(l) => format!(
                "what is live in {} changed since you were asked: now #{} ({}, {} by {})",
                self.env.name,
                l.deployment.id,
                l.deployment.sha.short(),
                l.deployment.git_ref,
                l.who()
            ),
            None => format!(
                "what is live in {} changed since you were asked",
                self.env.name
            ),
        })
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The same command with other values, for "type this instead" hints.
fn with(cmd: &Deploy, f: impl FnOnce(&mut Deploy)) -> String {
    let mut c = cmd.clone();
    f(&mut c);
    commands::Command::Deploy(c).to_string()
}

/// `deploy apj to staging`: the question, with both ways to go on.
fn did_you_mean(cmd: &Deploy, near: &AppConfig, app: &AppConfig, git_ref: &str) -> Stop {
    let meant = match cmd.target.split_once('/') {
        Some((_, rest)) => format!("{}/{rest}", near.name),
        None => near.name.to_string(),
    };
    let nor = if near.name == app.name {
        format!("nor a branch of {}", app.name)
    } else {
        format!("and {} has no such branch", app.name)
    };
    Stop::refused(
        "unknown",
        Message::refused(format!(
            "`{}` is not an app, {nor} — did you mean `{}`?",
            cmd.target,
            with(cmd, |c| c.target = meant)
        ))
        .line(format!(
            "to deploy the ref `{git_ref}` of {} anyway, type `{}`",
            app.name,
            with(cmd, |c| c.target = format!("{}/{git_ref}", app.name))
        )),
    )
}

/// Every rule that needs no GitHub call: channel, roles, force and its reason, locks.
/// Returns whether the requester may force here. Shared by `deploy` and `rollback`, so
/// nothing reaches GitHub before all of them passed.
pub async fn local_checks(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    cmd: &Deploy,
) -> Result<bool, Stop> {
    let config = bot.config();
    policy::check_channel(app, &request.conversation)?;
    policy::check(config, app, env, &request.user, Need::Deploy)?;
    let may_force = policy::check(config, app, env, &request.user, Need::Force).is_ok();
    if cmd.force {
        policy::check(config, app, env, &request.user, Need::Force)?;
        if env.production && cmd.reason.is_none() {
            return Err(Stop::refused(
                "reason",
                Message::refused(format!(
                    "forcing a deploy to {} (a production environment) needs a reason",
                    env.name
                ))
                .line(format!(
                    "e.g. `{}`",
                    with(cmd, |c| c.reason =
                        Some("hotfix for the login outage".into()))
                )),
            ));
        }
    }
    // Freezes (config windows, chat freezes): only break-glass, `deploy!` with a reason.
    flow::freeze::check(bot, request, app, env, cmd).await?;
    // Someone else's turn, lock or running deployment: refused with a Queue button,
    // or queued for `deploy … queue` (src/flow/queue.rs).
    flow::queue::check(bot, request, app, env, cmd).await?;
    flow::lock::check(bot, app, env, &request.user).await?;
    Ok(may_force)
}

/// GitHub's answer, or a timeout at `deadline` (a lookup that is not worth waiting for).
async fn within<T>(
    deadline: tokio::time::Instant,
    lookup: impl std::future::Future<Output = Result<T, GitHubError>>,
) -> Result<T, GitHubError> {
    match tokio::time::timeout_at(deadline, lookup).await {
        Ok(answer) => answer,
        Err(_) => Err(GitHubError::Transport {
            message: "GitHub did not answer in time".into(),
            maybe_sent: false,
        }),
    }
}

pub async fn plan(
    bot: &Bot,
    request: &Request,
    cmd: &Deploy,
    started: tokio::time::Instant,
) -> Result<Plan, Stop> {
    // The pre-flight only adds information: it may take until "still trying".
    let deadline = started + bot.intents().patience().still_trying;
    let config = bot.config();
    let target = resolve::target(config, &request.conversation, &cmd.target).map_err(unknown)?;
    let app = target.app;
    let env = resolve::environment(config, app, cmd.environment.as_deref(), |e| {
        with(cmd, |c| c.environment = Some(e.to_string()))
    })
    .map_err(|m| unknown(m).on(app, None))?;
    let on = |stop: Stop| stop.on(app, Some(env));
    let may_force = local_checks(bot, request, app, env, cmd)
        .await
        .map_err(on)?;
    // `deploy apj`: a typo of an app's name, unless the channel's app has that branch
    // (asked afresh, not from the autocompletion cache: it may have just been pushed).
    if let (Some(near), Some(git_ref)) = (target.near, &target.git_ref) {
        let is_branch = matches!(
            within(deadline, bot.github().branches(&app.repository, 100)).await,
            Ok(branches) if branches.iter().any(|b| b == git_ref.as_str())
        );
        if !is_branch {
            return Err(on(did_you_mean(cmd, near, app, git_ref.as_str())));
        }
    }

    // Both the default branch and the deployments page come from the repository, which
    // is cached (and refreshed by the pre-flight's answer); a bare app name is never
    // assumed to mean `main` or `master`, so it needs the repository first.
    let cached = bot.cached_repository(&app.repository);
    let (git_ref, known) = match (&target.git_ref, cached) {
        (Some(r), cached) => (r.to_string(), cached),
        (None, Some(repo)) => (repo.default_branch.clone(), Some(repo)),
        (None, None) => match within(deadline, bot.repository(&app.repository)).await {
            Ok(repo) => (repo.default_branch.clone(), Some(repo)),
            Err(e) => {
                return Err(on(Stop::failed(
                    Message::new(
                        Tone::Failed,
                        format!("could not find {}'s default branch", app.name),
                    )
                    .line(e.explain(&app.repository, bot.now())),
                )))
            }
        },
    };

    // Pre-flight: how does the ref relate to what is live, and (forced) what would be
    // bypassed? One GraphQL query where GitHub allows. (Failures here only lose the
    // extra information; GitHub has the last word when creating the deployment.)
    let query = PreflightQuery {
        environment: env.name.as_str(),
        git_ref: &git_ref,
        checks: cmd.force,
    };
    let preflight = within(deadline, async {
        Ok(bot.github().preflight(&app.repository, &query).await)
    })
    .await
    .unwrap_or_else(|e| Preflight::failed(e, cmd.force));
    if let Some(repository) = preflight.repository.clone() {
        bot.remember_repository(&app.repository, repository);
    }
    let html_url = match preflight.repository.or(known) {
        Some(repo) => Some(repo.html_url),
        // Over REST the pre-flight does not carry the repository.
        None => within(deadline, bot.repository(&app.repository))
            .await
            .ok()
            .map(|repo| repo.html_url),
    };
    let (live, live_unknown) = match preflight.live {
        Ok(live) => (live, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (comparison, comparison_unknown) = match preflight.comparison {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let bypassed = preflight.checks.and_then(Result::ok).map(|checks| {
        checks
            .into_iter()
            .filter(|c| c.state != "success")
            .filter(|c| match &env.required_contexts {
                Some(list) if !list.is_empty() => list.contains(&c.context),
                _ => true,
            })
            .collect()
    });
    Ok(Plan {
        label: format!("{}/{}", app.name, git_ref),
        app: app.clone(),
        env: env.clone(),
        git_ref,
        html_url,
        may_force,
        live,
        live_unknown,
        comparison,
        comparison_unknown,
        bypassed,
    })
}

/// Asks the requester to confirm; the deploy runs when they do.
async fn ask(
    bot: &Bot,
    request: &Request,
    cmd: &Deploy,
    plan: &Plan,
    reasons: Vec<String>,
    context: &Context,
) -> Outcome {
    let now = bot.now();
    let timeout = bot.config().defaults.confirm_timeout;
    let id = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    let where_to = destination(plan.env.name.as_str(), &cmd.hosts);
    let summary = context
        .summary
        .clone()
        .unwrap_or_else(|| format!("deploy {} to {where_to}", plan.label));
    let confirmation = Confirmation {
        id: id.clone(),
        requester_id: request.user.id.clone(),
        requester_name: request.user.name.clone(),
        conversation: request.conversation.clone(),
        command: context
            .command
            .clone()
            .unwrap_or_else(|| commands::Command::Deploy(cmd.clone()).to_string()),
        summary: summary.clone(),
        message_id: None,
        created_at: now,
        expires_at: crate::clock::later(now, timeout),
        state: ConfirmationState::Pending,
        expected_live: plan.live.as_ref().map(|l| l.deployment.id.0),
        expected_target: context.target_sha.clone(),
    };
    let outcome = Outcome::new(Decision::Pending("confirmation")).on(&plan.app, Some(&plan.env));
    if let Err(e) = bot.store().add_confirmation(&confirmation).await {
        bot.reply(
            request,
            Message::new(Tone::Failed, format!("cannot ask for confirmation: {e}")),
        )
        .await;
        return Outcome {
            decision: Decision::Failed,
            ..outcome
        };
    }
    let mut question = Message::new(Tone::Warning, format!("{}: {summary}?", request.user.name));
    for reason in reasons {
        question = question.line(reason);
    }
    // Everything a `yes` commits to: force and what it skips, the task, the reason.
    if cmd.force {
        question = question
            .line("⚠️ forced: the required checks are skipped, and nothing is auto-merged")
            .line(bypassed_line(plan));
    }
    if cmd.task != "deploy" {
        question = question.field("task", cmd.task.clone());
    }
    if let Some(reason) = &cmd.reason {
        question = question.field("reason", reason.clone());
    }
    if let Some(line) = comparison_line(plan) {
        question = question.line(line);
    }
    question = question
        .line(format!(
            "only {} can confirm, within {} (confirmation {id})",
            request.user.name,
            crate::github::human_duration(timeout)
        ))
        .action(Action::Confirm { id: id.clone() })
        .action(Action::Cancel { id: id.clone() });
    if let Some(mid) = bot.reply(request, question).await {
        if let Err(e) = bot.store().set_confirmation_message(&id, &mid.0).await {
            tracing::warn!(error = %e, "cannot remember the confirmation's message");
        }
    }
    outcome.detail(format!("confirmation {id}"))
}

/// "3 commits ahead of what is live (def5678, #41 by bob, 2h ago)".
fn comparison_line(plan: &Plan) -> Option<String> {
    let live = plan.live.as_ref()?;
    let c = plan.comparison.as_ref()?;
    let what = format!(
        "what is live in {} ({}, #{} by {}, {})",
        plan.env.name,
        live.deployment.sha.short(),
        live.deployment.id,
        live.who(),
        live.deployment.created_at.format("%Y-%m-%d %H:%M UTC")
    );
    Some(match c.status.as_str() {
        "identical" => format!("same commit as {what}"),
        "ahead" => format!(
            "{} commit{} ahead of {what}",
            c.ahead_by,
            plural(c.ahead_by)
        ),
        "behind" => format!(
            "⚠️ {} commit{} BEHIND {what}: this is a rollback",
            c.behind_by,
            plural(c.behind_by)
        ),
        _ => format!(
            "⚠️ diverged from {what}: {} ahead, {} behind — live commits would be dropped",
            c.ahead_by, c.behind_by
        ),
    })
}

/// Who has the last word on the "Creating…" message while GitHub is slow: the flow's
/// "still trying" and "not known yet" edits never land after the outcome's.
#[derive(Default)]
struct Gate {
    /// The create task has its outcome (and is showing it, holding the gate).
    done: bool,
    /// The command answered before GitHub did.
    answered: bool,
}

async fn execute(
    bot: &Bot,
    request: &Request,
    cmd: &Deploy,
    plan: Plan,
    context: Context,
    started: tokio::time::Instant,
) -> Outcome {
    let outcome = Outcome::allowed().on(&plan.app, Some(&plan.env));
    let where_to = destination(plan.env.name.as_str(), &cmd.hosts);
    let creating = format!("Creating a deployment of {} to {where_to}…", plan.label);
    let working = Message::new(Tone::Working, creating.clone());
    let message_id = match &context.message {
        Some(id) => bot.update(&request.conversation, Some(id), &working).await,
        None => bot.reply(request, working).await,
    };

    let request_id = uuid::Uuid::new_v4().to_string();
    // Without the key (storage trouble) the deployment is still made, without a mac:
    // this bot tracks it from its store, but nothing routes it by its payload.
    let key = match bot.tracker().routing_key().await {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!(error = %e, "no routing key: the deployment's payload gets no mac");
            None
        }
    };
    let new = new_deployment(
        request,
        cmd,
        &plan,
        &request_id,
        message_id.as_ref().map(|m| m.0.clone()),
        &context,
        key.as_ref(),
    );

    let notes = context.notes.clone();
    // How the ref compares with what is live: shown once the deployment exists.
    let preflight = if let Some(line) = comparison_line(&plan) {
        Some(line)
    } else if let Some(e) = plan
        .live_unknown
        .as_ref()
        .or(plan.comparison_unknown.as_ref())
    {
        Some(format!(
            "could not compare with what is live in {} ({e})",
            plan.env.name
        ))
    } else if plan.live.is_none() {
        Some(format!("nothing was live in {} yet", plan.env.name))
    } else {
        None
    };
    // A freeze or a lock may have come while the pre-flight talked to GitHub: the last
    // word before creating is theirs.
    let last_word = match flow::freeze::check(bot, request, &plan.app, &plan.env, cmd).await {
        Ok(()) => flow::lock::check(bot, &plan.app, &plan.env, &request.user).await,
        frozen => frozen,
    };
    if let Err(stop) = last_word {
        let stop = stop.on(&plan.app, Some(&plan.env));
        let outcome = stop.outcome();
        bot.update(&request.conversation, message_id.as_ref(), &stop.message)
            .await;
        return outcome;
    }

    // Recorded before the POST: if deploybot dies while GitHub's answer is in flight,
    // or never gets a usable one, the deployment is looked up by its request id later
    // (src/intents.rs) instead of being forgotten.
    let intent = Intent {
        request_id: request_id.clone(),
        app: plan.app.name.to_string(),
        repository: plan.app.repository.clone(),
        environment: plan.env.name.to_string(),
        git_ref: plan.git_ref.clone(),
        task: cmd.task.clone(),
        conversation: request.conversation.clone(),
        message_id: message_id.as_ref().map(|m| m.0.clone()),
        requester: (request.user.id.clone(), request.user.name.clone()),
        command: context
            .command
            .clone()
            .unwrap_or_else(|| commands::Command::Deploy(cmd.clone()).to_string()),
        label: plan.label.clone(),
        created_at: bot.now(),
        html_url: plan.html_url.clone(),
        hosts: cmd.hosts.clone(),
        reason: cmd.reason.clone(),
        forced: cmd.force,
        notes: notes.iter().cloned().chain(preflight.clone()).collect(),
        compare_url: plan.comparison.as_ref().and_then(|c| c.html_url.clone()),
    };
    if let Err(e) = bot.store().add_intent(&intent).await {
        let reply = Message::new(Tone::Failed, format!("Not deployed: {}", plan.label)).line(
            format!(
                "deploybot cannot record the deployment before creating it ({e}), so it could lose track of it; try again once its storage works"
            ),
        );
        let detail = reply.title.clone();
        bot.update(&request.conversation, message_id.as_ref(), &reply)
            .await;
        return Outcome {
            decision: Decision::Failed,
            ..outcome
        }
        .detail(detail);
    }

    let patience = bot.intents().patience();
    let slow = Message::new(
        Tone::Working,
        format!("{creating} still trying (GitHub is slow)…"),
    )
    .line(format!(
        "GitHub has not answered for {}; deploybot waits, and never creates it twice",
        crate::github::human_duration(patience.still_trying)
    ));
    let unknown = Message::new(
        Tone::Warning,
        format!(
            "Not known yet: GitHub has not said whether it created the deployment of {} to {where_to}",
            plan.label
        ),
    )
    .line("deploybot keeps checking (by its request id, never by deploying again) and will update this message")
    .line(format!(
        "to see for yourself: `deploys {} in {}`",
        plan.app.name, plan.env.name
    ));

    // The create runs in a task of its own, so that it goes on when the command has
    // answered; the command answers within `answer_within` whatever GitHub does.
    let gate = Arc::new(tokio::sync::Mutex::new(Gate::default()));
    let guard = bot.intents().creating(&request_id);
    let job = Create {
        bot: bot.clone(),
        request: request.clone(),
        cmd: cmd.clone(),
        plan,
        new,
        intent,
        notes,
        preflight,
        message_id: message_id.clone(),
        gate: gate.clone(),
        outcome: outcome.clone(),
    };
    let mut task = bot.intents().spawn(async move {
        let _guard = guard;
        job.run().await
    });
    let joined = |r: Result<Outcome, tokio::task::JoinError>, outcome: &Outcome| match r {
        Ok(o) => o,
        Err(e) => Outcome {
            decision: Decision::Failed,
            ..outcome.clone()
        }
        .detail(format!("creating the deployment stopped: {e}")),
    };
    if let Ok(r) = tokio::time::timeout_at(started + patience.still_trying, &mut task).await {
        return joined(r, &outcome);
    }
    {
        let gate = gate.lock().await;
        if !gate.done {
            if let Some(mid) = &message_id {
                bot.edit(&request.conversation, mid, &slow).await;
            }
        }
    }
    if let Ok(r) = tokio::time::timeout_at(started + patience.answer_within, &mut task).await {
        return joined(r, &outcome);
    }
    let mut g = gate.lock().await;
    if g.done {
        // The outcome arrived just now and is being shown: it is the answer.
        drop(g);
        return joined(task.await, &outcome);
    }
    g.answered = true;
    bot.update(&request.conversation, message_id.as_ref(), &unknown)
        .await;
    drop(g);
    Outcome {
        decision: Decision::Pending("github answer"),
        ..outcome
    }
    .detail(format!(
        "GitHub had not answered after {}; deploybot keeps checking (request {request_id})",
        crate::github::human_duration(patience.answer_within)
    ))
}

/// Everything the create needs, owned: it runs in its own task.
struct Create {
    bot: Bot,
    request: Request,
    cmd: Deploy,
    plan: Plan,
    new: NewDeployment,
    intent: Intent,
    notes: Vec<String>,
    preflight: Option<String>,
    message_id: Option<MessageId>,
    gate: Arc<tokio::sync::Mutex<Gate>>,
    outcome: Outcome,
}

impl Create {
    /// `POST /deployments` (never blindly retried; one retry after a 202 auto-merge,
    /// which creates nothing), then the outcome on the message, then the intent closed.
    async fn run(self) -> Outcome {
        let Create {
            bot,
            request,
            cmd,
            plan,
            new,
            intent,
            mut notes,
            preflight,
            message_id,
            gate,
            outcome,
        } = self;
        let bot = &bot;
        let cmd = &cmd;
        let repo = &plan.app.repository;
        let request_id = intent.request_id.as_str();
        let mut result = create_deployment_once(bot.github(), repo, &new, request_id).await;
        if let Ok(CreateResult::Answered(CreateOutcome::AutoMerged { message })) = &result {
            // 202: GitHub merged the default branch into the ref and created nothing. The
            // ref now points at the merge commit; asking once more deploys it.
            notes.push(format!(
                "GitHub auto-merged first ({message}), so no deployment existed yet; deploybot asked again"
            ));
            result = create_deployment_once(bot.github(), repo, &new, request_id).await;
        }

        // Refusals and failures: what to say, and how the intent ends (`None`: not known
        // yet, so it stays open and is looked up again in the background).
        let created = match result {
            Ok(CreateResult::Answered(CreateOutcome::Created(d))) => Ok(d),
            Ok(CreateResult::Recovered(d)) => {
                notes.push("GitHub's answer was lost on the way, but the deployment exists (found by its request id)".into());
                Ok(d)
            }
            Ok(CreateResult::Answered(CreateOutcome::AutoMerged { message })) => Err((
                Decision::Failed,
                Message::new(
                    Tone::Failed,
                    format!(
                        "Not deployed: GitHub auto-merged {} twice and created no deployment",
                        plan.label
                    ),
                )
                .line(message)
                .line(format!(
                    "try again in a minute: `{}`",
                    commands::Command::Deploy(cmd.clone())
                )),
                Some(IntentResolution::Refused),
            )),
            Ok(CreateResult::Answered(CreateOutcome::ChecksFailed { contexts, .. })) => Err((
                Decision::Refused("checks"),
                checks_failed(cmd, &plan, &contexts, std::mem::take(&mut notes)),
                Some(IntentResolution::Refused),
            )),
            Ok(CreateResult::Answered(CreateOutcome::MergeConflict { message })) => Err((
                Decision::Refused("merge conflict"),
                Message::new(
                    Tone::Failed,
                    format!(
                        "Not deployed: {} can't be merged with the default branch",
                        plan.label
                    ),
                )
                .line(format!("GitHub: {message}"))
                .line(format!(
                    "merge or rebase {} onto the default branch and push, then deploy again",
                    plan.git_ref
                )),
                Some(IntentResolution::Refused),
            )),
            Ok(CreateResult::Answered(CreateOutcome::Invalid { message, errors })) => Err((
                Decision::Refused("github validation"),
                invalid(&plan, &message, &errors),
                Some(IntentResolution::Refused),
            )),
            Err(e @ GitHubError::Unknown { .. }) => {
                Err((Decision::Failed, failed(bot, &plan, &e), None))
            }
            Err(e) => Err((
                Decision::Failed,
                failed(bot, &plan, &e),
                Some(IntentResolution::Failed),
            )),
        };
        let deployment = match created {
            Ok(d) => {
                notes.extend(preflight);
                d
            }
            Err((decision, reply, resolution)) => {
                let detail = reply.title.clone();
                let answered = {
                    let mut g = gate.lock().await;
                    g.done = true;
                    bot.update(&request.conversation, message_id.as_ref(), &reply)
                        .await;
                    g.answered
                };
                match resolution {
                    Some(r) => close(bot, request_id, r, None).await,
                    None => bot
                        .intents()
                        .check_later(request_id, bot.intents().patience().recheck_after),
                }
                if answered {
                    intents::audit(bot, &intent, decision.as_str(), None, detail.clone()).await;
                }
                return Outcome {
                    decision,
                    ..outcome
                }
                .detail(detail);
            }
        };

        // From here on the tracker owns the message: it renders "created" now and every
        // status the deployer reports later.
        let tracked = Tracked {
            notes,
            ..intent.tracked(&deployment)
        };
        let answered = {
            let mut g = gate.lock().await;
            g.done = true;
            if let Err(e) = bot.tracker().started(tracked.clone()).await {
                // Without storage the deployment still exists: say so, untracked.
                tracing::error!(error = %e, "cannot track a deployment");
                let message = render::progress(&tracked, bot.now()).line(format!(
                    "⚠️ deploybot cannot follow this deployment ({e}); watch it on GitHub"
                ));
                bot.update(&request.conversation, message_id.as_ref(), &message)
                    .await;
            }
            g.answered
        };
        // The requester's queue turn is used; `auto_lock` locks for them.
        flow::queue::created(bot, &request, &plan.app, &plan.env, &tracked).await;
        // Closed once tracked: a crash in between is reconciled by finding it again.
        close(
            bot,
            request_id,
            IntentResolution::Created,
            Some(deployment.id),
        )
        .await;
        let mut outcome = outcome;
        if cmd.force {
            // Break-glass: which freezes it went through, for the announcement and audit.
            let broken = flow::freeze::active(bot, &plan.app, &plan.env)
                .await
                .unwrap_or_default();
            if !broken.is_empty() {
                let reasons: Vec<&str> = broken.iter().map(|f| f.reason.as_str()).collect();
                outcome = outcome.detail(format!(
                    "break-glass through the freeze: {}",
                    reasons.join("; ")
                ));
            }
            announce_forced(
                bot,
                &request,
                cmd,
                &plan,
                deployment.id,
                deployment.sha.short(),
                &broken,
            )
            .await;
        }
        if answered {
            // The command's own outcome was "not known yet": count the creation here.
            bot.metrics()
                .deployment_created(&intent.app, &intent.environment);
            intents::audit(
                bot,
                &intent,
                "allowed",
                Some(deployment.id.0),
                format!("created #{} after the command had answered", deployment.id),
            )
            .await;
        }
        Outcome {
            deployment: Some(deployment.id),
            ..outcome
        }
    }
}

async fn close(
    bot: &Bot,
    request_id: &str,
    resolution: IntentResolution,
    deployment: Option<DeploymentId>,
) {
    if let Err(e) = bot
        .store()
        .close_intent(request_id, resolution, deployment, bot.now())
        .await
    {
        // Left open, it is looked up again in the background: harmless.
        tracing::warn!(error = %e, request_id, "cannot close a deployment intent");
    }
}

/// Break-glass is loud: who forced what, why, and which checks it skipped, here and,
/// for a production environment, in the app's notify channel.
async fn announce_forced(
    bot: &Bot,
    request: &Request,
    cmd: &Deploy,
    plan: &Plan,
    id: DeploymentId,
    sha7: &str,
    broken: &[flow::freeze::Active],
) {
    let mut m = Message::new(
        Tone::Warning,
        format!(
            "🚨 {} forced deployment #{id} of {} ({sha7}) to {}, skipping required checks",
            request.user.name,
            plan.label,
            destination(plan.env.name.as_str(), &cmd.hosts)
        ),
    )
    .field(
        "reason",
        cmd.reason.clone().unwrap_or_else(|| "none given".into()),
    );
    m = m.line(bypassed_line(plan));
    let now = bot.now();
    for f in broken {
        m = m.line(format!(
            "🧊 break-glass: it went through the freeze {}",
            f.describe(now)
        ));
    }
    bot.reply(request, m.clone()).await;
    // The notify channel hears of forced deploys to production only (README,
    // "Permissions"): a forced staging deploy is everyday work. Breaking a freeze is not.
    if !plan.env.production && broken.is_empty() {
        return;
    }
    if let Some(channel) = &plan.app.notify_channel {
        let here = &request.conversation;
        if !here.channel.eq_ignore_ascii_case(channel)
            && here
                .channel_name
                .as_deref()
                .map(|n| n.eq_ignore_ascii_case(channel))
                != Some(true)
        {
            let to = crate::chat::Conversation {
                adapter: here.adapter.clone(),
                channel: channel.clone(),
                channel_name: Some(channel.clone()),
                thread: None,
                interaction: None,
            };
            bot.say(&to, &m.line(format!("from {}", here.display())))
                .await;
        }
    }
}

/// The checks a forced deploy skips: "bypassed: ci/build: failure, security: pending".
fn bypassed_line(plan: &Plan) -> String {
    match &plan.bypassed {
        Some(list) if list.is_empty() => {
            "bypassed: nothing — every check was green at the time".to_string()
        }
        Some(list) => format!(
            "bypassed: {}",
            list.iter()
                .map(|c| format!("{}: {}", c.context, c.state))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "bypassed: unknown (GitHub did not list the checks)".to_string(),
    }
}

fn destination(env: &str, hosts: &[String]) -> String {
    if hosts.is_empty() {
        env.to_string()
    } else {
        format!("{env}/{}", hosts.join(","))
    }
}

fn new_deployment(
    request: &Request,
    cmd: &Deploy,
    plan: &Plan,
    request_id: &str,
    message_id: Option<String>,
    context: &Context,
    key: Option<&RoutingKey>,
) -> NewDeployment {
    let mut routing = DeploybotPayload {
        request_id: request_id.to_string(),
        chat: PayloadChat {
            adapter: request.conversation.adapter.clone(),
            channel: request.conversation.channel.clone(),
            thread: request.conversation.thread.clone(),
            message: message_id,
        },
        user: PayloadUser {
            id: request.user.id.clone(),
            name: request.user.name.clone(),
        },
        hosts: cmd.hosts.clone(),
        reason: cmd.reason.clone(),
        app: Some(plan.app.name.to_string()),
        rollback_of: context.rollback_of.map(|id| id.0),
        mac: None,
    };
    // The proof that deploybot wrote it, over everything it writes now (the message
    // was posted before, so its id is covered). GitHub's clock dates the deployment,
    // so the mac is dated by the wall clock, not the bot's (injectable) one.
    if let Some(key) = key {
        let signed = Signed {
            repository: &plan.app.repository,
            environment: plan.env.name.as_str(),
            git_ref: &plan.git_ref,
            task: &cmd.task,
            payload: &routing,
        };
        routing.mac = Some(key.sign(chrono::Utc::now(), &signed));
    }
    // App extras, then environment extras over them, then deploybot's own key.
    let mut payload = plan.app.payload.clone();
    payload.extend(plan.env.payload.clone());
    payload.insert("deploybot".into(), json!(routing));

    let mut description = format!(
        "{} {} to {} for {} in {} via deploybot",
        context.description.as_deref().unwrap_or(&cmd.task),
        plan.label,
        destination(plan.env.name.as_str(), &cmd.hosts),
        request.user.name,
        request.conversation.display()
    );
    if cmd.force {
        description.push_str(" (forced)");
    }
    NewDeployment {
        git_ref: plan.git_ref.clone(),
        task: cmd.task.clone(),
        environment: plan.env.name.to_string(),
        // Forcing skips every check and never merges: what is deployed is exactly the ref.
        required_contexts: if cmd.force {
            Some(Vec::new())
        } else {
            plan.env.required_contexts.clone()
        },
        auto_merge: !cmd.force && plan.env.auto_merge,
        production_environment: plan.env.production,
        transient_environment: plan.env.transient,
        description: truncate(&description, DESCRIPTION_MAX),
        payload: serde_json::Value::Object(payload),
    }
}

/// Cuts at a character boundary and marks the cut.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

fn checks_failed(
    cmd: &Deploy,
    plan: &Plan,
    contexts: &[ContextState],
    notes: Vec<String>,
) -> Message {
    let not_green: Vec<&ContextState> = contexts.iter().filter(|c| c.state != "success").collect();
    let shown = if not_green.is_empty() {
        contexts.iter().collect()
    } else {
        not_green
    };
    let mut m = Message::new(
        Tone::Failed,
        format!("Not deployed: checks on {} are not all green", plan.label),
    );
    for note in notes {
        m = m.line(note);
    }
    for c in &shown {
        m = m.line(format!("{}: {}", c.context, c.state));
    }
    if shown.is_empty() {
        m = m.line("GitHub did not say which checks");
    }
    let forced = commands::Command::Deploy(Deploy {
        force: true,
        reason: cmd
            .reason
            .clone()
            .or_else(|| plan.env.production.then(|| "REASON".to_string())),
        ..cmd.clone()
    })
    .to_string();
    let pending_only = shown.iter().all(|c| c.state == "pending");
    m = m.line(if pending_only {
        "wait for them to finish and deploy again".to_string()
    } else {
        "fix them and deploy again".to_string()
    });
    // Checks still running: waiting for them is the way on (`deploy … when green`).
    if pending_only && !shown.is_empty() {
        let when_green = Deploy {
            force: false,
            when_green: true,
            ..cmd.clone()
        };
        m = m.action(Action::WhenGreen {
            command: commands::Command::Deploy(when_green).to_string(),
        });
    }
    if plan.may_force {
        m = m.action(Action::Force { command: forced });
    } else {
        m = m.line(format!(
            "forcing past checks to {} needs the right role; ask someone who can force",
            plan.env.name
        ));
    }
    m
}

fn invalid(plan: &Plan, message: &str, errors: &[crate::github::ValidationItem]) -> Message {
    let lower = message.to_ascii_lowercase();
    if lower.contains("no ref found") || errors.iter().any(|e| e.field.as_deref() == Some("ref")) {
        return Message::new(
            Tone::Failed,
            format!("{} has no ref `{}`", plan.app.name, plan.git_ref),
        )
        .line(format!(
            "check the spelling, or push it to {} first",
            plan.app.repository
        ));
    }
    let mut m = Message::new(
        Tone::Failed,
        format!("GitHub refused the deployment: {message}"),
    );
    for e in errors {
        let detail = [e.field.as_deref(), e.code.as_deref(), e.message.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !detail.is_empty() {
            m = m.line(detail);
        }
    }
    m
}

fn failed(bot: &Bot, plan: &Plan, e: &GitHubError) -> Message {
    if let GitHubError::Unknown { .. } = e {
        return Message::new(
            Tone::Warning,
            format!(
                "Unknown: {} may or may not be deploying to {}",
                plan.label, plan.env.name
            ),
        )
        .line(e.explain(&plan.app.repository, bot.now()))
        .line(format!(
            "check with `deploys {} in {}` before deploying again",
            plan.app.name, plan.env.name
        ))
        .line("deploybot keeps looking for it (by its request id) and will update this message");
    }
    Message::new(Tone::Failed, format!("Not deployed: {}", plan.label))
        .line(e.explain(&plan.app.repository, bot.now()))
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn descriptions_fit_githubs_limit_without_splitting_characters() {
        let long = "ü".repeat(200);
        let t = truncate(&long, 140);
        assert_eq!(t.chars().count(), 140);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", 140), "short");
    }
}
