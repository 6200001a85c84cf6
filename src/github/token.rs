//! Where GitHub credentials come from. Every request asks a [`TokenSource`] for the
//! token to use, so switching from a personal token to a GitHub App installation token
//! (JWT-signed, refreshed before its one-hour expiry) touches only this module.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::GitHubError;
use crate::config::GitHubAuth;

#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The `Authorization` value's token, fresh enough for one request.
    async fn token(&self) -> Result<SecretString, GitHubError>;
}

/// A personal access token (classic with `repo_deployment`, or fine-grained with
/// Deployments: write).
pub struct StaticToken(SecretString);

impl StaticToken {
    pub fn new(token: SecretString) -> Self {
        StaticToken(token)
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<SecretString, GitHubError> {
        Ok(self.0.clone())
    }
}

/// A GitHub App installation: signs a short JWT with the app's private key and
/// exchanges it for an installation token, which is cached and renewed five minutes
/// before it expires.
pub struct AppInstallation {
    api_url: String,
    app_id: u64,
    installation_id: u64,
    key: jsonwebtoken::EncodingKey,
    http: reqwest::Client,
    cached: Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

/// Installation tokens are renewed this long before they expire…
const RENEW_BEFORE: chrono::Duration = chrono::Duration::minutes(5);
/// …and, if renewing fails, still used until this long before.
const LAST_USE_BEFORE: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: DateTime<Utc>,
}

impl AppInstallation {
    pub fn new(
        api_url: &str,
        app_id: u64,
        installation_id: u64,
        private_key_path: &Path,
    ) -> Result<Self, GitHubError> {
        let key = read_private_key(private_key_path)?;
        Ok(AppInstallation {
            api_url: api_url.trim_end_matches('/').to_string(),
            app_id,
            installation_id,
            key,
            http: reqwest::Client::builder()
                .user_agent(super::client::USER_AGENT)
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(|e| GitHubError::Credentials {
                    message: e.to_string(),
                })?,
            cached: Mutex::new(None),
        })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    pub fn installation_id(&self) -> u64 {
        self.installation_id
    }

    /// A JWT that authenticates as the App itself (for `/app/...` endpoints), valid for
    /// nine minutes.
    pub fn app_jwt(&self) -> Result<SecretString, GitHubError> {
        self.jwt(Utc::now()).map(SecretString::from)
    }

    /// What to fix when GitHub refuses the App's JWT or knows no such installation.
    pub fn refusal(&self, status: reqwest::StatusCode, message: &str) -> String {
        let (app, installation) = (self.app_id, self.installation_id);
        let said = if message.is_empty() || Some(message) == status.canonical_reason() {
            status.to_string()
        } else {
            format!("{status}: {message}")
        };
        match status.as_u16() {
            // GitHub names the claim it disliked; otherwise the id and key do not match.
            401 if message.contains("claim") => format!(
                "GitHub refused the GitHub App JWT for app {app} ({said}); the clock of the \
                 machine deploybot runs on is off: synchronise it (NTP)"
            ),
            401 => format!(
                "GitHub refused the GitHub App JWT for app {app} ({said}); check [github.app] \
                 app_id (the App ID on the App's settings page) and that private_key_path is a \
                 private key of that App (generate a new one there if in doubt)"
            ),
            404 => format!(
                "GitHub App {app} has no installation {installation} ({said}); check \
                 [github.app] installation_id (the number at the end of the installation's \
                 settings URL) and that the App is installed on the repositories"
            ),
            _ => format!(
                "GitHub refused an installation token for app {app} / installation \
                 {installation} ({said}); check [github.app] app_id, installation_id and \
                 private_key_path"
            ),
        }
    }

    fn jwt(&self, now: DateTime<Utc>) -> Result<String, GitHubError> {
        #[derive(serde::Serialize)]
        struct Claims {
            iat: i64,
            exp: i64,
            iss: String,
        }
        // GitHub allows at most 10 minutes and recommends backdating `iat` against clock drift.
        let claims = Claims {
            iat: now.timestamp() - 60,
            exp: now.timestamp() + 9 * 60,
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|e| GitHubError::Credentials {
            message: format!("could not sign the GitHub App JWT: {e}"),
        })
    }
}

#[async_trait]
impl TokenSource for AppInstallation {
    async fn token(&self) -> Result<SecretString, GitHubError> {
        // Held across the exchange: concurrent requests wait for one new token.
        let mut cached = self.cached.lock().await;
        let now = Utc::now();
        if let Some((token, expires)) = cached.as_ref() {
            if *expires - RENEW_BEFORE > now {
                return Ok(token.clone());
            }
        }
        match self.exchange(now).await {
            Ok((token, expires)) => {
                *cached = Some((token.clone(), expires));
                Ok(token)
            }
            // A failed renewal is not fatal while the current token still works.
            Err(e) => match cached.as_ref() {
                Some((token, expires)) if *expires - LAST_USE_BEFORE > now => {
                    tracing::warn!(
                        error = %e,
                        expires_at = %expires,
                        "could not renew the GitHub App installation token; using the current one"
                    );
                    Ok(token.clone())
                }
                _ => Err(e),
            },
        }
    }
}

impl AppInstallation {
    /// Signs a JWT and exchanges it for an installation token and its expiry.
    async fn exchange(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(SecretString, DateTime<Utc>), GitHubError> {
        let jwt = self.jwt(now)?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api_url, self.installation_id
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", super::client::API_VERSION)
            .send()
            .await
            .map_err(|e| GitHubError::Credentials {
                message: format!(
                    "could not reach {url} for a GitHub App installation token ({e}); check the \
                     network and [github] api_url"
                ),
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_slice::<super::ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_default();
            return Err(GitHubError::Credentials {
                message: self.refusal(status, &message),
            });
        }
        let token: AccessToken =
            serde_json::from_slice(&body).map_err(|e| GitHubError::Credentials {
                message: format!("unexpected installation token response: {e}"),
            })?;
        Ok((SecretString::from(token.token), token.expires_at))
    }
}

/// Reads a GitHub App private key: an RSA private key in PEM form, as GitHub generates
/// it. A public key parses as well, and would only fail at the first request, so the
/// key signs once here: a wrong file is refused at once (`check-config`, the start).
pub fn read_private_key(path: &Path) -> Result<jsonwebtoken::EncodingKey, GitHubError> {
    let pem = std::fs::read(path).map_err(|e| GitHubError::Credentials {
        message: format!(
            "cannot read the GitHub App private key {}: {e} (download it from the App's settings page and set [github.app] private_key_path)",
            path.display()
        ),
    })?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| not_a_key(path, &e))?;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &serde_json::json!({}), &key).map_err(|e| not_a_key(path, &e))?;
    Ok(key)
}

fn not_a_key(path: &Path, e: &dyn std::fmt::Display) -> GitHubError {
    GitHubError::Credentials {
        message: format!(
            "{} is not an RSA private key in PEM form ({e}); set [github.app] private_key_path \
             to the .pem file GitHub generated for the App (\"Generate a private key\" on its \
             settings page)",
            path.display()
        ),
    }
}

/// The credential the configuration names, by kind, for callers that must tell a
/// personal token from an App (`deploybot doctor`).
pub enum Credential {
    Token(Arc<StaticToken>),
    App(Arc<AppInstallation>),
}

impl Credential {
    pub fn source(&self) -> Arc<dyn TokenSource> {
        match self {
            Credential::Token(t) => t.clone(),
            Credential::App(a) => a.clone(),
        }
    }
}

/// The credential the configuration asks for.
pub fn credential_from_config(api_url: &str, auth: &GitHubAuth) -> Result<Credential, GitHubError> {
    Ok(match auth {
        GitHubAuth::Token(t) => {
            if t.expose_secret().trim().is_empty() {
                return Err(GitHubError::Credentials {
                    message: "[github] token is empty".into(),
                });
            }
            Credential::Token(Arc::new(StaticToken::new(t.clone())))
        }
        GitHubAuth::App {
            app_id,
            private_key_path,
            installation_id,
        } => Credential::App(Arc::new(AppInstallation::new(
            api_url,
            *app_id,
            *installation_id,
            private_key_path,
        )?)),
    })
}

/// The token source the configuration asks for.
pub fn from_config(api_url: &str, auth: &GitHubAuth) -> Result<Arc<dyn TokenSource>, GitHubError> {
    credential_from_config(api_url, auth).map(|c| c.source())
}
