//! The sandbox's HTTP face (`sandbox/src/http.rs`) on any request, answered in memory
//! by `Sandbox::answer` (the server's own handler, without a socket): recording,
//! authentication (tokens and App JWTs), rate budgets, routing, percent-decoding,
//! pagination, ETags, JSON bodies, the web pages.
//!
//! One sandbox, seeded with two repositories, branches, a tag, statuses, check runs, a
//! deployment and tokens of every kind, answers a few thousand inputs and is then
//! replaced, so that what inputs create (deployments, statuses) stays small. Budgets are
//! refilled before every request.
//!
//! Input layout (see `seed_corpus.py`):
//!
//! ```text
//! byte 0   method: GET POST HEAD PATCH PUT DELETE OPTIONS, or (7) a name from the input
//! byte 1   credential: none, the full token, Bearer full token, read-only, fine-grained
//!          on acme/web only, classic without scopes, an unknown token, the App's JWT,
//!          an installation token, or (9) a header text from the input;
//!          bit 7 set: the credential's budget is spent
//! byte 2   number of path segments (mod 9), then per segment: a byte < 0xC0 picks a
//!          word (`repos`, `acme`, `api`, the main sha…), else [len, bytes] of text
//! byte     query: 0 none, else [len, bytes] of text
//! byte     number of extra headers (mod 4), each: a name byte then [len, bytes]
//! rest     the body
//! ```
//!
//! Never panics; every API answer with a JSON content type is JSON.
#![no_main]

use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use sandbox::{Access, Sandbox, TokenSpec, DEFAULT_TOKEN};

/// Inputs answered by one sandbox before it is replaced by a fresh one.
const INPUTS_PER_SANDBOX: u32 = 5000;

const APP_ID: u64 = 4242;
const INSTALLATION_ID: u64 = 77;
const APP_KEY: &str = include_str!("../../sandbox/tests/it/keys/test-app.private-key.pem");
const APP_PUBLIC: &str = include_str!("../../sandbox/tests/it/keys/test-app.public.pem");

const METHODS: &[&str] = &["GET", "POST", "HEAD", "PATCH", "PUT", "DELETE", "OPTIONS"];

/// Path words; `{sha}` and `{short}` stand for the main branch's sha and its prefix.
const WORDS: &[&str] = &[
    "repos",
    "acme",
    "api",
    "web",
    "ACME",
    "nobody",
    "deployments",
    "statuses",
    "status",
    "commits",
    "check-runs",
    "branches",
    "main",
    "feature",
    "x",
    "feature%2Fx",
    "v1.0",
    "compare",
    "main...feature/x",
    "main..v1.0",
    "v1.0...{sha}",
    "hooks",
    "rate_limit",
    "user",
    "users",
    "sandbox-user",
    "app",
    "installations",
    "access_tokens",
    "hook",
    "config",
    "actions",
    "runs",
    "1",
    "2",
    "0",
    "77",
    "-1",
    "18446744073709551616",
    "{sha}",
    "{short}",
    "%",
    "%zz",
    "..",
    "",
];

const HEADER_NAMES: &[&str] = &[
    "if-none-match",
    "accept",
    "content-type",
    "x-github-api-version",
    "user-agent",
    "authorization",
    "content-length",
    "x-custom",
];

struct Fixture {
    sandbox: Sandbox,
    sha: String,
    jwt: String,
    installation_token: String,
    answered: u32,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn jwt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(APP_KEY.as_bytes()).expect("test key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &serde_json::json!({"iss": APP_ID.to_string(), "iat": now - 60, "exp": now + 9 * 60}),
        &key,
    )
    .expect("sign")
}

async fn body_of(resp: axum::response::Response) -> (u16, Option<String>, Vec<u8>) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("an in-memory body")
        .to_vec();
    (status, content_type, body)
}

