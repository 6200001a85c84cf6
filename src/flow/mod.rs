//! The effect of each command, one file per command (`deploy.rs` does what
//! `commands/src/deploy.rs` parses). Flows use the core's ports through [`Bot`] and
//! answer every outcome, including refusals, with a [`Message`]; each returns an
//! [`Outcome`] that the core writes to the audit log.
//!
//! [`Bot`]: crate::bot::Bot

pub mod audit;
pub mod confirm;
pub mod deploy;
pub mod deploys;
pub mod dequeue;
pub mod environments;
pub mod freeze;
pub mod help;
pub mod lock;
pub mod locks;
pub mod queue;
pub mod rollback;
pub mod unfreeze;
pub mod unlock;
pub mod version;
pub mod whats_on;
pub mod when_green;
pub mod why;

use crate::chat::Message;
use crate::config::{AppConfig, EnvConfig};
use crate::model::DeploymentId;
use crate::policy::Refusal;

/// What a command attempt came to, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub app: Option<String>,
    pub environment: Option<String>,
    pub deployment: Option<DeploymentId>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused by this rule; nothing was changed.
    Refused(&'static str),
    /// Waiting for something (a confirmation).
    Pending(&'static str),
    /// Allowed, but GitHub or the store failed.
    Failed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Refused(_) => "refused",
            Decision::Pending(_) => "pending",
            Decision::Failed => "failed",
        }
    }

    pub fn rule(self) -> Option<&'static str> {
        match self {
            Decision::Refused(rule) | Decision::Pending(rule) => Some(rule),
            _ => None,
        }
    }
}

impl Outcome {
    pub fn new(decision: Decision) -> Outcome {
        Outcome {
            decision,
            app: None,
            environment: None,
            deployment: None,
            detail: None,
        }
    }

    pub fn allowed() -> Outcome {
        Outcome::new(Decision::Allowed)
    }

    pub fn on(mut self, app: &AppConfig, env: Option<&EnvConfig>) -> Outcome {
        self.app = Some(app.name.to_string());
        self.environment = env.map(|e| e.name.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Outcome {
        self.detail = Some(detail.into());
        self
    }
}

/// A flow that stops before acting: what to say, and the rule for the audit log.
#[derive(Debug, Clone)]
pub struct Stop {
    pub message: Message,
    pub decision: Decision,
    pub app: Option<String>,
    pub environment: Option<String>,
}

impl Stop {
    pub fn refused(rule: &'static str, message: Message) -> Stop {
        Stop {
            message,
            decision: Decision::Refused(rule),
            app: None,
            environment: None,
        }
    }

    pub fn failed(message: Message) -> Stop {
        Stop {
            message,
            decision: Decision::Failed,
            app: None,
            environment: None,
        }
    }

    /// Names the app and environment concerned, when known.
    pub fn on(mut self, app: &AppConfig, env: Option<&EnvConfig>) -> Stop {
        self.app = Some(app.name.to_string());
        self.environment = env.map(|e| e.name.to_string());
        self
    }

    pub fn outcome(&self) -> Outcome {
        Outcome {
            decision: self.decision,
            app: self.app.clone(),
            environment: self.environment.clone(),
            deployment: None,
            detail: Some(self.message.title.clone()),
        }
    }
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::refused(r.rule, refusal(r))
    }
}

/// A name that was not found (app, environment, ref): refused by "unknown".
pub fn unknown(message: Message) -> Stop {
    Stop::refused("unknown", message)
}

/// A policy refusal as a chat message: what was refused, by which rule, what to do.
pub fn refusal(r: Refusal) -> Message {
    Message::refused(r.reason)
        .line(r.hint)
        .field("rule", r.rule)
}

/// Answers a stop and turns it into the audit outcome.
pub async fn answer_stop(
    bot: &crate::bot::Bot,
    request: &crate::chat::Request,
    stop: Stop,
) -> Outcome {
    let outcome = stop.outcome();
    bot.reply(request, stop.message).await;
    outcome
}
