//! Signed webhook deliveries, sent like GitHub's Hookshot: one background worker per
//! hook sends deliveries one at a time in creation order, each with a 10 s timeout; the
//! receiver's HTTP status is recorded; nothing is retried on its own. Deliveries can be
//! held (queued) and released in any order, and redelivered with the same GUID.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::Delivery;

/// GitHub gives a receiver 10 seconds to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex HMAC-SHA256 of body with secret>`, the `X-Hub-Signature-256` value.
pub fn signature_256(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any size"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery bound to its hook's URL.
#[derive(Clone)]
struct Job {
    url: String,
    delivery: Delivery,
}

struct Hook {
    id: u64,
    url: String,
    secret: String,
    tx: mpsc::UnboundedSender<Job>,
}

#[derive(Default)]
struct HubState {
    hooks: Vec<Hook>,
    next_hook_id: u64,
    held: bool,
    queue: Vec<Job>,
    /// Every delivery ever created (held or sent), for redelivery.
    created: Vec<Job>,
    /// Every attempt, in the order attempts finished.
    attempts: Vec<Delivery>,
}

pub(crate) struct Hub {
    state: Arc<Mutex<HubState>>,
    client: reqwest::Client,
    shutdown: watch::Receiver<bool>,
}

fn lock(m: &Mutex<HubState>) -> MutexGuard<'_, HubState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    pub fn new(shutdown: watch::Receiver<bool>) -> Hub {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Hub {
            state: Arc::new(Mutex::new(HubState {
                next_hook_id: 1,
                ..Default::default()
            })),
            client,
            shutdown,
        }
    }

    /// Adds a hook and starts its worker; returns the hook id. Must run inside a runtime.
    pub fn add(&self, runtime: &tokio::runtime::Handle, url: &str, secret: &str) -> u64 {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = {
            let mut st = lock(&self.state);
            let id = st.next_hook_id;
            st.next_hook_id += 1;
            st.hooks.push(Hook {
                id,
                url: url.to_string(),
                secret: secret.to_string(),
                tx,
            });
            id
        };
        runtime.spawn(worker(
            rx,
            self.client.clone(),
            self.state.clone(),
            self.shutdown.clone(),
        ));
        id
    }

    /// Every hook: (id, url, whether it has a secret).
    pub fn hooks(&self) -> Vec<(u64, String, bool)> {
        lock(&self.state)
            .hooks
            .iter()
            .map(|h| (h.id, h.url.clone(), !h.secret.is_empty()))
            .collect()
    }

    /// Builds one signed delivery per hook (or for `only_hook`) and queues or sends it.
    pub fn emit(&self, event: &str, body: &[u8], only_hook: Option<u64>) {
        let mut st = lock(&self.state);
        let mut jobs = vec![];
        for hook in st
            .hooks
            .iter()
            .filter(|h| only_hook.is_none_or(|id| h.id == id))
        {
            let id = uuid::Uuid::new_v4().to_string();
            let headers = vec![
                ("Accept".to_string(), "*/*".to_string()),
                ("Content-Type".into(), "application/json".into()),
                ("User-Agent".into(), "GitHub-Hookshot/sandbox".into()),
                ("X-GitHub-Delivery".into(), id.clone()),
                ("X-GitHub-Event".into(), event.to_string()),
                ("X-GitHub-Hook-ID".into(), hook.id.to_string()),
                ("X-GitHub-Hook-Installation-Target-ID".into(), "1".into()),
                (
                    "X-GitHub-Hook-Installation-Target-Type".into(),
                    "repository".into(),
                ),
                (
                    "X-Hub-Signature-256".into(),
                    signature_256(&hook.secret, body),
                ),
            ];
            let delivery = Delivery {
                id,
                event: event.to_string(),
                headers,
                body: body.to_vec(),
                response_status: None,
            };
            jobs.push((
                hook.tx.clone(),
                Job {
                    url: hook.url.clone(),
                    delivery,
                },
            ));
        }
        for (tx, job) in jobs {
            st.created.push(job.clone());
            if st.held {
                st.queue.push(job);
            } else if tx.send(job).is_err() {
                tracing::debug!("webhook worker is gone; delivery dropped");
            }
        }
    }

    pub fn hold(&self, hold: bool) {
        lock(&self.state).held = hold;
    }

    pub fn held(&self) -> Vec<Delivery> {
        lock(&self.state)
            .queue
            .iter()
            .map(|j| j.delivery.clone())
            .collect()
    }

    pub fn attempts(&self) -> Vec<Delivery> {
        lock(&self.state).attempts.clone()
    }

    /// Sends the held deliveries with these ids in this order, one after the other.
    pub async fn release(&self, ids: &[String]) {
        for id in ids {
            let job = {
                let mut st = lock(&self.state);
                match st.queue.iter().position(|j| &j.delivery.id == id) {
                    Some(i) => st.queue.remove(i),
                    None => continue,
                }
            };
            send(&self.client, &self.state, job).await;
        }
    }

    /// Sends a delivery again with the same GUID, headers and body.
    pub async fn redeliver(&self, id: &str) -> Option<u16> {
        let job = lock(&self.state)
            .created
            .iter()
            .find(|j| j.delivery.id == id)
            .cloned()?;
        send(&self.client, &self.state, job).await
    }
}

async fn send(client: &reqwest::Client, state: &Mutex<HubState>, job: Job) -> Option<u16> {
    let mut req = client.post(&job.url).body(job.delivery.body.clone());
    for (k, v) in &job.delivery.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let status = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Read the answer so the connection can be reused; its content is not kept.
            let _ = resp.bytes().await;
            Some(status)
        }
        Err(e) => {
            tracing::debug!(error = %e, url = %job.url, "webhook delivery failed");
            None
        }
    };
    let mut attempt = job.delivery;
    attempt.response_status = status;
    lock(state).attempts.push(attempt);
    status
}

async fn worker(
    mut rx: mpsc::UnboundedReceiver<Job>,
    client: reqwest::Client,
    state: Arc<Mutex<HubState>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => { send(&client, &state, job).await; }
                None => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_githubs_test_vector() {
        // From GitHub's "Validating webhook deliveries".
        assert_eq!(
            signature_256("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
