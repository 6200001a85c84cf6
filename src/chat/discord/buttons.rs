//! Button and modal custom ids: what a press means.
//!
//! A custom id carries the whole action when it fits Discord's 100 characters:
//! `db1:f:deploy! api/broken to staging` (force), `db1:b:42:rollback api in staging`
//! (roll back, while deployment 42 is the one it replaces), `db1:t:deploy api/topic to
//! staging` (retry), `db1:u:unlock staging on api` (unlock), `db1:c:ID` (confirm),
//! `db1:x:ID` (cancel), `db1:g:deploy api/topic to staging when green` (deploy when
//! green), `db1:q:deploy api to production queue` (wait in line), `db1:k:lock
//! production on api` (keep a lock its holder was reminded of), `db1:r:COMMAND` (the
//! reason modal of a forced production deploy). A
//! longer one is kept in memory and the id carries a digest instead (`db1:f#3a9c…`),
//! so after a restart such a button is *stale* and its presser is told what to type.
//!
//! A custom id only ever says which command to run; the presser runs it as
//! themselves, and the core authorises it again like any typed command. Forging one
//! gains nothing a person could not type.

use std::collections::VecDeque;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::render::limits;
use crate::chat::Action;

const VERSION: &str = "db1";
/// How many long commands are remembered (oldest forgotten first).
const REMEMBERED: usize = 4096;
/// The placeholder the core puts in a forced production deploy: it needs a reason.
pub const REASON_PLACEHOLDER: &str = "-- REASON";
/// The custom id of the reason field in the modal.
pub const REASON_INPUT: &str = "reason";

/// What a press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    /// Run this (forced) deploy command as the presser.
    Force(String),
    /// Run this `rollback`, if deployment `replacing` is still what it replaces.
    Rollback {
        command: String,
        replacing: u64,
    },
    /// Run this `deploy` again.
    Retry(String),
    /// Run this `unlock`.
    Unlock(String),
    /// Open a modal asking for the reason, then run the command with it.
    AskReason(String),
    Confirm(String),
    Cancel(String),
    /// Run this `deploy … queue`.
    Queue(String),
    /// Run this `lock` (the holder keeping their lock).
    Keep(String),
    /// Run this `deploy … when green`.
    WhenGreen(String),
}

/// Why a press cannot be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Ours, but from before a restart (its long command was only in memory).
    Stale,
    /// Not a deploybot button, or from an unknown version.
    Foreign,
}

#[derive(Default)]
pub struct Buttons {
    long: Mutex<VecDeque<(String, String)>>,
}

fn digest(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    hex::encode(&d[..12])
}

impl Buttons {
    fn encode(&self, kind: char, payload: &str) -> String {
        let id = format!("{VERSION}:{kind}:{payload}");
        if id.chars().count() <= limits::CUSTOM_ID {
            return id;
        }
        let key = digest(payload);
        let mut long = self.long.lock().unwrap_or_else(|e| e.into_inner());
        if !long.iter().any(|(k, _)| *k == key) {
            if long.len() >= REMEMBERED {
                long.pop_front();
            }
            long.push_back((key.clone(), payload.to_string()));
        }
        format!("{VERSION}:{kind}#{key}")
    }

    /// The custom id of an action's button; `None` if it cannot be a button.
    pub fn custom_id(&self, action: &Action) -> Option<String> {
        Some(match action {
            Action::Force { command } => self.encode('f', command),
            Action::Rollback { command, replacing } => {
                self.encode('b', &format!("{replacing}:{command}"))
            }
            Action::Retry { command } => self.encode('t', command),
            Action::Unlock { command } => self.encode('u', command),
            Action::Confirm { id } => self.encode('c', id),
            Action::Cancel { id } => self.encode('x', id),
            Action::Queue { command } => self.encode('q', command),
            Action::Keep { command } => self.encode('k', command),
            Action::WhenGreen { command } => self.encode('g', command),
        })
    }

    /// The custom id of the modal that asks for a forced deploy's reason.
    pub fn reason_modal_id(&self, command: &str) -> String {
        self.encode('r', command)
    }

