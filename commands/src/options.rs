//! Every command as a form: named options instead of a line.
//!
//! Chat platforms with forms (Discord's slash commands) offer each command with the
//! options its help page lists in [`CommandHelp::params`], and hand the filled-in form
//! back to [`from_options`], which builds the same [`Command`] the line would parse
//! to. The bot then handles its canonical text, so a form and a typed line can never
//! mean different things.
//!
//! ```text
//! /deploy app:api ref:topic environment:staging force:true reason:hotfix
//!   → deploy! api/topic to staging -- hotfix
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{all_help, Command, CommandHelp};

/// What an option holds, and so how a platform asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A configured app (platforms may complete it from the configuration).
    App,
    /// An environment or an alias (completed from the configuration).
    Environment,
    /// A branch, tag or sha (completed from the app's branches).
    Ref,
    /// One word: a task, a confirmation id.
    Word,
    /// Hosts, separated by commas or spaces.
    Hosts,
    /// A duration such as `30m` or `2h`.
    Duration,
    /// Free text on one line (a reason).
    Text,
    /// Yes or no.
    Flag,
    /// A whole number in a range.
    Count {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// One of the help pages' names.
    Topic,
}

/// One option of a command's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Lowercase ASCII, at most 32 characters (Discord's rule for option names).
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether the form cannot be sent without it.
    pub required: bool,
    /// One short sentence, at most 100 characters.
    pub description: &'static str,
}

impl Param {
    /// An optional parameter.
    pub const fn optional(name: &'static str, kind: Kind, description: &'static str) -> Param {
        Param {
            name,
            kind,
            required: false,
            description,
        }
    }

    /// A parameter the form needs.
    pub const fn required(name: &'static str, kind: Kind, description: &'static str) -> Param {
        Param {
            name,
            kind,
            required: true,
            description,
        }
    }
}

/// One filled-in value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Any text option (apps, refs, durations, reasons...).
    Text(String),
    /// A [`Kind::Flag`].
    Flag(bool),
    /// A [`Kind::Count`].
    Int(i64),
}

/// A filled-in form, by option name.
pub type Options = BTreeMap<String, Value>;

/// The command a filled-in form stands for, or what to tell its sender.
///
/// `name` is the command's name as its help page gives it (`deploy`, `whats-on`).
/// Names are checked for shape only (one word); the bot checks the rest when it
/// reads the command's canonical text, exactly as for a typed line.
pub fn from_options(name: &str, options: &Options) -> Result<Command, String> {
    let page = all_help().iter().find(|h| h.name == name).ok_or_else(|| {
        format!("`/{name}` is not one of deploybot's commands (any more); type `/help`")
    })?;
    (page.from_options)(&Form { page, options })
}

/// A form being read, with the page that describes it (for error messages).
pub struct Form<'a> {
    page: &'static CommandHelp,
    options: &'a Options,
}

