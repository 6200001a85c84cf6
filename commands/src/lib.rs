//! deploybot's chat command language.
//!
//! A chat line goes in, a [`Command`] or a [`ParseError`] comes out. Nothing here
//! performs I/O or knows which apps and environments exist: the parser checks the
//! *shape* of a line and the *spelling* of every name in it, and the bot resolves the
//! names against its configuration.
//!
//! ```text
//! deploy[:TASK][!] APP|APP/REF|REF [to|in|on ENV[/HOST,...]] [force | when green] [queue] [-- REASON]
//! rollback[!] APP [in|to|on ENV] [force] [-- REASON]
//! deploys APP[/REF] [in ENV] [last N]
//! environments [APP] | where can i deploy APP | where is APP
//! whats on ENV [for APP]
//! why ENV [on APP]
//! lock[!] ENV [on APP] [for DURATION] [REASON]
//! unlock[!] ENV [on APP]
//! locks
//! queue [ENV] [on APP]
//! dequeue [ENV] [on APP]
//! freeze [ENV] [on APP] [for DURATION] -- REASON
//! unfreeze [ENV] [on APP]
//! audit [APP] [in ENV]
//! confirm [ID] | yes [ID] | y [ID]
//! cancel [ID] | no [ID]
//! help [COMMAND]
//! version
//! ```
//!
//! Every command has one file holding its struct, its grammar, its parser, its
//! canonical [`Display`](std::fmt::Display) form and its help page with examples.
//! The examples are tests: each must parse, and print back as its canonical form.
//!
//! Three promises hold for every input:
//!
//! * `parse` never panics, whatever the line (unicode, control characters, megabytes).
//! * `parse(&cmd.to_string()) == Ok(cmd)` for every command `parse` returns.
//! * no name that reaches a command (ref, app, environment, host, task, id) contains
//!   a shell metacharacter, whitespace or a control character.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod cancel;
mod confirm;
mod deploy;
mod deploys;
mod dequeue;
mod duration;
mod environments;
mod freeze;
mod help;
mod lock;
mod locks;
mod options;
mod queue;
mod refname;
mod rollback;
mod suggest;
mod unfreeze;
mod unlock;
mod version;
mod whats_on;
mod why;

use std::fmt;

pub use audit::Audit;
pub use cancel::Cancel;
pub use confirm::Confirm;
pub use deploy::Deploy;
pub use deploys::{Deploys, MAX_LAST};
pub use dequeue::Dequeue;
pub use duration::{format_duration, parse_duration, parse_duration_phrase};
pub use environments::Environments;
pub use freeze::{Freeze, FREEZE_RULE, MAX_FREEZE, MIN_FREEZE};
pub use help::{all_help, help_for, help_text, reference_table, CommandHelp, Example, Help};
pub use lock::{Lock, LOCK_RULE, MAX_LOCK, MIN_LOCK};
pub use locks::Locks;
pub use options::{from_options, Form, Kind, Options, Param, Value};
pub use queue::Queue;
pub use refname::{RefError, RefErrorKind, RefName};
pub use rollback::Rollback;
pub use suggest::closest_name;
pub use unfreeze::Unfreeze;
pub use unlock::Unlock;
pub use version::Version;
pub use whats_on::WhatsOn;
pub use why::Why;

/// Lines longer than this many characters are refused before they are parsed.
///
/// Discord caps a message at 2000 characters; nothing legitimate is longer, and the
/// cap keeps the parser's work bounded whatever a chat adapter hands it.
pub const MAX_LINE_CHARS: usize = 2000;

/// One parsed chat command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `deploy ...`: create a GitHub deployment.
    Deploy(Deploy),
    /// `deploys APP`: recent deployments of an app.
    Deploys(Deploys),
    /// `environments`, `where can i deploy APP`, `where is APP`.
    Environments(Environments),
    /// `whats on ENV`: what is live in an environment.
    WhatsOn(WhatsOn),
    /// `rollback APP`: redeploy the previous successful deployment.
    Rollback(Rollback),
    /// `lock ENV`: stop others deploying to an environment.
    Lock(Lock),
    /// `unlock ENV`: release a lock.
    Unlock(Unlock),
    /// `locks`: list the locks held.
    Locks(Locks),
    /// `queue [ENV]`: who is in line for an environment.
    Queue(Queue),
    /// `dequeue [ENV]`: leave a queue.
    Dequeue(Dequeue),
    /// `freeze [ENV]`: stop deploys (everywhere, or to one environment or app).
    Freeze(Freeze),
    /// `unfreeze [ENV]`: lift a chat freeze.
    Unfreeze(Unfreeze),
    /// `why ENV`: what would stop a deploy there now.
    Why(Why),
    /// `audit`: who did what.
    Audit(Audit),
    /// `yes`, `confirm`: go ahead with a pending deploy.
    Confirm(Confirm),
    /// `no`, `cancel`: drop a pending deploy.
    Cancel(Cancel),
    /// `help [COMMAND]`.
    Help(Help),
    /// `version`.
    Version(Version),
}

