//! `locks`: list the locks held.

use std::fmt;

use crate::options::{Form, Param};
use crate::{code, invalid, Command, CommandHelp, Example, Head, ParseError};

/// List every lock held, with who holds it, why and until when.
///
/// ```text
/// locks
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Locks;

const PARAMS: &[Param] = &[];

fn from_options(_: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Locks(Locks))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "locks",
    params: PARAMS,
    from_options,
    grammar: "locks",
    summary: "List the locks held, with who holds them, why and until when.",
    details: "To see everything that would stop a deploy to one environment, ask `why ENV`.",
    examples: &[
        Example {
            input: "locks",
            canonical: "locks",
        },
        Example {
            input: "LOCKS",
            canonical: "locks",
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
                "`locks` takes nothing after it (unexpected {}); `why ENV` tells what stops a deploy there",
                code(&args.join(" "))
            ),
            Some(Locks.to_string()),
        ));
    }
    Ok(Command::Locks(Locks))
}

impl fmt::Display for Locks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("locks")
    }
}
