//! `help`, and the help pages every command describes itself with.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{code, invalid, strip_question, suggest, Command, Head, ParseError};

/// Show the list of commands, or one command's page with examples.
///
/// ```text
/// help [COMMAND]
/// ```
///
/// The topic is kept lowercase with single spaces, and is not checked against the
/// commands: an unknown topic is answered by [`help_text`] with the overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    /// What help was asked about, lowercase (`"deploy"`, `"whats on"`).
    pub topic: Option<String>,
}

/// One example of a command: what someone may type, and the canonical form the bot
/// reads it as. Each example is also a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    /// A line as a user may type it.
    pub input: &'static str,
    /// `parse(input)?.to_string()`.
    pub canonical: &'static str,
}

/// The description of one command: its help page, and what chat adapters generate
/// their command lists (for instance Discord slash commands) from.
#[derive(Debug, Clone, Copy)]
pub struct CommandHelp {
    /// The command's name, as [`Command::name`] returns it.
    pub name: &'static str,
    /// The grammar, on one line.
    pub grammar: &'static str,
    /// What the command does, in one short sentence.
    pub summary: &'static str,
    /// The rest of the page: meaning of each part, defaults, permissions.
    pub details: &'static str,
    /// Examples, which double as tests.
    pub examples: &'static [Example],
    /// The command's options when it is offered as a form (a Discord slash command),
    /// required ones first.
    pub params: &'static [crate::Param],
    /// Builds the command from a filled-in form of [`CommandHelp::params`].
    pub from_options: fn(&crate::options::Form<'_>) -> Result<Command, String>,
}

const PARAMS: &[Param] = &[Param::optional(
    "command",
    Kind::Topic,
    "The command to explain",
)];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Help(Help {
        topic: form
            .line("command")
            .map(|t| t.replace('-', " ").to_lowercase()),
    }))
}

/// Pages are the same page when they describe the same command (names are unique).
impl PartialEq for CommandHelp {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CommandHelp {}

pub const HELP: CommandHelp = CommandHelp {
    name: "help",
    params: PARAMS,
    from_options,
    grammar: "help [COMMAND]",
    summary: "List the commands, or show one command in detail with examples.",
    details: "Keywords are case-insensitive; app, environment and ref names are kept as typed. \
`help where` and `help whats on` work too.",
    examples: &[
        Example {
            input: "help",
            canonical: "help",
        },
        Example {
            input: "help deploy",
            canonical: "help deploy",
        },
        Example {
            input: "HELP Rollback",
            canonical: "help rollback",
        },
        Example {
            input: "help   whats   on?",
            canonical: "help whats on",
        },
        Example {
            input: "help! where",
            canonical: "help where",
        },
    ],
};

/// Every help page, in the order the overview lists them: deploying first, then
/// looking around, then locks, then the conversation and the bot itself.
pub fn all_help() -> &'static [&'static CommandHelp] {
    static ALL: [&CommandHelp; 18] = [
        &crate::deploy::HELP,
        &crate::rollback::HELP,
        &crate::deploys::HELP,
        &crate::environments::HELP,
        &crate::whats_on::HELP,
        &crate::why::HELP,
        &crate::lock::HELP,
        &crate::unlock::HELP,
        &crate::locks::HELP,
        &crate::queue::HELP,
        &crate::dequeue::HELP,
        &crate::freeze::HELP,
        &crate::unfreeze::HELP,
        &crate::audit::HELP,
        &crate::confirm::HELP,
        &crate::cancel::HELP,
        &HELP,
        &crate::version::HELP,
    ];
    &ALL
}

/// Other words people use for a page, normalised as [`normalise`] does.
const ALIASES: &[(&str, &str)] = &[
    ("environment", "environments"),
    ("envs", "environments"),
    ("where", "environments"),
    ("where can i deploy", "environments"),
    ("where is", "environments"),
    ("whats", "whats on"),
    ("what", "whats on"),
    ("what is on", "whats on"),
    ("yes", "confirm"),
    ("y", "confirm"),
    ("no", "cancel"),
    ("force", "deploy"),
];

