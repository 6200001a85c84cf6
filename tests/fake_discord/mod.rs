//! A fake Discord on loopback for the real serenity client: REST under `/api/v10`
//! (axum) and a gateway websocket (tokio-tungstenite). It records every REST call,
//! answers the way Discord does (shapes serenity accepts), and lets a test inject
//! gateway events, force a reconnect, or refuse IDENTIFY with a close code.
//!
//! One guild ("Acme") with channels #deploys, #ops and #random, the roles release,
//! oncall and dev (and the bot's own role, "deploybot", with the invite's permissions),
//! and a thread in #deploys that the gateway never announces (so it is only known
//! through REST).
//!
//! For `deploybot doctor`: `GET /users/@me`, `/oauth2/applications/@me` (its `flags`
//! say which privileged intents are on: [`FakeDiscord::set_application_flags`]),
//! `/users/@me/guilds` ([`FakeDiscord::leave_guild`]), the commands registered with
//! `PUT` (`GET /applications/{app}/commands`, `.../guilds/{g}/commands`), and
//! `/guilds/{g}/channels` (with [`FakeDiscord::set_overwrites`]), `/roles`,
//! `/members/{bot}`. [`FakeDiscord::require_token`] makes every REST call check the
//! `Authorization: Bot …` header (401 otherwise, as Discord answers).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
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
/// The bot's managed role (added when it was invited).
pub const BOT_ROLE: u64 = 600_000_000_000_000_004;