impl Form<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        match self.options.get(name) {
            Some(Value::Text(s)) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        }
    }

    /// A name (app, ref, environment, task, id): one word, since anything else would
    /// read as more of the command.
    pub fn word(&self, name: &str) -> Result<Option<String>, String> {
        match self.text(name) {
            Some(s) if s.chars().any(char::is_whitespace) => Err(format!(
                "`{s}` is not a valid {name}: {name} names have no spaces"
            )),
            other => Ok(other.map(str::to_string)),
        }
    }

    /// A word the form cannot do without.
    pub fn needed(&self, name: &str) -> Result<String, String> {
        self.word(name)?
            .ok_or_else(|| format!("`/{}` needs `{name}`", self.page.name))
    }

    /// Free text made one line: reasons go at the end of a command, where newlines
    /// do not belong.
    pub fn line(&self, name: &str) -> Option<String> {
        self.text(name)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// A list of words, separated by commas or spaces.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|s| {
                s.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A flag; unset is `false`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.options.get(name), Some(Value::Flag(true)))
    }

    /// A count within its parameter's range.
    pub fn count(&self, name: &str) -> Result<Option<u32>, String> {
        let Some(Value::Int(n)) = self.options.get(name) else {
            return Ok(None);
        };
        let (min, max) = self
            .page
            .params
            .iter()
            .find_map(|p| match p.kind {
                Kind::Count { min, max } if p.name == name => Some((min, max)),
                _ => None,
            })
            .unwrap_or((0, u32::MAX));
        u32::try_from(*n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| format!("`{name}` is {min} to {max}"))
    }

    /// A duration, parsed as the line's `for DURATION` is.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        match self.text(name) {
            None => Ok(None),
            Some(s) => crate::parse_duration(s)
                .map(Some)
                .ok_or_else(|| format!("`{s}` is not a duration: write e.g. `30m`, `2h` or `1d`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn form(pairs: &[(&str, Value)]) -> Options {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    /// One filled-in form per command (two where the form has parts that combine),
    /// and the line it stands for.
    fn cases() -> Vec<(&'static str, Options, &'static str)> {
        vec![
            ("deploy", form(&[("app", t("api"))]), "deploy api"),
            ("deploy", form(&[("ref", t("topic"))]), "deploy topic"),
            (
                "deploy",
                form(&[
                    ("app", t("api")),
                    ("ref", t("feature/login")),
                    ("environment", t("prod")),
                    ("hosts", t("web-1, web-2")),
                    ("task", t("migrate")),
                    ("force", Value::Flag(true)),
                    ("reason", t("hotfix\nfor #42")),
                ]),
                "deploy:migrate! api/feature/login to prod/web-1,web-2 -- hotfix for #42",
            ),
            (
                "rollback",
                form(&[
                    ("app", t("api")),
                    ("environment", t("production")),
                    ("force", Value::Flag(true)),
                    ("reason", t("bad release")),
                ]),
                "rollback! api in production -- bad release",
            ),
            (
                "deploys",
                form(&[
                    ("app", t("api")),
                    ("environment", t("staging")),
                    ("last", Value::Int(5)),
                ]),
                "deploys api in staging last 5",
            ),
            (
                "deploys",
                form(&[("app", t("api")), ("ref", t("topic"))]),
                "deploys api/topic",
            ),
            ("environments", form(&[]), "environments"),
            (
                "environments",
                form(&[("app", t("web"))]),
                "environments web",
            ),
            (
                "whats-on",
                form(&[("environment", t("staging")), ("app", t("api"))]),
                "whats on staging for api",
            ),
            (
                "why",
                form(&[("environment", t("production")), ("app", t("api"))]),
                "why production on api",
            ),
            (
                "lock",
                form(&[
                    ("environment", t("production")),
                    ("app", t("api")),
                    ("for", t("2h")),
                    ("reason", t("release freeze")),
                ]),
                "lock production on api for 2h -- release freeze",
            ),
            (
                "lock",
                form(&[("environment", t("qa")), ("force", Value::Flag(true))]),
                "lock! qa",
            ),
            (
                "unlock",
                form(&[("environment", t("staging")), ("force", Value::Flag(true))]),
                "unlock! staging",
            ),
            ("locks", form(&[]), "locks"),
            (
                "queue",
                form(&[("environment", t("production")), ("app", t("api"))]),
                "queue production on api",
            ),
            ("queue", form(&[]), "queue"),
            (
                "dequeue",
                form(&[("environment", t("production"))]),
                "dequeue production",
            ),
            (
                "deploy",
                form(&[
                    ("app", t("api")),
                    ("environment", t("production")),
                    ("queue", Value::Flag(true)),
                ]),
                "deploy api to production queue",
            ),
            (
                "freeze",
                form(&[
                    ("environment", t("production")),
                    ("app", t("api")),
                    ("for", t("2h")),
                    ("reason", t("incident\n4711")),
                ]),
                "freeze production on api for 2h -- incident 4711",
            ),
            (
                "freeze",
                form(&[("reason", t("release day"))]),
                "freeze -- release day",
            ),
            (
                "unfreeze",
                form(&[("environment", t("production"))]),
                "unfreeze production",
            ),
            ("unfreeze", form(&[]), "unfreeze"),
            (
                "audit",
                form(&[("app", t("api")), ("environment", t("production"))]),
                "audit api in production",
            ),
            ("confirm", form(&[("id", t("3478be"))]), "confirm 3478be"),
            ("confirm", form(&[]), "confirm"),
            ("cancel", form(&[("id", t("3478be"))]), "cancel 3478be"),
            ("help", form(&[("command", t("whats-on"))]), "help whats on"),
            ("version", form(&[]), "version"),
        ]
    }

    #[test]
    fn every_command_has_a_form_that_means_the_same_as_its_line() {
        let cases = cases();
        for page in all_help() {
            assert!(
                cases.iter().any(|(name, _, _)| *name == page.name),
                "no form case for {}",
                page.name
            );
        }
        for (name, options, line) in cases {
            let command = from_options(name, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(command.to_string(), line, "{name}");
            assert_eq!(command.name(), name);
            // The line reads back as the same command.
            assert_eq!(parse(line), Ok(command), "{line}");
        }
    }

    #[test]
    fn forms_that_would_change_the_command_are_refused() {
        let refused = |name: &str, options: Options, wanted: &str| {
            let e = from_options(name, &options).unwrap_err();
            assert!(e.contains(wanted), "{name}: {e}");
        };
        refused("deploy", form(&[]), "what to deploy");
        refused(
            "deploy",
            form(&[("app", t("api to production"))]),
            "no spaces",
        );
        refused(
            "deploy",
            form(&[("app", t("api")), ("hosts", t("web-1"))]),
            "environment",
        );
        refused(
            "lock",
            form(&[("environment", t("qa")), ("for", t("soon"))]),
            "not a duration",
        );
        refused("lock", form(&[]), "needs `environment`");
        refused(
            "deploys",
            form(&[("app", t("api")), ("last", Value::Int(500))]),
            "1 to 100",
        );
        refused("rollback", form(&[]), "needs `app`");
        refused("launch", form(&[]), "/help");
    }

    #[test]
    fn every_parameter_fits_a_form() {
        for page in all_help() {
            let mut names = Vec::new();
            for p in page.params {
                assert!(
                    !p.name.is_empty()
                        && p.name.len() <= 32
                        && p.name.chars().all(|c| c.is_ascii_lowercase()),
                    "{}: {}",
                    page.name,
                    p.name
                );
                assert!(
                    !p.description.is_empty() && p.description.chars().count() <= 100,
                    "{}: {}",
                    page.name,
                    p.description
                );
                assert!(!names.contains(&p.name), "{}: {} twice", page.name, p.name);
                names.push(p.name);
            }
            // Discord lists required options first.
            let first_optional = page.params.iter().position(|p| !p.required);
            if let Some(i) = first_optional {
                assert!(
                    page.params[i..].iter().all(|p| !p.required),
                    "{}",
                    page.name
                );
            }
        }
    }
}
