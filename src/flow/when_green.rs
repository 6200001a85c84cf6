//! `deploy … when green`: the effect of [`commands::Deploy`] with `when_green`.
//!
//! Every local rule and the ref are checked first, through the deploy path's own
//! [`deploy::plan`] (channel, roles, lock, "did you mean"). Then the ref's commit and its
//! checks are read ([`crate::github::GitHub::ref_checks`]): green already → the deploy
//! runs now; a check failed → refused, saying which; else a [`Wait`] is stored (the
//! command, who asked and where, the commit asked for, the deadline) and one live
//! message shows what it waits for (`ci/build: pending`).
//!
//! From then on [`sweep`] (the leader's housekeeping, and a loop woken by check
//! webhooks — see `src/waits.rs`) evaluates each open wait: the ref moved on → ended,
//! naming the commit asked for; a check failed → ended, naming it; the deadline passed
//! → ended; all green → the wait is closed (one conditional `UPDATE`: the closer, and
//! only it, deploys) and the deploy runs through [`deploy::run_deploy`] as the person who
//! asked, with every rule checked again, its outcome shown in the same message.
//! `cancel` ends one's own wait.

use commands::{Cancel, Deploy};

use crate::bot::Bot;
use crate::chat::{Action, Addressing, ChatUser, Message, MessageId, Request, Tone};
use crate::config::EnvConfig;
use crate::flow::{answer_stop, deploy, Decision, Outcome, Stop};
use crate::github::{human_duration, ContextState};
use crate::model::Sha;
use crate::store::{StoreError, Wait, WaitResolution};

/// What the checks of the commit say, as far as the environment requires them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Green,
    /// Some checks failed (those).
    Failed(Vec<ContextState>),
    /// Nothing failed, something is not green yet: every required check, with its state.
    Pending(Vec<ContextState>),
}

/// The state a required context has before anything reported it.
const NOT_REPORTED: &str = "not reported yet";

/// The verdict on `contexts` (a commit's statuses and check runs) for `env`: its
/// `required_contexts` when listed (one not reported yet is pending), none when `[]`,
/// every context on the commit when the key is absent — what GitHub checks when the
/// deployment is created.
pub fn verdict(env: &EnvConfig, contexts: &[ContextState]) -> Verdict {
    let relevant: Vec<ContextState> = match &env.required_contexts {
        Some(list) => list
            .iter()
            .map(|name| {
                contexts
                    .iter()
                    .find(|c| c.context == *name)
                    .cloned()
                    .unwrap_or_else(|| ContextState {
                        context: name.clone(),
                        state: NOT_REPORTED.into(),
                    })
            })
            .collect(),
        None => contexts.to_vec(),
    };
    let failed: Vec<ContextState> = relevant
        .iter()
        .filter(|c| c.state == "failure" || c.state == "error")
        .cloned()
        .collect();
    if !failed.is_empty() {
        Verdict::Failed(failed)
    } else if relevant.iter().all(|c| c.state == "success") {
        Verdict::Green
    } else {
        Verdict::Pending(relevant)
    }
}

fn states(list: &[ContextState]) -> impl Iterator<Item = String> + '_ {
    list.iter().map(|c| format!("{}: {}", c.context, c.state))
}

