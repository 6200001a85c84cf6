//! The `deploybot` binary as a user runs it: check-config, shell and demo.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

fn deploybot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deploybot"));
    c.env_remove("DEPLOYBOT_CONFIG");
    c
}

/// Runs with `input` on stdin; returns (success, stdout, stderr).
fn run(mut cmd: Command, input: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn deploybot");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_example_and_never_prints_secrets() {
    let mut cmd = deploybot();
    cmd.args(["check-config", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bot.toml.example"))
        .env("GITHUB_TOKEN", "ghp_do_not_print_me")
        .env("DISCORD_TOKEN", "discord_do_not_print_me")
        .env("DEPLOYBOT_WEBHOOK_SECRET", "webhook_do_not_print_me");
    let (ok, stdout, stderr) = run(cmd, "");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("bot.toml.example: OK"), "{stdout}");
    assert!(stdout.contains("api → acme/api"), "{stdout}");
    assert!(
        stdout.contains("every week from Fri 16:00 to Mon 08:00 Europe/Berlin (bot.toml.example:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("weekend: nobody on call; apps: every; environments: production"),
        "{stdout}"
    );
    for secret in [
        "ghp_do_not_print_me",
        "discord_do_not_print_me",
        "webhook_do_not_print_me",
    ] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[test]
fn check_config_names_file_line_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(
        &path,
        "[github]\ntoken = \"${MISSING_TOKEN_FOR_TEST}\"\n[apps.api]\nrepository = \"acme/api\"\n[apps.api.environments.staging]\n",
    )
    .unwrap();
    let mut cmd = deploybot();
    cmd.args(["check-config", "--config"]).arg(&path);
    let (ok, _, stderr) = run(cmd, "");
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!("{}:2:9: github.token", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`MISSING_TOKEN_FOR_TEST`"), "{stderr}");
}

#[test]
fn check_config_reports_every_missing_variable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(
        &path,
        "[github]\ntoken = \"${MISSING_TOKEN_FOR_TEST}\"\n[discord]\ntoken = \"${MISSING_DISCORD_FOR_TEST}\"\n[webhook]\nlisten = \"127.0.0.1:8787\"\nsecret = \"${MISSING_SECRET_FOR_TEST}\"\n[apps.api]\nrepository = \"acme/api\"\n[apps.api.environments.staging]\n",
    )
    .unwrap();
    let mut cmd = deploybot();
    cmd.args(["check-config", "--config"]).arg(&path);
    let (ok, stdout, stderr) = run(cmd, "");
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    let file = path.display().to_string();
    assert_eq!(lines.len(), 3, "one line per missing variable:\n{stderr}");
    for (line, (at, var)) in lines.iter().zip([
        ("2:9: github.token", "MISSING_TOKEN_FOR_TEST"),
        ("4:9: discord.token", "MISSING_DISCORD_FOR_TEST"),
        ("7:10: webhook.secret", "MISSING_SECRET_FOR_TEST"),
    ]) {
        assert!(
            line.starts_with(&format!("{file}:{at}")) && line.contains(&format!("`{var}`")),
            "{line}"
        );
    }
}

#[test]
fn check_config_prints_warnings_and_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(
        &path,
        "[github]\ntoken = \"$GITHUB_TOKEN\"\n[apps.api]\nrepository = \"acme/api\"\n[apps.api.environments.staging]\n",
    )
    .unwrap();
    let mut cmd = deploybot();
    cmd.args(["check-config", "--config"]).arg(&path);
    let (ok, stdout, stderr) = run(cmd, "");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("bot.toml: OK"), "{stdout}");
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:1:1: warning: no live status")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:2:9: warning: github.token:"))
            && stderr.contains("write `${GITHUB_TOKEN}`"),
        "{stderr}"
    );
}

