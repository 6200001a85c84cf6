//! GitHub Apps: JWT verification, installation tokens (issue, use, expiry), GitHub's
//! refusals, and the 201's shape.
//!
//! The keys under `keys/` are test-only (see keys/README.md).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sandbox::{Access, Sandbox};
use serde_json::{json, Value};

use crate::common::*;

const APP_KEY: &str = include_str!("keys/test-app.private-key.pem");
const APP_PUBLIC: &str = include_str!("keys/test-app.public.pem");
const OTHER_KEY: &str = include_str!("keys/other-app.private-key.pem");
const OTHER_PUBLIC: &str = include_str!("keys/other-app.public.pem");

const APP: u64 = 7;
const INSTALLATION: u64 = 42;

const UNDECODABLE: &str = "A JSON web token could not be decoded";
const EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";

fn sign(private_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign")
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// A JWT as GitHub recommends: `iat` backdated a minute, `exp` 9 minutes ahead.
fn jwt_for(app_id: u64, private_pem: &str) -> String {
    let now = now();
    sign(
        private_pem,
        &json!({ "iss": app_id.to_string(), "iat": now - 60, "exp": now + 9 * 60 }),
    )
}

/// A sandbox with acme/api, App 7 (test key) installed as 42 with `access`.
async fn with_app(access: Access) -> (Sandbox, Api) {
    let (sb, api) = setup().await;
    sb.add_app(APP, APP_PUBLIC);
    sb.add_installation(APP, INSTALLATION, access);
    (sb, api)
}

async fn exchange(api: &Api, installation: u64, jwt: &str) -> Resp {
    api.with_token(Some(jwt))
        .send(
            "POST",
            &format!("/app/installations/{installation}/access_tokens"),
            None,
            &[],
        )
        .await
}

#[track_caller]
fn assert_refused(resp: &Resp, status: u16, message: &str) {
    assert_eq!(resp.status, status, "{:#}", resp.body);
    assert_eq!(resp.body["message"], message, "{:#}", resp.body);
    assert_eq!(resp.body["status"], status.to_string());
}

fn expires_at(resp: &Resp) -> DateTime<Utc> {
    resp.body["expires_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("expires_at is RFC 3339: {:#}", resp.body))
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_jwt_gets_an_installation_token_that_works_like_any_token() {
    let (sb, api) = with_app(Access::Full).await;
    let jwt = jwt_for(APP, APP_KEY);
    let before = now();
    let issued = exchange(&api, INSTALLATION, &jwt).await;
    assert_eq!(issued.status, 201, "{:#}", issued.body);
    let token = issued.body["token"].as_str().expect("token").to_string();
    assert!(
        token.starts_with("ghs_") && token.len() == 40,
        "GitHub's installation token form: {token}"
    );
    // One hour, like GitHub, in whole seconds.
    let expires = expires_at(&issued).timestamp();
    assert!(
        (before + 3600..=now() + 3600).contains(&expires),
        "expires_at {expires} is an hour after {before}"
    );
    assert_eq!(issued.body["repository_selection"], "all");
    assert_eq!(issued.body["permissions"]["deployments"], "write");
    assert_eq!(issued.body["permissions"]["metadata"], "read");
    assert_eq!(issued.body["repositories"][0]["full_name"], "acme/api");
    assert!(issued.header("x-ratelimit-limit").is_some());

    // The request is recorded like every other, with its JWT.
    let recorded = sb.requests();
    let post = recorded
        .iter()
        .find(|r| r.path == format!("/app/installations/{INSTALLATION}/access_tokens"))
        .expect("the exchange is recorded");
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.header("authorization"),
        Some(format!("Bearer {jwt}").as_str())
    );

    // The token is accepted everywhere, with the installation's access; what it makes is
    // made by the App's bot.
    let app = api.with_token(Some(&token));
    let repo = app.get("/repos/acme/api").await;
    assert_eq!(repo.status, 200);
    assert_eq!(repo.body["permissions"]["push"], true);
    let created = app
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["creator"]["login"], "sandbox-app-7[bot]");
    assert_eq!(created.body["creator"]["type"], "Bot");
    assert_eq!(sb.deployments("acme/api").len(), 1);
    // Like GitHub: an installation is not a user.
    let user = app.get("/user").await;
    assert_refused(&user, 403, "Resource not accessible by integration");

    // Each exchange issues a new token; the earlier one stays valid.
    let again = exchange(&api, INSTALLATION, &jwt).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["token"], issued.body["token"]);
    assert_eq!(app.get("/repos/acme/api").await.status, 200);

    // A JWT is not a token, and a token is not a JWT.
    let jwt_as_token = api.with_token(Some(&jwt)).get("/repos/acme/api").await;
    assert_refused(&jwt_as_token, 401, "Bad credentials");
    assert_refused(
        &exchange(&api, INSTALLATION, &token).await,
        401,
        UNDECODABLE,
    );
    assert_refused(
        &exchange(&api, INSTALLATION, &sb.token()).await,
        401,
        UNDECODABLE,
    );
}

#[tokio::test]
async fn the_201_has_every_key_of_githubs() {
    let (_sb, api) = with_app(Access::Full).await;
    let issued = exchange(&api, INSTALLATION, &jwt_for(APP, APP_KEY)).await;
    assert_eq!(issued.status, 201);
    assert_has_keys_of(
        "rest/apps/create-installation-access-token.201.openapi.json",
        &issued.body,
    );
    assert_has_keys_of(
        "rest/apps/create-installation-access-token.201.recorded.github3py.json",
        &issued.body,
    );
}

#[tokio::test]
async fn installation_tokens_expire() {
    let (sb, api) = with_app(Access::Full).await;
    let jwt = jwt_for(APP, APP_KEY);
    let lasting = exchange(&api, INSTALLATION, &jwt).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();

    // A zero lifetime: expired on arrival.
    sb.set_installation_token_ttl(Duration::ZERO);
    let dead = exchange(&api, INSTALLATION, &jwt).await;
    assert_eq!(dead.status, 201);
    assert!(expires_at(&dead).timestamp() <= now());
    let dead = dead.body["token"].as_str().unwrap().to_string();
    let refused = api.with_token(Some(&dead)).get("/repos/acme/api").await;
    assert_refused(&refused, 401, "Bad credentials");

    // One second: refused once the second has passed, while the hour-long token issued
    // before still works.
    sb.set_installation_token_ttl(Duration::from_secs(1));
    let short = exchange(&api, INSTALLATION, &jwt).await;
    let until = expires_at(&short);
    assert!(until.timestamp() <= now() + 1);
    let short = api.with_token(Some(short.body["token"].as_str().unwrap()));
    let mut last = 0;
    for _ in 0..500 {
        last = short.get("/repos/acme/api").await.status;
        if last == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last, 401, "a 1-second token still works after 5 s");
    assert!(
        Utc::now() >= until,
        "refused only once expires_at has passed"
    );
    assert_eq!(
        api.with_token(Some(&lasting))
            .get("/repos/acme/api")
            .await
            .status,
        200
    );

    // Back to GitHub's hour.
    sb.set_installation_token_ttl(Duration::from_secs(3600));
    let fresh = exchange(&api, INSTALLATION, &jwt).await;
    assert!(expires_at(&fresh).timestamp() >= now() + 3599);
}

#[tokio::test]
async fn a_read_only_installation_cannot_write() {
    let (sb, api) = with_app(Access::ReadOnly).await;
    let issued = exchange(&api, INSTALLATION, &jwt_for(APP, APP_KEY)).await;
    assert_eq!(issued.body["permissions"]["deployments"], "read");
    let app = api.with_token(issued.body["token"].as_str());
    assert_eq!(app.get("/repos/acme/api/deployments").await.status, 200);
    let write = app
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_refused(&write, 403, "Resource not accessible by integration");
    assert_eq!(
        write.header("x-accepted-github-permissions"),
        Some("deployments=write")
    );
    assert!(sb.deployments("acme/api").is_empty());
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let (sb, api) = with_app(Access::Full).await;
    // The right app id, another key.
    let wrong_key = jwt_for(APP, OTHER_KEY);
    assert_refused(
        &exchange(&api, INSTALLATION, &wrong_key).await,
        401,
        UNDECODABLE,
    );
    // A tampered payload under the original signature.
    let good = jwt_for(APP, APP_KEY);
    let parts: Vec<&str> = good.split('.').collect();
    let forged_claims = jwt_for(8, APP_KEY);
    let forged_payload = forged_claims.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_refused(
        &exchange(&api, INSTALLATION, &tampered).await,
        401,
        UNDECODABLE,
    );
    // Not RS256: an HMAC "signed" with the public key (the classic confusion attack).
    let now = now();
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "iss": APP.to_string(), "iat": now - 60, "exp": now + 540 }),
        &EncodingKey::from_secret(APP_PUBLIC.as_bytes()),
    )
    .unwrap();
    assert_refused(&exchange(&api, INSTALLATION, &hs).await, 401, UNDECODABLE);
    // Not a JWT at all, or nothing.
    assert_refused(
        &exchange(&api, INSTALLATION, "garbage").await,
        401,
        UNDECODABLE,
    );
    let none = api
        .with_token(None)
        .send(
            "POST",
            &format!("/app/installations/{INSTALLATION}/access_tokens"),
            None,
            &[],
        )
        .await;
    assert_refused(&none, 401, UNDECODABLE);
    // Every refusal was recorded, and the good JWT still works.
    assert_eq!(sb.requests().len(), 5);
    assert_eq!(exchange(&api, INSTALLATION, &good).await.status, 201);
}

