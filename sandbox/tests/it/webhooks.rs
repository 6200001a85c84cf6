//! Signed deliveries, holding and releasing out of order, redelivery.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::common::*;

/// Verifies like a receiver would, independently of the sandbox's signer.
fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[test]
fn signer_matches_githubs_test_vector() {
    let v = fixture("webhooks/signature/hmac-sha256-test-vector.github-docs.json");
    let (secret, payload) = (
        v["secret"].as_str().unwrap(),
        v["payload"].as_str().unwrap(),
    );
    assert_eq!(
        sandbox::signature_256(secret, payload.as_bytes()),
        v["x_hub_signature_256"].as_str().unwrap()
    );
    assert!(verify(
        secret,
        payload.as_bytes(),
        v["x_hub_signature_256"].as_str().unwrap()
    ));
    assert!(!verify(
        "wrong",
        payload.as_bytes(),
        v["x_hub_signature_256"].as_str().unwrap()
    ));
}

#[tokio::test]
async fn ping_then_signed_deployment_events() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "It's a Secret to Everybody");
    assert!(poll(WAIT, || rx.events() == ["ping"]).await);

    let d = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "environment": "staging"}),
        )
        .await
        .body;
    let id = d["id"].as_u64().unwrap();
    let path = format!("/repos/acme/api/deployments/{id}/statuses");
    for state in ["queued", "in_progress", "success"] {
        assert_eq!(api.post(&path, json!({"state": state})).await.status, 201);
    }
    assert_eq!(
        api.post(&path, json!({"state": "inactive"})).await.status,
        201
    );
    assert!(
        poll(WAIT, || rx.events().len() == 5).await,
        "{:?}",
        rx.events()
    );
    assert_eq!(
        rx.events(),
        [
            "ping",
            "deployment",
            "deployment_status",
            "deployment_status",
            "deployment_status"
        ],
        "no webhook for inactive"
    );
    let states: Vec<String> = rx
        .of("deployment_status")
        .iter()
        .map(|r| {
            r.json()["deployment_status"]["state"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        states,
        ["queued", "in_progress", "success"],
        "in creation order"
    );

    let mut ids = std::collections::HashSet::new();
    for r in rx.received() {
        assert!(
            verify(
                "It's a Secret to Everybody",
                &r.body,
                r.header("x-hub-signature-256")
            ),
            "signature of {}",
            r.event()
        );
        assert_eq!(r.header("user-agent"), "GitHub-Hookshot/sandbox");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(!r.header("x-github-hook-id").is_empty());
        assert!(
            ids.insert(r.header("x-github-delivery").to_string()),
            "delivery ids are unique"
        );
        assert_eq!(r.header("x-github-delivery").len(), 36, "a uuid");
    }
    let deliveries = sb.deliveries();
    assert_eq!(deliveries.len(), 5);
    assert!(deliveries.iter().all(|d| d.response_status == Some(200)));
    assert_eq!(deliveries[1].event, "deployment");
    assert_eq!(deliveries[1].json()["deployment"]["id"], id);
}

#[tokio::test]
async fn held_deliveries_are_released_in_the_given_order() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s");
    assert!(poll(WAIT, || rx.received().len() == 1).await);
    sb.hold_deliveries(true);
    let d = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await
        .body;
    let id = d["id"].as_u64().unwrap();
    for state in ["in_progress", "success"] {
        api.post(
            &format!("/repos/acme/api/deployments/{id}/statuses"),
            json!({"state": state}),
        )
        .await;
    }
    let held = sb.held_deliveries();
    assert_eq!(
        held.iter().map(|d| d.event.as_str()).collect::<Vec<_>>(),
        ["deployment", "deployment_status", "deployment_status"]
    );
    assert!(held.iter().all(|d| d.response_status.is_none()));
    assert_eq!(rx.received().len(), 1, "nothing is sent while held");

    let reversed: Vec<String> = held.iter().rev().map(|d| d.id.clone()).collect();
    sb.release(&reversed[..2]).await;
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].json()["deployment_status"]["state"], "success");
    assert_eq!(got[2].json()["deployment_status"]["state"], "in_progress");
    assert_eq!(sb.held_deliveries().len(), 1);
    assert_eq!(got[2].header("x-github-delivery"), reversed[1]);

    sb.hold_deliveries(false);
    assert_eq!(sb.held_deliveries().len(), 1, "un-holding does not flush");
    sb.release(&reversed[2..]).await;
    assert_eq!(rx.events()[3], "deployment");
    assert!(sb.held_deliveries().is_empty());

    api.post(
        &format!("/repos/acme/api/deployments/{id}/statuses"),
        json!({"state": "failure"}),
    )
    .await;
    assert!(
        poll(WAIT, || rx.received().len() == 5).await,
        "sent directly once no longer held"
    );
}

#[tokio::test]
async fn redelivery_keeps_the_delivery_id_and_body() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    rx.answer(500);
    sb.add_webhook(&rx.url, "s");
    api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert!(poll(WAIT, || sb.deliveries().len() == 2).await);
    let first = sb.deliveries()[1].clone();
    assert_eq!(
        (first.event.as_str(), first.response_status),
        ("deployment", Some(500))
    );

    // GitHub does not retry on its own.
    let quiet = poll(std::time::Duration::from_millis(200), || {
        rx.received().len() > 2
    })
    .await;
    assert!(!quiet, "no automatic retry");

    rx.answer(202);
    assert_eq!(sb.redeliver(&first.id).await, Some(202));
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].header("x-github-delivery"), first.id);
    assert_eq!(got[2].body.as_ref(), first.body.as_slice());
    assert_eq!(
        got[2].header("x-hub-signature-256"),
        got[1].header("x-hub-signature-256")
    );
    let attempts: Vec<_> = sb
        .deliveries()
        .into_iter()
        .filter(|d| d.id == first.id)
        .map(|d| d.response_status)
        .collect();
    assert_eq!(attempts, [Some(500), Some(202)]);
    assert_eq!(sb.redeliver("no-such-delivery").await, None);
}

#[tokio::test]
async fn unreachable_receivers_are_recorded_without_status() {
    let (sb, api) = setup().await;
    // A port nobody listens on: bind, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    sb.add_webhook(&format!("http://127.0.0.1:{port}/hook"), "s");
    api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert!(poll(WAIT, || sb.deliveries().len() == 2).await);
    assert!(sb.deliveries().iter().all(|d| d.response_status.is_none()));
}

#[tokio::test]
async fn every_hook_gets_its_own_signed_copy() {
    let (sb, api) = setup().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    sb.add_webhook(&a.url, "secret-a");
    sb.add_webhook(&b.url, "secret-b");
    api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert!(poll(WAIT, || a.received().len() == 2 && b.received().len() == 2).await);
    let (da, db) = (&a.of("deployment")[0], &b.of("deployment")[0]);
    assert!(verify(
        "secret-a",
        &da.body,
        da.header("x-hub-signature-256")
    ));
    assert!(verify(
        "secret-b",
        &db.body,
        db.header("x-hub-signature-256")
    ));
    assert_ne!(
        da.header("x-github-delivery"),
        db.header("x-github-delivery")
    );
    assert_ne!(da.header("x-github-hook-id"), db.header("x-github-hook-id"));
}
