//! `deploybot doctor`: checks, against the real services the config points at, what
//! `check-config` cannot — that the GitHub credentials work and reach every configured
//! repository with the rights deploybot needs, that the webhook is set up to deliver
//! what the bot listens to, and (with `[discord]`) that the bot token, its privileged
//! intents, guilds, slash commands and channels are in order.
//!
//! Each check is one [`Check`]: `✓ what is fine`, `✗ what is wrong — what to do`, or
//! `! a warning` (which does not fail). Nothing here prints a secret: lines are built
//! from what the services answer, and [`run`] scrubs every configured secret from the
//! report as a last line of defence.

mod github;

use std::fmt;

use secrecy::ExposeSecret;

use crate::config::{Config, GitHubAuth};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Worth a look; does not fail the run.
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    pub text: String,
}

impl Check {
    pub fn pass(text: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Pass,
            text: text.into(),
        }
    }

    pub fn warn(text: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Warn,
            text: text.into(),
        }
    }

    /// `what` is wrong; `fix` says what to do, in concrete words.
    pub fn fail(what: impl fmt::Display, fix: impl fmt::Display) -> Check {
        Check {
            verdict: Verdict::Fail,
            text: format!("{what} — {fix}"),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.verdict {
            Verdict::Pass => '✓',
            Verdict::Warn => '!',
            Verdict::Fail => '✗',
        };
        write!(f, "{mark} {}", self.text)
    }
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<Check>,
}

impl Report {
    /// No check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|c| c.verdict != Verdict::Fail)
    }

    pub fn push(&mut self, check: Check) {
        self.lines.push(check);
    }

    /// Replaces every occurrence of each secret (non-empty) with `[redacted]`.
    fn scrub(&mut self, secrets: &[String]) {
        for line in &mut self.lines {
            for s in secrets.iter().filter(|s| s.len() >= 4) {
                if line.text.contains(s.as_str()) {
                    line.text = line.text.replace(s.as_str(), "[redacted]");
                }
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Runs every check the config calls for.
pub async fn run(config: &Config) -> Report {
    let mut report = Report::default();
    github::check(config, &mut report).await;
    if let Some(discord) = &config.discord {
        for check in crate::chat::discord::doctor::check(config, discord).await {
            report.push(check);
        }
    }
    report.scrub(&secrets(config));
    report
}

fn secrets(config: &Config) -> Vec<String> {
    let mut out = vec![];
    if let GitHubAuth::Token(t) = &config.github.auth {
        out.push(t.expose_secret().to_string());
    }
    if let Some(d) = &config.discord {
        out.push(d.token.expose_secret().to_string());
    }
    if let Some(w) = &config.webhook {
        out.push(w.secret.expose_secret().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_verdicts() {
        let mut r = Report::default();
        r.push(Check::pass("fine"));
        r.push(Check::warn("hmm"));
        assert!(r.passed());
        r.push(Check::fail("broken", "fix it"));
        assert!(!r.passed());
        assert_eq!(r.to_string(), "✓ fine\n! hmm\n✗ broken — fix it\n");
    }

    #[test]
    fn secrets_are_scrubbed() {
        let mut r = Report::default();
        r.push(Check::pass("token ghp_secret123 leaked"));
        r.scrub(&["ghp_secret123".into(), "".into()]);
        assert_eq!(r.lines[0].text, "token [redacted] leaked");
    }
}