#[test]
fn the_config_path_comes_from_the_environment_when_no_flag_is_given() {
    let mut cmd = deploybot();
    cmd.arg("check-config")
        .env("DEPLOYBOT_CONFIG", "/nonexistent/deploybot.toml");
    let (ok, _, stderr) = run(cmd, "");
    assert!(!ok);
    assert!(
        stderr.starts_with("/nonexistent/deploybot.toml: no such file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shell_deploys_against_a_configured_github() {
    let sb = sandbox::Sandbox::start().await.unwrap();
    support::seed(&sb);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(&path, support::CONFIG).unwrap();
    let mut cmd = deploybot();
    cmd.args([
        "shell",
        "--user",
        "carol",
        "--role",
        "release",
        "--channel",
        "deploys",
        "--config",
    ])
    .arg(&path)
    .env("SANDBOX_URL", sb.url())
    .env("SANDBOX_TOKEN", sb.token());
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run(
            cmd,
            "!deploy api/topic to staging\ndeploy api/broken to staging\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Created deployment #"), "{stdout}");
    assert!(stdout.contains("requested by: carol"), "{stdout}");
    assert!(stdout.contains("ci/build: failure"), "{stdout}");
    assert_eq!(sb.deployments("acme/api").len(), 1);
}

#[test]
fn the_demo_runs_the_whole_loop_without_network_or_tokens() {
    let mut cmd = deploybot();
    cmd.arg("demo").env_remove("GITHUB_TOKEN");
    let (ok, stdout, stderr) = run(
        cmd,
        "deploy api/topic to staging\ndeploy api/broken to staging\ndeploy api staging\n",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Try these"), "{stdout}");
    assert!(
        stdout.contains("Created deployment #2 of api/topic"),
        "{stdout}"
    );
    assert!(stdout.contains("ci/build: failure"), "{stdout}");
    assert!(
        stdout.contains("did you mean `deploy api to staging`"),
        "{stdout}"
    );
}

/// `deploybot shell` with JSON logs at debug level, a webhook listener and every
/// secret set: returns (stdout, stderr). (No deployer answers: at EOF the shell waits
/// `status_timeout` for the deployment to settle.)
async fn shell_with_json_logs(extra_env: &[(&str, &str)]) -> (String, String, sandbox::Sandbox) {
    let sb = sandbox::Sandbox::start().await.unwrap();
    support::seed(&sb);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    let config = format!(
        "{}\n[webhook]\nlisten = \"127.0.0.1:0\"\nsecret = \"${{WEBHOOK_SECRET}}\"\n\n[defaults]\nstatus_timeout = \"5s\"\n\n[log]\nlevel = \"debug\"\nformat = \"json\"\n\n[storage]\nurl = \"sqlite://{}\"\n",
        support::CONFIG,
        dir.path().join("state.db").display()
    );
    std::fs::write(&path, config).unwrap();
    let mut cmd = deploybot();
    cmd.args(["shell", "--user", "carol", "--role", "release"])
        .args(["--channel", "deploys", "--config"])
        .arg(&path)
        .env("SANDBOX_URL", sb.url())
        .env("SANDBOX_TOKEN", sb.token())
        .env("WEBHOOK_SECRET", "whsec-do-not-print-me-0123456789")
        .env_remove("DEPLOYBOT_LOG")
        .env_remove("RUST_LOG");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || run(cmd, "deploy api/topic to staging\n"))
            .await
            .unwrap();
    assert!(ok, "{stderr}");
    (stdout, stderr, sb)
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line_with_a_startup_summary_and_no_secret() {
    let (stdout, stderr, sb) = shell_with_json_logs(&[]).await;
    assert!(stdout.contains("Created deployment #"), "{stdout}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["message"] == "deploybot started")
        .unwrap_or_else(|| panic!("no startup summary in {stderr}"));
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(summary["apps"], 3);
    assert_eq!(summary["environments"], 5);
    assert_eq!(summary["chat"], "shell");
    assert!(
        summary["webhook"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{summary}"
    );
    assert!(summary["storage"].as_str().unwrap().contains("state.db"));
    assert!(
        lines.iter().any(|l| l["message"] == "command"),
        "the command is logged: {stderr}"
    );
    for secret in [sb.token().as_str(), "whsec-do-not-print-me-0123456789"] {
        assert!(!stderr.contains(secret), "a secret in the logs: {stderr}");
        assert!(!stdout.contains(secret), "a secret in the output: {stdout}");
    }
    assert!(!stderr.contains('\u{1b}'), "no colours when not a terminal");
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_log_and_deploybot_log_override_the_configured_level() {
    let (_, stderr, _) = shell_with_json_logs(&[("RUST_LOG", "error")]).await;
    assert!(!stderr.contains("deploybot started"), "{stderr}");
    let (_, stderr, _) =
        shell_with_json_logs(&[("RUST_LOG", "error"), ("DEPLOYBOT_LOG", "info")]).await;
    assert!(stderr.contains("deploybot started"), "{stderr}");
    assert!(!stderr.contains("\"DEBUG\""), "{stderr}");
}
