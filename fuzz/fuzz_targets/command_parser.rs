//! `commands::parse` on any line: valid UTF-8 as it is, other bytes converted lossily
//! (as a chat adapter would). The promises are those of `commands/tests/fuzz.rs`:
//!
//! * `parse` never panics;
//! * a parsed command prints (Display) to a line that parses back to the same command;
//! * no name in a command holds whitespace, a control character or a shell metacharacter;
//! * an `Invalid` error has a problem and renders; its suggestion, when there is one and
//!   it has no `APP`/`ENV` placeholder, parses and is canonical.
#![no_main]

use std::borrow::Cow;

use commands::{parse, Cancel, Command, Confirm, Dequeue, Freeze, ParseError, Queue, Unfreeze};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = match std::str::from_utf8(data) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(data),
    };
    check_line(&line);
});

fn check_line(line: &str) {
    match parse(line) {
        Ok(command) => {
            let canonical = command.to_string();
            assert_eq!(
                parse(&canonical),
                Ok(command.clone()),
                "canonical `{canonical}` of `{line}` does not parse back"
            );
            for name in names_of(&command) {
                assert!(!name.is_empty(), "empty name in {command:?}");
                assert!(
                    !name.chars().any(|c| c.is_whitespace()
                        || c.is_control()
                        || matches!(c, ';' | '|' | '&' | '$' | '`' | '\'' | '"' | '<' | '>')),
                    "unsafe name {name:?} in {command:?}"
                );
            }
            // The help page of any command renders.
            let _ = command.name();
            let _ = command.help();
        }
        Err(ParseError::NotACommand) => {}
        Err(err @ ParseError::Invalid { .. }) => {
            let rendered = err.to_string();
            assert!(!rendered.is_empty());
            let ParseError::Invalid {
                suggestion,
                problem,
                ..
            } = &err
            else {
                unreachable!()
            };
            assert!(!problem.is_empty(), "no problem in {err:?} for `{line}`");
            if let Some(suggestion) = suggestion {
                assert!(!suggestion.is_empty(), "empty suggestion for `{line}`");
                if !has_placeholder(suggestion) {
                    match parse(suggestion) {
                        Ok(fixed) => assert_eq!(
                            &fixed.to_string(),
                            suggestion,
                            "suggestion for `{line}` is not canonical"
                        ),
                        Err(e) => panic!("suggestion `{suggestion}` for `{line}` fails: {e:?}"),
                    }
                }
            }
        }
    }
}

fn has_placeholder(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| w.contains("APP") || w.contains("ENV"))
}

/// Every name a command carries (as in `commands/tests/fuzz.rs`).
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
        Command::Confirm(Confirm { id }) | Command::Cancel(Cancel { id }) => {
            names.extend(id.clone())
        }
        Command::Queue(Queue { environment, app })
        | Command::Dequeue(Dequeue { environment, app }) => {
            names.extend(environment.clone());
            names.extend(app.clone());
        }
        Command::Locks(_) | Command::Help(_) | Command::Version(_) => {}
    }
    names
}
