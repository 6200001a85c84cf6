//! Webhook events the bot acts on, parsed from GitHub's delivery bodies (every example
//! under `fixtures/github/webhooks/` parses), and the signature check.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{Deployment, DeploymentStatus};
use crate::model::RepoName;

#[derive(Debug, Clone, Deserialize)]
pub struct EventRepository {
    pub full_name: String,
    #[serde(default)]
    pub html_url: Option<String>,
}

impl EventRepository {
    pub fn name(&self) -> Option<RepoName> {
        RepoName::parse(&self.full_name)
    }
}

/// `deployment_status`: a deployer reported progress.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatusEvent {
    /// `created`; absent in GitHub Enterprise 3.5 and 2014-era payloads.
    #[serde(default)]
    pub action: Option<String>,
    pub deployment_status: DeploymentStatus,
    pub deployment: Deployment,
    pub repository: EventRepository,
}

/// `deployment`: a deployment was created (by deploybot or anyone else).
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentEvent {
    #[serde(default)]
    pub action: Option<String>,
    pub deployment: Deployment,
    pub repository: EventRepository,
}

/// `status` / `check_run` / `check_suite`: which commit's checks changed.
#[derive(Debug, Clone)]
pub struct ChecksEvent {
    pub repository: EventRepository,
    pub sha: String,
}

#[derive(Deserialize)]
struct HeadSha {
    head_sha: String,
}

#[derive(Deserialize)]
struct RawChecks {
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    check_run: Option<HeadSha>,
    #[serde(default)]
    check_suite: Option<HeadSha>,
    #[serde(default)]
    repository: Option<EventRepository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<u64>,
}

/// A delivery, by its `X-GitHub-Event` header.
#[derive(Debug, Clone)]
pub enum Event {
    Ping(PingEvent),
    Deployment(Box<DeploymentEvent>),
    DeploymentStatus(Box<DeploymentStatusEvent>),
    /// `status`, `check_run` or `check_suite`: the checks of a commit changed (what
    /// `deploy … when green` waits for).
    Checks(ChecksEvent),
    /// An event the bot does not act on (the webhook may send more than it needs).
    Ignored(String),
}

impl Event {
    /// Parses a delivery body. Errors say what is wrong, for the 400 answer.
    pub fn parse(event: &str, body: &[u8]) -> Result<Event, String> {
        let bad = |e: serde_json::Error| format!("not a valid `{event}` payload: {e}");
        Ok(match event {
            "ping" => Event::Ping(serde_json::from_slice(body).map_err(bad)?),
            "deployment" => Event::Deployment(Box::new(serde_json::from_slice(body).map_err(bad)?)),
            "deployment_status" => {
                Event::DeploymentStatus(Box::new(serde_json::from_slice(body).map_err(bad)?))
            }
            "status" | "check_run" | "check_suite" => {
                let raw: RawChecks = serde_json::from_slice(body).map_err(bad)?;
                let sha = match event {
                    "status" => raw.sha,
                    "check_run" => raw.check_run.map(|c| c.head_sha),
                    _ => raw.check_suite.map(|c| c.head_sha),
                };
                match (sha, raw.repository) {
                    (Some(sha), Some(repository)) => Event::Checks(ChecksEvent { repository, sha }),
                    // A shape without the commit (a legacy payload): nothing to follow.
                    _ => Event::Ignored(event.to_string()),
                }
            }
            other => {
                // Still JSON, or it is not a GitHub delivery at all.
                serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(bad)?;
                Event::Ignored(other.to_string())
            }
        })
    }
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the HMAC-SHA256 of the raw
/// body, in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), &'static str> {
    let header = header.ok_or("missing X-Hub-Signature-256")?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must start with sha256=")?;
    let expected = hex::decode(hex_sig).map_err(|_| "X-Hub-Signature-256 is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "unusable secret")?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| "X-Hub-Signature-256 does not match the body and the secret")
}

/// The signature a sender computes, for tests and the load script.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhooks() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/github/webhooks")
    }

    #[test]
    fn every_webhook_fixture_parses_as_its_event() {
        let mut seen = 0;
        for folder in std::fs::read_dir(webhooks()).unwrap() {
            let folder = folder.unwrap().path();
            let event = folder.file_name().unwrap().to_string_lossy().into_owned();
            if event == "signature" || event == "headers" {
                continue;
            }
            for file in std::fs::read_dir(&folder).unwrap() {
                let path = file.unwrap().path();
                let body = std::fs::read(&path).unwrap();
                let parsed = Event::parse(&event, &body)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let ok = match (&parsed, event.as_str()) {
                    (Event::Ping(_), "ping") => true,
                    (Event::Deployment(d), "deployment") => {
                        d.deployment.id.0 > 0 && d.repository.name().is_some()
                    }
                    (Event::DeploymentStatus(s), "deployment_status") => {
                        s.deployment_status.state().is_some() && s.deployment.id.0 > 0
                    }
                    (Event::Checks(c), "status" | "check_run" | "check_suite") => {
                        !c.sha.is_empty() && c.repository.name().is_some()
                    }
                    (Event::Ignored(name), _) => name == &event,
                    _ => false,
                };
                assert!(ok, "{}: {parsed:?}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 28, "{seen}");
    }

    #[test]
    fn legacy_and_enterprise_payloads_carry_the_state() {
        let read = |p: &str| std::fs::read(webhooks().join(p)).unwrap();
        match Event::parse(
            "deployment_status",
            &read("deployment_status/legacy-2014.failure.atmos-heaven.json"),
        )
        .unwrap()
        {
            Event::DeploymentStatus(e) => {
                assert_eq!(e.deployment_status.state, "failure");
                assert_eq!(e.action, None);
            }
            other => panic!("{other:?}"),
        }
        match Event::parse(
            "deployment_status",
            &read(
                "deployment_status/created.in_progress.github-pages-actions.octokit-webhooks.json",
            ),
        )
        .unwrap()
        {
            Event::DeploymentStatus(e) => assert!(e.deployment_status.log_link().is_some()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn githubs_signature_test_vector_verifies() {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(webhooks().join("signature/hmac-sha256-test-vector.github-docs.json"))
                .unwrap(),
        )
        .unwrap();
        let secret = v["secret"].as_str().unwrap().as_bytes();
        let payload = v["payload"].as_str().unwrap().as_bytes();
        let header = v["x_hub_signature_256"].as_str().unwrap();
        assert_eq!(sign(secret, payload), header);
        assert_eq!(verify_signature(secret, payload, Some(header)), Ok(()));
        assert!(verify_signature(secret, b"Hello, World?", Some(header)).is_err());
        assert!(verify_signature(b"another secret", payload, Some(header)).is_err());
        assert!(verify_signature(secret, payload, None).is_err());
        assert!(verify_signature(secret, payload, Some("sha1=757107ea")).is_err());
        assert!(verify_signature(secret, payload, Some("sha256=zz")).is_err());
    }

    #[test]
    fn a_body_that_is_not_json_is_rejected_whatever_the_event() {
        assert!(Event::parse("check_run", b"not json").is_err());
        assert!(Event::parse("deployment", b"{}").is_err());
    }
}
