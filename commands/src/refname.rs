//! Git ref names, checked before anything is sent to GitHub.

use std::fmt;
use std::ops::Deref;

use crate::code;

/// A ref name that passed git's `check-ref-format` rules (one-level names such as
/// `main` allowed) and deploybot's stricter ones.
///
/// Git's rules: no part may start with `.` or end with `.lock`; no `..`; no control
/// characters or spaces; none of `~ ^ : ? * [ \`; no leading or trailing `/` and no
/// `//`; no trailing `.`; no `@{`; not `@` alone.
///
/// deploybot adds: no leading `-` (it would read as an option), at most 255 bytes, no
/// invisible or direction-changing Unicode characters (they disguise a name), and no
/// shell metacharacters `; | & $ ` ' " < >`. Git allows those last ones, but deployers
/// often interpolate the ref into a shell command, and a ref is typed by anyone in the
/// channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefName(String);

impl RefName {
    /// The longest ref deploybot accepts, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Check `s` and wrap it.
    pub fn parse(s: &str) -> Result<RefName, RefError> {
        check(s).map_err(|kind| RefError {
            input: s.chars().take(300).collect(),
            kind,
        })?;
        Ok(RefName(s.to_string()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Deref for RefName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RefName {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefName::parse(s)
    }
}

impl TryFrom<&str> for RefName {
    type Error = RefError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        RefName::parse(s)
    }
}

impl From<RefName> for String {
    fn from(r: RefName) -> String {
        r.0
    }
}

/// Which rule a ref broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefErrorKind {
    /// The ref is empty.
    Empty,
    /// Longer than [`RefName::MAX_LEN`] bytes.
    TooLong,
    /// A space or other whitespace.
    Whitespace(char),
    /// An ASCII control character.
    Control(char),
    /// One of git's forbidden characters: `~ ^ : ? * [ \`.
    Forbidden(char),
    /// A shell metacharacter deploybot refuses: `; | & $ ` ' " < >`.
    ShellMetachar(char),
    /// An invisible or direction-changing Unicode character.
    Invisible(char),
    /// `..` somewhere.
    DoubleDot,
    /// `@{` somewhere.
    AtBrace,
    /// Exactly `@`.
    LoneAt,
    /// Starts with `-`.
    LeadingDash,
    /// Starts or ends with `/`.
    SlashAtEdge,
    /// `//` somewhere.
    EmptyComponent,
    /// A `/`-separated part starts with `.`.
    ComponentStartsWithDot,
    /// A `/`-separated part ends with `.lock`.
    ComponentEndsWithLock,
    /// Ends with `.`.
    TrailingDot,
}

/// Why a string is not a [`RefName`]; its `Display` names the rule and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    input: String,
    kind: RefErrorKind,
}

impl RefError {
    /// The rule that was broken.
    pub fn kind(&self) -> RefErrorKind {
        self.kind
    }

    /// The refused input (cut at 300 characters).
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RefErrorKind::*;
        if self.kind == Empty {
            return f.write_str("the ref is empty: name a branch, a tag or a commit sha");
        }
        write!(f, "{} is not a valid ref: ", code(&self.input))?;
        match self.kind {
            Empty => Ok(()),
            TooLong => write!(f, "it is longer than {} bytes; use a shorter branch or tag name", RefName::MAX_LEN),
            Whitespace(_) => f.write_str("it contains a space; ref names never do, so check where the ref ends"),
            Control(c) => write!(f, "it contains the control character U+{:04X}; retype it", u32::from(c)),
            Forbidden(c) => write!(
                f,
                "{} is not allowed in git ref names (`~ ^ : ? * [ \\` never are); check the branch name with `git branch`",
                code(&c.to_string())
            ),
            ShellMetachar(c) => write!(
                f,
                "{} is not allowed: deploybot refuses shell metacharacters in refs (`; | & $ ' \" < >` and backticks) because deployers often pass refs to a shell; push the commit to a branch with a plain name and deploy that",
                code(&c.to_string())
            ),
            Invisible(c) => write!(
                f,
                "it contains the invisible character U+{:04X}, which can disguise a name; retype the ref",
                u32::from(c)
            ),
            DoubleDot => f.write_str("`..` is not allowed (git reads it as a range); name one branch, tag or sha"),
            AtBrace => f.write_str("`@{` is not allowed (git reads it as a reflog selector); name a branch, tag or sha"),
            LoneAt => f.write_str("`@` alone means HEAD, which is not something to deploy; name a branch, tag or sha"),
            LeadingDash => f.write_str("a ref cannot start with `-` (it would be read as an option)"),
            SlashAtEdge => f.write_str("a ref cannot start or end with `/`"),
            EmptyComponent => f.write_str("`//` is not allowed; remove the empty part between the slashes"),
            ComponentStartsWithDot => f.write_str("no part of a ref may start with `.`"),
            ComponentEndsWithLock => f.write_str("no part of a ref may end with `.lock`"),
            TrailingDot => f.write_str("a ref cannot end with `.`"),
        }
    }
}

impl std::error::Error for RefError {}

/// The characters a POSIX shell treats specially even in the middle of a word.
pub(crate) fn is_shell_metachar(c: char) -> bool {
    matches!(c, ';' | '|' | '&' | '$' | '`' | '\'' | '"' | '<' | '>')
}

/// Zero-width and bidirectional formatting characters: invisible in chat, yet part of
/// the name, so `main` and `ma\u{200b}in` would look the same.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

fn check(s: &str) -> Result<(), RefErrorKind> {
    use RefErrorKind::*;
    if s.is_empty() {
        return Err(Empty);
    }
    if s.len() > RefName::MAX_LEN {
        return Err(TooLong);
    }
    // Character rules first: an offending character is the most specific thing to
    // point at.
    for c in s.chars() {
        if c.is_ascii_control() {
            return Err(Control(c));
        }
        if c.is_whitespace() {
            return Err(Whitespace(c));
        }
        if c.is_control() || is_invisible(c) {
            return Err(Invisible(c));
        }
        if matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\') {
            return Err(Forbidden(c));
        }
        if is_shell_metachar(c) {
            return Err(ShellMetachar(c));
        }
    }
    if s == "@" {
        return Err(LoneAt);
    }
    if s.starts_with('-') {
        return Err(LeadingDash);
    }
    if s.contains("..") {
        return Err(DoubleDot);
    }
    if s.contains("@{") {
        return Err(AtBrace);
    }
    if s.starts_with('/') || s.ends_with('/') {
        return Err(SlashAtEdge);
    }
    if s.contains("//") {
        return Err(EmptyComponent);
    }
    if s.ends_with('.') {
        return Err(TrailingDot);
    }
    for part in s.split('/') {
        if part.starts_with('.') {
            return Err(ComponentStartsWithDot);
        }
        if part.ends_with(".lock") {
            return Err(ComponentEndsWithLock);
        }
    }
    Ok(())
}
