//! [`Chat`] for Discord: where each message the core says goes.
//!
//! Everything the core posts is a regular channel message (in the thread, when the
//! command came from one), written with the bot token. Only those stay editable for as
//! long as a deployment runs: an interaction's token dies after 15 minutes, and a
//! message posted through it cannot be edited with the bot token.
//!
//! The one exception is a command that came from an interaction (slash command,
//! button, modal) while it is being handled: what is said *to the person* — a refusal,
//! or `/help` — is answered ephemerally through the interaction, so that only they
//! see it. The conversation carries the interaction's id, never its token: the token
//! stays in memory here, and conversations are stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serenity::all::Builder;
use serenity::builder::CreateInteractionResponseFollowup;
use serenity::cache::Cache;
use serenity::http::Http;
use serenity::model::id::{ChannelId, GuildId, MessageId as DiscordMessageId};

use super::buttons::Buttons;
use super::people;
use super::render::{render, Rendered};
use crate::chat::{Chat, ChatError, Conversation, Message, MessageId, Tone};

/// Interaction tokens are valid for 15 minutes; stop using them a little earlier.
const TOKEN_LIFE: Duration = Duration::from_secs(14 * 60);
/// Ephemeral message ids look like `i:<interaction id>:<message id or @original>`.
const EPHEMERAL: &str = "i:";

/// How an interaction was acknowledged within Discord's 3 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Deferred with an ephemeral "thinking…" (slash commands): the first private
    /// answer replaces it, else it is replaced by a pointer to the channel answer.
    Thinking,
    /// Deferred silently (buttons, modals): private answers are follow-ups.
    Silent,
}

/// An interaction being answered.
pub struct Pending {
    token: String,
    guild: Option<GuildId>,
    created: Instant,
    ack: Ack,
    /// Every answer is private (e.g. `/help`).
    private: bool,
    state: tokio::sync::Mutex<PendingState>,
}

#[derive(Default)]
struct PendingState {
    /// The "thinking…" message was replaced by an answer.
    original_used: bool,
    /// The command has been handled: later messages (deployment updates) go to the channel.
    done: bool,
    /// Channel messages posted while handling it.
    posted: Vec<(ChannelId, DiscordMessageId)>,
}

/// How many messages with used buttons are remembered to keep them greyed out when
/// the core edits them again (a press after that is still answered as used).
const USED_REMEMBERED: usize = 4096;

/// What the adapter shares between the event handler and [`DiscordChat`].
#[derive(Default)]
pub struct Shared {
    pub buttons: Buttons,
    interactions: Mutex<HashMap<String, Arc<Pending>>>,
    used: Mutex<VecDeque<String>>,
}

impl Shared {
    /// The buttons on `message` were used: later edits show them greyed out.
    pub fn used(&self, message: &str) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if !used.iter().any(|m| m == message) {
            if used.len() >= USED_REMEMBERED {
                used.pop_front();
            }
            used.push_back(message.to_string());
        }
    }

    /// The press of `message`'s buttons changed nothing: they are usable again.
    pub fn unused(&self, message: &str) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|m| m != message);
    }

    fn is_used(&self, message: &str) -> bool {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.iter().any(|m| m == message)
    }

    /// Remembers an acknowledged interaction; returns the handle for its conversation.
    pub fn begin(
        &self,
        id: String,
        token: String,
        guild: Option<GuildId>,
        ack: Ack,
        private: bool,
    ) -> String {
        let mut map = self.interactions.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < TOKEN_LIFE);
        map.insert(
            id.clone(),
            Arc::new(Pending {
                token,
                guild,
                created: Instant::now(),
                ack,
                private,
                state: tokio::sync::Mutex::new(PendingState::default()),
            }),
        );
        id
    }

    fn get(&self, handle: &str) -> Option<Arc<Pending>> {
        let map = self.interactions.lock().unwrap_or_else(|e| e.into_inner());
        map.get(handle)
            .filter(|p| p.created.elapsed() < TOKEN_LIFE)
            .cloned()
    }

    /// The command is handled. A slash command whose "thinking…" is still showing gets
    /// a short pointer to where the answer went.
    pub async fn finish(&self, http: &Http, handle: &str) {
        let Some(p) = self.get(handle) else {
            return;
        };
        let mut state = p.state.lock().await;
        state.done = true;
        if p.ack != Ack::Thinking || state.original_used {
            return;
        }
        state.original_used = true;
        let text = match (state.posted.first(), p.guild) {
            (Some((channel, message)), Some(guild)) => format!(
                "↪ answered in the channel: https://discord.com/channels/{guild}/{channel}/{message}"
            ),
            (Some(_), None) => "↪ answered in the channel".to_string(),
            (None, _) => "✅ done".to_string(),
        };
        let edit = serenity::builder::EditInteractionResponse::new()
            .content(text)
            .allowed_mentions(serenity::builder::CreateAllowedMentions::new());
        if let Err(e) = edit.execute(http, &p.token).await {
            tracing::warn!(error = %e, "could not update the interaction's acknowledgement");
        }
    }
}

/// The core's chat port, on Discord.
pub struct DiscordChat {
    http: Arc<Http>,
    /// The running gateway client's cache (an empty one on a standby: names are then
    /// read over REST).
    cache: std::sync::RwLock<Arc<Cache>>,
    shared: Arc<Shared>,
}

