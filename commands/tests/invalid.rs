//! Lines that look like commands but are wrong: what the user is told, and the
//! corrected line offered. And lines that are no command at all.

use commands::{parse, ParseError};

/// (input, command it was taken for, substring of the problem, exact suggestion)
#[rustfmt::skip]
const INVALID: &[(&str, &str, &str, Option<&str>)] = &[
    // deploy: missing pieces
    ("deploy api staging", "deploy", "needs `to`", Some("deploy api to staging")),
    ("deploy api staging force", "deploy", "needs `to`", Some("deploy! api to staging")),
    ("deploy api prod/web-1", "deploy", "needs `to`", Some("deploy api to prod/web-1")),
    ("deploy api to", "deploy", "no environment after `to`", Some("deploy api to ENV")),
    ("deploy api to force", "deploy", "no environment after `to`", Some("deploy! api to ENV")),
    ("deploy api in -- why not", "deploy", "no environment after `in`", Some("deploy api to ENV -- why not")),
    ("deploy", "deploy", "nothing to deploy", Some("deploy APP to ENV")),
    ("deploy!", "deploy", "nothing to deploy", Some("deploy! APP to ENV")),
    ("deploy to staging", "deploy", "nothing to deploy", Some("deploy APP to staging")),
    ("deploy -- urgent", "deploy", "nothing to deploy", Some("deploy APP -- urgent")),
    // deploy: words that fit nowhere
    ("deploy api to staging now please", "deploy", "unexpected words `now please`", Some("deploy api to staging -- now please")),
    ("deploy api now to staging", "deploy", "unexpected word `now`", Some("deploy api to staging")),
    ("deploy api to staging now -- real reason", "deploy", "unexpected word `now`", Some("deploy api to staging -- real reason")),
    ("deploy api ot staging", "deploy", "`ot` is not a keyword", Some("deploy api to staging")),
    ("deploy api into staging", "deploy", "`into` is not a keyword", Some("deploy api to staging")),
    ("deploy api to staging --force", "deploy", "not `--force`", Some("deploy! api to staging")),
    ("deploy api -f", "deploy", "not `-f`", Some("deploy! api")),
    ("deploy api to prod --hotfix for #42", "deploy", "put a space after `--`", Some("deploy api to prod -- hotfix for #42")),
    ("rollback api --force", "rollback", "not `--force`", Some("rollback! api")),
    ("rollback api --oops", "rollback", "put a space after `--`", Some("rollback api -- oops")),
    ("deploy api to staging to production", "deploy", "two environments", Some("deploy api to staging")),
    // deploy: force and when green
    ("deploy! api/topic to staging when green", "deploy", "`force` skips the checks and `when green` waits for them", Some("deploy api/topic to staging when green")),
    ("deploy api to staging when green force -- now", "deploy", "choose one", Some("deploy api to staging when green -- now")),
    ("deploy api to staging when", "deploy", "unexpected word `when`", Some("deploy api to staging -- when")),
    // deploy: reason
    ("deploy api -- ", "deploy", "reason after `--` is empty", Some("deploy api")),
    ("deploy api to staging --", "deploy", "reason after `--` is empty", Some("deploy api to staging")),
    ("deploy api to staging — ", "deploy", "reason after `--` is empty", Some("deploy api to staging")),
    // deploy: hosts
    ("deploy api to staging/", "deploy", "no host after `/`", Some("deploy api to staging")),
    ("deploy api to prod/web-1,,web-2", "deploy", "empty host name", Some("deploy api to prod/web-1,web-2")),
    ("deploy api to prod/web-1,", "deploy", "empty host name", Some("deploy api to prod/web-1")),
    ("deploy api to /web-1", "deploy", "no environment before `/`", None),
    ("deploy api to prod/web$1", "deploy", "`$` is not allowed", None),
    ("deploy api to prod/web-1/a", "deploy", "not a valid host name", None),
    // deploy: tasks
    ("deploy: api", "deploy", "no task after `deploy:`", Some("deploy api")),
    ("deploy:m;rm api", "deploy", "not a valid task name", None),
    ("deploy:lock api", "lock", "needs an environment", Some("lock ENV on api")),
    ("deploy:lock api -- freeze", "lock", "needs an environment", Some("lock ENV on api -- freeze")),
    ("deploy:lock! api", "lock", "needs an environment", Some("lock! ENV on api")),
    ("deploy:lock", "lock", "needs an app and an environment", Some("lock ENV")),
    ("deploy:lock api to staging now", "lock", "takes only `APP to ENV`, not `now`", Some("lock staging on api -- now")),
    ("deploy:lock api to prod for 2h", "lock", "takes only `APP to ENV`, not `for 2h`", Some("lock prod on api for 2h")),
    ("deploy:unlock api to prod now", "unlock", "takes only `APP to ENV`, not `now`", Some("unlock prod on api")),
    ("deploy:unlock api", "unlock", "needs an environment", Some("unlock ENV on api")),
    ("deploy:unlock api to staging -- done", "unlock", "takes no reason", Some("unlock staging on api")),
    // deploy: injection and bad refs
    ("deploy api/x;rm -rf / to staging", "deploy", "shell metacharacters", None),
    ("deploy api/$(reboot)", "deploy", "shell metacharacters", None),
    ("deploy `id`", "deploy", "shell metacharacters", None),
    ("deploy api|sh", "deploy", "shell metacharacters", None),
    ("deploy api/a..b", "deploy", "`..` is not allowed", None),
    ("deploy api/x to st;ag", "deploy", "not a valid environment name", None),
    ("deploy api/x to staging/h&h", "deploy", "shell metacharacters", None),
    ("deploy -rf", "deploy", "cannot start with `-`", None),
    ("deploy api/topic to -x", "deploy", "must start with a letter or a digit", None),
    ("deploy api to staging\u{7}", "deploy", "control character U+0007", None),
    ("deploy api/ma\u{200b}in", "deploy", "invisible character U+200B", None),
    // misspelt command words
    ("deplyo api to staging", "deploy", "unknown command `deplyo`", Some("deploy api to staging")),
    ("dpeloy api staging", "deploy", "unknown command `dpeloy`", Some("deploy api to staging")),
    ("deplyo:migrate! api", "deploy", "unknown command `deplyo`", Some("deploy:migrate! api")),
    ("rollbak api", "rollback", "unknown command `rollbak`", Some("rollback api")),
    ("unlcok staging", "unlock", "unknown command `unlcok`", Some("unlock staging")),
    ("lcok production", "lock", "unknown command `lcok`", Some("lock production")),
    ("hlep", "help", "unknown command `hlep`", Some("help")),
    ("verison", "version", "unknown command `verison`", Some("version")),
    ("deplyo api/x;rm", "deploy", "did you mean `deploy`?); and then: `api/x;rm` is not a valid ref", None),
    // missing arguments elsewhere
    ("lock", "lock", "name the environment", Some("lock ENV")),
    ("lock on api", "lock", "name the environment", Some("lock ENV on api")),
    ("lock staging on", "lock", "no app after `on`", Some("lock staging on APP")),
    ("lock staging for", "lock", "no duration after `for`", Some("lock staging for 1h")),
    ("lock staging 2h", "lock", "write `for` before the duration", Some("lock staging for 2h")),
    ("lock staging for 0m", "lock", "`for 0s` is out of range: a lock lasts `for DURATION` (1m to 7d), or `lock_ttl` without `for`", Some("lock staging for 1m")),
    ("lock staging for 30s", "lock", "out of range", Some("lock staging for 1m")),
    ("lock staging for 400d", "lock", "`for 400d` is out of range", Some("lock staging for 7d")),
    ("lock production on web for 30d", "lock", "(1m to 7d)", Some("lock production on web for 7d")),
    ("lock production on web for 10y", "lock", "`10y` is not a duration", None),
    ("lock production for 2 years -- freeze", "lock", "`2` is not a duration", None),
    ("lock staging --", "lock", "reason after `--` is empty", Some("lock staging")),
    ("lock:x staging", "lock", "takes no `:TASK`", Some("lock staging")),
    ("unlock", "unlock", "name the environment", Some("unlock ENV")),
    ("unlock staging now", "unlock", "unexpected `now`", Some("unlock staging")),
    ("unlock staging -- done", "unlock", "takes no reason", Some("unlock staging")),
    // freeze: the reason is required, after `--`
    ("freeze", "freeze", "say why after `--`", Some("freeze -- REASON")),
    ("freeze production", "freeze", "say why after `--`", Some("freeze production -- REASON")),
    ("freeze production --", "freeze", "say why after `--`", Some("freeze production -- REASON")),
    ("freeze production db migration", "freeze", "the reason goes after `--`", Some("freeze production -- db migration")),
    ("freeze production for 10y -- x", "freeze", "`10y` is not a duration", None),
    ("freeze production for 40d -- x", "freeze", "out of range", Some("freeze production for 30d -- x")),
    ("freeze on -- x", "freeze", "no app after `on`", Some("freeze on APP -- x")),
    ("freeze! production -- x", "freeze", "nothing to force", Some("freeze production -- x")),
    ("unfreeze production now", "unfreeze", "unexpected `now`", Some("unfreeze production")),
    ("unfreeze -- done", "unfreeze", "takes no reason", Some("unfreeze")),
    ("why", "why", "name the environment", Some("why ENV")),
    ("why?", "why", "name the environment", Some("why ENV")),
    ("why staging on", "why", "no app after `on`", Some("why staging on APP")),
    ("why can't I deploy api to production?", "why", "why ENV [on APP]", Some("why production on api")),
    ("why cant i deploy", "why", "why ENV [on APP]", Some("why ENV")),
    ("whats on", "whats-on", "name the environment", Some("whats on ENV")),
    ("what's on for api", "whats-on", "name the environment", Some("whats on ENV for api")),
    ("whats on staging for", "whats-on", "no app after `for`", Some("whats on staging for APP")),
    ("whats on staging right now", "whats-on", "unexpected `right now`", Some("whats on staging")),
    ("rollback", "rollback", "name the app", Some("rollback APP")),
    ("rollback! in production", "rollback", "name the app", Some("rollback! APP in production")),
    ("rollback api/topic", "rollback", "takes an app, not a ref", Some("rollback api")),
    ("rollback api production", "rollback", "needs `in`", Some("rollback api in production")),
    ("rollback api in", "rollback", "no environment after `in`", Some("rollback api in ENV")),
    ("rollback api in prod it broke", "rollback", "a reason goes after `--`", Some("rollback api in prod -- it broke")),
    ("rollback:x api", "rollback", "takes no `:TASK`", Some("rollback api")),
    ("deploys", "deploys", "which app", Some("deploys APP")),
    ("deploys in staging", "deploys", "which app", Some("deploys APP in staging")),
    ("deploys api staging", "deploys", "write `in`", Some("deploys api in staging")),
    ("deploys api 5", "deploys", "write `last`", Some("deploys api last 5")),
    ("deploys api last", "deploys", "no number after `last`", Some("deploys api last 10")),
    ("deploys api last 0", "deploys", "from 1 to 100", Some("deploys api last 10")),
    ("deploys api last 5000", "deploys", "from 1 to 100", Some("deploys api last 100")),
    ("deploys api last many", "deploys", "from 1 to 100", Some("deploys api last 10")),
    ("deploys api/..x", "deploys", "`..` is not allowed", None),
    ("deploys are slow today", "deploys", "unexpected `slow today`", Some("deploys are")),
    ("deploys! api", "deploys", "nothing to force", Some("deploys api")),
    ("environments api staging", "environments", "unexpected `staging`", Some("environments api")),
    ("where can i deploy", "environments", "which app", Some("environments APP")),
    ("where can i deploy api to staging", "environments", "unexpected `to staging`", Some("environments api")),
    ("where is", "environments", "which app", Some("environments APP")),
    ("where is a;b", "environments", "shell metacharacters", None),
    ("audit api in", "audit", "no environment after `in`", Some("audit api in ENV")),
    ("audit api staging", "audit", "unexpected `staging`", Some("audit api in staging")),
    ("audit api in staging now", "audit", "unexpected `now`", Some("audit api in staging")),
    ("audit -- x", "audit", "unexpected `-- x`", Some("audit")),
    ("rollback api in prod in staging", "rollback", "two environments", Some("rollback api in prod")),
    ("confirm a;b", "confirm", "not a valid confirmation id", Some("confirm")),
    ("yes 12 13", "confirm", "at most one id", Some("confirm 12")),
    ("cancel 12 13", "cancel", "at most one id", Some("cancel 12")),
    ("locks staging", "locks", "takes nothing after it", Some("locks")),
    ("locks!", "locks", "nothing to force", Some("locks")),
    ("version now", "version", "takes nothing after it", Some("version")),
    ("help <@everyone>", "help", "there is no help for", Some("help")),
];

