//! Proof that deploybot wrote a deployment's `payload.deploybot`.
//!
//! Anyone who can create a deployment in a repository (a collaborator, any workflow
//! with `deployments: write`) chooses its payload, and GitHub then signs the webhooks
//! about it: the webhook signature proves the event came from GitHub, not that the
//! payload came from deploybot. So when the bot creates a deployment it adds
//! `payload.deploybot.mac`, an HMAC-SHA256 with a key only it holds (generated at
//! first start, kept in the store, shared by instances sharing the store) over a
//! canonical encoding of everything it wrote at creation time: the repository,
//! environment, ref and task, and every routing field (request id, app, chat
//! coordinates, user, hosts, reason, rollback). The tracker routes a deployment by its
//! payload only when the mac verifies (in constant time).
//!
//! The mac string is `v1.<unix seconds>.<hex>`: the time it was made is covered too, so
//! a valid payload copied into a deployment created later does not verify (see
//! [`REPLAY_WINDOW`]).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::github::{DeploybotPayload, Deployment};
use crate::model::RepoName;

/// The store setting that holds the key (hex).
pub const KEY_SETTING: &str = "routing_key";

/// How far a deployment's `created_at` (GitHub's clock) may be from the time its mac
/// was made (the bot's clock): a little before (clock skew), longer after (a POST
/// whose answer was lost and found by its request id, an auto-merge retried).
pub const REPLAY_WINDOW_BEFORE: chrono::Duration = chrono::Duration::minutes(5);
pub const REPLAY_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

type HmacSha256 = Hmac<Sha256>;

/// The bot's routing key: 32 random bytes. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RoutingKey([u8; 32]);

impl std::fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoutingKey(***)")
    }
}

/// What was signed: the deployment as deploybot asked for it.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub repository: &'a RepoName,
    pub environment: &'a str,
    pub git_ref: &'a str,
    pub task: &'a str,
    pub payload: &'a DeploybotPayload,
}

impl<'a> Signed<'a> {
    /// The fields of a deployment GitHub reports, with its routing payload.
    pub fn of(
        repository: &'a RepoName,
        d: &'a Deployment,
        payload: &'a DeploybotPayload,
    ) -> Signed<'a> {
        Signed {
            repository,
            // The environment it was created in (GitHub may report a renamed one).
            environment: d.original_environment.as_deref().unwrap_or(&d.environment),
            git_ref: &d.git_ref,
            task: &d.task,
            payload,
        }
    }
}

/// Why a payload's mac was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Missing,
    Malformed,
    Wrong,
    /// Valid, but made long before or after the deployment: a copied payload.
    OutOfWindow,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Missing => "no mac",
            Rejected::Malformed => "a malformed mac",
            Rejected::Wrong => "a mac that does not verify",
            Rejected::OutOfWindow => "a mac made at another time than the deployment",
        }
    }
}

impl RoutingKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> RoutingKey {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the operating system's random generator");
        RoutingKey(key)
    }

    pub fn from_hex(s: &str) -> Option<RoutingKey> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(RoutingKey(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, at: i64, signed: &Signed<'_>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&canonical(at, signed));
        mac
    }

    /// The `mac` to put in the payload, made at `at`.
    pub fn sign(&self, at: DateTime<Utc>, signed: &Signed<'_>) -> String {
        let at = at.timestamp();
        format!(
            "v1.{at}.{}",
            hex::encode(self.mac(at, signed).finalize().into_bytes())
        )
    }

    /// Checks `payload.mac` (constant-time comparison) and that it was made around
    /// the time GitHub created the deployment.
    pub fn verify(&self, signed: &Signed<'_>, created_at: DateTime<Utc>) -> Result<(), Rejected> {
        let mac = signed.payload.mac.as_deref().ok_or(Rejected::Missing)?;
        let mut parts = mac.splitn(3, '.');
        let (Some("v1"), Some(at), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Rejected::Malformed);
        };
        let at: i64 = at.parse().map_err(|_| Rejected::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| Rejected::Malformed)?;
        self.mac(at, signed)
            .verify_slice(&tag)
            .map_err(|_| Rejected::Wrong)?;
        let made = DateTime::<Utc>::from_timestamp(at, 0).ok_or(Rejected::Malformed)?;
        if created_at < made - REPLAY_WINDOW_BEFORE || created_at > made + REPLAY_WINDOW {
            return Err(Rejected::OutOfWindow);
        }
        Ok(())
    }
}

