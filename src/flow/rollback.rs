//! `rollback[!] APP [in ENV] [force] [-- REASON]`: redeploys the exact sha of the
//! previous successful deployment in that environment (never a branch name, which may
//! have moved), through the same permission, lock and confirmation rules as a deploy.
//!
//! API calls: 1 list of the environment's deployments + 1 latest-status read per
//! deployment until the live one and the one before it are found (+1 full status list
//! for a candidate whose latest status is `inactive`), then what `deploy` makes.
//! GitHub gets until the "still trying" deadline (10 s) for the lookups; the deploy
//! that follows answers within the deploy's deadline counted from the command's start.

use commands::{Deploy, Rollback};

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::deploy::{after_yes, local_checks, run_deploy, Context};
use crate::flow::{answer_stop, unknown, Outcome, Stop};
use crate::github::{Deployment, DeploymentFilter};
use crate::history;
use crate::model::DeploymentState;
use crate::store::Confirmation;

/// How far back to look for the deployment to return to.
const SCAN: u8 = 30;

pub async fn run(bot: &Bot, request: &Request, cmd: Rollback) -> Outcome {
    run_with(bot, request, cmd, None).await
}

pub async fn run_confirmed(
    bot: &Bot,
    request: &Request,
    cmd: Rollback,
    confirmation: &Confirmation,
) -> Outcome {
    run_with(bot, request, cmd, Some(confirmation)).await
}

async fn run_with(
    bot: &Bot,
    request: &Request,
    cmd: Rollback,
    confirmed: Option<&Confirmation>,
) -> Outcome {
    let (deploy, context) = match prepare(bot, request, &cmd, confirmed).await {
        Ok(x) => x,
        Err(stop) => {
            let stop = after_yes(bot, request, confirmed, stop).await;
            return answer_stop(bot, request, stop).await;
        }
    };
    run_deploy(bot, request, deploy, confirmed, context).await
}

/// What a rollback in `environment` replaces, and the newest earlier successful
/// deployment of a different sha that was not itself rolled back from (so a second
/// `rollback` does not undo the first). What it replaces is what is live (the newest
/// successful deployment), unless the newest deployment there failed or errored: then
/// it is that one, and a rollback puts back what was live before it.
pub async fn find(
    bot: &Bot,
    repo: &crate::model::RepoName,
    environment: &str,
) -> Result<Option<(Deployment, Option<Deployment>)>, crate::github::GitHubError> {
    let filter = DeploymentFilter {
        environment: Some(environment.to_string()),
        per_page: Some(SCAN),
        ..Default::default()
    };
    let mut live: Option<Deployment> = None;
    let mut rolled_back_from = std::collections::HashSet::new();
    for (i, d) in bot
        .github()
        .deployments(repo, &filter)
        .await?
        .into_iter()
        .enumerate()
    {
        if let Some(of) = d.deploybot().and_then(|p| p.rollback_of) {
            rolled_back_from.insert(of);
        }
        if live.is_some() && rolled_back_from.contains(&d.id.0) {
            continue;
        }
        let latest = bot
            .github()
            .deployment_statuses(repo, d.id, Some(1))
            .await?;
        let state = latest.first().and_then(|s| s.state());
        if i == 0
            && matches!(
                state,
                Some(DeploymentState::Failure | DeploymentState::Error)
            )
        {
            live = Some(d);
            continue;
        }
        let succeeded = match state {
            Some(DeploymentState::Success) => true,
            // GitHub marks replaced deployments inactive; it was live once if it
            // ever succeeded.
            Some(DeploymentState::Inactive) if live.is_some() => bot
                .github()
                .deployment_statuses(repo, d.id, Some(100))
                .await?
                .iter()
                .any(|s| s.state() == Some(DeploymentState::Success)),
            _ => false,
        };
        if !succeeded {
            continue;
        }
        match &live {
            None => live = Some(d),
            Some(l) if l.sha != d.sha => return Ok(Some((l.clone(), Some(d)))),
            Some(_) => {}
        }
    }
    Ok(live.map(|l| (l, None)))
}