    /// What a pressed button (or submitted modal) means.
    pub fn decode(&self, custom_id: &str) -> Result<Press, Unusable> {
        let rest = custom_id.strip_prefix(VERSION).ok_or(Unusable::Foreign)?;
        let (kind, payload) = if let Some(rest) = rest.strip_prefix(':') {
            let mut chars = rest.chars();
            let kind = chars.next().ok_or(Unusable::Foreign)?;
            match chars.as_str().strip_prefix(':') {
                Some(p) => (kind, p.to_string()),
                None => match chars.as_str().strip_prefix('#') {
                    Some(key) => {
                        let long = self.long.lock().unwrap_or_else(|e| e.into_inner());
                        let found = long.iter().find(|(k, _)| k == key).map(|(_, p)| p.clone());
                        (kind, found.ok_or(Unusable::Stale)?)
                    }
                    None => return Err(Unusable::Foreign),
                },
            }
        } else {
            return Err(Unusable::Foreign);
        };
        match kind {
            'f' => {
                if !is_forced_deploy(&payload) {
                    return Err(Unusable::Foreign);
                }
                if payload.trim_end().ends_with(REASON_PLACEHOLDER) {
                    Ok(Press::AskReason(payload))
                } else {
                    Ok(Press::Force(payload))
                }
            }
            'r' if is_forced_deploy(&payload) => Ok(Press::AskReason(payload)),
            'b' => {
                let (replacing, command) = payload.split_once(':').ok_or(Unusable::Foreign)?;
                let replacing = replacing.parse().map_err(|_| Unusable::Foreign)?;
                match commands::parse(command) {
                    Ok(commands::Command::Rollback(_)) => Ok(Press::Rollback {
                        command: command.to_string(),
                        replacing,
                    }),
                    _ => Err(Unusable::Foreign),
                }
            }
            't' => match commands::parse(&payload) {
                Ok(commands::Command::Deploy(_)) => Ok(Press::Retry(payload)),
                _ => Err(Unusable::Foreign),
            },
            'u' => match commands::parse(&payload) {
                Ok(commands::Command::Unlock(_)) => Ok(Press::Unlock(payload)),
                _ => Err(Unusable::Foreign),
            },
            'q' => match commands::parse(&payload) {
                Ok(commands::Command::Deploy(d)) if d.queue => Ok(Press::Queue(payload)),
                _ => Err(Unusable::Foreign),
            },
            'k' => match commands::parse(&payload) {
                Ok(commands::Command::Lock(_)) => Ok(Press::Keep(payload)),
                _ => Err(Unusable::Foreign),
            },
            'g' => match commands::parse(&payload) {
                Ok(commands::Command::Deploy(d)) if d.when_green => Ok(Press::WhenGreen(payload)),
                _ => Err(Unusable::Foreign),
            },
            'c' => Ok(Press::Confirm(payload)),
            'x' => Ok(Press::Cancel(payload)),
            _ => Err(Unusable::Foreign),
        }
    }
}

/// A force button only ever runs a forced deploy.
fn is_forced_deploy(command: &str) -> bool {
    matches!(commands::parse(command), Ok(commands::Command::Deploy(d)) if d.force)
}

