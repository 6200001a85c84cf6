//! Who may do what, where. Pure functions of the config and the chat user: every
//! refusal names the rule that refused and what would be allowed instead.

use crate::chat::{ChatUser, Conversation};
use crate::config::{AppConfig, Config, EnvConfig};

/// Whether `user` matches a rule list: `None` = everyone, `Some([])` = nobody;
/// entries are role names (case-insensitive) or `user:<id>`.
pub fn allows(list: &Option<Vec<String>>, user: &ChatUser) -> bool {
    match list {
        None => true,
        Some(entries) => entries
            .iter()
            .any(|entry| match entry.strip_prefix("user:") {
                Some(id) => id == user.id,
                None => user.roles.iter().any(|r| r.eq_ignore_ascii_case(entry)),
            }),
    }
}

/// "the release or oncall role", "nobody", "user 1234 or the oncall role".
pub fn who(list: &Option<Vec<String>>) -> String {
    let Some(entries) = list else {
        return "everyone".to_string();
    };
    if entries.is_empty() {
        return "nobody (the list is empty)".to_string();
    }
    let roles: Vec<&str> = entries
        .iter()
        .filter(|e| !e.starts_with("user:"))
        .map(String::as_str)
        .collect();
    let users: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.strip_prefix("user:"))
        .collect();
    let mut parts = Vec::new();
    if !roles.is_empty() {
        let noun = if roles.len() == 1 { "role" } else { "roles" };
        parts.push(format!("the {} {noun}", roles.join(" or ")));
    }
    if !users.is_empty() {
        parts.push(format!("user {}", users.join(", ")));
    }
    parts.join(" or ")
}

/// What a deploy needs from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Deploy,
    Force,
    Lock,
    /// `lock!` on a lock someone else holds: the force permission.
    TakeOver,
    /// `unlock!` of a lock someone else holds: the force permission.
    Release,
    /// `freeze` and `unfreeze`: the `freeze` rule, else the `lock` rule.
    Freeze,
}

/// A refusal: the rule that refused and what would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub reason: String,
    pub hint: String,
}

/// Channel restriction of an app.
pub fn check_channel(app: &AppConfig, conversation: &Conversation) -> Result<(), Refusal> {
    if app.allows_channel(&conversation.channel, conversation.channel_name.as_deref()) {
        return Ok(());
    }
    let allowed: Vec<String> = app.channels.iter().map(|c| format!("#{c}")).collect();
    Err(Refusal {
        rule: "channel",
        reason: format!(
            "{} can't be deployed from {}",
            app.name,
            conversation.display()
        ),
        hint: format!(
            "deploy it from {}{}",
            allowed.join(" or "),
            if conversation.adapter == "shell" {
                " (in the shell: --channel NAME)"
            } else {
                ""
            }
        ),
    })
}

/// Whether `user` may do `need` on `app` in `env`.
pub fn check(
    config: &Config,
    app: &AppConfig,
    env: &EnvConfig,
    user: &ChatUser,
    need: Need,
) -> Result<(), Refusal> {
    let rules = config.rules(app, env);
    let (list, what, rule) = match need {
        Need::Deploy => (
            &rules.deploy,
            format!("deploy {} to {}", app.name, env.name),
            "deploy role",
        ),
        Need::Force => (
            &rules.force,
            format!("force a deploy of {} to {}", app.name, env.name),
            "force role",
        ),
        Need::Lock => (
            &rules.lock,
            format!("lock or unlock {} on {}", env.name, app.name),
            "lock role",
        ),
        Need::TakeOver => (
            &rules.force,
            format!(
                "take over someone else's lock on {} on {}",
                env.name, app.name
            ),
            "force role",
        ),
        Need::Release => (
            &rules.force,
            format!(
                "release someone else's lock on {} on {}",
                env.name, app.name
            ),
            "force role",
        ),
        Need::Freeze => (
            if rules.freeze.is_some() {
                &rules.freeze
            } else {
                &rules.lock
            },
            format!("freeze or unfreeze {} on {}", env.name, app.name),
            "freeze role",
        ),
    };
    if allows(list, user) {
        return Ok(());
    }
    let needed = who(list);
    let hint = match list {
        // Nobody may: no role helps.
        Some(entries) if entries.is_empty() => {
            "nobody may, as configured; an admin can change the config".to_string()
        }
        _ if user.roles.is_empty() => {
            format!("you have no roles here; ask someone with {needed}, or an admin for it")
        }
        _ => format!(
            "your roles: {}; ask someone with {needed}",
            user.roles.join(", ")
        ),
    };
    Err(Refusal {
        rule,
        reason: format!("you can't {what}: that takes {needed}"),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> ChatUser {
        ChatUser {
            id: "42".into(),
            name: "alice".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn absent_means_everyone_and_empty_means_nobody() {
        assert!(allows(&None, &user(&[])));
        assert!(!allows(&Some(vec![]), &user(&["admin"])));
    }

    #[test]
    fn roles_match_ignoring_case_and_users_by_id() {
        let list = Some(vec!["OnCall".to_string(), "user:7".to_string()]);
        assert!(allows(&list, &user(&["oncall"])));
        assert!(!allows(&list, &user(&["dev"])));
        let mut u = user(&[]);
        u.id = "7".into();
        assert!(allows(&list, &u));
    }

    #[test]
    fn who_reads_naturally() {
        assert_eq!(who(&None), "everyone");
        assert_eq!(
            who(&Some(vec!["release".into(), "oncall".into()])),
            "the release or oncall roles"
        );
        assert_eq!(
            who(&Some(vec!["oncall".into(), "user:7".into()])),
            "the oncall role or user 7"
        );
    }
}

#[cfg(test)]
mod freeze_rule {
    use super::*;

    fn user(roles: &[&str]) -> ChatUser {
        ChatUser {
            id: "42".into(),
            name: "alice".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "[github]\ntoken = \"t\"\npoll_interval = \"15s\"\n[apps.api]\nrepository = \"acme/api\"\n[apps.api.environments.production]\nlock = [\"oncall\"]\n{extra}"
        );
        Config::parse(&text, std::path::Path::new("bot.toml"), &|_| None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn may_freeze(c: &Config, roles: &[&str]) -> Result<(), Refusal> {
        let app = &c.apps[0];
        check(c, app, &app.environments[0], &user(roles), Need::Freeze)
    }

    #[test]
    fn freezing_takes_the_freeze_list_else_the_lock_list() {
        // No `freeze` anywhere: whoever may lock.
        let c = config("");
        assert!(may_freeze(&c, &["oncall"]).is_ok());
        let refused = may_freeze(&c, &["dev"]).unwrap_err();
        assert_eq!(refused.rule, "freeze role");
        assert!(
            refused
                .reason
                .contains("freeze or unfreeze production on api: that takes the oncall role"),
            "{refused:?}"
        );
        // With a `freeze` list, that is the rule, not the lock list.
        let c = config("freeze = [\"release\"]\n");
        assert!(may_freeze(&c, &["release"]).is_ok());
        assert!(may_freeze(&c, &["oncall"]).is_err());
    }
}
