//! Near misses: `deplyo`, `rollbak`, `unlcok`.
//!
//! A chat bot that ignores `deplyo api` leaves the user waiting for a deploy that
//! never starts, so a first word that is almost a command word gets an answer. But
//! the bot also reads ordinary conversation, where `delay`, `locked` and `hello` are
//! not typos, so "almost" is kept narrow:
//!
//! * only words of 4 or more letters, matched against the command words that are
//!   not also everyday English (`where`, `whats`, `why`, `yes`, `no` are never guessed);
//! * at most 1 edit from a command word of 5 letters or less, 2 from a longer one,
//!   where swapping two neighbouring letters counts as one edit;
//! * the first letter is right, or the first two are swapped (`dpeloy`): people
//!   rarely mistype the letter they start with, while rhymes (`clock`, `block`) do;
//! * never an English word close to a command word (a short list), nor a command
//!   word with an ending (`deployed`, `locked`, `rollbacks`).

use crate::{code, invalid, parse_at, CommandHelp, Head, ParseError};

/// Command words that a misspelling may be corrected to, with their help page.
fn candidates() -> [(&'static str, &'static CommandHelp); 12] {
    [
        ("deploy", &crate::deploy::HELP),
        ("deploys", &crate::deploys::HELP),
        ("environments", &crate::environments::HELP),
        ("rollback", &crate::rollback::HELP),
        ("lock", &crate::lock::HELP),
        ("locks", &crate::locks::HELP),
        ("unlock", &crate::unlock::HELP),
        ("audit", &crate::audit::HELP),
        ("confirm", &crate::confirm::HELP),
        ("cancel", &crate::cancel::HELP),
        ("help", &crate::help::HELP),
        ("version", &crate::version::HELP),
    ]
}

/// Real words within reach of a command word.
const ENGLISH: &[&str] = &[
    "adit",
    "audio",
    "audios",
    "camel",
    "camels",
    "canal",
    "canals",
    "cancer",
    "candle",
    "canoe",
    "channel",
    "confide",
    "confine",
    "confit",
    "conform",
    "decoy",
    "decoys",
    "delay",
    "delays",
    "deplore",
    "depot",
    "depots",
    "deputy",
    "environmental",
    "environmentally",
    "heap",
    "heaps",
    "held",
    "hell",
    "helm",
    "helms",
    "hemp",
    "herp",
    "lack",
    "lacks",
    "lick",
    "licks",
    "loch",
    "lochs",
    "loci",
    "locus",
    "look",
    "looks",
    "luck",
    "lucks",
    "rollbar",
    "unblock",
    "unhook",
    "unlink",
    "unload",
    "unlucky",
    "unpack",
    "venison",
    "vision",
    "visions",
];

/// Endings that turn a command word into an ordinary word: `deployed`, `locked`.
const ENDINGS: &[&str] = &[
    "s", "es", "d", "ed", "ing", "er", "ers", "ment", "ments", "able",
];

/// The command word `word` is probably a misspelling of, if any.
pub(crate) fn closest_command(word: &str) -> Option<(&'static str, &'static CommandHelp)> {
    let len = word.chars().count();
    if !(4..=14).contains(&len) || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let word = word.to_ascii_lowercase();
    if ENGLISH.contains(&word.as_str()) {
        return None;
    }
    let mut best: Option<(usize, &'static str, &'static CommandHelp)> = None;
    for (keyword, help) in candidates() {
        if word == keyword {
            // An exact command word is not a typo (and is handled before we get here).
            return None;
        }
        if word
            .strip_prefix(keyword)
            .is_some_and(|ending| ENDINGS.contains(&ending))
        {
            return None;
        }
        let w = word.as_bytes();
        let k = keyword.as_bytes();
        let same_start = w[0] == k[0] || (w[0] == k[1] && w[1] == k[0]);
        if !same_start {
            continue;
        }
        let limit = if keyword.len() <= 5 { 1 } else { 2 };
        if let Some(d) = distance(&word, keyword, limit) {
            if best.is_none_or(|(bd, _, _)| d < bd) {
                best = Some((d, keyword, help));
            }
        }
    }
    best.map(|(_, keyword, help)| (keyword, help))
}