impl Command {
    /// The command's name, as in its help page: `"deploy"`, `"whats-on"`, ...
    ///
    /// Names contain only lowercase letters and `-`, so they double as slash-command
    /// names.
    pub fn name(&self) -> &'static str {
        self.help().name
    }

    /// The help page of this command.
    pub fn help(&self) -> &'static CommandHelp {
        match self {
            Command::Deploy(_) => &deploy::HELP,
            Command::Deploys(_) => &deploys::HELP,
            Command::Environments(_) => &environments::HELP,
            Command::WhatsOn(_) => &whats_on::HELP,
            Command::Rollback(_) => &rollback::HELP,
            Command::Lock(_) => &lock::HELP,
            Command::Unlock(_) => &unlock::HELP,
            Command::Locks(_) => &locks::HELP,
            Command::Queue(_) => &queue::HELP,
            Command::Dequeue(_) => &dequeue::HELP,
            Command::Freeze(_) => &freeze::HELP,
            Command::Unfreeze(_) => &unfreeze::HELP,
            Command::Why(_) => &why::HELP,
            Command::Audit(_) => &audit::HELP,
            Command::Confirm(_) => &confirm::HELP,
            Command::Cancel(_) => &cancel::HELP,
            Command::Help(_) => &help::HELP,
            Command::Version(_) => &version::HELP,
        }
    }
}

/// The canonical text of the command: lowercase keywords, names as typed, one space
/// between words, `!` rather than `force`, one preposition per command.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Deploy(c) => c.fmt(f),
            Command::Deploys(c) => c.fmt(f),
            Command::Environments(c) => c.fmt(f),
            Command::WhatsOn(c) => c.fmt(f),
            Command::Rollback(c) => c.fmt(f),
            Command::Lock(c) => c.fmt(f),
            Command::Unlock(c) => c.fmt(f),
            Command::Locks(c) => c.fmt(f),
            Command::Queue(c) => c.fmt(f),
            Command::Dequeue(c) => c.fmt(f),
            Command::Freeze(c) => c.fmt(f),
            Command::Unfreeze(c) => c.fmt(f),
            Command::Why(c) => c.fmt(f),
            Command::Audit(c) => c.fmt(f),
            Command::Confirm(c) => c.fmt(f),
            Command::Cancel(c) => c.fmt(f),
            Command::Help(c) => c.fmt(f),
            Command::Version(c) => c.fmt(f),
        }
    }
}

