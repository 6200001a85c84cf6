//! The effect of each command, one file per command (`deploy.rs` does what
//! `commands/src/deploy.rs` parses). Flows use the core's ports through [`Bot`] and
//! answer every outcome, including refusals, with a [`Message`].
//!
//! [`Bot`]: crate::bot::Bot

pub mod deploy;
pub mod deploys;
pub mod environments;
pub mod help;
pub mod version;

use crate::chat::Message;
use crate::policy::Refusal;

/// A policy refusal as a chat message: what was refused, by which rule, what to do.
pub fn refusal(r: Refusal) -> Message {
    Message::refused(r.reason)
        .line(r.hint)
        .field("rule", r.rule)
}
