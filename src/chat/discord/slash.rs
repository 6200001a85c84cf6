//! Slash commands: their definitions (described by the `commands` crate's help pages),
//! each invocation turned into its canonical text twin for [`crate::bot::Bot::handle`],
//! and autocompletion of apps, environments and refs.

use commands::{all_help, Kind, Options, Param, Value};
use serenity::builder::{CreateCommand, CreateCommandOption};
use serenity::model::application::{CommandDataOption, CommandDataOptionValue, CommandOptionType};

use super::render::truncate;
use crate::config::Config;

/// Discord's limits for commands and choices.
const DESCRIPTION: usize = 100;
const CHOICES: usize = 25;
const CHOICE_TEXT: usize = 100;

/// The options of an invocation (or of an autocomplete request, partial values
/// included), and the name of the option being completed, if any.
pub fn options(data: &[CommandDataOption]) -> (Options, Option<String>) {
    let mut out = Options::new();
    let mut focused = None;
    for o in data {
        let value = match &o.value {
            CommandDataOptionValue::String(s) => Value::Text(s.clone()),
            CommandDataOptionValue::Boolean(b) => Value::Flag(*b),
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

/// One option as Discord asks for it: its type, completion and limits follow its kind.
fn option(p: &Param) -> CreateCommandOption {
    let kind = match p.kind {
        Kind::Flag => CommandOptionType::Boolean,
        Kind::Count { .. } => CommandOptionType::Integer,
        _ => CommandOptionType::String,
    };
    let mut o = CreateCommandOption::new(kind, p.name, truncate(p.description, DESCRIPTION))
        .required(p.required);
    match p.kind {
        Kind::App | Kind::Environment | Kind::Ref => o = o.set_autocomplete(true),
        Kind::Count { min, max } => {
            o = o
                .min_int_value(u64::from(min))
                .max_int_value(u64::from(max));
        }
        Kind::Topic => {
            for h in all_help().iter().take(CHOICES) {
                o = o.add_string_choice(h.name, h.name);
            }
        }
        Kind::Word | Kind::Hosts | Kind::Duration | Kind::Text | Kind::Flag => {}
    }
    o
}

/// The definitions registered at startup (a bulk overwrite: removed ones disappear):
/// one per help page, named as the page, described by its summary, with its params.
pub fn definitions() -> Vec<CreateCommand> {
    all_help()
        .iter()
        .map(|page| {
            page.params.iter().fold(
                CreateCommand::new(page.name).description(truncate(page.summary, DESCRIPTION)),
                |c, p| c.add_option(option(p)),
            )
        })
        .collect()
}

/// The names of [`definitions`], as Discord lists them.
pub fn names() -> Vec<String> {
    all_help().iter().map(|h| h.name.to_string()).collect()
}

/// What kind of value `option` of the slash command `command` holds.
pub fn kind_of(command: &str, option: &str) -> Option<Kind> {
    all_help()
        .iter()
        .find(|h| h.name == command)?
        .params
        .iter()
        .find(|p| p.name == option)
        .map(|p| p.kind)
}

/// The canonical text twin of a slash command, or what to tell its user.
pub fn to_text(name: &str, o: &Options) -> Result<String, String> {
    commands::from_options(name, o).map(|c| c.to_string())
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

    #[test]
    fn every_command_is_a_slash_command_within_discords_rules() {
        let defs = serde_json::to_value(definitions()).unwrap();
        let defs = defs.as_array().unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
        let pages: Vec<&str> = all_help().iter().map(|h| h.name).collect();
        assert_eq!(names, pages);
        for (d, page) in defs.iter().zip(all_help()) {
            let desc = d["description"].as_str().unwrap();
            assert!(!desc.is_empty() && desc.chars().count() <= 100, "{desc}");
            // Descriptions come from the same help the parser uses.
            assert_eq!(desc, truncate(page.summary, 100));
            let options = d["options"].as_array().cloned().unwrap_or_default();
            assert_eq!(options.len(), page.params.len(), "{}", page.name);
            for (o, p) in options.iter().zip(page.params) {
                assert_eq!(o["name"], p.name);
                assert_eq!(o["required"].as_bool().unwrap_or(false), p.required);
                let autocomplete = o["autocomplete"].as_bool().unwrap_or(false);
                assert_eq!(
                    autocomplete,
                    matches!(p.kind, Kind::App | Kind::Environment | Kind::Ref),
                    "{} {}",
                    page.name,
                    p.name
                );
            }
        }
    }

    #[test]
    fn a_slash_command_becomes_its_canonical_text_twin() {
        let o: Options = [
            ("app", Value::Text("api".into())),
            ("environment", Value::Text("production".into())),
            ("force", Value::Flag(true)),
            ("reason", Value::Text("bad\nrelease".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            to_text("rollback", &o).unwrap(),
            "rollback! api in production -- bad release"
        );
        assert!(to_text("launch", &o).unwrap_err().contains("/help"));
        assert_eq!(kind_of("deploy", "ref"), Some(Kind::Ref));
        assert_eq!(kind_of("whats-on", "environment"), Some(Kind::Environment));
        assert_eq!(kind_of("deploy", "nope"), None);
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
