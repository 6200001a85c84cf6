//! A fake Discord on loopback for the real serenity client: REST under `/api/v10`
//! (axum) and a gateway websocket (tokio-tungstenite). It records every REST call,
//! answers the way Discord does (shapes serenity accepts), and lets a test inject
//! gateway events, force a reconnect, or refuse IDENTIFY with a close code.
//!
//! One guild ("Acme") with channels #deploys, #ops and #random, the roles release,
//! oncall and dev, and a thread in #deploys that the gateway never announces (so it is
//! only known through REST).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serenity::model::event::Event;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Ws;

pub const BOT_ID: u64 = 900_000_000_000_000_001;
pub const APP_ID: u64 = 900_000_000_000_000_002;
pub const GUILD: u64 = 800_000_000_000_000_001;
pub const DEPLOYS: u64 = 700_000_000_000_000_001;
pub const OPS: u64 = 700_000_000_000_000_002;
pub const RANDOM: u64 = 700_000_000_000_000_003;
/// A thread in #deploys, absent from GUILD_CREATE: its name comes from REST.
pub const THREAD: u64 = 700_000_000_000_000_004;
pub const RELEASE: u64 = 600_000_000_000_000_001;
pub const ONCALL: u64 = 600_000_000_000_000_002;
pub const DEV: u64 = 600_000_000_000_000_003;

const TIMESTAMP: &str = "2024-05-01T12:00:00.000000+00:00";

/// One REST request the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Without the `/api/v10` prefix: `/channels/1/messages`.
    pub path: String,
    pub body: Value,
    /// The id of the channel message a POST created.
    pub created: Option<u64>,
}

