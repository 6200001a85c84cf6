//! Ref names: git's check-ref-format rules (one-level names allowed), plus
//! deploybot's refusal of shell metacharacters and invisible characters.

use commands::{RefErrorKind as K, RefName};

#[test]
fn valid_refs() {
    for r in [
        "main",
        "master",
        "feature/login",
        "api/feature/login",
        "v1.4.2",
        "release-2024.06",
        "0123abc",
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "fix/issue#42",
        "user@example",
        "a@b{c}",
        "feat/café",
        "x.lock.y",
        "x.lockfile/y",
        "foo.bar/baz",
        "UPPER/Case",
        "with!bang",
        "plus+minus=equal%percent,comma",
        "_underscore",
        &"a".repeat(255),
    ] {
        let parsed = RefName::parse(r);
        assert!(
            parsed.is_ok(),
            "{r:?}: {:?}",
            parsed.err().map(|e| e.to_string())
        );
        let parsed = parsed.unwrap();
        assert_eq!(parsed.as_str(), r);
        assert_eq!(parsed.to_string(), r);
        assert_eq!(&*parsed, r);
        assert_eq!(AsRef::<str>::as_ref(&parsed), r);
        assert_eq!(r.parse::<RefName>().unwrap(), parsed);
    }
}

#[test]
fn invalid_refs_name_the_rule_they_break() {
    let cases: &[(&str, K, &str)] = &[
        ("", K::Empty, "the ref is empty"),
        (&"a".repeat(256), K::TooLong, "longer than 255 bytes"),
        ("a b", K::Whitespace(' '), "contains a space"),
        ("a\u{a0}b", K::Whitespace('\u{a0}'), "contains a space"),
        ("a\tb", K::Control('\t'), "control character U+0009"),
        ("a\u{7f}b", K::Control('\u{7f}'), "control character U+007F"),
        ("a\u{0}b", K::Control('\u{0}'), "control character U+0000"),
        (
            "a~1",
            K::Forbidden('~'),
            "`~` is not allowed in git ref names",
        ),
        ("a^", K::Forbidden('^'), "`^` is not allowed"),
        ("a:b", K::Forbidden(':'), "`:` is not allowed"),
        ("a?", K::Forbidden('?'), "`?` is not allowed"),
        ("a*", K::Forbidden('*'), "`*` is not allowed"),
        ("a[b", K::Forbidden('['), "`[` is not allowed"),
        ("a\\b", K::Forbidden('\\'), "`\\` is not allowed"),
        (
            "x;rm",
            K::ShellMetachar(';'),
            "`;` is not allowed: deploybot refuses shell metacharacters in refs",
        ),
        ("a|b", K::ShellMetachar('|'), "shell metacharacters"),
        ("a&b", K::ShellMetachar('&'), "shell metacharacters"),
        ("$HOME", K::ShellMetachar('$'), "shell metacharacters"),
        ("a`b", K::ShellMetachar('`'), "`` ` `` is not allowed"),
        ("a'b", K::ShellMetachar('\''), "shell metacharacters"),
        ("a\"b", K::ShellMetachar('"'), "shell metacharacters"),
        ("a<b", K::ShellMetachar('<'), "shell metacharacters"),
        ("a>b", K::ShellMetachar('>'), "shell metacharacters"),
        (
            "ma\u{200b}in",
            K::Invisible('\u{200b}'),
            "invisible character U+200B",
        ),
        (
            "main\u{202e}",
            K::Invisible('\u{202e}'),
            "invisible character U+202E",
        ),
        (
            "\u{feff}main",
            K::Invisible('\u{feff}'),
            "invisible character U+FEFF",
        ),
        ("a\u{85}b", K::Whitespace('\u{85}'), "contains a space"),
        (
            "a\u{9f}b",
            K::Invisible('\u{9f}'),
            "invisible character U+009F",
        ),
        ("a..b", K::DoubleDot, "`..` is not allowed"),
        ("..", K::DoubleDot, "`..`"),
        ("a@{1}", K::AtBrace, "`@{` is not allowed"),
        ("@", K::LoneAt, "`@` alone"),
        ("-rf", K::LeadingDash, "cannot start with `-`"),
        ("/main", K::SlashAtEdge, "cannot start or end with `/`"),
        ("main/", K::SlashAtEdge, "cannot start or end with `/`"),
        ("a//b", K::EmptyComponent, "`//` is not allowed"),
        (".hidden", K::ComponentStartsWithDot, "may start with `.`"),
        ("a/.b", K::ComponentStartsWithDot, "may start with `.`"),
        ("main.lock", K::ComponentEndsWithLock, "end with `.lock`"),
        ("a.lock/b", K::ComponentEndsWithLock, "end with `.lock`"),
        ("main.", K::TrailingDot, "cannot end with `.`"),
    ];
    for (input, kind, message) in cases {
        let err = RefName::parse(input).expect_err(input);
        assert_eq!(err.kind(), *kind, "{input:?}");
        let text = err.to_string();
        assert!(text.contains(message), "{input:?}: {text}");
        if *kind != K::Empty {
            assert!(text.contains("is not a valid ref"), "{input:?}: {text}");
        }
    }
}

#[test]
fn error_display_matches_the_documented_shape() {
    let err = RefName::parse("x;rm").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`x;rm` is not a valid ref: `;` is not allowed"),
        "{err}"
    );
    assert_eq!(err.input(), "x;rm");
}

#[test]
fn a_huge_ref_is_echoed_cut_short() {
    let huge = "a;".repeat(10_000);
    let err = RefName::parse(&huge).unwrap_err();
    assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
}
