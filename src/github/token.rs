//! Where GitHub credentials come from. Every request asks a [`TokenSource`] for the
//! token to use, so switching from a personal token to a GitHub App installation token
//! (JWT-signed, refreshed before its one-hour expiry) touches only this module.

use std::path::PathBuf;
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
        private_key_path: &PathBuf,
    ) -> Result<Self, GitHubError> {
        let pem = std::fs::read(private_key_path).map_err(|e| GitHubError::Credentials {
            message: format!(
                "cannot read the GitHub App private key {}: {e} (download it from the App's settings page and set [github.app] private_key_path)",
                private_key_path.display()
            ),
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| GitHubError::Credentials {
            message: format!(
                "{} is not an RSA private key in PEM form ({e}); use the .pem file GitHub generated for the App",
                private_key_path.display()
            ),
        })?;
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
        let mut cached = self.cached.lock().await;
        let now = Utc::now();
        if let Some((token, expires)) = cached.as_ref() {
            if *expires - chrono::Duration::minutes(5) > now {
                return Ok(token.clone());
            }
        }
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
                message: format!("could not reach {url}: {e}"),
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_slice::<super::ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_default();
            return Err(GitHubError::Credentials {
                message: format!(
                    "GitHub refused an installation token for app {} / installation {} ({status}: {message}); check app_id, installation_id and the private key",
                    self.app_id, self.installation_id
                ),
            });
        }
        let token: AccessToken =
            serde_json::from_slice(&body).map_err(|e| GitHubError::Credentials {
                message: format!("unexpected installation token response: {e}"),
            })?;
        let secret = SecretString::from(token.token);
        *cached = Some((secret.clone(), token.expires_at));
        Ok(secret)
    }
}

/// The token source the configuration asks for.
pub fn from_config(api_url: &str, auth: &GitHubAuth) -> Result<Arc<dyn TokenSource>, GitHubError> {
    Ok(match auth {
        GitHubAuth::Token(t) => {
            if t.expose_secret().trim().is_empty() {
                return Err(GitHubError::Credentials {
                    message: "[github] token is empty".into(),
                });
            }
            Arc::new(StaticToken::new(t.clone()))
        }
        GitHubAuth::App {
            app_id,
            private_key_path,
            installation_id,
        } => Arc::new(AppInstallation::new(
            api_url,
            *app_id,
            *installation_id,
            private_key_path,
        )?),
    })
}
