//! Who said it and where: Discord members and channels as the core's [`ChatUser`] and
//! [`Conversation`].
//!
//! Names come from serenity's cache (filled by the gateway's GUILD_CREATE and updates)
//! and, when it has not seen something yet, from one REST call.

use serenity::cache::Cache;
use serenity::http::Http;
use serenity::model::channel::{Channel, ChannelType, GuildChannel};
use serenity::model::id::{ChannelId, GuildId, RoleId};
use serenity::model::user::User;

use super::ADAPTER;
use crate::chat::{ChatUser, Conversation};

/// The display name Discord shows: server nickname, else global name, else username.
pub fn display_name(nick: Option<&str>, user: &User) -> String {
    nick.filter(|n| !n.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| user.display_name().to_string())
}

/// The names of a member's roles (config rules name roles, Discord sends ids).
pub async fn role_names(
    http: &Http,
    cache: &Cache,
    guild: Option<GuildId>,
    ids: &[RoleId],
) -> Vec<String> {
    let Some(guild) = guild else {
        return Vec::new();
    };
    if ids.is_empty() {
        return Vec::new();
    }
    let cached: Option<Vec<Option<String>>> = cache.guild(guild).map(|g| {
        ids.iter()
            .map(|id| g.roles.get(id).map(|r| r.name.clone()))
            .collect()
    });
    if let Some(names) = &cached {
        if names.iter().all(Option::is_some) {
            return names.iter().flatten().cloned().collect();
        }
    }
    match http.get_guild_roles(guild).await {
        Ok(roles) => ids
            .iter()
            .filter_map(|id| roles.iter().find(|r| r.id == *id).map(|r| r.name.clone()))
            .collect(),
        Err(e) => {
            tracing::warn!(%guild, error = %e, "cannot read the guild's roles; role rules will not match this member");
            cached.unwrap_or_default().into_iter().flatten().collect()
        }
    }
}

pub fn chat_user(user: &User, nick: Option<&str>, roles: Vec<String>) -> ChatUser {
    ChatUser {
        id: user.id.to_string(),
        name: display_name(nick, user),
        roles,
    }
}

fn is_thread(c: &GuildChannel) -> bool {
    matches!(
        c.kind,
        ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread
    ) || c.thread_metadata.is_some()
}

fn cached_channel(cache: &Cache, guild: Option<GuildId>, id: ChannelId) -> Option<GuildChannel> {
    let find = |g: GuildId| {
        cache.guild(g).and_then(|g| {
            g.channels
                .get(&id)
                .cloned()
                .or_else(|| g.threads.iter().find(|t| t.id == id).cloned())
        })
    };
    match guild {
        Some(g) => find(g),
        None => cache.guilds().into_iter().find_map(find),
    }
}

async fn channel(
    http: &Http,
    cache: &Cache,
    guild: Option<GuildId>,
    id: ChannelId,
) -> Option<GuildChannel> {
    if let Some(c) = cached_channel(cache, guild, id) {
        return Some(c);
    }
    match http.get_channel(id).await {
        Ok(Channel::Guild(c)) => Some(c),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(channel = %id, error = %e, "cannot look up a channel's name");
            None
        }
    }
}

/// The name of channel `id` (cache, else REST), for the app's channel rules.
pub async fn channel_name(http: &Http, cache: &Cache, id: &str) -> Option<String> {
    let id = id.parse::<u64>().ok().filter(|id| *id != 0)?;
    channel(http, cache, None, ChannelId::new(id))
        .await
        .map(|c| c.name)
}

/// Where a message was said. In a thread, the conversation's channel is the thread's
/// parent (config rules name channels, not threads) and `thread` is the thread.
pub async fn conversation(
    http: &Http,
    cache: &Cache,
    guild: Option<GuildId>,
    id: ChannelId,
    interaction: Option<String>,
) -> Conversation {
    let mut conversation = Conversation {
        adapter: ADAPTER.to_string(),
        channel: id.to_string(),
        channel_name: None,
        thread: None,
        interaction,
    };
    let Some(c) = channel(http, cache, guild, id).await else {
        return conversation;
    };
    match c.parent_id.filter(|_| is_thread(&c)) {
        Some(parent) => {
            conversation.channel = parent.to_string();
            conversation.thread = Some(id.to_string());
            conversation.channel_name = channel(http, cache, Some(c.guild_id), parent)
                .await
                .map(|p| p.name);
        }
        None => conversation.channel_name = Some(c.name),
    }
    conversation
}

/// A channel named in the config (`notify_channel = "ops"`): an id, or a name looked
/// up in the guilds the bot is in.
pub fn channel_by_name(cache: &Cache, name: &str) -> Option<ChannelId> {
    if let Ok(id) = name.parse::<u64>() {
        return (id != 0).then(|| ChannelId::new(id));
    }
    let name = name.trim_start_matches('#');
    cache.guilds().into_iter().find_map(|g| {
        cache.guild(g).and_then(|g| {
            g.channels
                .values()
                .find(|c| c.name.eq_ignore_ascii_case(name) && !is_thread(c))
                .map(|c| c.id)
        })
    })
}
