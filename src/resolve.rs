//! From what was typed to what is configured: which app, which ref, which environment.
//! Nothing here talks to GitHub; an unknown app or environment is answered with what
//! exists, before anything is sent anywhere.

use commands::RefName;

use crate::chat::{Conversation, Message};
use crate::config::{AppConfig, Config, EnvConfig};
use crate::model::GitRef;

/// A resolved deploy target.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub app: &'a AppConfig,
    /// `None`: the repository's default branch (asked from GitHub, never assumed).
    pub git_ref: Option<GitRef>,
    /// The target was taken for a ref of `app`, but its first segment is close to
    /// this app's name (`apj` for `api`): unless that ref is a branch of `app`, the
    /// deploy asks "did you mean…?" before anything is created.
    pub near: Option<&'a AppConfig>,
}

/// The configured app `word` is probably a misspelling of.
pub fn near_app<'a>(config: &'a Config, word: &str) -> Option<&'a AppConfig> {
    let name = commands::closest_name(word, config.apps.iter().map(|a| a.name.as_str()))?;
    config.app(name)
}

/// Resolves a deploy TARGET (`APP`, `APP/REF` or `REF`).
///
/// A first segment that names a configured app is that app; otherwise the whole
/// target is a ref of the channel's app (see [`channel_app`]).
pub fn target<'a>(
    config: &'a Config,
    conversation: &Conversation,
    raw: &str,
) -> Result<Target<'a>, Message> {
    let (first, rest) = match raw.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (raw, None),
    };
    if let Some(app) = config.app(first) {
        let git_ref = match rest {
            None => None,
            Some(r) => Some(valid_ref(r)?),
        };
        return Ok(Target {
            app,
            git_ref,
            near: None,
        });
    }
    let git_ref = valid_ref(raw)?;
    let near = near_app(config, first);
    match channel_app(config, conversation) {
        Some(app) => Ok(Target {
            app,
            git_ref: Some(git_ref),
            near,
        }),
        None => {
            let mut m = which_app(config, &format!("`{raw}` is not an app"), |app| {
                format!("deploy {app}/{raw}")
            });
            if let Some(near) = near {
                let meant = match rest {
                    Some(r) => format!("{}/{r}", near.name),
                    None => near.name.to_string(),
                };
                m.title = format!("`{raw}` is not an app — did you mean `deploy {meant}`?");
            }
            Err(m)
        }
    }
}

/// The app a bare ref belongs to: the only app, or the only app that lists this channel.
pub fn channel_app<'a>(config: &'a Config, conversation: &Conversation) -> Option<&'a AppConfig> {
    if let [only] = config.apps.as_slice() {
        return Some(only);
    }
    let here: Vec<&AppConfig> = config
        .apps
        .iter()
        .filter(|a| {
            !a.channels.is_empty()
                && a.allows_channel(&conversation.channel, conversation.channel_name.as_deref())
        })
        .collect();
    match here.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// An app named in a command (or the channel's app when none was named).
pub fn app<'a>(
    config: &'a Config,
    conversation: &Conversation,
    name: Option<&str>,
    example: impl Fn(&str) -> String,
) -> Result<&'a AppConfig, Message> {
    match name {
        Some(name) => config.app(name).ok_or_else(|| {
            let problem = match near_app(config, name) {
                Some(near) => format!(
                    "there is no app `{name}` — did you mean `{}`?",
                    example(near.name.as_str())
                ),
                None => format!("there is no app `{name}`"),
            };
            which_app(config, &problem, &example)
        }),
        None => channel_app(config, conversation)
            .ok_or_else(|| which_app(config, "which app?", &example)),
    }
}

/// The environment asked for (name or alias), else the app's default.
pub fn environment<'a>(
    config: &'a Config,
    app: &'a AppConfig,
    requested: Option<&str>,
    example: impl Fn(&str) -> String,
) -> Result<&'a EnvConfig, Message> {
    let names = app.environment_names().join(", ");
    match requested {
        Some(name) => app.environment(config, name).ok_or_else(|| {
            let first = app.environment_names()[0].to_string();
            Message::refused(format!("{} has no environment `{name}`", app.name))
                .line(format!("its environments: {names}"))
                .line(format!("e.g. `{}`", example(&first)))
        }),
        None => match &app.default_environment {
            Some(default) => app.environment(config, default.as_str()).ok_or_else(|| {
                Message::refused(format!("{} has no environment `{default}`", app.name))
            }),
            None => {
                let first = app.environment_names()[0].to_string();
                Err(Message::refused(format!(
                    "which environment? {} has no default_environment",
                    app.name
                ))
                .line(format!("its environments: {names}"))
                .line(format!("e.g. `{}`", example(&first))))
            }
        },
    }
}

fn valid_ref(s: &str) -> Result<GitRef, Message> {
    RefName::parse(s)
        .map(|r| GitRef::new(r.as_str()))
        .map_err(|e| Message::refused(e.to_string()))
}

