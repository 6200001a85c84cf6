//! GitHub Apps: registered public keys, installations, JWT verification and installation
//! tokens, with GitHub's rules and messages.
//!
//! An App authenticates as itself with a JWT (RS256, signed with its private key, `iss` =
//! the App id, `exp` at most 10 minutes ahead) and exchanges it at
//! `POST /app/installations/{id}/access_tokens` for an installation token (`ghs_…`)
//! that works on the REST API like any token until it expires (1 hour by default).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::state::User;
use crate::{Access, AppHook};

/// How long GitHub's installation tokens live.
pub(crate) const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// GitHub refuses a JWT whose `exp` is more than this after its `iat` (or after now).
pub(crate) const MAX_JWT_LIFETIME_SECS: i64 = 10 * 60;
/// How far in the future an `iat` may be (clock drift between the App and GitHub).
pub(crate) const CLOCK_SKEW_SECS: i64 = 60;

pub(crate) const UNDECODABLE: &str = "A JSON web token could not be decoded";
pub(crate) const EXP_NOT_FUTURE: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
pub(crate) const EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
pub(crate) const IAT_INVALID: &str =
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";

/// One installation of an App: which App, and what its tokens may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Installation {
    pub app_id: u64,
    pub access: Access,
}

/// Every registered App and installation.
pub(crate) struct Apps {
    keys: HashMap<u64, DecodingKey>,
    installations: HashMap<u64, Installation>,
    hooks: HashMap<u64, AppHook>,
    registered: HashMap<u64, DateTime<Utc>>,
    pub ttl: Duration,
}

impl Apps {
    pub fn new() -> Apps {
        Apps {
            keys: HashMap::new(),
            installations: HashMap::new(),
            hooks: HashMap::new(),
            registered: HashMap::new(),
            ttl: DEFAULT_TOKEN_TTL,
        }
    }

    pub fn add_app(&mut self, app_id: u64, public_key_pem: &str) -> Result<(), String> {
        if self.keys.contains_key(&app_id) {
            return Err(format!("app {app_id} is already registered"));
        }
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .map_err(|e| format!("app {app_id}: not an RSA public key in PEM form: {e}"))?;
        self.keys.insert(app_id, key);
        self.registered.insert(app_id, Utc::now().trunc_subsecs(0));
        Ok(())
    }

    pub fn set_hook(&mut self, app_id: u64, hook: AppHook) -> Result<(), String> {
        if !self.keys.contains_key(&app_id) {
            return Err(format!(
                "app {app_id} is not registered (Sandbox::add_app first)"
            ));
        }
        self.hooks.insert(app_id, hook);
        Ok(())
    }

    pub fn hook(&self, app_id: u64) -> Option<&AppHook> {
        self.hooks.get(&app_id)
    }

    pub fn registered_at(&self, app_id: u64) -> DateTime<Utc> {
        self.registered
            .get(&app_id)
            .copied()
            .unwrap_or_else(Utc::now)
    }

    pub fn installation_count(&self, app_id: u64) -> usize {
        self.installations
            .values()
            .filter(|i| i.app_id == app_id)
            .count()
    }

    pub fn add_installation(
        &mut self,
        app_id: u64,
        installation_id: u64,
        access: Access,
    ) -> Result<(), String> {
        if !self.keys.contains_key(&app_id) {
            return Err(format!(
                "app {app_id} is not registered (Sandbox::add_app first)"
            ));
        }
        if self.installations.contains_key(&installation_id) {
            return Err(format!("installation {installation_id} already exists"));
        }
        self.installations
            .insert(installation_id, Installation { app_id, access });
        Ok(())
    }

    pub fn installation(&self, installation_id: u64) -> Option<Installation> {
        self.installations.get(&installation_id).copied()
    }

