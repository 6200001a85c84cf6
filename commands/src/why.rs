//! `why ENV`: could I deploy there now, and if not, what stops me?

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, is_env_prep, splice, strip_question, Command, CommandHelp, Example, Head,
    Name, ParseError,
};

/// Explain what would stop a deploy to an environment right now: locks, required
/// status checks and their states, roles, channel rules, a pending confirmation.
///
/// ```text
/// why ENV [on APP]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// The environment.
    pub environment: String,
    /// The app; `None` means the channel's default app.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::required(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. production)",
    ),
    Param::optional("app", Kind::App, "The app; default: this channel's"),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Why(Why {
        environment: form.needed("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "why",
    params: PARAMS,
    from_options,
    grammar: "why ENV [on APP]",
    summary: "Could I deploy there now? If not, what would stop me.",
    details: "Checks locks, required status checks, your roles and the channel rules, without deploying. \
`for APP` works like `on APP`.",
    examples: &[
        Example {
            input: "why production",
            canonical: "why production",
        },
        Example {
            input: "why production on api",
            canonical: "why production on api",
        },
        Example {
            input: "Why staging for api?",
            canonical: "why staging on api",
        },
    ],
};

fn is_app_prep(word: &str) -> bool {
    is(word, "on") || is(word, "for")
}

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let words = strip_question(args);
    let Some(&env) = words.first().filter(|w| !is_app_prep(w)) else {
        return Err(invalid(
            &HELP,
            "why where? name the environment",
            head.retry(head.first, &splice(&words, 0..0, &["ENV"])),
        ));
    };
    if is_question_word(env) {
        return Err(question(&words));
    }
    Name::Environment
        .check(env)
        .map_err(|p| invalid(&HELP, p, None))?;
    let mut why = Why {
        environment: env.to_string(),
        app: None,
    };
    match &words[1..] {
        [] => {}
        [on] if is_app_prep(on) => {
            return Err(invalid(
                &HELP,
                format!("no app after {}", code(on)),
                Some(format!("{why} on APP")),
            ));
        }
        [on, app, extra @ ..] if is_app_prep(on) => {
            Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
            why.app = Some(app.to_string());
            if !extra.is_empty() {
                return Err(invalid(
                    &HELP,
                    format!("unexpected {}", code(&extra.join(" "))),
                    Some(why.to_string()),
                ));
            }
        }
        extra => {
            return Err(invalid(
                &HELP,
                format!("unexpected {}", code(&extra.join(" "))),
                Some(why.to_string()),
            ));
        }
    }
    Ok(Command::Why(why))
}

/// The words that make `why …` a question in English rather than `why ENV`.
fn is_question_word(word: &str) -> bool {
    let lower = word.to_lowercase().replace('’', "'");
    matches!(
        lower.as_str(),
        "can't" | "cant" | "cannot" | "can" | "couldn't" | "won't" | "isn't" | "is"
    )
}

/// `why can't I deploy api to production`: answer with the short form, keeping the
/// app and environment if they were named.
fn question(words: &[&str]) -> ParseError {
    let after = |pred: &dyn Fn(&str) -> bool| words.windows(2).find(|w| pred(w[0])).map(|w| w[1]);
    // A keyword in the place of a name (`why can't to on`) is no name.
    let keyword = |w: &str| is_env_prep(w) || is_app_prep(w) || is_question_word(w);
    let env = after(&|w| is_env_prep(w))
        .filter(|e| Name::Environment.is_valid(e) && !keyword(e))
        .unwrap_or("ENV");
    let app = after(&|w| is(w, "deploy")).filter(|a| !keyword(a) && Name::App.is_valid(a));
    let why = Why {
        environment: env.to_string(),
        app: app.map(str::to_string),
    };
    invalid(&HELP, "ask it as `why ENV [on APP]`", Some(why.to_string()))
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "why {}", self.environment)?;
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        Ok(())
    }
}
