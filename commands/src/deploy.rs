//! `deploy`: ask GitHub for a deployment.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, is_dash, is_env_prep, option_habit, splice, split_reason, CommandHelp,
    Example, Head, Name, ParseError, RefName,
};
use crate::{lock, rollback, unlock, version, Command};

/// Deploy an app, a branch of an app, or a ref of the channel's app.
///
/// ```text
/// deploy[:TASK][!] APP|APP/REF|REF [to|in|on ENV[/HOST,...]] [force | when green] [queue] [-- REASON]
/// ```
///
/// The parser cannot know which apps exist, so `target` is kept whole as typed and
/// the bot splits it: a word naming a configured app is that app (its default
/// branch), `APP/REF` is a ref of that app (refs may contain slashes themselves), and
/// anything else is a ref of the channel's default app. The whole target passes the
/// [`RefName`] rules, so whatever the bot splits off is a valid ref.
///
/// `!` and a trailing `force` mean the same thing: skip the required status checks.
/// `when green` is their opposite: wait for the checks, and deploy the moment they pass
/// (so the two together are refused).
///
/// hubot-deploy's tasks that are commands here are read as those commands:
/// `deploy:lock APP to ENV` and `deploy:unlock APP to ENV` as [`crate::Lock`] and
/// [`crate::Unlock`], `deploy:rollback APP [to ENV]` as [`crate::Rollback`] and
/// `deploy:version` as [`crate::Version`]. hubot-deploy's optional trailing Yubikey
/// one-time password is refused with the same line without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// The GitHub deployment task: `"deploy"`, or `"deploy:migrate"` for
    /// `deploy:migrate`. The part after `:` is lowercased.
    pub task: String,
    /// `!` or `force`: skip the required status checks.
    pub force: bool,
    /// `APP`, `APP/REF` or `REF`, exactly as typed (case kept).
    pub target: String,
    /// The environment after `to`; `None` means the app's default.
    pub environment: Option<String>,
    /// Hosts after `ENV/`; empty means all of them.
    pub hosts: Vec<String>,
    /// Everything after `--`, with whitespace runs made single spaces.
    pub reason: Option<String>,
    /// `queue`: when the environment is locked, busy or reserved, join its queue
    /// instead of being refused.
    pub queue: bool,
    /// `when green`: wait for the ref's checks, deploy once they pass.
    pub when_green: bool,
}

const PARAMS: &[Param] = &[
    Param::optional("app", Kind::App, "The app, as configured (e.g. api)"),
    Param::optional(
        "ref",
        Kind::Ref,
        "A branch, tag or sha; without an app, a ref of this channel's app",
    ),
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. staging); default: the app's",
    ),
    Param::optional(
        "hosts",
        Kind::Hosts,
        "Only these hosts, separated by commas (needs an environment)",
    ),
    Param::optional(
        "task",
        Kind::Word,
        "Another task for the deployer, e.g. migrate (default: deploy)",
    ),
    Param::optional(
        "force",
        Kind::Flag,
        "Skip the required checks (if your role may)",
    ),
    Param::optional(
        "reason",
        Kind::Text,
        "Why; needed to force a production deploy",
    ),
    Param::optional(
        "queue",
        Kind::Flag,
        "If the environment is locked or busy, wait in line instead",
    ),
    Param::optional(
        "wait",
        Kind::Flag,
        "Wait for the checks, and deploy the moment they pass (when green)",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    let target = match (form.word("app")?, form.word("ref")?) {
        (Some(app), Some(r)) => format!("{app}/{r}"),
        (Some(app), None) => app,
        (None, Some(r)) => r,
        (None, None) => {
            return Err(
                "say what to deploy: an `app` (its default branch), a `ref`, or both".to_string(),
            )
        }
    };
    let environment = form.word("environment")?;
    let hosts = form.list("hosts");
    if !hosts.is_empty() && environment.is_none() {
        return Err("`hosts` are hosts of an environment: say which `environment` too".to_string());
    }
    let task = match form.word("task")? {
        None => "deploy".to_string(),
        Some(t) => {
            let t = t.to_lowercase();
            let t = t.strip_prefix("deploy:").unwrap_or(&t);
            if t == "deploy" {
                "deploy".to_string()
            } else {
                format!("deploy:{t}")
            }
        }
    };
    let (force, when_green) = (form.flag("force"), form.flag("wait"));
    if force && when_green {
        return Err(FORCE_AND_WAIT.to_string());
    }
    Ok(Command::Deploy(Deploy {
        task,
        force,
        target,
        environment,
        hosts,
        reason: form.line("reason"),
        queue: form.flag("queue"),
        when_green,
    }))
}