/// `deploy … when green` typed (or its button pressed).
pub async fn run(bot: &Bot, request: &Request, cmd: Deploy) -> Outcome {
    let started = tokio::time::Instant::now();
    let now_cmd = Deploy {
        when_green: false,
        ..cmd.clone()
    };
    // Every local rule, the ref and the environment, as a deploy checks them.
    let plan = match deploy::plan(bot, request, &now_cmd, started).await {
        Ok(plan) => plan,
        Err(stop) => return answer_stop(bot, request, stop).await,
    };
    let outcome = Outcome::new(Decision::Pending("checks")).on(&plan.app, Some(&plan.env));
    let checks = match bot
        .github()
        .ref_checks(&plan.app.repository, &plan.git_ref)
        .await
    {
        Ok(checks) => checks,
        Err(e) => {
            let stop = Stop::failed(
                Message::new(
                    Tone::Failed,
                    format!("cannot wait for the checks on {}", plan.label),
                )
                .line(e.explain(&plan.app.repository, bot.now()))
                .line(format!(
                    "try again in a minute: `{}`",
                    commands::Command::Deploy(cmd)
                )),
            )
            .on(&plan.app, Some(&plan.env));
            return answer_stop(bot, request, stop).await;
        }
    };
    let label = format!("{} ({})", plan.label, checks.sha.short());
    match verdict(&plan.env, &checks.contexts) {
        // Nothing to wait for: the deploy runs now (and checks everything again).
        Verdict::Green => return deploy::run(bot, request, now_cmd).await,
        Verdict::Failed(failed) => {
            let mut m = Message::refused(format!(
                "not waiting: checks on {label} failed, so it would never be deployed"
            ));
            for line in states(&failed) {
                m = m.line(line);
            }
            m = m.line(format!(
                "fix them and push, then type `{}` again",
                commands::Command::Deploy(cmd)
            ));
            return answer_stop(
                bot,
                request,
                Stop::refused("checks", m).on(&plan.app, Some(&plan.env)),
            )
            .await;
        }
        Verdict::Pending(pending) => {
            let now = bot.now();
            let timeout = plan.env.when_green_timeout(&bot.config().defaults);
            let wait = Wait {
                id: uuid::Uuid::new_v4().simple().to_string()[..6].to_string(),
                command: commands::Command::Deploy(cmd).to_string(),
                requester_id: request.user.id.clone(),
                requester_name: request.user.name.clone(),
                requester_roles: request.user.roles.clone(),
                conversation: request.conversation.clone(),
                message_id: None,
                app: plan.app.name.to_string(),
                repository: plan.app.repository.clone(),
                environment: plan.env.name.to_string(),
                git_ref: plan.git_ref.clone(),
                sha: checks.sha.to_string(),
                created_at: now,
                deadline: crate::clock::later(now, timeout),
                pokes: 0,
            };
            match bot.store().add_wait(&wait).await {
                Ok(None) => {}
                // One wait per environment: the second would deploy over the first.
                Ok(Some(other)) => {
                    let stop = Stop::refused(
                        "waiting",
                        Message::refused(format!(
                            "{} already waits to deploy {}/{} ({}) to {} when green",
                            other.requester_name,
                            other.app,
                            other.git_ref,
                            Sha::new(&other.sha).short(),
                            other.environment
                        ))
                        .line(format!(
                            "one wait per environment: {} can end it with `cancel {}`, then type `{}` again",
                            other.requester_name, other.id, wait.command
                        )),
                    )
                    .on(&plan.app, Some(&plan.env));
                    return answer_stop(bot, request, stop).await;
                }
                Err(e) => {
                    let stop = Stop::failed(
                        Message::new(
                            Tone::Failed,
                            format!("cannot wait for the checks on {label}"),
                        )
                        .line(format!(
                            "deploybot cannot record the wait ({e}); try again once its storage works"
                        )),
                    )
                    .on(&plan.app, Some(&plan.env));
                    return answer_stop(bot, request, stop).await;
                }
            }
            bot.waits().evaluated(&wait, now);
            let message = waiting(&wait, &pending, now);
            bot.waits().changed(&wait.id, &message);
            if let Some(mid) = bot.reply(request, message).await {
                if let Err(e) = bot.store().set_wait_message(&wait.id, &mid.0).await {
                    tracing::warn!(error = %e, "cannot remember a wait's message");
                }
            }
            outcome.detail(format!("waiting for checks ({})", wait.id))
        }
    }
}

/// The live message of an open wait.
fn waiting(w: &Wait, pending: &[ContextState], now: chrono::DateTime<chrono::Utc>) -> Message {
    let mut m = Message::new(
        Tone::Working,
        format!(
            "Waiting for the checks on {}/{} ({}) to deploy it to {}",
            w.app,
            w.git_ref,
            Sha::new(&w.sha).short(),
            w.environment
        ),
    );
    for line in states(pending) {
        m = m.line(line);
    }
    let left = (w.deadline - now).to_std().unwrap_or_default();
    m.line(format!(
        "deploys as {} the moment they are all green; gives up at {} (in {})",
        w.requester_name,
        w.deadline.format("%H:%M UTC"),
        human_duration(left)
    ))
    .field("wait", w.id.clone())
    .action(Action::Cancel { id: w.id.clone() })
}

/// Evaluates every open wait that is due (the leader's housekeeping, and check
/// webhooks): ends those whose deadline passed, re-reads the checks of the others
/// when a webhook for their commit came in or [`crate::waits::POLL_EVERY`] passed.
pub async fn sweep(bot: &Bot) -> Result<(), StoreError> {
    let open = bot.store().open_waits().await?;
    for wait in open {
        let now = bot.now();
        if now < wait.deadline && !bot.waits().due(&wait, now) {
            continue;
        }
        let Some(_busy) = bot.waits().claim(&wait.id) else {
            continue;
        };
        evaluate(bot, &wait).await;
    }
    Ok(())
}