/// The command with the placeholder reason replaced by what the presser typed (made
/// one line). `None` when the reason is blank.
pub fn with_reason(command: &str, reason: &str) -> Option<String> {
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if reason.is_empty() {
        return None;
    }
    let base = command.trim_end();
    let base = base
        .strip_suffix(REASON_PLACEHOLDER)
        .unwrap_or(base)
        .trim_end();
    Some(format!("{base} -- {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_actions_travel_in_the_custom_id_and_survive_a_restart() {
        let b = Buttons::default();
        let id = b
            .custom_id(&Action::Force {
                command: "deploy! api/broken to staging".into(),
            })
            .unwrap();
        assert_eq!(id, "db1:f:deploy! api/broken to staging");
        let restarted = Buttons::default();
        assert_eq!(
            restarted.decode(&id),
            Ok(Press::Force("deploy! api/broken to staging".into()))
        );
        let confirm = b.custom_id(&Action::Confirm { id: "a1".into() }).unwrap();
        assert_eq!(restarted.decode(&confirm), Ok(Press::Confirm("a1".into())));
        let cancel = b.custom_id(&Action::Cancel { id: "a1".into() }).unwrap();
        assert_eq!(restarted.decode(&cancel), Ok(Press::Cancel("a1".into())));
    }

    #[test]
    fn next_step_buttons_carry_their_command_and_only_that_kind_of_command() {
        let b = Buttons::default();
        let rollback = b
            .custom_id(&Action::Rollback {
                command: "rollback api in staging".into(),
                replacing: 42,
            })
            .unwrap();
        assert_eq!(rollback, "db1:b:42:rollback api in staging");
        assert_eq!(
            Buttons::default().decode(&rollback),
            Ok(Press::Rollback {
                command: "rollback api in staging".into(),
                replacing: 42
            })
        );
        let retry = b
            .custom_id(&Action::Retry {
                command: "deploy api/topic to staging".into(),
            })
            .unwrap();
        assert_eq!(
            b.decode(&retry),
            Ok(Press::Retry("deploy api/topic to staging".into()))
        );
        let unlock = b
            .custom_id(&Action::Unlock {
                command: "unlock staging on api".into(),
            })
            .unwrap();
        assert_eq!(
            b.decode(&unlock),
            Ok(Press::Unlock("unlock staging on api".into()))
        );
        let queue = b
            .custom_id(&Action::Queue {
                command: "deploy api to production queue".into(),
            })
            .unwrap();
        assert_eq!(
            b.decode(&queue),
            Ok(Press::Queue("deploy api to production queue".into()))
        );
        let keep = b
            .custom_id(&Action::Keep {
                command: "lock production on api".into(),
            })
            .unwrap();
        assert_eq!(
            b.decode(&keep),
            Ok(Press::Keep("lock production on api".into()))
        );
        let when_green = b
            .custom_id(&Action::WhenGreen {
                command: "deploy api/topic to staging when green".into(),
            })
            .unwrap();
        assert_eq!(when_green, "db1:g:deploy api/topic to staging when green");
        assert_eq!(
            Buttons::default().decode(&when_green),
            Ok(Press::WhenGreen(
                "deploy api/topic to staging when green".into()
            ))
        );
        // A forged id runs nothing but its own kind of command.
        for forged in [
            "db1:q:deploy api to production",
            "db1:q:unlock production",
            "db1:k:unlock production on api",
            "db1:b:42:deploy! api to production",
            "db1:b:x:rollback api",
            "db1:b:rollback api",
            "db1:t:lock production",
            "db1:u:deploy api",
            "db1:g:deploy api/topic to staging",
            "db1:g:deploy! api/topic to staging",
            "db1:g:unlock staging",
        ] {
            assert_eq!(b.decode(forged), Err(Unusable::Foreign), "{forged}");
        }
    }

    #[test]
    fn long_commands_are_remembered_and_stale_after_a_restart() {
        let b = Buttons::default();
        let command = format!("deploy! api/{} to staging", "x".repeat(150));
        let id = b
            .custom_id(&Action::Force {
                command: command.clone(),
            })
            .unwrap();
        assert!(id.chars().count() <= limits::CUSTOM_ID, "{id}");
        assert_eq!(b.decode(&id), Ok(Press::Force(command)));
        assert_eq!(Buttons::default().decode(&id), Err(Unusable::Stale));
    }

    #[test]
    fn other_buttons_are_foreign() {
        let b = Buttons::default();
        for id in [
            "",
            "db1",
            "db1:",
            "db1:q:x",
            "other:f:deploy! api",
            "db2:f:deploy! api",
            "db1:f:lock staging",
            "db1:f:deploy api",
        ] {
            assert_eq!(b.decode(id), Err(Unusable::Foreign), "{id}");
        }
    }

    #[test]
    fn a_production_force_asks_for_the_reason() {
        let b = Buttons::default();
        let id = b
            .custom_id(&Action::Force {
                command: "deploy! api/broken to production -- REASON".into(),
            })
            .unwrap();
        let Ok(Press::AskReason(command)) = b.decode(&id) else {
            panic!("{id}");
        };
        let modal = b.reason_modal_id(&command);
        assert_eq!(b.decode(&modal), Ok(Press::AskReason(command.clone())));
        assert_eq!(
            with_reason(&command, "  hotfix\nfor  the outage "),
            Some("deploy! api/broken to production -- hotfix for the outage".into())
        );
        assert_eq!(with_reason(&command, "   "), None);
    }
}