/// Lowercase, straight apostrophes dropped, `-` as a space, single spaces, no `:TASK`,
/// `!` or `?`: `What's-On?` and `whats on` are the same topic.
fn normalise(topic: &str) -> String {
    let lower = topic
        .to_lowercase()
        .replace(['\'', '’'], "")
        .replace(['-', '_'], " ");
    let words: Vec<&str> = lower
        .split_whitespace()
        .map(|w| w.trim_end_matches(['!', '?']))
        .map(|w| w.split(':').next().unwrap_or(w))
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

/// The help page for a command name or alias, case-insensitive: `deploy`,
/// `Environments`, `where`, `whats`, `what's on`, `yes`...
pub fn help_for(topic: &str) -> Option<&'static CommandHelp> {
    let topic = normalise(topic);
    let topic = ALIASES
        .iter()
        .find(|(alias, _)| *alias == topic)
        .map_or(topic.as_str(), |(_, name)| name);
    all_help()
        .iter()
        .copied()
        .find(|h| normalise(h.name) == topic)
}

/// The answer to `help`: the overview of every command (`None`), or one command's
/// full page with its examples. An unknown topic gets the overview, after a line
/// saying so.
pub fn help_text(topic: Option<&str>) -> String {
    match topic.filter(|t| !t.trim().is_empty()) {
        None => overview(),
        Some(t) => match help_for(t) {
            Some(page) => page_text(page),
            None => {
                let mut out = format!("There is no command {}.", code(t.trim()));
                if let Some((keyword, _)) = t
                    .split_whitespace()
                    .next()
                    .and_then(suggest::closest_command)
                {
                    out.push_str(&format!(" Did you mean `help {keyword}`?"));
                }
                out.push('\n');
                out.push_str(&overview());
                out
            }
        },
    }
}

/// The command reference as a Markdown table: one row per command, its grammar and
/// its whole page (summary and details), in the order of [`all_help`]. The README's
/// "Commands" table is this text, and a test holds it to it.
pub fn reference_table() -> String {
    let mut out = String::from("| command | what it does |\n| --- | --- |\n");
    for page in all_help() {
        out.push_str(&format!(
            "| `{}` | {} {} |\n",
            page.grammar.replace('|', "\\|"),
            page.summary,
            page.details.replace('|', "\\|")
        ));
    }
    out
}

fn overview() -> String {
    let mut out = String::from("deploybot commands (keywords are case-insensitive):\n");
    for page in all_help() {
        out.push_str(&format!("`{}` — {}\n", page.grammar, page.summary));
    }
    out.push_str("Type `help COMMAND` for details and examples.");
    out
}

fn page_text(page: &CommandHelp) -> String {
    let mut out = format!(
        "`{}` — {}\n{}\n\nExamples:",
        page.grammar, page.summary, page.details
    );
    for example in page.examples {
        if example.input == example.canonical {
            out.push_str(&format!("\n`{}`", example.input));
        } else {
            out.push_str(&format!("\n`{}` → `{}`", example.input, example.canonical));
        }
    }
    out
}

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    // `help!` is an exclamation, not a force: accept it.
    head.no_task(&HELP, args)?;
    let words = strip_question(args);
    if words.is_empty() {
        return Ok(Command::Help(Help { topic: None }));
    }
    let topic = words
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    // The topic is echoed back when unknown, so it is held to a charset that cannot
    // carry markup or mentions.
    let plain = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '!' | '\'' | '’' | '-')
    };
    // A topic names a command, so it has a letter or digit: `help --` or `help !!`
    // asks for nothing.
    if topic.chars().count() > 40
        || !topic.chars().all(plain)
        || !topic.chars().any(|c| c.is_ascii_alphanumeric())
    {
        return Err(invalid(
            &HELP,
            format!(
                "there is no help for {}; ask for a command by name",
                code(&topic)
            ),
            Some("help".to_string()),
        ));
    }
    Ok(Command::Help(Help { topic: Some(topic) }))
}

impl fmt::Display for Help {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("help")?;
        if let Some(topic) = &self.topic {
            write!(f, " {topic}")?;
        }
        Ok(())
    }
}
