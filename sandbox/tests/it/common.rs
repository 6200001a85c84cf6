//! Helpers: a small GitHub client, fixture loading, key-set comparison, a webhook
//! receiver on loopback, and bounded polling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::header::HeaderMap as ReqHeaders;
use sandbox::Sandbox;
use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/github/");

pub fn fixture(rel: &str) -> Value {
    let path = format!("{FIXTURES}{rel}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// Free-form maps whose keys are data, not schema.
const FREE_FORM: &[&str] = &["payload", "permissions", "custom_properties", "config"];

/// Every key path of `expected` (recursively into objects, and into the first element of
/// arrays when both sides have one) that `actual` lacks.
pub fn missing_keys(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = vec![];
    walk(expected, actual, "", &mut out);
    out
}

fn walk(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    None => out.push(p),
                    Some(_) if FREE_FORM.contains(&k.as_str()) => {}
                    Some(av) => walk(ev, av, &p, out),
                }
            }
        }
        (Value::Object(_), other) if !other.is_null() => {
            out.push(format!("{path} (not an object)"))
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(ev), Some(av)) = (e.first(), a.first()) {
                walk(ev, av, &format!("{path}/0"), out);
            }
        }
        _ => {}
    }
}

#[track_caller]
pub fn assert_has_keys_of(fixture_rel: &str, actual: &Value) {
    let missing = missing_keys(&fixture(fixture_rel), actual);
    assert!(
        missing.is_empty(),
        "keys of {fixture_rel} missing from the sandbox's JSON: {missing:?}\n{actual:#}"
    );
}

/// A minimal GitHub REST client.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub client: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: ReqHeaders,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn remaining(&self) -> u64 {
        self.header("x-ratelimit-remaining")
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    }
}

impl Api {
    pub fn new(sb: &Sandbox) -> Api {
        Api {
            base: sb.url(),
            token: Some(sb.token()),
            client: reqwest::Client::new(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "sandbox-tests");
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(&body), &[]).await
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub async fn poll<F: FnMut() -> bool>(limit: Duration, mut cond: F) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const WAIT: Duration = Duration::from_secs(10);

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn event(&self) -> &str {
        self.header("x-github-event")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

/// A webhook receiver on loopback that records every request and answers `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.lock().unwrap().push(Received { headers, body });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/webhook"),
            got,
            status,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.event().to_string())
            .collect()
    }

    pub fn of(&self, event: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.event() == event)
            .collect()
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// A sandbox with `acme/api` (default branch `main`) and a token-carrying client.
pub async fn setup() -> (Sandbox, Api) {
    let sb = Sandbox::start().await.expect("sandbox starts");
    sb.create_repo("acme/api", "main");
    let api = Api::new(&sb);
    (sb, api)
}
