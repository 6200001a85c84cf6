//! Names for the things deploybot talks about, so a mix-up is a type error.
//!
//! One concept, one name: an *app* is a configured alias for a repository, an
//! *environment* is where it goes, a *deployment* is GitHub's object and a *status*
//! is one of its deployment statuses.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_name!(
    /// A configured app (`[apps.NAME]`), e.g. `api`.
    AppName
);
string_name!(
    /// An environment name as GitHub sees it, e.g. `staging` (aliases already resolved).
    Environment
);
string_name!(
    /// A git ref the user asked for: a branch, tag or sha, validated by git's rules.
    GitRef
);
string_name!(
    /// A full commit sha.
    Sha
);

impl Sha {
    /// The 7-character form people recognise.
    pub fn short(&self) -> &str {
        let end = self
            .0
            .char_indices()
            .nth(7)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

/// `owner/name` of a GitHub repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name`; both parts use GitHub's allowed characters.
    pub fn parse(s: &str) -> Option<RepoName> {
        let (owner, name) = s.split_once('/')?;
        let ok = |part: &str| {
            !part.is_empty()
                && part.len() <= 100
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && part != "."
                && part != ".."
        };
        (ok(owner) && ok(name)).then(|| RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// `owner/name` lowercased: GitHub's names are case-insensitive, so this is what
    /// repositories are keyed and compared by. (One allocation, no formatting: the
    /// webhook path builds it several times per delivery.)
    pub fn lowercase(&self) -> String {
        let mut key = String::with_capacity(self.owner.len() + 1 + self.name.len());
        key.push_str(&self.owner);
        key.push('/');
        key.push_str(&self.name);
        key.make_ascii_lowercase();
        key
    }

    /// The same repository, whatever the case of either name.
    pub fn is(&self, other: &RepoName) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner) && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// GitHub's id of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub u64);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The state of a deployment, from its latest deployment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Created, no status yet (not a GitHub state: the absence of one).
    Created,
    Queued,
    Pending,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

impl DeploymentState {
    /// Parses GitHub's `state` string; unknown states are `None` so a new GitHub state
    /// never crashes the bot.
    pub fn from_github(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "pending" => Self::Pending,
            "in_progress" => Self::InProgress,
            "success" => Self::Success,
            "failure" => Self::Failure,
            "error" => Self::Error,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::InProgress => "in progress",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
            Self::Inactive => "inactive",
        }
    }

    /// A final state never changes again (a message never moves back from one).
    /// `inactive` is final too: GitHub only sets it on a deployment that was replaced.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failure | Self::Error | Self::Inactive
        )
    }

    /// Orders states along a deployment's life, so an out-of-order delivery of an
    /// earlier state can be recognised and ignored.
    pub fn progress_rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Queued => 1,
            Self::Pending => 2,
            Self::InProgress => 3,
            Self::Success | Self::Failure | Self::Error => 4,
            Self::Inactive => 5,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Created => "🆕",
            Self::Queued => "⏳",
            Self::Pending => "⏳",
            Self::InProgress => "🚀",
            Self::Success => "✅",
            Self::Failure => "❌",
            Self::Error => "💥",
            Self::Inactive => "💤",
        }
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_need_owner_and_name() {
        assert_eq!(
            RepoName::parse("acme/api").map(|r| r.to_string()),
            Some("acme/api".to_string())
        );
        for bad in [
            "acme",
            "/api",
            "acme/",
            "acme/api/x",
            "ac me/api",
            "acme/..",
        ] {
            assert_eq!(RepoName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_sha_is_seven_characters() {
        assert_eq!(
            Sha::new("a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d").short(),
            "a84d88e"
        );
        assert_eq!(Sha::new("abc").short(), "abc");
    }

    #[test]
    fn final_states_outrank_progress() {
        use DeploymentState::*;
        for s in [Queued, Pending, InProgress] {
            assert!(!s.is_final());
            assert!(s.progress_rank() < Success.progress_rank());
        }
        for s in [Success, Failure, Error, Inactive] {
            assert!(s.is_final());
        }
        assert_eq!(
            DeploymentState::from_github("in_progress"),
            Some(InProgress)
        );
        assert_eq!(DeploymentState::from_github("exploded"), None);
    }
}