#[derive(Default)]
struct State {
    gateway_url: Mutex<String>,
    calls: Mutex<Vec<Call>>,
    messages: Mutex<HashMap<u64, Value>>,
    next_id: AtomicU64,
    seq: AtomicU64,
    /// The live gateway connection's outbox.
    conn: Mutex<Option<mpsc::UnboundedSender<Ws>>>,
    identifies: AtomicUsize,
    resumes: AtomicUsize,
    /// Close IDENTIFY with this code (4004 bad token, 4014 disallowed intents).
    refuse_identify: Mutex<Option<u16>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
pub struct FakeDiscord {
    state: Arc<State>,
    pub rest_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let state = Arc::new(State {
            next_id: AtomicU64::new(1_000_000_000_000_000_000),
            ..State::default()
        });
        let gw = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gateway");
        let gateway_addr = gw.local_addr().expect("gateway addr");
        *lock(&state.gateway_url) = format!("ws://{gateway_addr}");
        let rest = TcpListener::bind("127.0.0.1:0").await.expect("bind rest");
        let rest_addr = rest.local_addr().expect("rest addr");
        let app = axum::Router::new()
            .fallback(rest_call)
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(rest, app).await;
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = gw.accept().await {
                tokio::spawn(connection(stream, s.clone()));
            }
        });
        FakeDiscord {
            state,
            rest_addr,
            gateway_addr,
        }
    }

    /// For `[discord] proxy_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    pub fn calls_to(&self, method: &str, path_contains: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.contains(path_contains))
            .collect()
    }

    pub fn clear_calls(&self) {
        lock(&self.state.calls).clear();
    }

    /// A message as the fake stores it (after every edit).
    pub fn message(&self, id: u64) -> Option<Value> {
        lock(&self.state.messages).get(&id).cloned()
    }

    /// Every channel message, oldest first, as last edited.
    pub fn messages(&self) -> Vec<(u64, Value)> {
        let mut all: Vec<(u64, Value)> = lock(&self.state.messages)
            .iter()
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    pub fn identifies(&self) -> usize {
        self.state.identifies.load(Ordering::SeqCst)
    }

    pub fn resumes(&self) -> usize {
        self.state.resumes.load(Ordering::SeqCst)
    }

    pub fn refuse_identify(&self, close_code: u16) {
        *lock(&self.state.refuse_identify) = Some(close_code);
    }

    pub fn next_id(&self) -> u64 {
        self.state.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends a dispatch on the live connection, after checking that serenity reads
    /// it as the event `expect` names (a malformed event would be dropped silently).
    pub fn dispatch(&self, t: &str, d: Value, expect: fn(&Event) -> bool) {
        let event: Event = serde_json::from_value(json!({"t": t, "d": d.clone()}))
            .unwrap_or_else(|e| panic!("fixture {t} does not deserialize: {e}\n{d:#}"));
        assert!(
            expect(&event),
            "fixture {t} reads as another event: {event:?}"
        );
        send_dispatch(&self.state, t, d);
    }

    /// Op 7: Discord asks the client to reconnect (and resume).
    pub fn request_reconnect(&self) {
        if let Some(tx) = lock(&self.state.conn).as_ref() {
            let _ = tx.send(Ws::text(json!({"op": 7, "d": null}).to_string()));
        }
    }

    /// Closes the live connection as a network hiccup would (resumable code).
    pub fn drop_connection(&self) {
        if let Some(tx) = lock(&self.state.conn).take() {
            let _ = tx.send(Ws::Close(Some(CloseFrame {
                code: CloseCode::from(4000),
                reason: "fake: unknown error, reconnect".into(),
            })));
        }
    }

    // Fixtures -------------------------------------------------------------------

    pub fn user(id: u64, name: &str) -> Value {
        json!({"id": id.to_string(), "username": name, "discriminator": "0", "global_name": null, "avatar": null})
    }

    pub fn member(id: u64, name: &str, roles: &[u64], nick: Option<&str>) -> Value {
        json!({
            "user": Self::user(id, name),
            "nick": nick,
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": TIMESTAMP,
            "deaf": false, "mute": false, "flags": 0, "pending": false,
        })
    }

    /// A MESSAGE_CREATE from a member, in a guild channel (or thread).
    pub fn message_from(
        &self,
        channel: u64,
        author: (u64, &str),
        roles: &[u64],
        nick: Option<&str>,
        content: &str,
    ) -> (u64, Value) {
        let id = self.next_id();
        let mut member = Self::member(author.0, author.1, roles, nick);
        member.as_object_mut().expect("object").remove("user");
        let d = json!({
            "id": id.to_string(),
            "channel_id": channel.to_string(),
            "guild_id": GUILD.to_string(),
            "author": Self::user(author.0, author.1),
            "member": member,
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": null,
            "tts": false, "mention_everyone": false,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": false, "type": 0,
        });
        (id, d)
    }

    /// Says `content` in `channel` as a member; returns the message id.
    pub fn say(&self, channel: u64, author: (u64, &str), roles: &[u64], content: &str) -> u64 {
        let (id, d) = self.message_from(channel, author, roles, None, content);
        self.dispatch("MESSAGE_CREATE", d, |e| {
            matches!(e, Event::MessageCreate(_))
        });
        id
    }

    fn interaction_base(
        &self,
        kind: u8,
        channel: u64,
        member: (u64, &str, &[u64]),
    ) -> (u64, String, Value) {
        let id = self.next_id();
        let token = format!("itoken-{id}");
        let d = json!({
            "id": id.to_string(),
            "application_id": APP_ID.to_string(),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": GUILD.to_string(),
            "channel_id": channel.to_string(),
            "member": Self::member(member.0, member.1, member.2, None),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10_485_760,
            "authorizing_integration_owners": {},
        });
        (id, token, d)
    }

    /// A slash command (type 2) or an autocomplete request (type 4); returns (id, token).
    pub fn slash(
        &self,
        kind: u8,
        channel: u64,
        member: (u64, &str, &[u64]),
        name: &str,
        options: Value,
    ) -> (u64, String) {
        let (id, token, mut d) = self.interaction_base(kind, channel, member);
        d["data"] =
            json!({"id": "500000000000000001", "name": name, "type": 1, "options": options});
        self.dispatch("INTERACTION_CREATE", d, |e| {
            matches!(e, Event::InteractionCreate(_))
        });
        (id, token)
    }

    /// A press of the button `custom_id` on message `message`; returns (id, token).
    pub fn press(
        &self,
        channel: u64,
        member: (u64, &str, &[u64]),
        message: u64,
        custom_id: &str,
    ) -> (u64, String) {
        let (id, token, mut d) = self.interaction_base(3, channel, member);
        let stored = self.message(message).unwrap_or_else(
            || json!({"id": message.to_string(), "channel_id": channel.to_string()}),
        );
        d["message"] = full_message(stored);
        d["data"] = json!({"custom_id": custom_id, "component_type": 2});
        self.dispatch("INTERACTION_CREATE", d, |e| {
            matches!(e, Event::InteractionCreate(i) if i.interaction.as_message_component().is_some())
        });
        (id, token)
    }

    /// A modal submit (type 5) with one text input; returns (id, token).
    pub fn submit_modal(
        &self,
        channel: u64,
        member: (u64, &str, &[u64]),
        custom_id: &str,
        input_id: &str,
        value: &str,
    ) -> (u64, String) {
        let (id, token, mut d) = self.interaction_base(5, channel, member);
        d["data"] = json!({
            "custom_id": custom_id,
            "components": [{"type": 1, "components": [{"type": 4, "custom_id": input_id, "value": value}]}],
        });
        self.dispatch("INTERACTION_CREATE", d, |e| {
            matches!(e, Event::InteractionCreate(i) if i.interaction.as_modal_submit().is_some())
        });
        (id, token)
    }
}

fn role(id: u64, name: &str, position: u16) -> Value {
    json!({
        "id": id.to_string(), "name": name, "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false, "managed": false, "mentionable": false,
        "permissions": "0", "position": position, "icon": null, "unicode_emoji": null, "flags": 0,
    })
}

fn roles() -> Vec<Value> {
    vec![
        role(GUILD, "@everyone", 0),
        role(RELEASE, "release", 1),
        role(ONCALL, "oncall", 2),
        role(DEV, "dev", 3),
    ]
}

fn text_channel(id: u64, name: &str) -> Value {
    json!({"id": id.to_string(), "type": 0, "guild_id": GUILD.to_string(), "name": name, "position": 0, "parent_id": null, "permission_overwrites": []})
}

fn thread() -> Value {
    json!({
        "id": THREAD.to_string(), "type": 11, "guild_id": GUILD.to_string(),
        "name": "release-2.0", "parent_id": DEPLOYS.to_string(), "owner_id": "1",
        "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "archive_timestamp": TIMESTAMP, "locked": false},
    })
}

fn guild() -> Value {
    json!({
        "id": GUILD.to_string(), "name": "Acme", "icon": null, "splash": null,
        "discovery_splash": null, "owner_id": "1", "afk_channel_id": null, "afk_timeout": 300,
        "verification_level": 0, "default_message_notifications": 0,
        "explicit_content_filter": 0, "roles": roles(), "emojis": [], "features": [],
        "mfa_level": 0, "application_id": null, "system_channel_id": null,
        "system_channel_flags": 0, "rules_channel_id": null, "vanity_url_code": null,
        "description": null, "banner": null, "premium_tier": 0, "preferred_locale": "en-US",
        "public_updates_channel_id": null, "nsfw_level": 0, "stickers": [],
        "premium_progress_bar_enabled": false, "joined_at": TIMESTAMP, "large": false,
        "member_count": 3, "voice_states": [], "members": [],
        "channels": [
            text_channel(DEPLOYS, "deploys"),
            text_channel(OPS, "ops"),
            text_channel(RANDOM, "random"),
        ],
        "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
    })
}

fn ready(gateway_url: &str) -> Value {
    json!({
        "v": 10,
        "user": {"id": BOT_ID.to_string(), "username": "deploybot", "discriminator": "0", "bot": true, "avatar": null},
        "guilds": [{"id": GUILD.to_string(), "unavailable": true}],
        "session_id": "fake-session-1",
        "resume_gateway_url": gateway_url,
        "application": {"id": APP_ID.to_string(), "flags": 0},
    })
}

/// A stored message, completed with the fields serenity requires.
fn full_message(mut m: Value) -> Value {
    let defaults = json!({
        "author": {"id": BOT_ID.to_string(), "username": "deploybot", "discriminator": "0", "bot": true},
        "content": "", "timestamp": TIMESTAMP, "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "components": [], "pinned": false, "type": 0,
    });
    if let (Some(m), Some(d)) = (m.as_object_mut(), defaults.as_object()) {
        for (k, v) in d {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    m
}

fn send_dispatch(state: &State, t: &str, d: Value) {
    let s = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let frame = json!({"op": 0, "s": s, "t": t, "d": d}).to_string();
    match lock(&state.conn).as_ref() {
        Some(tx) => {
            let _ = tx.send(Ws::text(frame));
        }
        None => panic!("no gateway connection to send {t} on"),
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Ws>();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let _ = tx.send(Ws::text(
        json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": 41250}}).to_string(),
    ));
    // Keep reading after a Close so that the close handshake completes.
    while let Some(Ok(frame)) = source.next().await {
        let Ws::Text(text) = frame else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match v["op"].as_u64() {
            Some(1) => {
                let _ = tx.send(Ws::text(json!({"op": 11}).to_string()));
            }
            Some(2) => {
                if let Some(code) = *lock(&state.refuse_identify) {
                    let _ = tx.send(Ws::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: "fake: refused".into(),
                    })));
                    continue;
                }
                state.identifies.fetch_add(1, Ordering::SeqCst);
                *lock(&state.conn) = Some(tx.clone());
                let url = lock(&state.gateway_url).clone();
                send_dispatch(&state, "READY", ready(&url));
                send_dispatch(&state, "GUILD_CREATE", guild());
            }
            Some(6) => {
                state.resumes.fetch_add(1, Ordering::SeqCst);
                *lock(&state.conn) = Some(tx.clone());
                send_dispatch(&state, "RESUMED", json!({}));
            }
            _ => {}
        }
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": 10003, "message": format!("Unknown {what}")})),
    )
        .into_response()
}

fn new_message(state: &State, channel: &str, body: &Value) -> Value {
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let mut m = body.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("allowed_mentions");
        o.remove("flags");
        o.insert("id".into(), json!(id.to_string()));
        o.insert("channel_id".into(), json!(channel));
    }
    let m = full_message(m);
    lock(&state.messages).insert(id, m.clone());
    m
}