impl std::str::FromStr for Command {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing like a command (empty line, or a first word that is not a command and
    /// not close to one). Chat adapters may ignore it silently.
    NotACommand,
    /// Starts like a command but is wrong.
    Invalid {
        /// Name of the command the line was taken for (`"deploy"`, `"whats-on"`, ...).
        command: &'static str,
        /// What was wrong, in plain words.
        problem: String,
        /// A corrected full command line, when one can be guessed. It may hold
        /// placeholders such as `APP` or `ENV` when nothing better can be guessed.
        suggestion: Option<String>,
        /// The command's grammar line.
        usage: &'static str,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotACommand => f.write_str("that is not a command (try `help`)"),
            ParseError::Invalid {
                problem,
                suggestion,
                usage,
                ..
            } => {
                f.write_str(problem)?;
                if let Some(s) = suggestion {
                    write!(f, " — did you mean {}?", code(s))?;
                }
                write!(f, "\nusage: {usage}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse one chat line.
///
/// The first word decides: a command word (or a near miss of one, like `deplyo`)
/// gives a [`Command`] or [`ParseError::Invalid`]; anything else is
/// [`ParseError::NotACommand`].
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let command = parse_at(line, 0)?;
    // The canonical form can be a little longer than the line (`deply` becomes
    // `deploy`, `—` becomes `--`): past the cap it would not read back.
    if command.to_string().chars().nth(MAX_LINE_CHARS).is_some() {
        return Err(invalid(command.help(), too_long(), None));
    }
    Ok(command)
}

fn too_long() -> String {
    format!("the message is too long: at most {MAX_LINE_CHARS} characters")
}

/// How many corrections a suggestion may chain (`dpeloy api staging` needs two).
/// Each correction fixes one thing, so this only guards against a bug looping.
const MAX_DEPTH: u8 = 4;

/// The command words the first token is matched against, lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Deploy,
    Deploys,
    Environments,
    Where,
    Whats,
    What,
    Rollback,
    Lock,
    Unlock,
    Locks,
    Queue,
    Dequeue,
    Freeze,
    Unfreeze,
    Why,
    Audit,
    Confirm,
    Cancel,
    Help,
    Version,
}

impl Word {
    fn lookup(word: &str) -> Option<Word> {
        // No command word is longer than this; checking first keeps a megabyte-long
        // first token from being lowercased.
        if word.len() > 12 {
            return None;
        }
        let lower = word.to_lowercase().replace('’', "'");
        Some(match lower.as_str() {
            "deploy" => Word::Deploy,
            "deploys" => Word::Deploys,
            "environments" | "environment" | "envs" => Word::Environments,
            "where" => Word::Where,
            "whats" | "what's" => Word::Whats,
            "what" => Word::What,
            "rollback" => Word::Rollback,
            "lock" => Word::Lock,
            "unlock" => Word::Unlock,
            "locks" => Word::Locks,
            "queue" => Word::Queue,
            "dequeue" => Word::Dequeue,
            "freeze" => Word::Freeze,
            "unfreeze" => Word::Unfreeze,
            "why" => Word::Why,
            "audit" => Word::Audit,
            "confirm" | "yes" | "y" => Word::Confirm,
            "cancel" | "no" => Word::Cancel,
            "help" => Word::Help,
            "version" => Word::Version,
            _ => return None,
        })
    }

    fn help(self) -> &'static CommandHelp {
        match self {
            Word::Deploy => &deploy::HELP,
            Word::Deploys => &deploys::HELP,
            Word::Environments | Word::Where => &environments::HELP,
            Word::Whats | Word::What => &whats_on::HELP,
            Word::Rollback => &rollback::HELP,
            Word::Lock => &lock::HELP,
            Word::Unlock => &unlock::HELP,
            Word::Locks => &locks::HELP,
            Word::Queue => &queue::HELP,
            Word::Dequeue => &dequeue::HELP,
            Word::Freeze => &freeze::HELP,
            Word::Unfreeze => &unfreeze::HELP,
            Word::Why => &why::HELP,
            Word::Audit => &audit::HELP,
            Word::Confirm => &confirm::HELP,
            Word::Cancel => &cancel::HELP,
            Word::Help => &help::HELP,
            Word::Version => &version::HELP,
        }
    }
}

pub(crate) fn parse_at(line: &str, depth: u8) -> Result<Command, ParseError> {
    let mut tokens = line.split_whitespace();
    let Some(first) = tokens.next() else {
        return Err(ParseError::NotACommand);
    };
    let head = Head::split(first, depth);
    let Some(word) = Word::lookup(head.word) else {
        return suggest::misspelt_command(line, &head);
    };
    let help = word.help();
    if line.chars().nth(MAX_LINE_CHARS).is_some() {
        return Err(invalid(help, too_long(), None));
    }
    if let Some(c) = line.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        let problem = format!(
            "the message contains the control character U+{:04X}; retype it as plain text",
            u32::from(c)
        );
        return Err(invalid(help, problem, None));
    }
    let args: Vec<&str> = tokens.collect();
    match word {
        Word::Deploy => deploy::parse(&head, &args),
        Word::Deploys => deploys::parse(&head, &args),
        Word::Environments => environments::parse(&head, &args),
        Word::Where => environments::parse_where(&head, &args),
        Word::Whats | Word::What => whats_on::parse(&head, word == Word::What, &args),
        Word::Rollback => rollback::parse(&head, &args),
        Word::Lock => lock::parse(&head, &args),
        Word::Unlock => unlock::parse(&head, &args),
        Word::Locks => locks::parse(&head, &args),
        Word::Queue => queue::parse(&head, &args),
        Word::Dequeue => dequeue::parse(&head, &args),
        Word::Freeze => freeze::parse(&head, &args),
        Word::Unfreeze => unfreeze::parse(&head, &args),
        Word::Why => why::parse(&head, &args),
        Word::Audit => audit::parse(&head, &args),
        Word::Confirm => confirm::parse(&head, &args),
        Word::Cancel => cancel::parse(&head, &args),
        Word::Help => help::parse(&head, &args),
        Word::Version => version::parse(&head, &args),
    }
}

/// The first token of a line, taken apart: `DEPLOY:migrate!` is the word `DEPLOY`,
/// the task `migrate` and a bang.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    /// The whole first token as typed.
    pub first: &'a str,
    /// The command word as typed, without `:TASK` and `!`.
    pub word: &'a str,
    /// What followed `:`, as typed (possibly empty).
    pub task: Option<&'a str>,
    /// The token ended with `!` (one or more: `deploy!!` is as forceful as `deploy!`).
    pub bang: bool,
    depth: u8,
}

