//! Slash commands: their definitions (described by the `commands` crate's help pages),
//! each invocation turned into its canonical text twin for [`crate::bot::Bot::handle`],
//! and autocompletion of apps, environments and refs.

use std::collections::BTreeMap;
use std::time::Duration;

use serenity::builder::{CreateCommand, CreateCommandOption};
use serenity::model::application::{CommandDataOption, CommandDataOptionValue, CommandOptionType};

use super::render::truncate;
use crate::config::Config;

/// The slash commands deploybot registers.
#[cfg(test)]
const NAMES: [&str; 7] = [
    "deploy",
    "deploys",
    "environments",
    "lock",
    "unlock",
    "locks",
    "help",
];

/// Discord's limits for commands and choices.
const DESCRIPTION: usize = 100;
const CHOICES: usize = 25;
const CHOICE_TEXT: usize = 100;

/// One option value as typed (autocomplete sends partial strings).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    Int(i64),
}

/// An invocation's options by name.
pub type Options = BTreeMap<String, Value>;

/// The options of an invocation (or of an autocomplete request, partial values
/// included), and the name of the option being completed, if any.
pub fn options(data: &[CommandDataOption]) -> (Options, Option<String>) {
    let mut out = Options::new();
    let mut focused = None;
    for o in data {
        let value = match &o.value {
            CommandDataOptionValue::String(s) => Value::Text(s.clone()),
            CommandDataOptionValue::Boolean(b) => Value::Bool(*b),
            CommandDataOptionValue::Integer(i) => Value::Int(*i),
            CommandDataOptionValue::Autocomplete { value, .. } => {
                focused = Some(o.name.clone());
                Value::Text(value.clone())
            }
            _ => continue,
        };
        out.insert(o.name.clone(), value);
    }
    (out, focused)
}

fn summary(name: &str) -> String {
    let text = commands::all_help()
        .iter()
        .find(|h| h.name == name)
        .map_or(name, |h| h.summary);
    truncate(text, DESCRIPTION)
}

fn text(name: &str, description: &str) -> CreateCommandOption {
    CreateCommandOption::new(CommandOptionType::String, name, description)
}

fn flag(name: &str, description: &str) -> CreateCommandOption {
    CreateCommandOption::new(CommandOptionType::Boolean, name, description)
}

/// The names of [`definitions`], as Discord lists them.
pub fn names() -> Vec<String> {
    definitions()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect()
}

/// The definitions registered at startup (a bulk overwrite: removed ones disappear).
pub fn definitions() -> Vec<CreateCommand> {
    let app = |required: bool| {
        text("app", "The app, as configured (e.g. api)")
            .required(required)
            .set_autocomplete(true)
    };
    let environment = |required: bool| {
        text("environment", "The environment, or an alias (e.g. staging)")
            .required(required)
            .set_autocomplete(true)
    };
    let git_ref = text(
        "ref",
        "A branch, tag or sha; without an app, a ref of this channel's app",
    )
    .set_autocomplete(true);
    let help_topics = commands::all_help()
        .iter()
        .take(CHOICES)
        .fold(text("command", "The command to explain"), |o, h| {
            o.add_string_choice(h.name, h.name)
        });
    vec![
        CreateCommand::new("deploy")
            .description(summary("deploy"))
            .add_option(app(false))
            .add_option(git_ref.clone())
            .add_option(environment(false))
            .add_option(flag("force", "Skip the required checks (if your role may)"))
            .add_option(text("reason", "Why; needed to force a production deploy")),
        CreateCommand::new("deploys")
            .description(summary("deploys"))
            .add_option(app(true))
            .add_option(git_ref)
            .add_option(environment(false))
            .add_option(
                CreateCommandOption::new(CommandOptionType::Integer, "last", "How many (1 to 100)")
                    .min_int_value(1)
                    .max_int_value(u64::from(commands::MAX_LAST)),
            ),
        CreateCommand::new("environments")
            .description(summary("environments"))
            .add_option(app(false)),
        CreateCommand::new("lock")
            .description(summary("lock"))
            .add_option(environment(true))
            .add_option(app(false))
            .add_option(text(
                "for",
                "How long, 1m to 7d (e.g. 2h); without it, lock_ttl (4h unless configured)",
            ))
            .add_option(text("reason", "Why, shown to whoever runs into the lock"))
            .add_option(flag(
                "force",
                "Take over a lock someone else holds (if your role may)",
            )),
        CreateCommand::new("unlock")
            .description(summary("unlock"))
            .add_option(environment(true))
            .add_option(app(false))
            .add_option(flag(
                "force",
                "Release a lock someone else holds (if your role may; they are told)",
            )),
        CreateCommand::new("locks").description(summary("locks")),
        CreateCommand::new("help")
            .description(summary("help"))
            .add_option(help_topics),
    ]
}

fn get_text<'a>(o: &'a Options, name: &str) -> Option<&'a str> {
    match o.get(name) {
        Some(Value::Text(s)) if !s.trim().is_empty() => Some(s.trim()),
        _ => None,
    }
}

