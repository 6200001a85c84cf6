//! The parser is fuzzed: it never panics, every command it returns prints back to
//! itself, and every suggestion it makes is a line it accepts.

use std::time::Duration;

use commands::{
    parse, Audit, Cancel, Command, Confirm, Deploy, Deploys, Dequeue, Environments, Freeze, Help,
    Lock, Locks, ParseError, Queue, RefName, Rollback, Unfreeze, Unlock, Version, WhatsOn, Why,
};
use proptest::prelude::*;
use proptest::sample::select;

/// Words with a meaning somewhere in the language; generated names avoid them, as a
/// user naming an app `to` would have to.
const RESERVED: &[&str] = &[
    "to", "in", "on", "for", "of", "force", "last", "is", "can", "cant", "cannot", "i", "we",
    "you", "deploy", "deployed", "running", "live", "please", "pls", "plz", "thanks", "thx",
    "lock", "unlock", "freeze", "unfreeze",
];

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{0,12}".prop_filter("reserved word", |s| {
        !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
    })
}

fn git_ref() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_é][A-Za-z0-9_./@{}#+é-]{0,24}".prop_filter("valid ref, not a keyword", |s| {
        RefName::parse(s).is_ok() && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
    })
}

fn reason() -> impl Strategy<Value = String> {
    prop::collection::vec("[^\\s\\p{Cc}]{1,8}", 1..6).prop_map(|words| words.join(" "))
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_-]{0,10}".prop_filter("courtesy word", |s| {
        !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
    })
}

fn duration() -> impl Strategy<Value = Duration> {
    (60u64..=7 * 86_400).prop_map(Duration::from_secs)
}

