//! `version`: which deploybot is answering.

use std::fmt;

use crate::options::{Form, Param};
use crate::{code, invalid, Command, CommandHelp, Example, Head, ParseError};

/// Ask the bot for its version.
///
/// ```text
/// version
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version;

const PARAMS: &[Param] = &[];

fn from_options(_: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Version(Version))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "version",
    params: PARAMS,
    from_options,
    grammar: "version",
    summary: "Show which deploybot version is answering.",
    details: "Useful when two bots share a channel, or after an upgrade.",
    examples: &[
        Example {
            input: "version",
            canonical: "version",
        },
        Example {
            input: "Version",
            canonical: "version",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    if !args.is_empty() {
        return Err(invalid(
            &HELP,
            format!(
                "`version` takes nothing after it (unexpected {})",
                code(&args.join(" "))
            ),
            Some(Version.to_string()),
        ));
    }
    Ok(Command::Version(Version))
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("version")
    }
}