async fn prepare(
    bot: &Bot,
    request: &Request,
    cmd: &Rollback,
    confirmed: Option<&Confirmation>,
) -> Result<(Deploy, Context), Stop> {
    let config = bot.config();
    let app = crate::resolve::app(config, &request.conversation, Some(&cmd.app), |a| {
        format!("rollback {a}")
    })
    .map_err(unknown)?;
    let env = crate::resolve::environment(config, app, cmd.environment.as_deref(), |e| {
        format!("rollback {} in {e}", app.name)
    })
    .map_err(|m| unknown(m).on(app, None))?;
    let on = |s: Stop| s.on(app, Some(env));
    let mut deploy = Deploy {
        task: "deploy".to_string(),
        force: cmd.force,
        target: app.name.to_string(),
        environment: Some(env.name.to_string()),
        hosts: Vec::new(),
        reason: cmd.reason.clone(),
        queue: false,
        when_green: false,
    };
    // Every local rule first: nobody learns what is live, and GitHub is not asked,
    // unless this person may deploy here now.
    local_checks(bot, request, app, env, &deploy)
        .await
        .map_err(on)?;

    // GitHub gets until "still trying" to say what to go back to; the deploy that
    // follows answers within the same deadline as any deploy, counted from now.
    let started = tokio::time::Instant::now();
    let patience = bot.intents().patience();
    let found = tokio::time::timeout_at(
        started + patience.still_trying,
        find(bot, &app.repository, env.name.as_str()),
    )
    .await
    .map_err(|_| {
        on(Stop::failed(
            Message::new(
                Tone::Failed,
                format!(
                    "GitHub did not answer within {} while deploybot looked for what to roll {} in {} back to: nothing was deployed",
                    crate::github::human_duration(patience.still_trying),
                    app.name,
                    env.name
                ),
            )
            .line(format!(
                "try again in a minute: `{}`",
                commands::Command::Rollback(cmd.clone())
            )),
        ))
    })?
    .map_err(|e| {
            on(Stop::failed(
                Message::new(
                    Tone::Failed,
                    format!("could not read {}'s deployments in {}", app.name, env.name),
                )
                .line(e.explain(&app.repository, bot.now())),
            ))
        })?;
    // A Roll back button stands for one deployment: once another one is what a
    // rollback would replace, pressing it would undo something else.
    let offered = request.pressed.as_ref().and_then(|p| p.replacing);
    if let (Some(offered), Some((live, _))) = (offered, &found) {
        if live.id.0 != offered {
            return Err(on(Stop::refused(
                "button outdated",
                Message::refused(format!(
                    "this Roll back button was for #{offered}, but a rollback of {} in {} would now replace #{} ({} {}, by {}, {}): nothing was done",
                    app.name,
                    env.name,
                    live.id,
                    live.git_ref,
                    live.sha.short(),
                    history::who(live),
                    history::ago(bot.now(), live.created_at)
                ))
                .line(format!(
                    "to roll back #{} instead, type `{}`",
                    live.id,
                    commands::Command::Rollback(cmd.clone())
                )),
            )));
        }
    }
    let (live, previous) = match found {
        None => {
            return Err(on(Stop::refused(
                "nothing to roll back",
                Message::refused(format!(
                    "nothing is live in {} for {}: there is nothing to roll back",
                    env.name, app.name
                ))
                .line(format!("`deploys {} in {}` shows what was tried", app.name, env.name)),
            )))
        }
        Some((live, None)) => {
            return Err(on(Stop::refused(
                "nothing to roll back",
                Message::refused(format!(
                    "no earlier successful deployment of {} in {} to go back to (looked at the last {SCAN}, skipping ones already rolled back from)",
                    app.name, env.name
                ))
                .line(format!("live now: {} ({}), #{}", live.git_ref, live.sha.short(), live.id))
                .line(format!("deploy a known-good ref instead: `deploy {}/REF to {}`", app.name, env.name)),
            )))
        }
        Some((live, Some(previous))) => (live, previous),
    };
    // What to go back to changed since the question: it no longer holds, and the
    // deploy flow asks the new one.
    let stale = confirmed
        .filter(|c| c.expected_target.as_deref() != Some(previous.sha.as_str()))
        .map(|_| {
            format!(
                "the deployment to go back to changed since you were asked: now {} (#{}), replacing {} (#{})",
                previous.sha.short(),
                previous.id,
                live.sha.short(),
                live.id
            )
        });
    let now = bot.now();
    deploy.target = format!("{}/{}", app.name, previous.sha);
    let context = Context {
        description: Some(format!("rollback of #{}", live.id)),
        notes: vec![format!(
            "rollback: puts back {} (#{}, {} by {}, {}) in place of {} (#{}, {} by {}, {})",
            previous.sha.short(),
            previous.id,
            previous.git_ref,
            history::who(&previous),
            history::ago(now, previous.created_at),
            live.sha.short(),
            live.id,
            live.git_ref,
            history::who(&live),
            history::ago(now, live.created_at),
        )],
        started: Some(started),
        command: Some(commands::Command::Rollback(cmd.clone()).to_string()),
        summary: Some(format!(
            "roll back {} in {} to {} (#{}), replacing {} (#{})",
            app.name,
            env.name,
            previous.sha.short(),
            previous.id,
            live.sha.short(),
            live.id
        )),
        label: Some(format!("{}@{}", app.name, previous.sha.short())),
        intentional_rollback: true,
        target_sha: Some(previous.sha.to_string()),
        rollback_of: Some(live.id),
        stale,
        message: None,
    };
    Ok((deploy, context))
}