fn deploy() -> impl Strategy<Value = Deploy> {
    (
        prop::option::of(
            "[a-z0-9][a-z0-9_.-]{0,8}".prop_filter("lock tasks", |t| t != "lock" && t != "unlock"),
        ),
        any::<bool>(),
        git_ref(),
        prop::option::of((name(), prop::collection::vec(name(), 0..3))),
        prop::option::of(reason()),
        any::<bool>(),
    )
        .prop_map(|(task, force, target, env, reason, queue)| {
            let (environment, hosts) = match env {
                Some((env, hosts)) => (Some(env), hosts),
                None => (None, Vec::new()),
            };
            Deploy {
                task: task.map_or("deploy".to_string(), |t| format!("deploy:{t}")),
                force,
                target,
                environment,
                hosts,
                reason,
                queue,
                when_green: false,
            }
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        deploy().prop_map(Command::Deploy),
        (
            name(),
            prop::option::of(git_ref()),
            prop::option::of(name()),
            prop::option::of(1u32..=100)
        )
            .prop_map(
                |(app, git_ref, environment, limit)| Command::Deploys(Deploys {
                    app,
                    git_ref,
                    environment,
                    limit
                })
            ),
        prop::option::of(name()).prop_map(|app| Command::Environments(Environments { app })),
        (name(), prop::option::of(name()))
            .prop_map(|(environment, app)| Command::WhatsOn(WhatsOn { environment, app })),
        (
            name(),
            prop::option::of(name()),
            any::<bool>(),
            prop::option::of(reason())
        )
            .prop_map(
                |(app, environment, force, reason)| Command::Rollback(Rollback {
                    app,
                    environment,
                    force,
                    reason
                })
            ),
        (
            any::<bool>(),
            name(),
            prop::option::of(name()),
            prop::option::of(duration()),
            prop::option::of(reason())
        )
            .prop_map(
                |(force, environment, app, duration, reason)| Command::Lock(Lock {
                    force,
                    environment,
                    app,
                    duration,
                    reason
                })
            ),
        (any::<bool>(), name(), prop::option::of(name())).prop_map(|(force, environment, app)| {
            Command::Unlock(Unlock {
                force,
                environment,
                app,
            })
        }),
        Just(Command::Locks(Locks)),
        (prop::option::of(name()), prop::option::of(name()))
            .prop_map(|(environment, app)| Command::Queue(Queue { environment, app })),
        (prop::option::of(name()), prop::option::of(name()))
            .prop_map(|(environment, app)| Command::Dequeue(Dequeue { environment, app })),
        (
            prop::option::of(name()),
            prop::option::of(name()),
            prop::option::of(duration()),
            reason()
        )
            .prop_map(
                |(environment, app, duration, reason)| Command::Freeze(Freeze {
                    environment,
                    app,
                    duration,
                    reason
                })
            ),
        (prop::option::of(name()), prop::option::of(name()))
            .prop_map(|(environment, app)| Command::Unfreeze(Unfreeze { environment, app })),
        (name(), prop::option::of(name()))
            .prop_map(|(environment, app)| Command::Why(Why { environment, app })),
        (prop::option::of(name()), prop::option::of(name()))
            .prop_map(|(app, environment)| Command::Audit(Audit { app, environment })),
        prop::option::of(id()).prop_map(|id| Command::Confirm(Confirm { id })),
        prop::option::of(id()).prop_map(|id| Command::Cancel(Cancel { id })),
        prop::option::of(prop::collection::vec("[a-z0-9][a-z0-9_.:!'-]{0,7}", 1..4)).prop_map(
            |words| {
                Command::Help(Help {
                    topic: words.map(|w| w.join(" ")),
                })
            }
        ),
        Just(Command::Version(Version)),
    ]
}

/// Tokens that steer the parser into its corners.
const VOCABULARY: &[&str] = &[
    "deploy",
    "deploy!",
    "DEPLOY",
    "deploy:migrate",
    "deploy:lock",
    "deploy:unlock",
    "deploy:",
    "deplyo",
    "deploys",
    "environments",
    "envs",
    "where",
    "can",
    "i",
    "is",
    "deployed",
    "whats",
    "what's",
    "what",
    "what’s",
    "rollback",
    "rollback!",
    "lock",
    "lock!",
    "unlock",
    "locks",
    "queue",
    "dequeue",
    "why",
    "why?",
    "audit",
    "yes",
    "y",
    "no",
    "confirm",
    "cancel",
    "help",
    "version",
    "to",
    "in",
    "on",
    "for",
    "of",
    "force",
    "last",
    "--",
    "—",
    "-f",
    "--force",
    "api",
    "api/topic",
    "Api/Feature/x",
    "staging",
    "prod/web-1,web-2",
    "prod/",
    "web-1,",
    "web-2",
    ",",
    "/",
    "2h",
    "1h30m",
    "2",
    "hours",
    "0s",
    "5",
    "0",
    "101",
    "#12",
    "please",
    "?",
    "x;rm",
    "$(id)",
    "a..b",
    "@",
    "é",
    "\u{200b}",
    "ENV",
    "APP",
    "can't",
    "🚀",
    "now",
    "ot",
];

/// The words that start a command, so that most chatty lines get past the first word.
const STARTS: &[&str] = &[
    "deploy",
    "deploy!",
    "deploy:migrate",
    "deploy:lock",
    "deploy:unlock",
    "deplyo",
    "deploys",
    "environments",
    "where",
    "whats",
    "what",
    "rollback",
    "rollback!",
    "lock",
    "lock!",
    "unlock",
    "locks",
    "queue",
    "dequeue",
    "why",
    "audit",
    "yes",
    "no",
    "confirm",
    "cancel",
    "help",
    "version",
];

fn chatty_line() -> impl Strategy<Value = String> {
    let first = prop_oneof![4 => select(STARTS).prop_map(str::to_string), 1 => select(VOCABULARY).prop_map(str::to_string)];
    let token = prop_oneof![6 => select(VOCABULARY).prop_map(str::to_string), 1 => "\\PC{0,6}"];
    let gap = select(&[" ", "  ", "\t", "\n", "\u{a0}", " "][..]);
    (first, prop::collection::vec((token, gap), 0..8)).prop_map(|(first, parts)| {
        let rest: String = parts.into_iter().map(|(t, g)| format!("{g}{t}")).collect();
        format!("{first}{rest}")
    })
}

/// Every name a command carries is plain: no whitespace, control character or
/// shell metacharacter can reach the bot through one.
fn names_of(command: &Command) -> Vec<String> {
    let mut names = Vec::new();
    match command {
        Command::Deploy(d) => {
            names.push(d.task.clone());
            names.push(d.target.clone());
            names.extend(d.environment.clone());
            names.extend(d.hosts.clone());
        }
        Command::Deploys(d) => {
            names.push(d.app.clone());
            names.extend(d.git_ref.clone());
            names.extend(d.environment.clone());
        }
        Command::Environments(e) => names.extend(e.app.clone()),
        Command::WhatsOn(w) => {
            names.push(w.environment.clone());
            names.extend(w.app.clone());
        }
        Command::Rollback(r) => {
            names.push(r.app.clone());
            names.extend(r.environment.clone());
        }
        Command::Lock(l) => {
            names.push(l.environment.clone());
            names.extend(l.app.clone());
        }
        Command::Unlock(u) => {
            names.push(u.environment.clone());
            names.extend(u.app.clone());
        }
        Command::Freeze(Freeze {
            environment, app, ..
        })
        | Command::Unfreeze(Unfreeze { environment, app }) => {
            names.extend(environment.clone());
            names.extend(app.clone());
        }
        Command::Why(w) => {
            names.push(w.environment.clone());
            names.extend(w.app.clone());
        }
        Command::Audit(a) => {
            names.extend(a.app.clone());
            names.extend(a.environment.clone());
        }
        Command::Queue(Queue { environment, app })
        | Command::Dequeue(Dequeue { environment, app }) => {
            names.extend(environment.clone());
            names.extend(app.clone());
        }
        Command::Confirm(Confirm { id }) | Command::Cancel(Cancel { id }) => {
            names.extend(id.clone())
        }
        Command::Locks(_) | Command::Help(_) | Command::Version(_) => {}
    }
    names
}

fn has_placeholder(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| w.contains("APP") || w.contains("ENV"))
}