impl<'a> Head<'a> {
    fn split(first: &'a str, depth: u8) -> Head<'a> {
        // `why?`, `locks?`: a question mark on the command word is punctuation.
        let asked = first.trim_end_matches('?');
        let stem = asked.trim_end_matches('!');
        let bang = stem.len() < asked.len();
        let (word, task) = match stem.split_once(':') {
            Some((word, task)) => (word, Some(task)),
            None => (stem, None),
        };
        Head {
            first,
            word,
            task,
            bang,
            depth,
        }
    }

    /// Parse `first tokens...` again and return its canonical form (or the suggestion
    /// it in turn produces).
    ///
    /// Suggestions are built this way: apply one fix to what the user typed and let
    /// the parser judge the result, so a suggestion is never a line the parser would
    /// refuse, and several mistakes get fixed one after the other.
    /// The app named after the `on` at `args[at]`, checked as an app name; without one,
    /// the error suggests the line with `APP` put in its place (`lock`, `unlock`,
    /// `freeze` and `unfreeze` take `on APP` anywhere among their words).
    pub(crate) fn app_after_on<'w>(
        &self,
        help: &'static CommandHelp,
        args: &[&'w str],
        at: usize,
    ) -> Result<&'w str, ParseError> {
        let Some(&app) = args.get(at + 1).filter(|a| !is_dash(a)) else {
            return Err(invalid(
                help,
                "no app after `on`",
                self.retry(self.first, &splice(args, at + 1..at + 1, &["APP"])),
            ));
        };
        Name::App.check(app).map_err(|p| invalid(help, p, None))?;
        Ok(app)
    }

    pub(crate) fn retry(&self, first: &str, tokens: &[&str]) -> Option<String> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let mut line = first.to_string();
        for token in tokens {
            line.push(' ');
            line.push_str(token);
        }
        match parse_at(&line, self.depth + 1) {
            Ok(command) => Some(command.to_string()),
            Err(ParseError::Invalid { suggestion, .. }) => suggestion,
            Err(ParseError::NotACommand) => None,
        }
    }

    /// This head as if `first` (a command word, maybe with `!`) had been typed: how
    /// `deploy:rollback` hands its line to `rollback`.
    pub(crate) fn as_command(&self, first: &'static str) -> Head<'static> {
        Head::split(first, self.depth)
    }

    /// The first token without `:TASK` and `!`, keeping the bang when `keep_bang`.
    pub(crate) fn plain(&self, keep_bang: bool) -> String {
        if keep_bang && self.bang {
            format!("{}!", self.word)
        } else {
            self.word.to_string()
        }
    }

    /// Refuse `:TASK`, which only `deploy` takes.
    pub(crate) fn no_task(
        &self,
        help: &'static CommandHelp,
        args: &[&str],
    ) -> Result<(), ParseError> {
        match self.task {
            None => Ok(()),
            Some(_) => Err(invalid(
                help,
                format!("`{}` takes no `:TASK`; only `deploy` does", help.name),
                self.retry(&self.plain(true), args),
            )),
        }
    }

    /// Refuse `!` on commands with nothing to force.
    pub(crate) fn no_bang(
        &self,
        help: &'static CommandHelp,
        args: &[&str],
    ) -> Result<(), ParseError> {
        if self.bang {
            Err(invalid(
                help,
                format!("`!` means force, and `{}` has nothing to force", help.name),
                self.retry(&self.plain(false), args),
            ))
        } else {
            Ok(())
        }
    }
}

pub(crate) fn invalid(
    help: &'static CommandHelp,
    problem: impl Into<String>,
    suggestion: Option<String>,
) -> ParseError {
    ParseError::Invalid {
        command: help.name,
        problem: problem.into(),
        // A suggestion past the cap would be refused as too long.
        suggestion: suggestion.filter(|s| s.chars().nth(MAX_LINE_CHARS).is_none()),
        usage: help.grammar,
    }
}

/// `s` as inline code for a chat message: backticks that survive a backtick inside,
/// and cut short so that a huge token cannot flood the reply.
pub(crate) fn code(s: &str) -> String {
    const MAX: usize = 80;
    let mut shown: String = s.chars().take(MAX).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    if shown.contains('`') {
        format!("`` {shown} ``")
    } else {
        format!("`{shown}`")
    }
}

