//! The config loader, `Config::parse(text, path, env)`, on any text (other bytes
//! converted lossily), with an environment that knows a few variables.
//!
//! Never panics; an error renders as `bot.toml:LINE:COL: message` with a place inside
//! the text; a `Config` that comes back holds what the module promises ("a `Config`
//! that exists is valid") and its summary renders.
#![no_main]

use std::path::Path;

use deploybot::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

/// `${VAR}` answers: the usual secrets, a few awkward values, and `V_<anything>`, which
/// stands for `<anything>` so that the fuzzer can spell any value through a variable.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "GITHUB_TOKEN" => "ghp_fuzz_token_value",
        "DISCORD_TOKEN" => "discord-fuzz-token",
        "DEPLOYBOT_WEBHOOK_SECRET" => "a-long-webhook-secret-value",
        "EMPTY" => "",
        "BLANK" => " \t ",
        "ADDR" => "127.0.0.1:8787",
        "URL" => "http://127.0.0.1:1/",
        "NL" => "line\nbreak",
        "NESTED" => "${GITHUB_TOKEN}",
        "UNICODE" => "é🚀\u{200b}",
        _ => return name.strip_prefix("V_").map(str::to_string),
    };
    Some(value.to_string())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, Path::new("bot.toml"), &env) {
        Ok(config) => check_config(&config),
        Err(e) => check_error(&text, &e),
    }
});

fn check_error(text: &str, e: &ConfigError) {
    let rendered = e.to_string();
    assert!(rendered.starts_with("bot.toml:"), "{rendered}");
    assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
    if let Some((line, col)) = e.location {
        let lines = text.split('\n').count();
        assert!(line >= 1 && col >= 1, "location {line}:{col}");
        assert!(
            line <= lines,
            "line {line} past the end ({lines} lines): {e:?}"
        );
    }
}

fn check_config(config: &Config) {
    let _ = config.summary();
    let _ = format!("{config:?}");
    assert!(!config.apps.is_empty(), "a config without apps");
    for app in &config.apps {
        assert!(is_word(app.name.as_str()), "app name {:?}", app.name);
        assert!(
            !app.environments.is_empty(),
            "app {} without environments",
            app.name
        );
        for env in &app.environments {
            assert!(
                is_word(env.name.as_str()),
                "environment name {:?}",
                env.name
            );
            let found = app
                .environment(config, env.name.as_str())
                .unwrap_or_else(|| {
                    panic!("{}: environment {} not found by name", app.name, env.name)
                });
            assert_eq!(
                found.name, env.name,
                "{}: environment {} hidden",
                app.name, env.name
            );
            let _ = config.rules(app, env);
        }
        if let Some(default) = &app.default_environment {
            assert!(
                app.environments.iter().any(|e| &e.name == default),
                "{}: default environment {default} is not one of its own",
                app.name
            );
        }
        let found = config
            .app(app.name.as_str())
            .unwrap_or_else(|| panic!("app {} not found by name", app.name));
        assert_eq!(
            found.name, app.name,
            "app {} is hidden by app {}",
            app.name, found.name
        );
        assert!(!app.payload.contains_key("deploybot"));
    }
    for (alias, target) in &config.aliases {
        assert_eq!(alias, &alias.to_ascii_lowercase());
        assert!(
            config
                .apps
                .iter()
                .any(|a| a.environments.iter().any(|e| &e.name == target)),
            "alias {alias} → {target}: no such environment"
        );
    }
    if let Some(w) = &config.webhook {
        assert!(w.path.starts_with('/'));
    }
    assert!(config.storage.url.starts_with("sqlite:"));
}

/// The charset app, environment and alias names must use (they are typed in chat).
fn is_word(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