/// Why `force` and `when green` do not go together.
const FORCE_AND_WAIT: &str = "`force` skips the checks and `when green` waits for them: choose one";

pub const HELP: CommandHelp = CommandHelp {
    name: "deploy",
    params: PARAMS,
    from_options,
    grammar: "deploy[:TASK][!] APP|APP/REF|REF [to|in|on ENV[/HOST,...]] [force | when green] [queue] [-- REASON]",
    summary:
        "Deploy an app (its default branch), a branch of an app, or a ref of this channel's app.",
    details:
        "Without `to ENV` the app's default environment is used; `in` and `on` work like `to`. \
`ENV/web-1,web-2` deploys to some hosts only. \
`!` or a trailing `force` skips the required status checks, if your role may. \
`when green` deploys once checks pass; \
a failed check, a push, `cancel` or a timeout ends it. \
`:TASK` asks the deployer for another task, e.g. `deploy:migrate`. \
Everything after `--` is the reason, kept with the deployment; forcing a production environment needs one. \
A bare word close to an app's name (`apj`) gets a question before anything is sent: `did you mean api?`. \
The answer says how the ref relates to what is live there (commits ahead, behind, diverged). \
`deploy:lock APP to ENV`, `deploy:unlock APP to ENV`, `deploy:rollback APP to ENV` and `deploy:version` (hubot-deploy's forms) are `lock`, `unlock`, `rollback` and `version`.",
    examples: &[
        Example {
            input: "deploy api",
            canonical: "deploy api",
        },
        Example {
            input: "deploy api to staging",
            canonical: "deploy api to staging",
        },
        Example {
            input: "deploy api/topic to staging",
            canonical: "deploy api/topic to staging",
        },
        Example {
            input: "DEPLOY Api/Topic TO staging",
            canonical: "deploy Api/Topic to staging",
        },
        Example {
            input: "deploy! topic",
            canonical: "deploy! topic",
        },
        Example {
            input: "deploy v1.4.2 in production",
            canonical: "deploy v1.4.2 to production",
        },
        Example {
            input: "deploy:migrate! api to staging",
            canonical: "deploy:migrate! api to staging",
        },
        Example {
            input: "deploy api/feature/login to prod/web-1,web-2 force -- hotfix for #42",
            canonical: "deploy! api/feature/login to prod/web-1,web-2 -- hotfix for #42",
        },
        Example {
            input: "deploy api on staging/web-1, web-2",
            canonical: "deploy api to staging/web-1,web-2",
        },
        Example {
            input: "deploy  api   to staging  --  trying   the fix",
            canonical: "deploy api to staging -- trying the fix",
        },
        Example {
            input: "deploy api force to production — release 2.0",
            canonical: "deploy! api to production -- release 2.0",
        },
        Example {
            input: "deploy api/topic to staging when green",
            canonical: "deploy api/topic to staging when green",
        },
        Example {
            input: "deploy:lock api to production -- release freeze",
            canonical: "lock production on api -- release freeze",
        },
        Example {
            input: "deploy:unlock api to production",
            canonical: "unlock production on api",
        },
        Example {
            input: "deploy:rollback api to production",
            canonical: "rollback api in production",
        },
        Example {
            input: "deploy:version",
            canonical: "version",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    let task = match head.task {
        None => "deploy".to_string(),
        Some(task) => {
            if task.is_empty() {
                return Err(invalid(
                    &HELP,
                    "no task after `deploy:`; write `deploy:TASK` or just `deploy`",
                    head.retry(&head.plain(true), args),
                ));
            }
            Name::Task
                .check(task)
                .map_err(|p| invalid(&HELP, p, None))?;
            let task = task.to_ascii_lowercase();
            match task.as_str() {
                "lock" => return lock::parse_deploy_lock(head, args),
                "unlock" => return unlock::parse_deploy_unlock(head, args),
                // The rest of the line is read by that command, as if typed so.
                "rollback" => {
                    let first = if head.bang { "rollback!" } else { "rollback" };
                    return rollback::parse(&head.as_command(first), args);
                }
                "version" => return version::parse(&head.as_command("version"), args),
                _ => format!("deploy:{task}"),
            }
        }
    };
    let (words, reason_words) = split_reason(args);
    let mut deploy = Deploy {
        task,
        force: head.bang,
        target: String::new(),
        environment: None,
        hosts: Vec::new(),
        reason: None,
        queue: false,
        when_green: false,
    };

    match words.first() {
        Some(&target) if !is_keyword(target) => {
            RefName::parse(target).map_err(|e| invalid(&HELP, e.to_string(), None))?;
            deploy.target = target.to_string();
        }
        _ => {
            // `deploy` alone deserves the whole shape; otherwise keep what was typed.
            let fixed = if args.is_empty() {
                vec!["APP", "to", "ENV"]
            } else {
                splice(args, 0..0, &["APP"])
            };
            return Err(invalid(
                &HELP,
                "nothing to deploy: name an app, `APP/REF` or a ref",
                head.retry(head.first, &fixed),
            ));
        }
    }

    // Words that fit nowhere, and whether they all come after the last word that did:
    // trailing chatter reads as a reason, chatter in the middle is dropped.
    let mut extras: Vec<&str> = Vec::new();
    let mut extras_trail = true;
    let mut i = 1;
    while i < words.len() {
        let word = words[i];
        if is(word, "force") {
            deploy.force = true;
            extras_trail = extras.is_empty();
            i += 1;
            continue;
        }
        if is(word, "queue") {
            deploy.queue = true;
            extras_trail = extras.is_empty();
            i += 1;
            continue;
        }
        if is(word, "when") && words.get(i + 1).is_some_and(|w| is(w, "green")) {
            deploy.when_green = true;
            extras_trail = extras.is_empty();
            i += 2;
            continue;
        }
        if i + 1 == words.len() && is_yubikey(word) {
            return Err(invalid(
                &HELP,
                "deploybot takes no Yubikey one-time password: chat roles decide who may deploy; leave it out",
                head.retry(head.first, &splice(args, i..i + 1, &[])),
            ));
        }
        if let Some((problem, instead)) = option_habit(word, "deploy") {
            let instead: Vec<&str> = instead.iter().map(String::as_str).collect();
            return Err(invalid(
                &HELP,
                problem,
                head.retry(head.first, &splice(args, i..i + 1, &instead)),
            ));
        }
        if is_env_prep(word) {
            if let Some(env) = &deploy.environment {
                // Drop the second `to ENV` and whatever belongs to it.
                let end = (i + 2).min(words.len());
                return Err(invalid(
                    &HELP,
                    format!(
                        "two environments ({} and the one after {}): deploy to one at a time",
                        code(env),
                        code(word)
                    ),
                    head.retry(head.first, &splice(args, i..end, &[])),
                ));
            }
            let Some(&first) = words.get(i + 1).filter(|w| !is_keyword(w)) else {
                return Err(invalid(
                    &HELP,
                    format!("no environment after {}", code(word)),
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["ENV"])),
                ));
            };
            // `prod/web-1, web-2`: a space after a comma still lists hosts.
            let mut spec = first.to_string();
            let mut end = i + 2;
            while spec.ends_with(',') && end < words.len() && !is_keyword(words[end]) {
                spec.push_str(words[end]);
                end += 1;
            }
            match env_and_hosts(&spec) {
                Ok((env, hosts)) => {
                    deploy.environment = Some(env);
                    deploy.hosts = hosts;
                }
                Err((problem, fixed)) => {
                    let suggestion = fixed.and_then(|f| {
                        head.retry(head.first, &splice(args, i + 1..end, &[f.as_str()]))
                    });
                    return Err(invalid(&HELP, problem, suggestion));
                }
            }
            extras_trail = extras.is_empty();
            i = end;
            continue;
        }
        if deploy.environment.is_none() {
            // `deploy api staging`: the one remaining word reads as the environment.
            let rest_is_force = words[i + 1..].iter().all(|w| is(w, "force"));
            if rest_is_force && !is_keyword(word) && env_and_hosts(word).is_ok() {
                return Err(invalid(
                    &HELP,
                    "deploy needs `to` before the environment",
                    head.retry(head.first, &splice(args, i..i, &["to"])),
                ));
            }
            // `deploy api ot staging`, `deploy api into staging`.
            let next_is_env = words
                .get(i + 1)
                .is_some_and(|n| !is_keyword(n) && env_and_hosts(n).is_ok());
            if next_is_env && looks_like_prep(word) {
                return Err(invalid(
                    &HELP,
                    format!(
                        "{} is not a keyword; write `to` before the environment",
                        code(word)
                    ),
                    head.retry(head.first, &splice(args, i..i + 1, &["to"])),
                ));
            }
        }
        extras.push(word);
        i += 1;
    }

    if let Some(reason) = reason_words {
        if reason.is_empty() {
            let mut fixed = deploy.clone();
            if extras_trail && !extras.is_empty() {
                fixed.reason = Some(extras.join(" "));
            }
            return Err(invalid(
                &HELP,
                "the reason after `--` is empty; write one, or leave out `--`",
                Some(fixed.to_string()),
            ));
        }
        deploy.reason = Some(reason.join(" "));
    }

    if !extras.is_empty() {
        let plural = if extras.len() == 1 { "word" } else { "words" };
        let said = extras.join(" ");
        let mut problem = format!("unexpected {plural} {}", code(&said));
        let mut fixed = deploy.clone();
        if extras_trail && fixed.reason.is_none() {
            problem.push_str("; a reason goes after `--`");
            fixed.reason = Some(said);
        }
        return Err(invalid(&HELP, problem, Some(fixed.to_string())));
    }
    if deploy.force && deploy.when_green {
        let mut fixed = deploy.clone();
        fixed.force = false;
        return Err(invalid(&HELP, FORCE_AND_WAIT, Some(fixed.to_string())));
    }

    Ok(Command::Deploy(deploy))
}

