//! hubot-deploy compatibility: every command form hubot-deploy understood — its
//! `src/models/patterns.coffee` (`DEPLOY_SYNTAX`, `DEPLOYS_SYNTAX`), the commands in
//! `src/scripts/deploy.coffee` (`where can i deploy`, `deploy:version`) and the
//! examples of its README and docs/chatops.md — either means the same thing here, or
//! is answered with the equivalent command. The README's "Coming from hubot-deploy"
//! table is this list.

use commands::{parse, Command, ParseError};

/// What a hubot-deploy line does here.
#[derive(Debug, Clone, Copy)]
enum Here {
    /// Read as this canonical command.
    Same(&'static str),
    /// Refused, with this corrected line offered.
    Suggests(&'static str),
}

use Here::*;

/// (hubot-deploy line, what hubot-deploy did, what deploybot does)
#[rustfmt::skip]
const PATTERNS: &[(&str, &str, Here)] = &[
    // DEPLOY_SYNTAX: deploy[:task][!] app[/ref] [to|in|on env[/hosts]] [yubikey]
    ("deploy hubot", "deploys the default branch of hubot to its default environment", Same("deploy hubot")),
    ("deploy hubot/topic", "deploys the topic branch", Same("deploy hubot/topic")),
    ("deploy! hubot", "skips the CI and ahead/behind checks", Same("deploy! hubot")),
    ("deploy:migrate hubot", "a deployment with the task deploy:migrate", Same("deploy:migrate hubot")),
    ("deploy hubot/topic to staging/fe", "the topic branch to staging, hosts fe", Same("deploy hubot/topic to staging/fe")),
    ("deploy hubot/topic in staging", "`in` works like `to`", Same("deploy hubot/topic to staging")),
    ("deploy hubot/topic on staging", "`on` works like `to`", Same("deploy hubot/topic to staging")),
    ("DEPLOY Hubot/Topic TO staging", "case-insensitive keywords", Same("deploy Hubot/Topic to staging")),
    ("deploy:migrate! hubot/topic to staging/fe,be", "task, force, ref, environment and hosts together", Same("deploy:migrate! hubot/topic to staging/fe,be")),
    ("deploy hubot to production ccccccdvghbjlrkgvlngtibrdckeiedtnrutccklnhgd", "checked the trailing Yubikey one-time password", Suggests("deploy hubot to production")),
    ("deploy:rollback hubot", "a deployment with the task deploy:rollback", Same("rollback hubot")),
    ("deploy:rollback hubot to production", "the same, in production", Same("rollback hubot in production")),
    ("deploy:rollback hubot/topic to production", "the same, for a ref", Suggests("rollback hubot in production")),
    ("deploy:lock hubot to production", "heaven's lock task", Same("lock production on hubot")),
    ("deploy:unlock hubot to production", "heaven's unlock task", Same("unlock production on hubot")),
    // DEPLOYS_SYNTAX: deploys app[/ref] [to|in|on env]
    ("deploys hubot", "recent deployments of hubot", Same("deploys hubot")),
    ("deploys hubot/topic in staging", "recent deployments of the topic branch in staging", Same("deploys hubot/topic in staging")),
    ("deploys hubot to staging", "`to` works like `in`", Same("deploys hubot in staging")),
    ("deploys hubot on staging", "`on` works like `in`", Same("deploys hubot in staging")),
    // src/scripts/deploy.coffee
    ("where can i deploy hubot", "the environments of hubot", Same("environments hubot")),
    ("deploy:version", "hubot-deploy's version", Same("version")),
];

#[test]
fn every_hubot_deploy_form_means_the_same_or_offers_the_equivalent() {
    let mut failures = Vec::new();
    for &(line, _, here) in PATTERNS {
        let got = parse(line);
        match (here, &got) {
            (Same(canonical), Ok(command)) if command.to_string() == canonical => {}
            (
                Suggests(suggested),
                Err(ParseError::Invalid {
                    suggestion: Some(s),
                    ..
                }),
            ) if s == suggested => {}
            _ => failures.push(format!("`{line}`: expected {here:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_hubot_deploy_task_that_is_a_command_here_becomes_a_deployment_task() {
    for line in [
        "deploy:rollback api",
        "deploy:version",
        "deploy:lock api to x",
    ] {
        assert!(
            !matches!(parse(line), Ok(Command::Deploy(_))),
            "`{line}` would create a deployment"
        );
    }
}

/// The README lists the same forms, with what each does here.
#[test]
fn the_readme_lists_every_hubot_deploy_form() {
    let readme = include_str!("../../README.md");
    for &(line, _, here) in PATTERNS {
        let answer = match here {
            Same(c) | Suggests(c) => c,
        };
        let row = format!("| `{line}` | `{answer}` |");
        assert!(
            readme.contains(&row),
            "README.md lacks the row {row}\n(the whole table:)\n{}",
            table()
        );
    }
}

fn table() -> String {
    let mut out = String::from("| hubot-deploy | deploybot |\n| --- | --- |\n");
    for &(line, _, here) in PATTERNS {
        let answer = match here {
            Same(c) | Suggests(c) => c,
        };
        out.push_str(&format!("| `{line}` | `{answer}` |\n"));
    }
    out
}
