//! The simulated deployer: what GitHub Actions, heaven or Argo would do on a
//! `deployment` event. Each step is a deployment status posted through the same code
//! path as `POST .../statuses`, so webhooks fire exactly as they would for a real one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service;
use crate::state::StatusRequest;
use crate::{deployer_user, lock, Inner, Run};

/// A deployment the deployer should work on.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub repo: String,
    pub deployment_id: u64,
    pub git_ref: String,
    pub environment: String,
}

/// How a run ends, decided when it starts (deterministic).
fn outcome(cfg: &crate::Deployer, job: &Job) -> &'static str {
    if cfg.error_refs.contains(&job.git_ref) {
        "error"
    } else if cfg.fail_refs.contains(&job.git_ref)
        || cfg.fail_environments.contains(&job.environment)
    {
        "failure"
    } else {
        "success"
    }
}

/// `https://<env>.<repo-name>.example.test`, with anything but [a-z0-9-] made a dash.
pub(crate) fn environment_url(environment: &str, repo: &str) -> String {
    let clean = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let name = repo.rsplit('/').next().unwrap_or(repo);
    format!(
        "https://{}.{}.example.test",
        clean(environment),
        clean(name)
    )
}

/// Waits `d`; false if the sandbox shut down meanwhile.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    let slept = tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.wait_for(|stopped| *stopped) => false,
    };
    slept && !*shutdown.borrow()
}

/// Starts a run for `job` if the deployer is enabled.
pub(crate) fn start(inner: &Arc<Inner>, job: Job) {
    let cfg = lock(&inner.deployer).clone();
    if !cfg.enabled {
        return;
    }
    let number = {
        let mut runs = lock(&inner.runs);
        let number = runs.len() as u64 + 1;
        runs.push(Run {
            number,
            repo: job.repo.clone(),
            deployment_id: job.deployment_id,
            lines: vec![],
        });
        number
    };
    let log_url = format!("{}/{}/actions/runs/{number}", inner.base, job.repo);
    let end = outcome(&cfg, &job);
    let (git_ref, env) = (&job.git_ref, &job.environment);
    let final_description = match end {
        "success" => format!("Deployed {git_ref} to {env}"),
        "failure" => format!("Deploying {git_ref} to {env} failed"),
        _ => format!("The deployer crashed while deploying {git_ref} to {env}"),
    };
    let steps = vec![
        StatusRequest {
            state: "queued".into(),
            description: Some(format!("Queued {git_ref} for {env}")),
            ..Default::default()
        },
        StatusRequest {
            state: "in_progress".into(),
            log_url: Some(log_url.clone()),
            description: Some(format!("Deploying {git_ref} to {env}")),
            ..Default::default()
        },
        StatusRequest {
            state: end.into(),
            log_url: Some(log_url),
            environment_url: (end == "success").then(|| environment_url(env, &job.repo)),
            description: Some(final_description),
            ..Default::default()
        },
    ];
    let inner = inner.clone();
    let mut shutdown = inner.shutdown.subscribe();
    inner.runtime.clone().spawn(async move {
        for step in steps {
            if !sleep_or_shutdown(&mut shutdown, cfg.step_delay).await {
                return;
            }
            let line = format!(
                "{} {}: {}",
                chrono::Utc::now().format("%H:%M:%S"),
                step.state,
                step.description.as_deref().unwrap_or_default()
            );
            if let Some(run) = lock(&inner.runs).iter_mut().find(|r| r.number == number) {
                run.lines.push(line);
            }
            let reply = service::create_deployment_status(
                &inner,
                &job.repo,
                job.deployment_id,
                &step,
                &deployer_user(),
            );
            if reply.status != 201 {
                tracing::warn!(
                    status = reply.status,
                    "simulated deployer could not post a status"
                );
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(git_ref: &str, env: &str) -> Job {
        Job {
            repo: "acme/api".into(),
            deployment_id: 1,
            git_ref: git_ref.into(),
            environment: env.into(),
        }
    }

    #[test]
    fn outcome_rules() {
        let cfg = crate::Deployer {
            fail_refs: vec!["broken".into()],
            fail_environments: vec!["qa".into()],
            error_refs: vec!["crash".into()],
            ..crate::Deployer::auto(Duration::ZERO)
        };
        assert_eq!(outcome(&cfg, &job("main", "staging")), "success");
        assert_eq!(outcome(&cfg, &job("broken", "staging")), "failure");
        assert_eq!(outcome(&cfg, &job("main", "qa")), "failure");
        assert_eq!(outcome(&cfg, &job("crash", "qa")), "error");
    }

    #[test]
    fn environment_urls() {
        assert_eq!(
            environment_url("staging", "acme/api"),
            "https://staging.api.example.test"
        );
        assert_eq!(
            environment_url("Prod/EU", "acme/My_App"),
            "https://prod-eu.my-app.example.test"
        );
    }
}