/// Words with a meaning of their own in a deploy line; none of them can be a target
/// or an environment.
fn is_keyword(word: &str) -> bool {
    is_env_prep(word) || is(word, "force") || is_dash(word)
}

/// A Yubikey one-time password (modhex, 32 to 64 characters), which hubot-deploy
/// accepted at the end of a deploy line.
fn is_yubikey(word: &str) -> bool {
    (32..=64).contains(&word.len()) && word.bytes().all(|b| b"cbdefghijklnrtuv".contains(&b))
}

/// Short words that were meant as `to`, `in` or `on`.
fn looks_like_prep(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if matches!(lower.as_str(), "into" | "onto" | "at") {
        return true;
    }
    lower.len() <= 3
        && ["to", "in", "on"]
            .iter()
            .any(|p| crate::suggest::distance(&lower, p, 1).is_some())
}

/// Split `ENV[/HOST,...]`. On error: the problem, and a corrected spec when the fix
/// is obvious (drop a trailing `/`, drop empty hosts).
pub(crate) fn env_and_hosts(spec: &str) -> Result<(String, Vec<String>), (String, Option<String>)> {
    let (env, hosts) = match spec.split_once('/') {
        None => (spec, None),
        Some((env, hosts)) => (env, Some(hosts)),
    };
    if env.is_empty() {
        return Err((format!("no environment before `/` in {}", code(spec)), None));
    }
    Name::Environment.check(env).map_err(|p| (p, None))?;
    let Some(hosts) = hosts else {
        return Ok((env.to_string(), Vec::new()));
    };
    let listed: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
    if listed.is_empty() {
        return Err((
            format!(
                "no host after `/` in {}; list hosts as `ENV/HOST,HOST`",
                code(spec)
            ),
            Some(env.to_string()),
        ));
    }
    if listed.len() != hosts.split(',').count() {
        return Err((
            format!("an empty host name in {}", code(spec)),
            Some(format!("{env}/{}", listed.join(","))),
        ));
    }
    for host in &listed {
        Name::Host.check(host).map_err(|p| (p, None))?;
    }
    Ok((
        env.to_string(),
        listed.iter().map(|h| h.to_string()).collect(),
    ))
}

impl fmt::Display for Deploy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.task)?;
        if self.force {
            f.write_str("!")?;
        }
        write!(f, " {}", self.target)?;
        if let Some(env) = &self.environment {
            write!(f, " to {env}")?;
            if !self.hosts.is_empty() {
                write!(f, "/{}", self.hosts.join(","))?;
            }
        }
        if self.when_green {
            f.write_str(" when green")?;
        }
        if self.queue {
            f.write_str(" queue")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " -- {reason}")?;
        }
        Ok(())
    }
}