/// ASCII-case-insensitive keyword test; keywords are ASCII.
pub(crate) fn is(token: &str, keyword: &str) -> bool {
    token.eq_ignore_ascii_case(keyword)
}

/// `--` starts the reason. `—` counts too: some keyboards and chat clients turn a
/// typed `--` into an em dash.
pub(crate) fn is_dash(token: &str) -> bool {
    token == "--" || token == "—"
}

/// The prepositions that introduce an environment: hubot-deploy accepted all three.
pub(crate) fn is_env_prep(token: &str) -> bool {
    is(token, "to") || is(token, "in") || is(token, "on")
}

/// Habits from command-line tools in a deploy or rollback line: `--force` or `-f` for
/// `force`, and `--hotfix` for `-- hotfix`. The problem, and the words to put instead.
pub(crate) fn option_habit(word: &str, command: &str) -> Option<(String, Vec<String>)> {
    if is(word, "--force") || word == "-f" {
        let problem = format!("write `force` (or `{command}!`), not {}", code(word));
        return Some((problem, vec!["force".to_string()]));
    }
    let glued = word
        .strip_prefix("--")
        .filter(|rest| !rest.is_empty() && !rest.starts_with('-'))?;
    let problem = format!(
        "put a space after `--` in {}: the reason follows it",
        code(word)
    );
    Some((problem, vec!["--".to_string(), glued.to_string()]))
}

/// `tokens` with `range` replaced by `with`: how a suggestion applies its fix.
pub(crate) fn splice<'a>(
    tokens: &[&'a str],
    range: std::ops::Range<usize>,
    with: &[&'a str],
) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(tokens.len() + with.len());
    out.extend_from_slice(&tokens[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&tokens[range.end..]);
    out
}

/// Split at the first `--`: the words before it, and the reason words after it.
pub(crate) fn split_reason<'t, 'a>(args: &'t [&'a str]) -> (&'t [&'a str], Option<&'t [&'a str]>) {
    match args.iter().position(|t| is_dash(t)) {
        Some(i) => (&args[..i], Some(&args[i + 1..])),
        None => (args, None),
    }
}

/// Questions end in `?`: `where is api?`. No name may contain `?`, so dropping it from
/// the end of a question loses nothing.
pub(crate) fn strip_question<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = args.to_vec();
    while let Some(last) = out.pop() {
        let trimmed = last.trim_end_matches('?');
        if !trimmed.is_empty() {
            out.push(trimmed);
            break;
        }
    }
    out
}

/// The kinds of plain names a command carries. Refs follow git's rules instead
/// (see [`RefName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    App,
    Environment,
    Host,
    Task,
    Id,
}

impl Name {
    fn noun(self) -> &'static str {
        match self {
            Name::App => "app name",
            Name::Environment => "environment name",
            Name::Host => "host name",
            Name::Task => "task name",
            Name::Id => "confirmation id",
        }
    }

    fn max_len(self) -> usize {
        match self {
            Name::Host => 253,
            Name::Task | Name::Id => 64,
            Name::App | Name::Environment => 100,
        }
    }

    fn allows(self, c: char) -> bool {
        match self {
            // Ids are the bot's own tokens: no dots needed.
            Name::Id => c.is_ascii_alphanumeric() || c == '_' || c == '-',
            _ => c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-',
        }
    }

    fn allowed_text(self) -> &'static str {
        match self {
            Name::Id => "letters, digits, `_` and `-`",
            _ => "letters, digits, `_`, `.` and `-`",
        }
    }

    /// Check a name. These names end up in URLs, payloads and, on the deployer's side,
    /// often in shell commands, so the charset is deliberately small.
    pub(crate) fn check(self, s: &str) -> Result<(), String> {
        let what = self.noun();
        if s.is_empty() {
            return Err(format!("the {what} is empty"));
        }
        if let Some(c) = s.chars().find(|&c| !self.allows(c)) {
            let why = if refname::is_shell_metachar(c) {
                " (deploybot refuses shell metacharacters in names)"
            } else {
                ""
            };
            return Err(format!(
                "{} is not a valid {what}: {} is not allowed{why}; use {}",
                code(s),
                code(&c.to_string()),
                self.allowed_text()
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "{} is not a valid {what}: it must start with a letter or a digit",
                code(s)
            ));
        }
        if s.len() > self.max_len() {
            return Err(format!(
                "the {what} is too long: at most {} characters",
                self.max_len()
            ));
        }
        Ok(())
    }

    pub(crate) fn is_valid(self, s: &str) -> bool {
        self.check(s).is_ok()
    }
}
