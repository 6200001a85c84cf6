//! `no`, `cancel [ID]`: drop a deploy that asked for confirmation, or one waiting for
//! green checks (`deploy … when green`).

use std::fmt;

use crate::confirm::pending_id;
use crate::options::{Form, Kind, Param};
use crate::{Command, CommandHelp, Example, Head, ParseError};

/// Cancel a pending deploy: a question, or a wait for green checks.
///
/// ```text
/// cancel [ID]
/// no [ID]
/// ```
///
/// Ids are read as for [`crate::Confirm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The question's or the wait's id, as the bot showed it.
    pub id: Option<String>,
}

const PARAMS: &[Param] = &[Param::optional(
    "id",
    Kind::Word,
    "The question's or wait's id (e.g. 3478be); default: your latest",
)];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Cancel(Cancel {
        id: form.word("id")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "cancel",
    params: PARAMS,
    from_options,
    grammar: "cancel [ID] | no [ID]",
    summary: "Drop a deploy that asked for confirmation, or one waiting for green checks.",
    details: "Without an id, cancels your latest pending question here, else your wait for green checks (`deploy … when green`) here. \
Only who asked can cancel. Deploys already started are not stopped; use `rollback` for that.",
    examples: &[
        Example {
            input: "no",
            canonical: "cancel",
        },
        Example {
            input: "cancel",
            canonical: "cancel",
        },
        Example {
            input: "cancel 3478be",
            canonical: "cancel 3478be",
        },
        Example {
            input: "No thanks",
            canonical: "cancel",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    let id = pending_id(&HELP, head, args, |id| Cancel { id }.to_string())?;
    Ok(Command::Cancel(Cancel { id }))
}

impl fmt::Display for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancel")?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}