#[tokio::test]
async fn a_wrong_app_id_is_refused() {
    let (sb, api) = with_app(Access::Full).await;
    // An app id nobody registered.
    let unknown = jwt_for(8, APP_KEY);
    assert_refused(
        &exchange(&api, INSTALLATION, &unknown).await,
        401,
        UNDECODABLE,
    );
    // Another registered App's id, signed with this App's key.
    sb.add_app(9, OTHER_PUBLIC);
    let mixed_up = jwt_for(9, APP_KEY);
    assert_refused(
        &exchange(&api, INSTALLATION, &mixed_up).await,
        401,
        UNDECODABLE,
    );
    // That App, properly signed, asking for an installation of App 7: not found.
    let other_app = jwt_for(9, OTHER_KEY);
    assert_refused(
        &exchange(&api, INSTALLATION, &other_app).await,
        404,
        "Not Found",
    );
    // Its own installation works; `iss` may be a number too.
    sb.add_installation(9, 43, Access::Full);
    let now = now();
    let numeric = sign(
        OTHER_KEY,
        &json!({ "iss": 9, "iat": now - 60, "exp": now + 540 }),
    );
    assert_eq!(exchange(&api, 43, &numeric).await.status, 201);
    // No iss at all.
    let anonymous = sign(APP_KEY, &json!({ "iat": now - 60, "exp": now + 540 }));
    assert_refused(
        &exchange(&api, INSTALLATION, &anonymous).await,
        401,
        UNDECODABLE,
    );
}

