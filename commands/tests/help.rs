//! Help pages: generated from each command's description.

use commands::{all_help, help_for, help_text, parse, Command};

#[test]
fn the_overview_lists_every_command_with_its_grammar_and_summary() {
    let overview = help_text(None);
    for page in all_help() {
        assert!(
            overview.contains(page.grammar),
            "{} missing from overview",
            page.name
        );
        assert!(
            overview.contains(page.summary),
            "{} summary missing",
            page.name
        );
    }
    assert!(overview.contains("help COMMAND"));
}

#[test]
fn help_for_finds_every_command_by_name_in_any_case() {
    for page in all_help() {
        assert_eq!(help_for(page.name).map(|h| h.name), Some(page.name));
        assert_eq!(
            help_for(&page.name.to_uppercase()).map(|h| h.name),
            Some(page.name)
        );
    }
}

#[test]
fn help_for_knows_the_aliases() {
    for (alias, name) in [
        ("where", "environments"),
        ("Where can I deploy", "environments"),
        ("where is", "environments"),
        ("environments", "environments"),
        ("environment", "environments"),
        ("envs", "environments"),
        ("whats", "whats-on"),
        ("whats on", "whats-on"),
        ("what's on", "whats-on"),
        ("What’s On?", "whats-on"),
        ("what is on", "whats-on"),
        ("whats-on", "whats-on"),
        ("yes", "confirm"),
        ("y", "confirm"),
        ("no", "cancel"),
        ("deploy:migrate", "deploy"),
        ("deploy!", "deploy"),
        ("lock!", "lock"),
        ("force", "deploy"),
    ] {
        assert_eq!(help_for(alias).map(|h| h.name), Some(name), "{alias:?}");
    }
    assert_eq!(help_for("nonsense"), None);
    assert_eq!(help_for(""), None);
}

#[test]
fn a_page_shows_grammar_details_and_examples() {
    let page = help_text(Some("deploy"));
    let deploy = help_for("deploy").unwrap();
    assert!(page.contains(deploy.grammar));
    assert!(page.contains(deploy.details));
    for example in deploy.examples {
        assert!(page.contains(example.input), "{}", example.input);
        assert!(page.contains(example.canonical), "{}", example.canonical);
    }
    assert_eq!(help_text(Some("where")), help_text(Some("environments")));
}

#[test]
fn an_unknown_topic_says_so_and_shows_the_overview() {
    let text = help_text(Some("frobnicate"));
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, "There is no command `frobnicate`.");
    assert_eq!(rest, help_text(None));
    let text = help_text(Some("deplyo"));
    assert!(
        text.starts_with("There is no command `deplyo`. Did you mean `help deploy`?\n"),
        "{text}"
    );
}

#[test]
fn every_help_answer_fits_in_one_discord_message() {
    assert!(
        help_text(None).chars().count() <= 2000,
        "{}",
        help_text(None).chars().count()
    );
    for page in all_help() {
        let text = help_text(Some(page.name));
        assert!(
            text.chars().count() <= 2000,
            "{}: {}",
            page.name,
            text.chars().count()
        );
    }
}

#[test]
fn the_help_command_carries_its_topic_to_help_text() {
    let Ok(Command::Help(help)) = parse("help What's On?") else {
        panic!()
    };
    assert_eq!(help.topic.as_deref(), Some("what's on"));
    assert_eq!(
        help_for(help.topic.as_deref().unwrap()).map(|h| h.name),
        Some("whats-on")
    );
}

#[test]
fn each_command_points_at_its_own_page() {
    for page in all_help() {
        for example in page.examples {
            let command = parse(example.input).unwrap();
            assert_eq!(command.help().name, command.name());
            assert_eq!(help_for(command.name()).unwrap(), command.help());
        }
    }
}

#[test]
fn every_grammar_line_is_the_usage_of_its_errors() {
    for page in all_help() {
        // The bare command word with a `:x` task is wrong for all but deploy.
        let line = format!("{}:x!", page.name.replace("whats-on", "whats on"));
        if let Err(commands::ParseError::Invalid { usage, command, .. }) = parse(&line) {
            assert_eq!(help_for(command).unwrap().grammar, usage, "{line}");
        }
    }
}

/// The README's command reference is [`commands::reference_table`], between its markers;
/// when a help page changes, paste the table this test prints (or `cargo run -p commands
/// --example reference_table`).
#[test]
fn the_readme_command_reference_is_the_help_pages() {
    let readme = include_str!("../../README.md");
    let start = "<!-- commands: generated from commands::reference_table() -->\n";
    let end = "<!-- end of commands -->";
    let from = readme
        .find(start)
        .expect("the README marks its command table")
        + start.len();
    let to = from + readme[from..].find(end).expect("the table's end marker");
    let expected = commands::reference_table();
    assert!(
        readme[from..to] == expected,
        "README.md's command table differs from the help pages; replace it with:\n{expected}"
    );
}

/// The crate's own summary of the language lists the same grammar lines, in order.
#[test]
fn the_crate_docs_list_every_grammar() {
    let lib = include_str!("../src/lib.rs");
    let block: Vec<&str> = lib
        .lines()
        .skip_while(|l| *l != "//! ```text")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| l.trim_start_matches("//! "))
        .collect();
    let grammars: Vec<&str> = all_help().iter().map(|h| h.grammar).collect();
    assert_eq!(block, grammars);
}
