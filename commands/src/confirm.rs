//! `yes`, `y`, `confirm [ID]`: go ahead with a deploy that asked for confirmation.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{code, invalid, is, Command, CommandHelp, Example, Head, Name, ParseError};

/// Confirm a pending deploy (environments with `confirm = true` ask first).
///
/// ```text
/// confirm [ID]
/// yes [ID]
/// y [ID]
/// ```
///
/// Without an id it confirms the user's own latest pending request. A leading `#`
/// on the id is dropped, and so are courtesies (`yes please`), which is why no id
/// may be `please`. After `yes`, `y` and `no` only a word with a digit or a `#` is
/// an id: `yes sir` and `no idea` are conversation, not commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The pending request's id, as the bot showed it.
    pub id: Option<String>,
}

const PARAMS: &[Param] = &[Param::optional(
    "id",
    Kind::Word,
    "The question's id (e.g. 3478be); default: your latest question",
)];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Confirm(Confirm {
        id: form.word("id")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "confirm",
    params: PARAMS,
    from_options,
    grammar: "confirm [ID] | yes [ID] | y [ID]",
    summary: "Go ahead with a deploy that asked for confirmation.",
    details:
        "Without an id, confirms your latest pending request. The bot shows the id (six letters and digits, like `3478be`) when it asks. \
Only whoever asked can answer, once, within the time the question gives; if what is live changed meanwhile, the bot asks again.",
    examples: &[
        Example {
            input: "yes",
            canonical: "confirm",
        },
        Example {
            input: "Y",
            canonical: "confirm",
        },
        Example {
            input: "confirm 3478be",
            canonical: "confirm 3478be",
        },
        Example {
            input: "yes #a1b2",
            canonical: "confirm a1b2",
        },
        Example {
            input: "yes please",
            canonical: "confirm",
        },
        Example {
            input: "yes!",
            canonical: "confirm",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    // `yes!` is enthusiasm, not force.
    head.no_task(&HELP, args)?;
    let id = pending_id(&HELP, head, args, |id| Confirm { id }.to_string())?;
    Ok(Command::Confirm(Confirm { id }))
}

/// Words said out of courtesy around a yes or a no.
fn is_courtesy(word: &str) -> bool {
    ["please", "pls", "plz", "thanks", "thx"]
        .iter()
        .any(|c| is(word.trim_end_matches(['!', '.']), c))
}

/// The optional id after `confirm` or `cancel`. `render` gives the canonical line for
/// a suggestion.
///
/// `yes`, `y` and `no` are also plain conversation (`no idea`, `yes sir`), so after
/// them a word is only taken for an id when it looks like one: it has a digit or
/// starts with `#`. After `confirm` and `cancel` any id goes.
pub(crate) fn pending_id(
    help: &'static CommandHelp,
    head: &Head<'_>,
    args: &[&str],
    render: impl Fn(Option<String>) -> String,
) -> Result<Option<String>, ParseError> {
    let words: Vec<&str> = args.iter().copied().filter(|w| !is_courtesy(w)).collect();
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let conversational = ["yes", "y", "no"].iter().any(|w| is(head.word, w));
    if conversational && !first.starts_with('#') && !first.contains(|c: char| c.is_ascii_digit()) {
        return Err(ParseError::NotACommand);
    }
    let id = first.strip_prefix('#').unwrap_or(first);
    // A courtesy is dropped wherever it stands, so it cannot be an id (`confirm please`
    // would print as an id and read back as none).
    if is_courtesy(id) {
        return Err(invalid(
            help,
            format!("{} is not an id: courtesies are ignored", code(first)),
            Some(render(None)),
        ));
    }
    if let Err(problem) = Name::Id.check(id) {
        return Err(invalid(help, problem, Some(render(None))));
    }
    if words.len() > 1 {
        return Err(invalid(
            help,
            format!(
                "unexpected {}; give at most one id",
                code(&words[1..].join(" "))
            ),
            Some(render(Some(id.to_string()))),
        ));
    }
    Ok(Some(id.to_string()))
}

impl fmt::Display for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("confirm")?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}