#[tokio::test]
async fn an_unknown_installation_is_not_found() {
    let (_sb, api) = with_app(Access::Full).await;
    let jwt = jwt_for(APP, APP_KEY);
    let missing = exchange(&api, 999, &jwt).await;
    assert_refused(&missing, 404, "Not Found");
    assert_eq!(
        missing.body["documentation_url"],
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
    );
    let nonsense = api
        .with_token(Some(&jwt))
        .send("POST", "/app/installations/abc/access_tokens", None, &[])
        .await;
    assert_refused(&nonsense, 404, "Not Found");
    // Other App endpoints are not modelled: 404 once authenticated, 401 before.
    let other = api.with_token(Some(&jwt)).get("/app/installations").await;
    assert_eq!(other.status, 404);
    assert_refused(
        &api.with_token(None).get("/app/installations").await,
        401,
        UNDECODABLE,
    );
}

#[tokio::test]
async fn the_jwt_claims_are_checked_with_githubs_messages() {
    let (_sb, api) = with_app(Access::Full).await;
    let now = now();
    let claims = |iat: Option<i64>, exp: Option<i64>| {
        let mut c = json!({ "iss": APP.to_string() });
        if let Some(iat) = iat {
            c["iat"] = json!(iat);
        }
        if let Some(exp) = exp {
            c["exp"] = json!(exp);
        }
        sign(APP_KEY, &c)
    };
    let cases = [
        // Expired a minute ago (issued 10 minutes ago).
        (claims(Some(now - 600), Some(now - 60)), 401, EXPIRED),
        (claims(Some(now - 60), None), 401, EXPIRED),
        // More than 10 minutes.
        (
            claims(Some(now - 60), Some(now + 600)),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            claims(Some(now), Some(now + 3600)),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        // Issued in the future, beyond clock drift.
        (
            claims(Some(now + 300), Some(now + 540)),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            claims(None, Some(now + 540)),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
    ];
    for (jwt, status, message) in &cases {
        assert_refused(&exchange(&api, INSTALLATION, jwt).await, *status, message);
    }
    // The limits themselves are fine: exactly 10 minutes, and `iat` a little ahead.
    let edge = claims(Some(now - 60), Some(now + 540));
    assert_eq!(exchange(&api, INSTALLATION, &edge).await.status, 201);
    let drift = claims(Some(now + 30), Some(now + 540));
    assert_eq!(exchange(&api, INSTALLATION, &drift).await.status, 201);
}