fn get_bool(o: &Options, name: &str) -> bool {
    matches!(o.get(name), Some(Value::Bool(true)))
}

/// A name (app, ref, environment) is one word; anything else would read as more
/// of the command.
fn word<'a>(o: &'a Options, name: &str) -> Result<Option<&'a str>, String> {
    match get_text(o, name) {
        Some(s) if s.chars().any(char::is_whitespace) => Err(format!(
            "`{s}` is not a valid {name}: {name} names have no spaces"
        )),
        other => Ok(other),
    }
}

/// One line of text: reasons go to the end of a command, where newlines do not belong.
fn line(o: &Options, name: &str) -> Option<String> {
    get_text(o, name).map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The canonical text twin of a slash command, or what to tell its user.
pub fn to_text(name: &str, o: &Options) -> Result<String, String> {
    use commands::Command;
    let command = match name {
        "deploy" => {
            let app = word(o, "app")?;
            let git_ref = word(o, "ref")?;
            let target = match (app, git_ref) {
                (Some(app), Some(r)) => format!("{app}/{r}"),
                (Some(app), None) => app.to_string(),
                (None, Some(r)) => r.to_string(),
                (None, None) => {
                    return Err(
                        "say what to deploy: an `app` (its default branch), a `ref`, or both"
                            .to_string(),
                    )
                }
            };
            Command::Deploy(commands::Deploy {
                task: "deploy".to_string(),
                force: get_bool(o, "force"),
                target,
                environment: word(o, "environment")?.map(str::to_string),
                hosts: Vec::new(),
                reason: line(o, "reason"),
            })
        }
        "deploys" => Command::Deploys(commands::Deploys {
            app: word(o, "app")?.ok_or("say which `app`")?.to_string(),
            git_ref: word(o, "ref")?.map(str::to_string),
            environment: word(o, "environment")?.map(str::to_string),
            limit: match o.get("last") {
                Some(Value::Int(n)) => Some(
                    u32::try_from(*n)
                        .ok()
                        .filter(|n| (1..=commands::MAX_LAST).contains(n))
                        .ok_or(format!("`last` is 1 to {}", commands::MAX_LAST))?,
                ),
                _ => None,
            },
        }),
        "environments" => Command::Environments(commands::Environments {
            app: word(o, "app")?.map(str::to_string),
        }),
        "lock" => Command::Lock(commands::Lock {
            force: get_bool(o, "force"),
            environment: word(o, "environment")?
                .ok_or("say which `environment`")?
                .to_string(),
            app: word(o, "app")?.map(str::to_string),
            duration: match get_text(o, "for") {
                Some(d) => Some(duration(d)?),
                None => None,
            },
            reason: line(o, "reason"),
        }),
        "unlock" => Command::Unlock(commands::Unlock {
            force: get_bool(o, "force"),
            environment: word(o, "environment")?
                .ok_or("say which `environment`")?
                .to_string(),
            app: word(o, "app")?.map(str::to_string),
        }),
        "locks" => Command::Locks(commands::Locks),
        "help" => Command::Help(commands::Help {
            topic: get_text(o, "command").map(str::to_lowercase),
        }),
        other => {
            return Err(format!(
                "`/{other}` is not one of deploybot's commands (any more); type `/help`"
            ))
        }
    };
    Ok(command.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    commands::parse_duration(s)
        .filter(|d| (commands::MIN_LOCK..=commands::MAX_LOCK).contains(d))
        .ok_or_else(|| {
            format!(
                "`{s}` is not a duration for a lock: write e.g. `30m`, `2h` or `1d`; {}",
                commands::LOCK_RULE
            )
        })
}

/// One autocomplete suggestion: what is shown, and what is filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub value: String,
}

fn choice(name: impl AsRef<str>, value: impl AsRef<str>) -> Choice {
    Choice {
        name: truncate(name.as_ref(), CHOICE_TEXT),
        value: truncate(value.as_ref(), CHOICE_TEXT),
    }
}

/// Keeps what matches `typed` (case-insensitive), prefix matches first, at most 25.
fn filter(candidates: Vec<(Choice, Vec<String>)>, typed: &str) -> Vec<Choice> {
    let typed = typed.trim().to_lowercase();
    let mut prefix = Vec::new();
    let mut inner = Vec::new();
    for (c, keys) in candidates {
        let keys: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
        if keys.iter().any(|k| k.starts_with(&typed)) {
            prefix.push(c);
        } else if keys.iter().any(|k| k.contains(&typed)) {
            inner.push(c);
        }
    }
    prefix.extend(inner);
    prefix.truncate(CHOICES);
    prefix
}

/// Configured apps matching what was typed.
pub fn complete_apps(config: &Config, typed: &str) -> Vec<Choice> {
    let candidates = config
        .apps
        .iter()
        .map(|a| {
            (
                choice(format!("{} ({})", a.name, a.repository), a.name.as_str()),
                vec![a.name.to_string(), a.repository.to_string()],
            )
        })
        .collect();
    filter(candidates, typed)
}

/// Environments of `app` (of every app when none is chosen yet), with their aliases.
pub fn complete_environments(config: &Config, app: Option<&str>, typed: &str) -> Vec<Choice> {
    let apps: Vec<_> = match app.and_then(|a| config.app(a)) {
        Some(a) => vec![a],
        None => config.apps.iter().collect(),
    };
    let mut seen = Vec::new();
    let mut candidates = Vec::new();
    for app in apps {
        for env in &app.environments {
            let name = env.name.as_str();
            if seen.iter().any(|s: &String| s.eq_ignore_ascii_case(name)) {
                continue;
            }
            seen.push(name.to_string());
            let aliases: Vec<String> = config
                .aliases
                .iter()
                .filter(|(_, e)| e.as_str().eq_ignore_ascii_case(name))
                .map(|(alias, _)| alias.clone())
                .collect();
            let shown = if aliases.is_empty() {
                name.to_string()
            } else {
                format!("{name} (alias: {})", aliases.join(", "))
            };
            let mut keys = vec![name.to_string()];
            keys.extend(aliases);
            candidates.push((choice(shown, name), keys));
        }
    }
    filter(candidates, typed)
}

/// Branch names matching what was typed.
pub fn complete_refs(branches: &[String], typed: &str) -> Vec<Choice> {
    let candidates = branches
        .iter()
        .filter(|b| b.chars().count() <= CHOICE_TEXT)
        .map(|b| (choice(b, b), vec![b.clone()]))
        .collect();
    filter(candidates, typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, Value)]) -> Options {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn every_slash_command_becomes_its_canonical_text_twin() {
        let cases = [
            ("deploy", opts(&[("app", t("api"))]), "deploy api"),
            (
                "deploy",
                opts(&[
                    ("app", t("api")),
                    ("ref", t("feature/login")),
                    ("environment", t("prod")),
                    ("force", Value::Bool(true)),
                    ("reason", t("hotfix\nfor #42")),
                ]),
                "deploy! api/feature/login to prod -- hotfix for #42",
            ),
            ("deploy", opts(&[("ref", t("topic"))]), "deploy topic"),
            (
                "deploys",
                opts(&[
                    ("app", t("api")),
                    ("environment", t("staging")),
                    ("last", Value::Int(5)),
                ]),
                "deploys api in staging last 5",
            ),
            ("environments", opts(&[]), "environments"),
            (
                "environments",
                opts(&[("app", t("web"))]),
                "environments web",
            ),
            (
                "lock",
                opts(&[
                    ("environment", t("production")),
                    ("app", t("api")),
                    ("for", t("2h")),
                    ("reason", t("release freeze")),
                ]),
                "lock production on api for 2h -- release freeze",
            ),
            (
                "unlock",
                opts(&[("environment", t("staging"))]),
                "unlock staging",
            ),
            ("locks", opts(&[]), "locks"),
            ("help", opts(&[("command", t("deploy"))]), "help deploy"),
        ];
        for (name, o, want) in cases {
            let text = to_text(name, &o).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(text, want);
            // The twin reads back as the same command.
            let parsed = commands::parse(&text).expect("parses");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn options_that_would_change_the_command_are_refused() {
        assert!(to_text("deploy", &opts(&[]))
            .unwrap_err()
            .contains("what to deploy"));
        assert!(to_text("deploy", &opts(&[("app", t("api to production"))]))
            .unwrap_err()
            .contains("no spaces"));
        assert!(to_text(
            "lock",
            &opts(&[("environment", t("qa")), ("for", t("soon"))])
        )
        .unwrap_err()
        .contains("not a duration"));
        assert!(to_text("rollback", &opts(&[]))
            .unwrap_err()
            .contains("/help"));
    }

    #[test]
    fn definitions_fit_discords_rules() {
        let defs = serde_json::to_value(definitions()).unwrap();
        let defs = defs.as_array().unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, NAMES);
        for d in defs {
            let desc = d["description"].as_str().unwrap();
            assert!(!desc.is_empty() && desc.chars().count() <= 100, "{desc}");
            for o in d["options"].as_array().into_iter().flatten() {
                let desc = o["description"].as_str().unwrap();
                assert!(!desc.is_empty() && desc.chars().count() <= 100, "{desc}");
                let name = o["name"].as_str().unwrap();
                assert!(name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase()));
            }
        }
        // Descriptions come from the same help the parser uses.
        let deploy = commands::all_help()
            .iter()
            .find(|h| h.name == "deploy")
            .unwrap();
        assert_eq!(defs[0]["description"], truncate(deploy.summary, 100));
    }

    #[test]
    fn refs_are_filtered_by_what_was_typed() {
        let branches: Vec<String> = ["main", "topic", "feature/top-bar", "broken"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got: Vec<String> = complete_refs(&branches, "TOP")
            .into_iter()
            .map(|c| c.value)
            .collect();
        assert_eq!(got, vec!["topic", "feature/top-bar"]);
        assert_eq!(complete_refs(&branches, "").len(), 4);
    }
}
