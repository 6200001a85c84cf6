//! Inputs the fuzz target `command_parser` (fuzz/) found, checked for the same promises
//! as `fuzz.rs`: a command prints to a line that reads back as itself, and a suggestion
//! parses to a command whose canonical form it is. The inputs are also kept under
//! fuzz/regressions/command_parser/.

use commands::{parse, Cancel, Command, Confirm, ParseError};

fn round_trips(line: &str) {
    match parse(line) {
        Ok(command) => {
            let canonical = command.to_string();
            assert_eq!(parse(&canonical), Ok(command), "`{line}` → `{canonical}`");
        }
        Err(ParseError::NotACommand) => {}
        Err(ParseError::Invalid {
            suggestion: Some(suggestion),
            ..
        }) => {
            let fixed = parse(&suggestion)
                .unwrap_or_else(|e| panic!("suggestion `{suggestion}` for `{line}` fails: {e:?}"));
            assert_eq!(fixed.to_string(), suggestion, "suggestion for `{line}`");
        }
        Err(ParseError::Invalid { .. }) => {}
    }
}

/// `y #pls` read as `confirm pls`, which reads back as a plain `confirm` (courtesies are
/// dropped): a courtesy after `#` is not an id either.
#[test]
fn a_courtesy_is_never_an_id() {
    for line in [
        "y #pls",
        "yes #please",
        "confirm #thanks",
        "confirm #THX!",
        "no #please",
        "cancel #plz",
        "yes #please pe8",
    ] {
        round_trips(line);
        assert!(
            matches!(parse(line), Err(ParseError::Invalid { .. })),
            "`{line}`: {:?}",
            parse(line)
        );
    }
    let ParseError::Invalid { suggestion, .. } = parse("yes #please pe8").unwrap_err() else {
        unreachable!()
    };
    assert_eq!(suggestion.as_deref(), Some("confirm"));
    // Real ids and plain courtesies still work.
    assert_eq!(
        parse("yes #a1b2 please"),
        Ok(Command::Confirm(Confirm {
            id: Some("a1b2".into())
        }))
    );
    assert_eq!(parse("no thanks"), Ok(Command::Cancel(Cancel { id: None })));
}

/// Lines just under the 2,000-character cap whose canonical form, or suggestion, is just
/// over it (`deply` gains a letter, `—` becomes `--`, a reason gains its `--`): the
/// command would not read back, the suggestion would be refused as too long.
#[test]
fn nothing_read_or_suggested_is_past_the_length_cap() {
    let at = |prefix: &str, filler: &str, total: usize| {
        let mut line = prefix.to_string();
        while line.chars().count() + filler.chars().count() <= total {
            line.push_str(filler);
        }
        while line.chars().count() < total {
            line.push('x');
        }
        line
    };
    for total in 1990..=2000 {
        for (prefix, filler) in [
            ("deply a ", "p "),
            ("deply api to staging -- ", "why "),
            ("deploy api — ", "x"),
            ("lock staging — ", "y"),
            ("deploy api to staging ", "p "),
        ] {
            let line = at(prefix, filler, total);
            round_trips(&line);
            if let Ok(command) = parse(&line) {
                assert!(command.to_string().chars().count() <= commands::MAX_LINE_CHARS);
            }
        }
    }
}