async fn fresh() -> Fixture {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let sha = sandbox.create_repo("acme/api", "main");
    sandbox.commit("acme/api", "main", "second");
    sandbox.create_branch("acme/api", "feature/x", "main");
    sandbox.commit("acme/api", "feature/x", "on the branch");
    sandbox.create_tag("acme/api", "v1.0", "main");
    sandbox.set_status("acme/api", "main", "ci/build", "success");
    sandbox.set_status("acme/api", "feature/x", "ci/build", "failure");
    sandbox.set_check_run("acme/api", "main", "test", "completed", Some("success"));
    sandbox.create_repo("acme/web", "main");
    sandbox.add_repo_hook(
        "acme/api",
        sandbox::RepoHook::new("http://127.0.0.1:1/hook"),
    );
    sandbox.add_token("read-token", Access::ReadOnly);
    sandbox.add_token_with(
        "narrow-token",
        TokenSpec::fine_grained(Access::Full).repositories(&["acme/web"]),
    );
    sandbox.add_token_with("noscope-token", TokenSpec::classic(&[]));
    sandbox.add_app(APP_ID, APP_PUBLIC);
    sandbox.add_installation(APP_ID, INSTALLATION_ID, Access::Full);
    let jwt = jwt();
    let (status, _, body) = body_of(
        sandbox
            .answer(
                Request::post(format!(
                    "/app/installations/{INSTALLATION_ID}/access_tokens"
                ))
                .header("authorization", format!("Bearer {jwt}"))
                .body(Body::from("{}"))
                .unwrap(),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let installation_token = token["token"].as_str().unwrap().to_string();
    let (status, _, body) = body_of(
        sandbox
            .answer(
                Request::post("/repos/acme/api/deployments")
                    .header("authorization", format!("token {DEFAULT_TOKEN}"))
                    .body(Body::from(
                        r#"{"ref":"main","environment":"staging","required_contexts":[]}"#,
                    ))
                    .unwrap(),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    sandbox.create_deployment_status("acme/api", 1, sandbox::NewStatus::new("success"));
    sandbox.clear_requests();
    Fixture {
        sandbox,
        sha,
        jwt,
        installation_token,
        answered: 0,
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn text(&mut self) -> String {
        let n = (self.byte() as usize).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8_lossy(taken).into_owned()
    }
}

/// Characters `http::Uri` accepts in a path or query; others are percent-encoded (a
/// real client has to, and hyper refuses the request before the handler otherwise).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'#' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);
    let mut guard = FIXTURE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    if guard
        .as_ref()
        .is_none_or(|f| f.answered >= INPUTS_PER_SANDBOX)
    {
        if let Some(old) = guard.take() {
            old.sandbox.shutdown();
        }
        *guard = Some(rt.block_on(fresh()));
    }
    let fx = guard.as_mut().unwrap();
    fx.answered += 1;

    let mut input = Input(data);
    let method_choice = input.byte() as usize % (METHODS.len() + 1);
    let method_name = match METHODS.get(method_choice) {
        Some(m) => m.to_string(),
        None => input.text(),
    };
    let Ok(method) = Method::from_bytes(method_name.as_bytes()) else {
        return;
    };

    let credential = input.byte();
    let spent = credential & 0x80 != 0;
    let (auth, token): (Option<String>, Option<String>) = match credential % 10 {
        0 => (None, None),
        1 => (
            Some(format!("token {DEFAULT_TOKEN}")),
            Some(DEFAULT_TOKEN.into()),
        ),
        2 => (
            Some(format!("Bearer {DEFAULT_TOKEN}")),
            Some(DEFAULT_TOKEN.into()),
        ),
        3 => (Some("token read-token".into()), Some("read-token".into())),
        4 => (
            Some("token narrow-token".into()),
            Some("narrow-token".into()),
        ),
        5 => (
            Some("token noscope-token".into()),
            Some("noscope-token".into()),
        ),
        6 => (Some("token unknown".into()), None),
        7 => (
            Some(format!("Bearer {}", fx.jwt)),
            Some(format!("\0app:{APP_ID}")),
        ),
        8 => (
            Some(format!("token {}", fx.installation_token)),
            Some(fx.installation_token.clone()),
        ),
        _ => (Some(input.text()), None),
    };
    for t in [
        DEFAULT_TOKEN,
        "read-token",
        "narrow-token",
        "noscope-token",
        fx.installation_token.as_str(),
        &format!("\0app:{APP_ID}"),
    ] {
        fx.sandbox.set_rate_limit(t, 5000);
    }
    if spent {
        if let Some(t) = &token {
            fx.sandbox.set_rate_limit_remaining(t, 0);
        }
    }

    let segments = input.byte() % 9;
    let mut path = String::new();
    for _ in 0..segments {
        let b = input.byte();
        let segment = if b < 0xC0 {
            WORDS[b as usize % WORDS.len()]
                .replace("{sha}", &fx.sha)
                .replace("{short}", &fx.sha[..7])
        } else {
            encode(&input.text())
        };
        path.push('/');
        path.push_str(&segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    let uri = match input.byte() {
        0 => path.clone(),
        _ => format!("{path}?{}", encode(&input.text())),
    };

    let mut builder = Request::builder().method(method.clone()).uri(&uri);
    if let Some(auth) = &auth {
        builder = builder.header("authorization", auth.as_str());
    }
    for _ in 0..input.byte() % 4 {
        let name = HEADER_NAMES[input.byte() as usize % HEADER_NAMES.len()];
        let value = input.text();
        builder = builder.header(name, value.as_str());
    }
    let Ok(request) = builder.body(Body::from(input.0.to_vec())) else {
        // Not a request hyper would hand to a handler (a header value with a newline…).
        return;
    };

    let (status, content_type, body) =
        rt.block_on(async { body_of(fx.sandbox.answer(request).await).await });
    assert!((100..600).contains(&status), "status {status}");
    if content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"))
        && method != Method::HEAD
    {
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
            panic!(
                "{method} {uri}: {status} with a JSON content type, not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    let recorded = fx.sandbox.requests();
    assert_eq!(
        recorded.len(),
        1,
        "{method} {uri}: recorded {}",
        recorded.len()
    );
    fx.sandbox.clear_requests();
});