fn which_app(config: &Config, problem: &str, example: impl Fn(&str) -> String) -> Message {
    let list: Vec<String> = config
        .apps
        .iter()
        .map(|a| format!("{} ({})", a.name, a.repository))
        .collect();
    Message::refused(problem.to_string())
        .line(format!("apps: {}", list.join(", ")))
        .line(format!("e.g. `{}`", example(config.apps[0].name.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml"), &|_| None).unwrap()
    }

    const TWO_APPS: &str = r#"
[github]
token = "t"
[apps.api]
repository = "acme/api"
default_environment = "staging"
channels = ["api-deploys"]
[apps.api.environments.staging]
[apps.api.environments.production]
[apps.web]
repository = "acme/web"
[apps.web.environments.staging]
[apps.web.environments.production]
[aliases]
prod = "production"
"#;

    fn conv(channel: &str) -> Conversation {
        Conversation {
            adapter: "shell".into(),
            channel: channel.into(),
            channel_name: Some(channel.into()),
            thread: None,
            interaction: None,
        }
    }

    #[test]
    fn an_app_name_means_its_default_branch() {
        let c = config(TWO_APPS);
        let t = target(&c, &conv("general"), "web").unwrap();
        assert_eq!(t.app.name.as_str(), "web");
        assert_eq!(t.git_ref, None);
    }

    #[test]
    fn app_slash_ref_keeps_slashes_in_the_ref() {
        let c = config(TWO_APPS);
        let t = target(&c, &conv("general"), "api/feature/login").unwrap();
        assert_eq!(t.app.name.as_str(), "api");
        assert_eq!(t.git_ref.unwrap().as_str(), "feature/login");
    }

    #[test]
    fn a_bare_ref_belongs_to_the_channels_only_app() {
        let c = config(TWO_APPS);
        let t = target(&c, &conv("api-deploys"), "feature/login").unwrap();
        assert_eq!(t.app.name.as_str(), "api");
        assert_eq!(t.git_ref.unwrap().as_str(), "feature/login");
    }

    #[test]
    fn a_bare_ref_with_several_apps_lists_them() {
        let c = config(TWO_APPS);
        let m = target(&c, &conv("general"), "topic").unwrap_err();
        let text = m.to_text();
        assert!(text.contains("`topic` is not an app"), "{text}");
        assert!(text.contains("api (acme/api), web (acme/web)"), "{text}");
        assert!(text.contains("`deploy api/topic`"), "{text}");
    }

    #[test]
    fn a_word_close_to_an_app_name_is_noticed() {
        let c = config(TWO_APPS);
        let t = target(&c, &conv("api-deploys"), "wbe").unwrap();
        assert_eq!(
            t.app.name.as_str(),
            "api",
            "still a ref of the channel's app"
        );
        assert_eq!(t.near.map(|a| a.name.as_str()), Some("web"));
        assert!(target(&c, &conv("api-deploys"), "topic")
            .unwrap()
            .near
            .is_none());
        let text = target(&c, &conv("general"), "wbe/topic")
            .unwrap_err()
            .to_text();
        assert!(text.contains("did you mean `deploy web/topic`?"), "{text}");
        let text = app(&c, &conv("general"), Some("apj"), |a| {
            format!("rollback {a}")
        })
        .unwrap_err()
        .to_text();
        assert!(
            text.contains("there is no app `apj` — did you mean `rollback api`?"),
            "{text}"
        );
    }

    #[test]
    fn a_bare_ref_with_one_app_is_that_apps() {
        let c = config(
            "[github]\ntoken = \"t\"\n[apps.api]\nrepository = \"acme/api\"\n[apps.api.environments.staging]\n",
        );
        let t = target(&c, &conv("anywhere"), "topic").unwrap();
        assert_eq!(t.app.name.as_str(), "api");
    }

    #[test]
    fn environments_resolve_by_alias_default_or_refuse_with_the_list() {
        let c = config(TWO_APPS);
        let api = c.app("api").unwrap();
        let ex = |e: &str| format!("deploy api to {e}");
        assert_eq!(
            environment(&c, api, Some("prod"), ex)
                .unwrap()
                .name
                .as_str(),
            "production"
        );
        assert_eq!(
            environment(&c, api, None, ex).unwrap().name.as_str(),
            "staging"
        );
        let text = environment(&c, api, Some("qa"), ex).unwrap_err().to_text();
        assert!(text.contains("api has no environment `qa`"), "{text}");
        assert!(text.contains("staging, production"), "{text}");
        let web = c.app("web").unwrap();
        let text = environment(&c, web, None, |e: &str| format!("deploy web to {e}"))
            .unwrap_err()
            .to_text();
        assert!(text.contains("which environment?"), "{text}");
        assert!(text.contains("`deploy web to staging`"), "{text}");
    }

    #[test]
    fn invalid_refs_are_refused_before_anything_else() {
        let c = config(TWO_APPS);
        let text = target(&c, &conv("general"), "api/a..b")
            .unwrap_err()
            .to_text();
        assert!(text.contains("a..b"), "{text}");
    }
}