async fn evaluate(bot: &Bot, w: &Wait) {
    let now = bot.now();
    let config = bot.config();
    let found = config
        .apps
        .iter()
        .find(|a| a.name.as_str() == w.app)
        .and_then(|app| {
            app.environments
                .iter()
                .find(|e| e.name.as_str() == w.environment)
        });
    let Some(env) = found else {
        let m = Message::new(
            Tone::Failed,
            format!(
                "Not deployed: {} {} is no longer configured",
                w.app, w.environment
            ),
        )
        .line("stopped waiting for the checks");
        end(bot, w, WaitResolution::Abandoned, m).await;
        return;
    };
    if now >= w.deadline {
        let timeout = (w.deadline - w.created_at).to_std().unwrap_or_default();
        let mut m = Message::new(
            Tone::Failed,
            format!(
                "Not deployed: the checks on {}/{} ({}) were not all green after {}",
                w.app,
                w.git_ref,
                Sha::new(&w.sha).short(),
                human_duration(timeout)
            ),
        );
        if let Ok(checks) = bot.github().ref_checks(&w.repository, &w.git_ref).await {
            if let Verdict::Pending(pending) = verdict(env, &checks.contexts) {
                for line in states(&pending) {
                    m = m.line(line);
                }
            }
        }
        m = m.line(format!("to wait again, type `{}`", w.command));
        end(bot, w, WaitResolution::TimedOut, m).await;
        return;
    }
    let checks = match bot.github().ref_checks(&w.repository, &w.git_ref).await {
        Ok(c) => c,
        Err(e) => {
            // Tried again at the next round; the deadline bounds it.
            tracing::warn!(error = %e, wait = %w.id, "cannot read the checks of a wait");
            bot.waits().evaluated(w, now);
            return;
        }
    };
    bot.waits().evaluated(w, now);
    let asked = Sha::new(&w.sha);
    if checks.sha != asked {
        let m = Message::new(
            Tone::Failed,
            format!(
                "Not deployed: {} moved on — {}, the commit asked for, is no longer its head (now {})",
                w.git_ref,
                asked.short(),
                checks.sha.short()
            ),
        )
        .line(format!(
            "to wait for the new commit, type `{}`",
            w.command
        ));
        end(bot, w, WaitResolution::Moved, m).await;
        return;
    }
    match verdict(env, &checks.contexts) {
        Verdict::Pending(pending) => {
            let m = waiting(w, &pending, now);
            if bot.waits().changed(&w.id, &m) {
                show(bot, w, &m).await;
            }
        }
        Verdict::Failed(failed) => {
            let names: Vec<&str> = failed.iter().map(|c| c.context.as_str()).collect();
            let mut m = Message::new(
                Tone::Failed,
                format!(
                    "Not deployed: {} failed on {}/{} ({})",
                    names.join(", "),
                    w.app,
                    w.git_ref,
                    asked.short()
                ),
            );
            for line in states(&failed) {
                m = m.line(line);
            }
            m = m.line(format!(
                "stopped waiting; fix it and push, then type `{}` again",
                w.command
            ));
            end(bot, w, WaitResolution::Failed, m).await;
        }
        Verdict::Green => deploy_now(bot, w).await,
    }
}

/// Closes the wait as green and, if this caller closed it, deploys as its requester.
async fn deploy_now(bot: &Bot, w: &Wait) {
    match bot
        .store()
        .close_wait(&w.id, WaitResolution::Green, bot.now())
        .await
    {
        Ok(true) => {}
        // Someone else closed it (another instance, a racing evaluation, `cancel`).
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, wait = %w.id, "cannot close a wait; trying again later");
            return;
        }
    }
    bot.waits().forget(&w.id);
    let Ok(commands::Command::Deploy(cmd)) = commands::parse(&w.command) else {
        tracing::error!(wait = %w.id, command = %w.command, "a stored wait's command does not parse");
        return;
    };
    let cmd = Deploy {
        when_green: false,
        ..cmd
    };
    let request = Request {
        conversation: w.conversation.clone(),
        message_id: None,
        user: ChatUser {
            id: w.requester_id.clone(),
            name: w.requester_name.clone(),
            roles: w.requester_roles.clone(),
        },
        text: w.command.clone(),
        addressing: Addressing::Direct,
        pressed: None,
    };
    // Until the deploy path has its say (a question, a refusal, the deployment).
    show(
        bot,
        w,
        &Message::new(
            Tone::Working,
            format!(
                "The checks on {}/{} ({}) are green: deploying it to {} as {} asked",
                w.app,
                w.git_ref,
                Sha::new(&w.sha).short(),
                w.environment,
                w.requester_name
            ),
        ),
    )
    .await;
    let context = deploy::Context {
        message: w.message_id.clone().map(MessageId),
        notes: vec![format!(
            "the checks on {} went green; deploying as {} asked",
            Sha::new(&w.sha).short(),
            w.requester_name
        )],
        ..deploy::Context::default()
    };
    let outcome = deploy::run_deploy(bot, &request, cmd, None, context).await;
    bot.record(&request, "deploy", &outcome).await;
}