fn edit_message(state: &State, channel: &str, id: &str, body: &Value) -> Option<Value> {
    let id: u64 = id.parse().ok()?;
    let mut messages = lock(&state.messages);
    let m = messages.get_mut(&id)?;
    if m["channel_id"] != json!(channel) {
        return None;
    }
    if let (Some(m), Some(b)) = (m.as_object_mut(), body.as_object()) {
        for (k, v) in b {
            if k != "allowed_mentions" {
                m.insert(k.clone(), v.clone());
            }
        }
        m.insert("edited_timestamp".into(), json!(TIMESTAMP));
    }
    Some(m.clone())
}

async fn rest_call(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(uri.path())
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let record = |created: Option<u64>| {
        lock(&state.calls).push(Call {
            method: method.to_string(),
            path: path.clone(),
            body: body.clone(),
            created,
        });
    };
    if let ("POST", ["channels", c, "messages"]) = (method.as_str(), seg.as_slice()) {
        // Recorded with the id it gets, atomically with storing the message.
        let m = new_message(&state, c, &body);
        record(m["id"].as_str().and_then(|id| id.parse().ok()));
        return Json(m).into_response();
    }
    record(None);
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["gateway"]) => Json(json!({"url": *lock(&state.gateway_url)})).into_response(),
        ("POST", ["channels", c, "messages"]) => {
            Json(new_message(&state, c, &body)).into_response()
        }
        ("PATCH", ["channels", c, "messages", m]) => match edit_message(&state, c, m, &body) {
            Some(m) => Json(m).into_response(),
            None => not_found("Message"),
        },
        ("GET", ["channels", c]) => {
            if *c == THREAD.to_string() {
                Json(thread()).into_response()
            } else if let Some(ch) = guild()["channels"]
                .as_array()
                .and_then(|a| a.iter().find(|ch| ch["id"] == json!(c)).cloned())
            {
                Json(ch).into_response()
            } else {
                not_found("Channel")
            }
        }
        ("GET", ["guilds", _, "roles"]) => Json(json!(roles())).into_response(),
        ("GET", ["guilds", _, "members", u]) => Json(FakeDiscord::member(
            u.parse().unwrap_or(1),
            "someone",
            &[],
            None,
        ))
        .into_response(),
        ("PUT", ["applications", app, "commands"])
        | ("PUT", ["applications", app, "guilds", _, "commands"]) => {
            let commands: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c["id"] = json!((510_000_000_000_000_000u64 + i as u64).to_string());
                    c["application_id"] = json!(app);
                    c["version"] = json!("1");
                    c["type"] = json!(1);
                    c["default_member_permissions"] = Value::Null;
                    c
                })
                .collect();
            Json(json!(commands)).into_response()
        }
        ("POST", ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        ("PATCH", ["webhooks", _, _, "messages", _]) | ("POST", ["webhooks", _, _]) => {
            let mut msg = body.clone();
            msg["id"] = json!(state.next_id.fetch_add(1, Ordering::SeqCst).to_string());
            msg["channel_id"] = json!(DEPLOYS.to_string());
            msg["webhook_id"] = json!(APP_ID.to_string());
            if let Some(o) = msg.as_object_mut() {
                o.remove("allowed_mentions");
            }
            Json(full_message(msg)).into_response()
        }
        _ => not_found("route"),
    }
}

#[cfg(test)]
mod fixtures {
    use super::*;

    #[test]
    fn every_gateway_fixture_reads_as_its_event() {
        let g: Event = serde_json::from_value(json!({"t": "GUILD_CREATE", "d": guild()})).unwrap();
        assert!(matches!(g, Event::GuildCreate(_)), "{g:?}");
        let r: Event =
            serde_json::from_value(json!({"t": "READY", "d": ready("ws://127.0.0.1:1")})).unwrap();
        assert!(matches!(r, Event::Ready(_)), "{r:?}");
        let t: serenity::model::channel::GuildChannel = serde_json::from_value(thread()).unwrap();
        assert_eq!(t.parent_id.map(|p| p.get()), Some(DEPLOYS));
    }
}