/// The name in `names` that `word` is probably a misspelling of: not the same name
/// (ignoring case), at most 1 edit away from a name of 5 characters or less, 2 from a
/// longer one (a swap of neighbours is one edit), the nearest first. For app names,
/// so that `deploy apj` can ask "did you mean `api`?".
pub fn closest_name<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    if word.is_empty() || word.len() > 100 {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for name in names {
        let lower = name.to_ascii_lowercase();
        if lower == word {
            return None;
        }
        let limit = if lower.len() <= 5 { 1 } else { 2 };
        if let Some(d) = distance(&word, &lower, limit) {
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, name));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal-string-alignment distance (Levenshtein plus swaps of neighbours) between
/// two ASCII words, if it is at most `limit`.
pub(crate) fn distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a = a.as_bytes();
    let b = b.as_bytes();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    // Three rows are enough: the swap rule looks two rows back.
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let d = previous[b.len()];
    (d <= limit).then_some(d)
}

/// The first word is no command word: correct it if it is a near miss, and say what
/// the corrected line would be.
pub(crate) fn misspelt_command(line: &str, head: &Head<'_>) -> Result<crate::Command, ParseError> {
    let Some((keyword, help)) = closest_command(head.word) else {
        return Err(ParseError::NotACommand);
    };
    // Keep everything after the misspelt word: `:TASK`, `!` and the rest of the line.
    let start = line.len() - line.trim_start().len();
    let after_word = &line[start + head.word.len()..];
    let fixed = format!("{keyword}{after_word}");
    let problem = format!("unknown command {}", code(head.word));
    let err = match parse_at(&fixed, head.depth + 1) {
        Ok(command) => invalid(help, problem, Some(command.to_string())),
        Err(ParseError::Invalid {
            suggestion: Some(s),
            ..
        }) => invalid(help, problem, Some(s)),
        Err(ParseError::Invalid {
            problem: then,
            command,
            usage,
            ..
        }) => ParseError::Invalid {
            command,
            problem: format!("{problem} (did you mean `{keyword}`?); and then: {then}"),
            suggestion: None,
            usage,
        },
        Err(ParseError::NotACommand) => {
            invalid(help, format!("{problem} (did you mean `{keyword}`?)"), None)
        }
    };
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_swaps_as_one_edit() {
        assert_eq!(distance("deplyo", "deploy", 2), Some(1));
        assert_eq!(distance("dpeloy", "deploy", 2), Some(1));
        assert_eq!(distance("rollbak", "rollback", 2), Some(1));
        assert_eq!(distance("unlcok", "unlock", 2), Some(1));
        assert_eq!(distance("hello", "help", 2), Some(2));
        assert_eq!(distance("hello", "help", 1), None);
        assert_eq!(distance("deployment", "deploy", 2), None);
        assert_eq!(distance("", "abc", 3), Some(3));
    }

    #[test]
    fn names_close_to_a_configured_one_are_found() {
        let apps = ["api", "web", "billing"];
        assert_eq!(closest_name("apj", apps), Some("api"));
        assert_eq!(
            closest_name("APi", apps),
            None,
            "the name itself is no typo"
        );
        assert_eq!(closest_name("wbe", apps), Some("web"));
        assert_eq!(closest_name("biling", apps), Some("billing"));
        assert_eq!(closest_name("bilingg", apps), Some("billing"));
        assert_eq!(closest_name("topic", apps), None);
        assert_eq!(closest_name("ap", apps), Some("api"));
        assert_eq!(closest_name("main", apps), None);
    }

    #[test]
    fn near_misses_are_corrected() {
        for (typo, word) in [
            ("deplyo", "deploy"),
            ("dpeloy", "deploy"),
            ("Deplo", "deploy"),
            ("rollbak", "rollback"),
            ("unlcok", "unlock"),
            ("lcok", "lock"),
            ("lokcs", "locks"),
            ("hlep", "help"),
            ("verison", "version"),
            ("cancle", "cancel"),
            ("confrim", "confirm"),
            ("enviroments", "environments"),
            ("audti", "audit"),
        ] {
            assert_eq!(closest_command(typo).map(|(k, _)| k), Some(word), "{typo}");
        }
    }

    #[test]
    fn ordinary_words_are_not_typos() {
        for word in [
            "hello",
            "deployment",
            "deployed",
            "deploying",
            "delay",
            "look",
            "locked",
            "block",
            "clock",
            "held",
            "channel",
            "audio",
            "vision",
            "person",
            "rollbacks",
            "where",
            "there",
            "what",
            "thats",
            "yess",
            "the",
            "a",
            "déploy",
            "deploy2",
        ] {
            assert_eq!(closest_command(word).map(|(k, _)| k), None, "{word}");
        }
    }
}