    /// Checks a JWT the way GitHub does; returns the App it authenticates, or GitHub's
    /// 401 message. The signature is checked against the key of the App named by `iss`,
    /// so an unknown App id and a key of another App both read "could not be decoded".
    pub fn verify(&self, jwt: &str, now: DateTime<Utc>) -> Result<u64, &'static str> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| UNDECODABLE)?;
        if header.alg != Algorithm::RS256 {
            return Err(UNDECODABLE);
        }
        // Which App: read `iss` before knowing which key to verify with.
        let mut peek = lenient(Algorithm::RS256);
        peek.insecure_disable_signature_validation();
        let claims = jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_secret(&[]), &peek)
            .map_err(|_| UNDECODABLE)?
            .claims;
        let app_id = match &claims["iss"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or(UNDECODABLE)?;
        let key = self.keys.get(&app_id).ok_or(UNDECODABLE)?;
        jsonwebtoken::decode::<Value>(jwt, key, &lenient(Algorithm::RS256))
            .map_err(|_| UNDECODABLE)?;

        let now = now.timestamp();
        let iat = claims["iat"].as_i64().ok_or(IAT_INVALID)?;
        if iat > now + CLOCK_SKEW_SECS {
            return Err(IAT_INVALID);
        }
        let exp = numeric(&claims["exp"]).ok_or(EXP_NOT_FUTURE)?;
        if exp <= now {
            return Err(EXP_NOT_FUTURE);
        }
        if exp - iat > MAX_JWT_LIFETIME_SECS || exp > now + MAX_JWT_LIFETIME_SECS + CLOCK_SKEW_SECS
        {
            return Err(EXP_TOO_FAR);
        }
        Ok(app_id)
    }

    /// When a token issued at `now` expires: `now + ttl`, whole seconds (as rendered).
    pub fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        now.checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .trunc_subsecs(0)
    }
}

/// Signature checks only: the claims are checked here, for GitHub's messages.
fn lenient(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
}

/// A JSON number as whole seconds (GitHub accepts `exp` as any numeric value).
fn numeric(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64))
}

/// A new installation token: `ghs_` and 36 characters, like GitHub's.
pub(crate) fn new_token() -> String {
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    format!("ghs_{}", &random[..36])
}

/// The bot user an App acts as with its installation tokens (`creator` of what it makes).
pub(crate) fn bot_user(app_id: u64) -> User {
    User {
        login: format!("sandbox-app-{app_id}[bot]"),
        id: 1_000_000 + app_id,
        kind: "Bot",
    }
}

/// The App's slug (its URL name): `sandbox-app-{id}`.
pub(crate) fn slug(app_id: u64) -> String {
    format!("sandbox-app-{app_id}")
}

/// What an installation's tokens may do, as GitHub lists it.
pub(crate) fn permissions(access: Access) -> Value {
    let level = match access {
        Access::Full => "write",
        Access::ReadOnly => "read",
    };
    serde_json::json!({
        "checks": "read",
        "contents": "read",
        "deployments": level,
        "metadata": "read",
        "statuses": level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_like_githubs() {
        let t = new_token();
        assert!(t.starts_with("ghs_"));
        assert_eq!(t.len(), 40);
        assert_ne!(t, new_token());
    }

    #[test]
    fn registration_is_checked() {
        let mut apps = Apps::new();
        assert!(apps.add_app(1, "not a key").is_err());
        assert!(apps.add_installation(1, 2, Access::Full).is_err());
        assert!(apps.verify("a.b.c", Utc::now()).is_err());
        assert_eq!(apps.verify("nonsense", Utc::now()), Err(UNDECODABLE));
    }

    #[test]
    fn expiry_is_whole_seconds() {
        let mut apps = Apps::new();
        apps.ttl = Duration::from_secs(90);
        let now = Utc::now();
        let at = apps.expiry(now);
        assert_eq!(at.timestamp_subsec_nanos(), 0);
        assert_eq!(at.timestamp(), now.timestamp() + 90);
    }
}
