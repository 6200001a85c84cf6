//! Every example on every help page is a specification: it parses, it prints as its
//! canonical form, and the canonical form parses to the same command.

use commands::{all_help, parse, Command};

#[test]
fn every_example_parses_to_its_canonical_form() {
    let mut failures = Vec::new();
    let mut count = 0;
    for page in all_help() {
        for example in page.examples {
            count += 1;
            match parse(example.input) {
                Ok(command) => {
                    if command.to_string() != example.canonical {
                        failures.push(format!(
                            "{}: `{}` printed as `{}`, expected `{}`",
                            page.name, example.input, command, example.canonical
                        ));
                    }
                    if parse(example.canonical).as_ref() != Ok(&command) {
                        failures.push(format!(
                            "{}: canonical `{}` does not parse back to {:?}",
                            page.name, example.canonical, command
                        ));
                    }
                }
                Err(e) => failures.push(format!("{}: `{}` failed: {e}", page.name, example.input)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count >= 60, "only {count} examples");
}

#[test]
fn examples_of_a_page_parse_to_that_command() {
    for page in all_help() {
        for example in page.examples {
            let command = parse(example.input).unwrap();
            // `deploy:lock` and the other hubot-deploy forms are documented on the
            // deploy page but are other commands.
            let expected = match (page.name, example.input) {
                ("deploy", input) if input.starts_with("deploy:lock") => "lock",
                ("deploy", input) if input.starts_with("deploy:unlock") => "unlock",
                ("deploy", input) if input.starts_with("deploy:rollback") => "rollback",
                ("deploy", input) if input.starts_with("deploy:version") => "version",
                (name, _) => name,
            };
            assert_eq!(command.name(), expected, "`{}`", example.input);
        }
    }
}

#[test]
fn every_command_has_examples() {
    for page in all_help() {
        assert!(!page.examples.is_empty(), "{} has no examples", page.name);
    }
}

fn deploy(line: &str) -> commands::Deploy {
    match parse(line) {
        Ok(Command::Deploy(d)) => d,
        other => panic!("`{line}` gave {other:?}"),
    }
}

#[test]
fn deploy_fields_are_filled_as_typed() {
    let d = deploy("deploy api/feature/login to prod/web-1,web-2 force -- hotfix for #42");
    assert_eq!(d.task, "deploy");
    assert!(d.force);
    assert_eq!(d.target, "api/feature/login");
    assert_eq!(d.environment.as_deref(), Some("prod"));
    assert_eq!(d.hosts, ["web-1", "web-2"]);
    assert_eq!(d.reason.as_deref(), Some("hotfix for #42"));

    let d = deploy("DEPLOY Api/Topic TO staging");
    assert_eq!(d.target, "Api/Topic");
    assert_eq!(d.environment.as_deref(), Some("staging"));
    assert!(!d.force);
    assert!(d.hosts.is_empty());
    assert_eq!(d.reason, None);

    let d = deploy("deploy:migrate! api to staging");
    assert_eq!(d.task, "deploy:migrate");
    assert!(d.force);

    let d = deploy("Deploy:Migrate api");
    assert_eq!(
        d.task, "deploy:migrate",
        "the task is lowercased like a keyword"
    );

    let d = deploy("deploy! topic");
    assert_eq!(d.target, "topic");
    assert_eq!(d.environment, None);
    assert!(d.force);

    let d = deploy("deploy! api to staging force");
    assert!(d.force, "`!` and `force` together are fine");
}

#[test]
fn other_commands_fill_their_fields() {
    use std::time::Duration;
    assert_eq!(
        parse("lock production on api for 2h db migration"),
        Ok(Command::Lock(commands::Lock {
            force: false,
            environment: "production".into(),
            app: Some("api".into()),
            duration: Some(Duration::from_secs(7200)),
            reason: Some("db migration".into()),
        }))
    );
    assert_eq!(
        parse("deploy:lock! api to production -- freeze"),
        Ok(Command::Lock(commands::Lock {
            force: true,
            environment: "production".into(),
            app: Some("api".into()),
            duration: None,
            reason: Some("freeze".into()),
        }))
    );
    assert_eq!(
        parse("deploys api/feature/x in staging last 5"),
        Ok(Command::Deploys(commands::Deploys {
            app: "api".into(),
            git_ref: Some("feature/x".into()),
            environment: Some("staging".into()),
            limit: Some(5),
        }))
    );
    assert_eq!(
        parse("what is on production for api?"),
        Ok(Command::WhatsOn(commands::WhatsOn {
            environment: "production".into(),
            app: Some("api".into()),
        }))
    );
    assert_eq!(
        parse("rollback! api in production -- bad"),
        Ok(Command::Rollback(commands::Rollback {
            app: "api".into(),
            environment: Some("production".into()),
            force: true,
            reason: Some("bad".into()),
        }))
    );
    assert_eq!(parse("locks"), Ok(Command::Locks(commands::Locks)));
    assert_eq!(parse("version"), Ok(Command::Version(commands::Version)));
    assert_eq!(
        parse("y"),
        Ok(Command::Confirm(commands::Confirm { id: None }))
    );
    assert_eq!(
        parse("no 12"),
        Ok(Command::Cancel(commands::Cancel {
            id: Some("12".into())
        }))
    );
    assert_eq!(
        parse("help Whats On"),
        Ok(Command::Help(commands::Help {
            topic: Some("whats on".into())
        }))
    );
    assert_eq!(
        parse("audit in staging"),
        Ok(Command::Audit(commands::Audit {
            app: None,
            environment: Some("staging".into()),
        }))
    );
    assert_eq!(
        parse("why staging"),
        Ok(Command::Why(commands::Why {
            environment: "staging".into(),
            app: None,
        }))
    );
    assert_eq!(
        parse("unlock! staging on api"),
        Ok(Command::Unlock(commands::Unlock {
            force: true,
            environment: "staging".into(),
            app: Some("api".into()),
        }))
    );
}

#[test]
fn freeze_fields_are_filled_as_typed() {
    assert_eq!(
        parse("freeze production on api for 2h -- db migration"),
        Ok(Command::Freeze(commands::Freeze {
            environment: Some("production".into()),
            app: Some("api".into()),
            duration: Some(std::time::Duration::from_secs(7200)),
            reason: "db migration".into(),
        }))
    );
    assert_eq!(
        parse("freeze -- release"),
        Ok(Command::Freeze(commands::Freeze {
            environment: None,
            app: None,
            duration: None,
            reason: "release".into(),
        }))
    );
    assert_eq!(
        parse("unfreeze on api"),
        Ok(Command::Unfreeze(commands::Unfreeze {
            environment: None,
            app: Some("api".into()),
        }))
    );
}

#[test]
fn command_names_are_slash_command_friendly() {
    let names: Vec<&str> = all_help().iter().map(|h| h.name).collect();
    assert_eq!(
        names,
        [
            "deploy",
            "rollback",
            "deploys",
            "environments",
            "whats-on",
            "why",
            "lock",
            "unlock",
            "locks",
            "queue",
            "dequeue",
            "freeze",
            "unfreeze",
            "audit",
            "confirm",
            "cancel",
            "help",
            "version"
        ]
    );
    for name in names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{name}"
        );
    }
}