#[test]
fn invalid_lines_say_what_is_wrong_and_suggest_a_fix() {
    let mut failures = Vec::new();
    for &(input, command, problem_part, suggestion) in INVALID {
        match parse(input) {
            Err(ParseError::Invalid {
                command: c,
                problem,
                suggestion: s,
                usage,
            }) => {
                if c != command {
                    failures.push(format!("`{input}`: command {c:?}, expected {command:?}"));
                }
                if !problem.contains(problem_part) {
                    failures.push(format!(
                        "`{input}`: problem {problem:?} lacks {problem_part:?}"
                    ));
                }
                if s.as_deref() != suggestion {
                    failures.push(format!(
                        "`{input}`: suggestion {s:?}, expected {suggestion:?}"
                    ));
                }
                if usage.is_empty() {
                    failures.push(format!("`{input}`: no usage"));
                }
            }
            other => failures.push(format!("`{input}`: expected Invalid, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn suggestions_that_hold_no_placeholder_parse() {
    for &(input, _, _, suggestion) in INVALID {
        let Some(suggestion) = suggestion else {
            continue;
        };
        if ["APP", "ENV"]
            .iter()
            .any(|p| suggestion.split_whitespace().any(|w| w.contains(p)))
        {
            continue;
        }
        let parsed = parse(suggestion);
        assert!(
            parsed.is_ok(),
            "suggestion `{suggestion}` for `{input}` does not parse: {parsed:?}"
        );
        assert_eq!(
            parsed.unwrap().to_string(),
            suggestion,
            "suggestions are canonical"
        );
    }
}

#[test]
fn lines_that_are_no_command() {
    for input in [
        "",
        "   ",
        "\n\t",
        "hello there",
        "hello",
        "deployment went fine",
        "deployed to prod already",
        "deploying now",
        "delay the release",
        "look at this",
        "locked out again",
        "no idea",
        "no way",
        "yes sir",
        "yes, that works",
        "y not",
        "whats up",
        "what time is it",
        "where did everyone go",
        "where is the party at tonight",
        "where can i find the logs",
        "thanks!",
        "the deploy failed",
        "!!!",
        "🚀",
        "!deploy api",
        ":deploy",
        "channel is noisy",
        "y'all ready?",
    ] {
        assert_eq!(parse(input), Err(ParseError::NotACommand), "{input:?}");
    }
}

#[test]
fn long_lines_are_refused_before_parsing() {
    let long = format!("deploy api to staging -- {}", "x".repeat(3000));
    match parse(&long) {
        Err(ParseError::Invalid { problem, .. }) => {
            assert!(problem.contains("too long"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse(&"x".repeat(100_000)), Err(ParseError::NotACommand));
    assert_eq!(
        parse(&format!("hello {}", "deploy ".repeat(1000))),
        Err(ParseError::NotACommand)
    );
    // Just under the cap is fine.
    let reason = "x".repeat(commands::MAX_LINE_CHARS - "deploy api -- ".len());
    assert!(parse(&format!("deploy api -- {reason}")).is_ok());
}

#[test]
fn error_messages_read_as_one_chat_message() {
    let err = parse("deploy api staging").unwrap_err();
    assert_eq!(
        err.to_string(),
        "deploy needs `to` before the environment — did you mean `deploy api to staging`?\n\
         usage: deploy[:TASK][!] APP|APP/REF|REF [to|in|on ENV[/HOST,...]] [force | when green] [queue] [-- REASON]"
    );
    let err = parse("deploy api/x;rm").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("`api/x;rm` is not a valid ref: `;` is not allowed"),
        "{text}"
    );
    assert!(
        text.contains("deploybot refuses shell metacharacters in refs"),
        "{text}"
    );
    assert!(!text.contains("did you mean"), "{text}");
    assert_eq!(
        ParseError::NotACommand.to_string(),
        "that is not a command (try `help`)"
    );
    // A backtick in the suggestion cannot break the inline code around it.
    let err = parse("deploy api to staging now `x`").unwrap_err();
    assert!(
        err.to_string()
            .contains("`` deploy api to staging -- now `x` ``"),
        "{err}"
    );
}

#[test]
fn injection_never_parses_whatever_the_field() {
    let payloads = [
        ";rm", "$(id)", "`id`", "a|b", "a&b", "a>b", "a<b", "a'b", "a\"b",
    ];
    for p in payloads {
        for line in [
            format!("deploy {p}"),
            format!("deploy api/{p}"),
            format!("deploy api to {p}"),
            format!("deploy api to staging/{p}"),
            format!("deploy api to staging/web-1,{p}"),
            format!("deploy:{p} api"),
            format!("deploys {p}"),
            format!("deploys api/{p}"),
            format!("deploys api in {p}"),
            format!("environments {p}"),
            format!("where is {p}"),
            format!("whats on {p}"),
            format!("whats on staging for {p}"),
            format!("rollback {p}"),
            format!("rollback api in {p}"),
            format!("lock {p}"),
            format!("lock staging on {p}"),
            format!("deploy:lock {p} to staging"),
            format!("deploy:lock api to {p}"),
            format!("unlock {p}"),
            format!("unlock staging on {p}"),
            format!("why {p}"),
            format!("why staging on {p}"),
            format!("audit {p}"),
            format!("audit api in {p}"),
            format!("confirm {p}"),
            format!("cancel {p}"),
        ] {
            assert!(
                matches!(parse(&line), Err(ParseError::Invalid { .. })),
                "`{line}` gave {:?}",
                parse(&line)
            );
        }
    }
}