/// What must hold for any line at all.
fn check_line(line: &str) -> Result<(), TestCaseError> {
    match parse(line) {
        Ok(command) => {
            let canonical = command.to_string();
            prop_assert_eq!(
                parse(&canonical),
                Ok(command.clone()),
                "canonical `{}` of `{}`",
                canonical,
                line
            );
            for name in names_of(&command) {
                prop_assert!(!name.is_empty(), "empty name in {:?}", command);
                prop_assert!(
                    !name.chars().any(|c| c.is_whitespace()
                        || c.is_control()
                        || matches!(c, ';' | '|' | '&' | '$' | '`' | '\'' | '"' | '<' | '>')),
                    "unsafe name {:?} in {:?}",
                    name,
                    command
                );
            }
        }
        Err(ParseError::NotACommand) => {}
        Err(err @ ParseError::Invalid { .. }) => {
            let ParseError::Invalid {
                suggestion,
                problem,
                ..
            } = &err
            else {
                unreachable!()
            };
            prop_assert!(!problem.is_empty());
            prop_assert!(!err.to_string().is_empty());
            if let Some(suggestion) = suggestion {
                prop_assert!(!suggestion.is_empty());
                if !has_placeholder(suggestion) {
                    let fixed = parse(suggestion);
                    prop_assert!(
                        fixed.is_ok(),
                        "suggestion `{}` for `{}` fails: {:?}",
                        suggestion,
                        line,
                        fixed
                    );
                    prop_assert_eq!(
                        &fixed.unwrap().to_string(),
                        suggestion,
                        "suggestions are canonical"
                    );
                }
            }
        }
    }
    Ok(())
}

/// The seed every run uses unless told otherwise, so that CI's runs are reproducible:
/// a failure there fails the same way on a laptop.
const SEED: u64 = 0x6465_706c_6f79_626f; // "deploybo"

/// 2,000 cases from a fixed seed by default (what `cargo test` and CI run). For a longer
/// exploring run, set `PROPTEST_CASES` and a seed of your own, or `random`:
/// `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=random cargo test --release -p commands --test fuzz`.
/// Failures are saved in `tests/fuzz.proptest-regressions` and replayed first on every
/// later run: commit that file.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => proptest::test_runner::RngSeed::Random,
        Ok(seed) => match seed.parse() {
            Ok(seed) => proptest::test_runner::RngSeed::Fixed(seed),
            Err(_) => panic!("PROPTEST_RNG_SEED is a number or `random`, not {seed:?}"),
        },
        Err(_) => proptest::test_runner::RngSeed::Fixed(SEED),
    };
    ProptestConfig {
        cases,
        rng_seed,
        // `cargo test` runs in the crate's folder.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/fuzz.proptest-regressions",
            ),
        )),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_commands_print_and_parse_back(command in command()) {
        let text = command.to_string();
        prop_assert_eq!(parse(&text), Ok(command), "`{}`", text);
    }

    #[test]
    fn commands_read_the_same_whatever_the_keyword_case_and_spacing(command in command(), upper in any::<bool>()) {
        // Keywords are case-insensitive and any whitespace separates words; the names
        // inside are kept as typed, so only shout the keyword-only commands.
        let text = command.to_string();
        let spaced = text.split(' ').collect::<Vec<_>>().join(" \t ");
        prop_assert_eq!(parse(&format!("  {spaced}\n")), Ok(command.clone()));
        if upper && matches!(command, Command::Locks(_) | Command::Version(_) | Command::Confirm(Confirm { id: None })) {
            prop_assert_eq!(parse(&text.to_uppercase()), Ok(command));
        }
    }

    #[test]
    fn chatty_lines_hold_every_promise(line in chatty_line()) {
        check_line(&line)?;
    }

    #[test]
    fn arbitrary_text_holds_every_promise(line in any::<String>()) {
        check_line(&line)?;
    }

    #[test]
    fn arbitrary_text_after_a_command_word_holds_every_promise(
        word in select(VOCABULARY),
        rest in "\\PC{0,40}",
    ) {
        check_line(&format!("{word} {rest}"))?;
    }
}

#[test]
fn huge_and_hostile_inputs_do_not_panic() {
    let inputs = [
        "deploy ".repeat(10_000),
        format!("deploy {}", "a/".repeat(100_000)),
        format!("deploy api to {}", "x,".repeat(50_000)),
        "\u{0}".repeat(10_000),
        "\u{202e}deploy api".to_string(),
        format!("deploy api -- {}", "🚀".repeat(1999)),
        "deplyo ".repeat(500),
        "—".repeat(3000),
        format!("lock staging for {}", "9".repeat(400)),
        format!("lock staging for {}h", "9".repeat(30)),
        format!("deploys api last {}", "9".repeat(50)),
    ];
    for input in inputs {
        let _ = parse(&input);
        let _ = parse(&input).map_err(|e| e.to_string());
    }
}