/// Application flags: GATEWAY_MESSAGE_CONTENT_LIMITED (the Message Content switch of a
/// bot in fewer than 100 servers), GATEWAY_GUILD_MEMBERS_LIMITED.
pub const FLAG_MESSAGE_CONTENT_LIMITED: u64 = 1 << 19;
pub const FLAG_GUILD_MEMBERS_LIMITED: u64 = 1 << 15;
/// Permission bits.
pub const VIEW_CHANNEL: u64 = 1 << 10;
pub const SEND_MESSAGES: u64 = 1 << 11;
pub const EMBED_LINKS: u64 = 1 << 14;
/// What the README's invite asks for.
pub const INVITE_PERMISSIONS: u64 = 274_877_991_936;

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
    /// Every connection that identified, oldest first (several bot processes, or one
    /// that reconnected): [`FakeDiscord::say_everywhere`] writes to all of them.
    identified: Mutex<Vec<mpsc::UnboundedSender<Ws>>>,
    resumes: AtomicUsize,
    /// Close IDENTIFY with this code (4004 bad token, 4014 disallowed intents).
    refuse_identify: Mutex<Option<u16>>,
    /// The gateway is unreachable: new connections are closed at once.
    offline: std::sync::atomic::AtomicBool,
    /// When set, REST calls must carry `Authorization: Bot <token>`.
    token: Mutex<Option<String>>,
    /// `flags` of `GET /oauth2/applications/@me`.
    app_flags: AtomicU64,
    /// The bot left the guild (`GET /users/@me/guilds` is empty).
    left_guild: std::sync::atomic::AtomicBool,
    /// Registered commands: by "global" or guild id, as the last PUT set them.
    commands: Mutex<HashMap<String, Vec<Value>>>,
    /// Permission overwrites per channel id.
    overwrites: Mutex<HashMap<u64, Vec<Value>>>,
    /// The message a component interaction (or a modal opened from one) came from, by
    /// interaction token: after a deferred update, editing `@original` edits it.
    pressed_on: Mutex<HashMap<String, u64>>,
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
            app_flags: AtomicU64::new(FLAG_MESSAGE_CONTENT_LIMITED),
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
                if s.offline.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
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

    /// Edits (PATCH) of channel message `id` in `channel` whose embed title contains
    /// every one of `parts`: how many times a state was rendered on it.
    pub fn edits_titled(&self, channel: u64, id: u64, parts: &[&str]) -> usize {
        self.calls_to("PATCH", &format!("/channels/{channel}/messages/{id}"))
            .iter()
            .filter(|c| c.path == format!("/channels/{channel}/messages/{id}"))
            .filter(|c| {
                let title = c.body["embeds"][0]["title"].as_str().unwrap_or_default();
                parts.iter().all(|p| title.contains(p))
            })
            .count()
    }

    /// Messages posted in `channel` that mention `user` (the content is the mention)
    /// and whose embed title contains every one of `parts`.
    pub fn mentions_titled(&self, channel: u64, user: u64, parts: &[&str]) -> usize {
        self.calls_to("POST", &format!("/channels/{channel}/messages"))
            .iter()
            .filter(|c| c.body["content"] == json!(format!("<@{user}>")))
            .filter(|c| {
                let title = c.body["embeds"][0]["title"].as_str().unwrap_or_default();
                parts.iter().all(|p| title.contains(p))
            })
            .count()
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

    /// From now on REST calls need `Authorization: Bot {token}`; others get 401.
    pub fn require_token(&self, token: &str) {
        *lock(&self.state.token) = Some(token.to_string());
    }

    /// The application's `flags` (default: [`FLAG_MESSAGE_CONTENT_LIMITED`]); 0 is
    /// "every privileged intent switched off in the Developer Portal".
    pub fn set_application_flags(&self, flags: u64) {
        self.state.app_flags.store(flags, Ordering::SeqCst);
    }

    /// The bot is in no guild any more (for `GET /users/@me/guilds`).
    pub fn leave_guild(&self) {
        self.state.left_guild.store(true, Ordering::SeqCst);
    }

    /// Registers commands by name, as a `PUT` would (`guild` `None`: globally).
    pub fn set_commands(&self, guild: Option<u64>, names: &[&str]) {
        let key = guild.map_or("global".to_string(), |g| g.to_string());
        let commands = names
            .iter()
            .enumerate()
            .map(|(i, n)| command(json!({"name": n, "description": n}), i, APP_ID, guild))
            .collect();
        lock(&self.state.commands).insert(key, commands);
    }

    /// A channel's permission overwrites, e.g. [`FakeDiscord::overwrite`]s.
    pub fn set_overwrites(&self, channel: u64, overwrites: Vec<Value>) {
        lock(&self.state.overwrites).insert(channel, overwrites);
    }

    /// A role (`kind` 0) or member (1) overwrite, as Discord shapes it.
    pub fn overwrite(id: u64, kind: u8, allow: u64, deny: u64) -> Value {
        json!({"id": id.to_string(), "type": kind, "allow": allow.to_string(), "deny": deny.to_string()})
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

    /// The gateway goes away: the live connection is closed and new ones are refused
    /// until [`FakeDiscord::come_back`].
    pub fn go_offline(&self) {
        self.state.offline.store(true, Ordering::SeqCst);
        self.drop_connection();
    }

    pub fn come_back(&self) {
        self.state.offline.store(false, Ordering::SeqCst);
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

    /// [`FakeDiscord::say`] on every connection that ever identified and is still
    /// open, not only the live one: what a stale gateway session of an old leader
    /// could still deliver.
    pub fn say_everywhere(
        &self,
        channel: u64,
        author: (u64, &str),
        roles: &[u64],
        content: &str,
    ) -> u64 {
        let (id, d) = self.message_from(channel, author, roles, None, content);
        let s = self.state.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let frame = json!({"op": 0, "s": s, "t": "MESSAGE_CREATE", "d": d}).to_string();
        let mut conns = lock(&self.state.identified);
        conns.retain(|tx| tx.send(Ws::text(frame.clone())).is_ok());
        assert!(!conns.is_empty(), "no gateway connection to send on");
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
        lock(&self.state.pressed_on).insert(token.clone(), message);
        self.dispatch("INTERACTION_CREATE", d, |e| {
            matches!(e, Event::InteractionCreate(i) if i.interaction.as_message_component().is_some())
        });
        (id, token)
    }

    /// A modal submit (type 5) with one text input, opened from a button on message
    /// `from`; returns (id, token).
    pub fn submit_modal(
        &self,
        channel: u64,
        member: (u64, &str, &[u64]),
        from: u64,
        custom_id: &str,
        input_id: &str,
        value: &str,
    ) -> (u64, String) {
        let (id, token, mut d) = self.interaction_base(5, channel, member);
        if let Some(stored) = self.message(from) {
            d["message"] = full_message(stored);
            lock(&self.state.pressed_on).insert(token.clone(), from);
        }
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
    let mut bot = role(BOT_ROLE, "deploybot", 4);
    bot["managed"] = json!(true);
    bot["permissions"] = json!(INVITE_PERMISSIONS.to_string());
    vec![
        role(GUILD, "@everyone", 0),
        role(RELEASE, "release", 1),
        role(ONCALL, "oncall", 2),
        role(DEV, "dev", 3),
        bot,
    ]
}

/// A registered application command, as Discord answers a PUT or a GET.
fn command(mut c: Value, i: usize, app: u64, guild: Option<u64>) -> Value {
    c["id"] = json!((510_000_000_000_000_000u64 + i as u64).to_string());
    c["application_id"] = json!(app.to_string());
    c["version"] = json!("1");
    c["type"] = json!(1);
    c["default_member_permissions"] = Value::Null;
    if let Some(g) = guild {
        c["guild_id"] = json!(g.to_string());
    }
    c
}

fn bot_user() -> Value {
    json!({
        "id": BOT_ID.to_string(), "username": "deploybot", "discriminator": "0",
        "global_name": null, "avatar": null, "bot": true, "system": false,
        "mfa_enabled": false, "banner": null, "accent_color": null, "locale": "en-US",
        "verified": true, "email": null, "flags": 0, "premium_type": 0, "public_flags": 0,
    })
}

/// `GET /oauth2/applications/@me`.
fn application(flags: u64) -> Value {
    json!({
        "id": APP_ID.to_string(), "name": "deploybot", "icon": null, "description": "",
        "summary": "", "type": null, "bot_public": true, "bot_require_code_grant": false,
        "verify_key": "1e0a356058d627ca38a5c8c9648818061d49e49bd9da9e3ab17d98ad4d6bg2u8",
        "flags": flags, "team": null, "redirect_uris": [], "interactions_endpoint_url": null,
        "owner": FakeDiscord::user(1, "owner"), "bot": bot_user(),
        "approximate_guild_count": 1,
    })
}

/// `GET /users/@me/guilds`: partial guilds, with the bot's permissions there.
fn partial_guild() -> Value {
    json!({
        "id": GUILD.to_string(), "name": "Acme", "icon": null, "banner": null,
        "owner": false, "permissions": INVITE_PERMISSIONS.to_string(), "features": [],
    })
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
                lock(&state.identified).push(tx.clone());
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
    headers: HeaderMap,
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
    if let Some(token) = lock(&state.token).clone() {
        let sent = headers.get("authorization").and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bot {token}").as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "401: Unauthorized", "code": 0})),
            )
                .into_response();
        }
    }
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["users", "@me"]) => Json(bot_user()).into_response(),
        ("GET", ["oauth2", "applications", "@me"]) => {
            Json(application(state.app_flags.load(Ordering::SeqCst))).into_response()
        }
        ("GET", ["users", "@me", "guilds"]) => {
            if state.left_guild.load(Ordering::SeqCst) {
                Json(json!([])).into_response()
            } else {
                Json(json!([partial_guild()])).into_response()
            }
        }
        ("GET", ["applications", _, "commands"]) => {
            let c = lock(&state.commands)
                .get("global")
                .cloned()
                .unwrap_or_default();
            Json(json!(c)).into_response()
        }
        ("GET", ["applications", _, "guilds", g, "commands"]) => {
            if *g != GUILD.to_string() || state.left_guild.load(Ordering::SeqCst) {
                return (
                    StatusCode::FORBIDDEN,
                    Json(json!({"message": "Missing Access", "code": 50001})),
                )
                    .into_response();
            }
            let c = lock(&state.commands).get(*g).cloned().unwrap_or_default();
            Json(json!(c)).into_response()
        }
        ("GET", ["guilds", g, "channels"]) if *g == GUILD.to_string() => {
            let overwrites = lock(&state.overwrites).clone();
            let channels: Vec<Value> = guild()["channels"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    let id: u64 = c["id"].as_str().and_then(|i| i.parse().ok()).unwrap_or(0);
                    if let Some(o) = overwrites.get(&id) {
                        c["permission_overwrites"] = json!(o);
                    }
                    c
                })
                .collect();
            Json(json!(channels)).into_response()
        }
        ("GET", ["guilds", _, "members", u]) if *u == BOT_ID.to_string() => {
            let mut m = FakeDiscord::member(BOT_ID, "deploybot", &[BOT_ROLE], None);
            m["user"] = bot_user();
            Json(m).into_response()
        }
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
            let guild = seg.get(3).and_then(|g| g.parse::<u64>().ok());
            let app: u64 = app.parse().unwrap_or(APP_ID);
            let commands: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, c)| command(c, i, app, guild))
                .collect();
            let key = guild.map_or("global".to_string(), |g| g.to_string());
            lock(&state.commands).insert(key, commands.clone());
            Json(json!(commands)).into_response()
        }
        ("POST", ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        // After a deferred update (type 6), a component's `@original` is its message.
        ("PATCH", ["webhooks", _, token, "messages", "@original"])
            if lock(&state.pressed_on).contains_key(*token) =>
        {
            let message = lock(&state.pressed_on)[*token];
            let channel = lock(&state.messages)
                .get(&message)
                .and_then(|m| m["channel_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            match edit_message(&state, &channel, &message.to_string(), &body) {
                Some(m) => Json(m).into_response(),
                None => not_found("Message"),
            }
        }
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

    #[test]
    fn every_rest_fixture_reads_as_discords_type() {
        use serenity::model::prelude::*;
        let me: CurrentUser = serde_json::from_value(bot_user()).unwrap();
        assert!(me.bot);
        let app: CurrentApplicationInfo =
            serde_json::from_value(application(FLAG_MESSAGE_CONTENT_LIMITED)).unwrap();
        assert_eq!(
            app.flags.map(|f| f.bits()),
            Some(FLAG_MESSAGE_CONTENT_LIMITED)
        );
        let g: GuildInfo = serde_json::from_value(partial_guild()).unwrap();
        assert_eq!(g.id.get(), GUILD);
        let roles: Vec<Role> = serde_json::from_value(json!(roles())).unwrap();
        assert!(roles.iter().any(|r| r.id.get() == BOT_ROLE));
        let c: Command = serde_json::from_value(command(
            json!({"name": "deploy", "description": "d"}),
            0,
            APP_ID,
            Some(GUILD),
        ))
        .unwrap();
        assert_eq!(c.name, "deploy");
        let o: PermissionOverwrite =
            serde_json::from_value(FakeDiscord::overwrite(BOT_ROLE, 0, 0, SEND_MESSAGES)).unwrap();
        assert_eq!(o.deny.bits(), SEND_MESSAGES);
    }
}