/// Ends the wait with `message` in its live message, if this caller closed it.
async fn end(bot: &Bot, w: &Wait, how: WaitResolution, message: Message) -> bool {
    match bot.store().close_wait(&w.id, how, bot.now()).await {
        Ok(true) => {
            bot.waits().forget(&w.id);
            show(bot, w, &message).await;
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(error = %e, wait = %w.id, "cannot close a wait; trying again later");
            false
        }
    }
}

async fn show(bot: &Bot, w: &Wait, message: &Message) {
    let id = w.message_id.clone().map(MessageId);
    bot.update(&w.conversation, id.as_ref(), message).await;
}

/// `cancel [ID]` / `no`: ends the requester's own wait, or (otherwise) cancels a
/// pending confirmation as before. Without an id, a confirmation of theirs in this
/// channel goes first, then their newest wait here.
pub async fn cancel(bot: &Bot, request: &Request, cmd: Cancel) -> Outcome {
    let open = match bot.store().open_waits().await {
        Ok(open) => open,
        Err(_) => return crate::flow::confirm::cancel(bot, request, cmd).await,
    };
    let wait = match &cmd.id {
        Some(id) => open.iter().find(|w| w.id.eq_ignore_ascii_case(id)),
        None => {
            let channel = &request.conversation.channel;
            let confirmation = bot
                .store()
                .pending_confirmations(channel, bot.now())
                .await
                .unwrap_or_default()
                .into_iter()
                .any(|c| c.requester_id == request.user.id);
            if confirmation {
                None
            } else {
                open.iter().rev().find(|w| {
                    w.requester_id == request.user.id && w.conversation.channel == *channel
                })
            }
        }
    };
    let Some(w) = wait else {
        return crate::flow::confirm::cancel(bot, request, cmd).await;
    };
    let on = |o: Outcome| Outcome {
        app: Some(w.app.clone()),
        environment: Some(w.environment.clone()),
        ..o
    };
    if w.requester_id != request.user.id {
        let stop = Stop::refused(
            "confirmation",
            Message::refused(format!(
                "only {} can cancel “{}”",
                w.requester_name, w.command
            ))
            .line("you have nothing waiting for green checks here"),
        );
        return on(answer_stop(bot, request, stop).await);
    }
    let message = Message::info(format!(
        "cancelled by {}: `{}`",
        request.user.name, w.command
    ))
    .line(format!(
        "stopped waiting for the checks on {}/{} ({}); nothing was deployed",
        w.app,
        w.git_ref,
        Sha::new(&w.sha).short()
    ));
    if !end(bot, w, WaitResolution::Cancelled, message.clone()).await {
        let stop = Stop::refused(
            "confirmation",
            Message::refused(format!("“{}” is not waiting any more", w.command))
                .line("it ended just now; its message says how"),
        );
        return on(answer_stop(bot, request, stop).await);
    }
    if w.message_id.is_none() {
        bot.reply(request, message).await;
    }
    on(Outcome::allowed().detail(format!("cancelled wait {}", w.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(required: Option<&[&str]>) -> EnvConfig {
        let text = match required {
            None => "[apps.a]\nrepository = \"o/a\"\n[apps.a.environments.e]\n".to_string(),
            Some(list) => format!(
                "[apps.a]\nrepository = \"o/a\"\n[apps.a.environments.e]\nrequired_contexts = {:?}\n",
                list
            ),
        };
        let text = format!("[github]\ntoken = \"t\"\n{text}");
        let config =
            crate::config::Config::parse(&text, std::path::Path::new("t.toml"), &|_| None).unwrap();
        config.apps[0].environments[0].clone()
    }

    fn c(context: &str, state: &str) -> ContextState {
        ContextState {
            context: context.into(),
            state: state.into(),
        }
    }

    #[test]
    fn the_verdict_reads_the_checks_the_environment_requires() {
        let some = env(Some(&["ci/build"]));
        let all = env(None);
        let none = env(Some(&[]));
        let checks = [c("ci/build", "pending"), c("lint", "failure")];
        assert_eq!(
            verdict(&some, &checks),
            Verdict::Pending(vec![c("ci/build", "pending")])
        );
        assert_eq!(
            verdict(&all, &checks),
            Verdict::Failed(vec![c("lint", "failure")])
        );
        assert_eq!(verdict(&none, &checks), Verdict::Green);
        // A required context nobody reported yet is waited for.
        assert_eq!(
            verdict(&some, &[c("lint", "success")]),
            Verdict::Pending(vec![c("ci/build", NOT_REPORTED)])
        );
        assert_eq!(verdict(&some, &[c("ci/build", "success")]), Verdict::Green);
        assert_eq!(
            verdict(&some, &[c("ci/build", "error")]),
            Verdict::Failed(vec![c("ci/build", "error")])
        );
        assert_eq!(verdict(&all, &[]), Verdict::Green);
    }
}