fn failed(what: &str, e: serenity::Error) -> ChatError {
    // 404 (Unknown Message / Unknown Webhook): the message is gone, post a new one.
    let gone = matches!(
        &e,
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))
            if r.status_code.as_u16() == 404
    );
    let message = format!("Discord: {what}: {e}");
    if gone {
        ChatError::gone(message)
    } else {
        ChatError::new(message)
    }
}

impl DiscordChat {
    pub fn new(http: Arc<Http>, cache: Arc<Cache>, shared: Arc<Shared>) -> DiscordChat {
        DiscordChat {
            http,
            cache: std::sync::RwLock::new(cache),
            shared,
        }
    }

    /// The cache of the gateway client that runs now.
    pub fn set_cache(&self, cache: Arc<Cache>) {
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = cache;
    }

    fn cache(&self) -> Arc<Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The REST client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn http_arc(&self) -> Arc<Http> {
        self.http.clone()
    }

    /// The channel (or thread) to write in.
    fn channel(&self, to: &Conversation) -> Result<ChannelId, ChatError> {
        let target = to.thread.as_deref().unwrap_or(&to.channel);
        people::channel_by_name(&self.cache(), target).ok_or_else(|| {
            ChatError::new(format!(
                "Discord: no channel `{target}` in the servers deploybot is in; use a channel id (Developer Mode › right-click the channel › Copy Channel ID)"
            ))
        })
    }

    async fn private(
        &self,
        handle: &str,
        p: &Pending,
        rendered: &Rendered,
    ) -> Result<MessageId, ChatError> {
        let mut state = p.state.lock().await;
        if p.ack == Ack::Thinking && !state.original_used {
            rendered
                .edit_interaction()
                .execute(self.http.as_ref(), &p.token)
                .await
                .map_err(|e| failed("answering the interaction", e))?;
            state.original_used = true;
            return Ok(MessageId(format!("{EPHEMERAL}{handle}:@original")));
        }
        let message = followup(rendered)
            .execute(self.http.as_ref(), (None, &p.token))
            .await
            .map_err(|e| failed("answering the interaction", e))?;
        Ok(MessageId(format!("{EPHEMERAL}{handle}:{}", message.id)))
    }
}

fn followup(r: &Rendered) -> CreateInteractionResponseFollowup {
    let mut f = CreateInteractionResponseFollowup::new()
        .ephemeral(true)
        .embed(r.embed())
        .components(r.components())
        .allowed_mentions(r.allowed_mentions());
    if !r.content.is_empty() {
        f = f.content(&r.content);
    }
    f
}

#[async_trait]
impl Chat for DiscordChat {
    /// Not ready until the gateway says `READY` (the handler tells the health).
    fn connected_at_start(&self) -> bool {
        false
    }

    async fn channel_name(&self, to: &Conversation) -> Option<String> {
        match &to.channel_name {
            Some(name) => Some(name.clone()),
            None => people::channel_name(&self.http, &self.cache(), &to.channel).await,
        }
    }

    async fn send(&self, to: &Conversation, message: &Message) -> Result<MessageId, ChatError> {
        let rendered = render(message, &self.shared.buttons);
        let pending = to
            .interaction
            .as_deref()
            .and_then(|h| self.shared.get(h).map(|p| (h, p)));
        if let Some((handle, p)) = &pending {
            let done = p.state.lock().await.done;
            if !done && (p.private || message.tone == Tone::Refused) {
                return self.private(handle, p, &rendered).await;
            }
        }
        let channel = self.channel(to)?;
        let posted = channel
            .send_message(self.http.as_ref(), rendered.create())
            .await
            .map_err(|e| failed(&format!("posting in channel {channel}"), e))?;
        if let Some((_, p)) = pending {
            p.state.lock().await.posted.push((channel, posted.id));
        }
        Ok(MessageId(posted.id.to_string()))
    }

    async fn edit(
        &self,
        to: &Conversation,
        id: &MessageId,
        message: &Message,
    ) -> Result<(), ChatError> {
        let rendered = render(message, &self.shared.buttons);
        if let Some(rest) = id.0.strip_prefix(EPHEMERAL) {
            let (handle, which) = rest.split_once(':').ok_or_else(|| {
                ChatError::gone(format!("Discord: `{}` is not a message id", id.0))
            })?;
            let p = self.shared.get(handle).ok_or_else(|| {
                ChatError::gone("Discord: that private answer can no longer be edited (its interaction expired)")
            })?;
            if which == "@original" {
                rendered
                    .edit_interaction()
                    .execute(self.http.as_ref(), &p.token)
                    .await
                    .map_err(|e| failed("editing the interaction's answer", e))?;
            } else {
                let mid = parse_id(which)?;
                followup(&rendered)
                    .execute(self.http.as_ref(), (Some(mid), &p.token))
                    .await
                    .map_err(|e| failed("editing the interaction's answer", e))?;
            }
            return Ok(());
        }
        let channel = self.channel(to)?;
        let mid = parse_id(&id.0)?;
        let mut rendered = rendered;
        if self.shared.is_used(&id.0) {
            rendered.disable_actions();
        }
        channel
            .edit_message(self.http.as_ref(), mid, rendered.edit())
            .await
            .map_err(|e| failed(&format!("editing message {mid} in channel {channel}"), e))?;
        Ok(())
    }
}

fn parse_id(s: &str) -> Result<DiscordMessageId, ChatError> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .map(DiscordMessageId::new)
        .ok_or_else(|| ChatError::gone(format!("Discord: `{s}` is not a Discord message id")))
}