/// An unambiguous encoding: a version tag, then each field as a presence byte and a
/// length-prefixed value, in a fixed order. The repository is lowercased (GitHub's
/// names are case-insensitive); the `mac` itself is not covered.
fn canonical(at: i64, s: &Signed<'_>) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u64).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    let p = s.payload;
    let mut out = b"deploybot-routing-v1\0".to_vec();
    out.extend_from_slice(&at.to_be_bytes());
    let repository = s.repository.lowercase();
    field(&mut out, Some(&repository));
    field(&mut out, Some(s.environment));
    field(&mut out, Some(s.git_ref));
    field(&mut out, Some(s.task));
    field(&mut out, Some(&p.request_id));
    field(&mut out, p.app.as_deref());
    field(&mut out, Some(&p.chat.adapter));
    field(&mut out, Some(&p.chat.channel));
    field(&mut out, p.chat.thread.as_deref());
    field(&mut out, p.chat.message.as_deref());
    field(&mut out, Some(&p.user.id));
    field(&mut out, Some(&p.user.name));
    out.extend_from_slice(&(p.hosts.len() as u64).to_be_bytes());
    for host in &p.hosts {
        field(&mut out, Some(host));
    }
    field(&mut out, p.reason.as_deref());
    let rollback = p.rollback_of.map(|id| id.to_string());
    field(&mut out, rollback.as_deref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::{PayloadChat, PayloadUser};

    fn payload() -> DeploybotPayload {
        DeploybotPayload {
            request_id: "r-1".into(),
            chat: PayloadChat {
                adapter: "shell".into(),
                channel: "deploys".into(),
                thread: None,
                message: Some("m-1".into()),
            },
            user: PayloadUser {
                id: "alice".into(),
                name: "alice".into(),
            },
            hosts: vec![],
            reason: None,
            app: Some("api".into()),
            rollback_of: None,
            mac: None,
        }
    }

    fn signed<'a>(repo: &'a RepoName, p: &'a DeploybotPayload) -> Signed<'a> {
        Signed {
            repository: repo,
            environment: "staging",
            git_ref: "topic",
            task: "deploy",
            payload: p,
        }
    }

    #[test]
    fn a_mac_verifies_only_for_what_it_covers_and_around_its_time() {
        let key = RoutingKey::generate();
        let repo = RepoName::parse("acme/api").unwrap();
        let now = Utc::now();
        let mut p = payload();
        p.mac = Some(key.sign(now, &signed(&repo, &p)));
        assert_eq!(key.verify(&signed(&repo, &p), now), Ok(()));
        // Case of the repository does not matter.
        let upper = RepoName::parse("ACME/Api").unwrap();
        assert_eq!(key.verify(&signed(&upper, &p), now), Ok(()));

        let mut other = p.clone();
        other.chat.message = Some("m-2".into());
        assert_eq!(
            key.verify(&signed(&repo, &other), now),
            Err(Rejected::Wrong)
        );
        let mut other = p.clone();
        other.request_id = "r-2".into();
        assert_eq!(
            key.verify(&signed(&repo, &other), now),
            Err(Rejected::Wrong)
        );
        let evil = RepoName::parse("evil/x").unwrap();
        assert_eq!(key.verify(&signed(&evil, &p), now), Err(Rejected::Wrong));
        assert_eq!(
            RoutingKey::generate().verify(&signed(&repo, &p), now),
            Err(Rejected::Wrong)
        );
        assert_eq!(
            key.verify(&signed(&repo, &p), now + chrono::Duration::days(8)),
            Err(Rejected::OutOfWindow)
        );
        let mut bad = p.clone();
        bad.mac = Some("v1.x.zz".into());
        assert_eq!(
            key.verify(&signed(&repo, &bad), now),
            Err(Rejected::Malformed)
        );
        bad.mac = None;
        assert_eq!(
            key.verify(&signed(&repo, &bad), now),
            Err(Rejected::Missing)
        );
    }

    #[test]
    fn keys_round_trip_through_hex_and_never_show_in_debug() {
        let key = RoutingKey::generate();
        assert_eq!(RoutingKey::from_hex(&key.to_hex()), Some(key.clone()));
        assert_eq!(RoutingKey::from_hex("abcd"), None);
        assert!(!format!("{key:?}").contains(&key.to_hex()[..8]));
        assert_ne!(RoutingKey::generate(), key);
    }
}
