//! The Discord half of `deploybot doctor`: the bot token, the privileged intents
//! deploybot asks for ([`super::intents`]), the servers it joined, its slash commands,
//! and whether it can post in every configured channel (permissions computed from
//! its roles and the channel's overwrites, as Discord does).
//!
//! Plain REST with reqwest, on the same base URL as the bot (`[discord] proxy_url`
//! replaces the host); the answers are read as JSON, so no Discord type leaves here.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::ExposeSecret;
use serde_json::Value;
use serenity::all::GatewayIntents;

use super::{intents, rest_base, slash, PORTAL};
use crate::config::{Config, DiscordConfig};
use crate::doctor::Check;

const ADMINISTRATOR: u64 = 1 << 3;
const VIEW_CHANNEL: u64 = 1 << 10;
const SEND_MESSAGES: u64 = 1 << 11;
const EMBED_LINKS: u64 = 1 << 14;
const READ_MESSAGE_HISTORY: u64 = 1 << 16;
const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;

/// What the bot needs in a channel to post its live messages.
const NEEDED: [(u64, &str); 3] = [
    (VIEW_CHANNEL, "View Channel"),
    (SEND_MESSAGES, "Send Messages"),
    (EMBED_LINKS, "Embed Links"),
];
/// Useful too (threads, context), but not fatal.
const WANTED: [(u64, &str); 2] = [
    (SEND_MESSAGES_IN_THREADS, "Send Messages in Threads"),
    (READ_MESSAGE_HISTORY, "Read Message History"),
];
/// The invite's permissions: View Channels, Send Messages, Send Messages in Threads,
/// Embed Links, Read Message History.
const INVITE_PERMISSIONS: u64 =
    VIEW_CHANNEL | SEND_MESSAGES | SEND_MESSAGES_IN_THREADS | EMBED_LINKS | READ_MESSAGE_HISTORY;

/// Application flags: a privileged intent is on when either bit is set.
const PRIVILEGED: [(GatewayIntents, u64, u64, &str); 3] = [
    (
        GatewayIntents::MESSAGE_CONTENT,
        1 << 18,
        1 << 19,
        "Message Content Intent",
    ),
    (
        GatewayIntents::GUILD_MEMBERS,
        1 << 14,
        1 << 15,
        "Server Members Intent",
    ),
    (
        GatewayIntents::GUILD_PRESENCES,
        1 << 12,
        1 << 13,
        "Presence Intent",
    ),
];

struct Rest {
    client: reqwest::Client,
    base: String,
    auth: String,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Rest {
    async fn get(&self, path: &str) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .header("authorization", &self.auth)
            .send()
            .await
            .map_err(|e| format!("could not reach {url} ({})", e.without_url()))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}

impl Answer {
    fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {}", self.status), str::to_string)
    }
}

fn invite_url(app_id: &str, guild: Option<&str>) -> String {
    let mut url = format!(
        "https://discord.com/oauth2/authorize?client_id={app_id}&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    );
    if let Some(g) = guild {
        url.push_str(&format!("&guild_id={g}"));
    }
    url
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or("").to_string()
}

fn bits(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(0)
}

/// Every check of `[discord]`, in order.
pub async fn check(config: &Config, discord: &DiscordConfig) -> Vec<Check> {
    let mut out = vec![];
    let client = match reqwest::Client::builder()
        .user_agent(crate::github::client::USER_AGENT)
        .timeout(std::time::Duration::from_secs(20))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                format!("cannot build an HTTP client: {e}"),
                "report this as a bug",
            ));
            return out;
        }
    };
    let rest = Rest {
        client,
        base: rest_base(discord.proxy_url.as_deref()),
        auth: format!("Bot {}", discord.token.expose_secret()),
    };
    let reach = "check the network, and [discord] proxy_url if you set one";

    // The token.
    let me = match rest.get("/users/@me").await {
        Ok(a) => a,
        Err(e) => {
            out.push(Check::fail(format!("cannot talk to Discord: {e}"), reach));
            return out;
        }
    };
    if me.status == 401 {
        out.push(Check::fail(
            format!("Discord refused the bot token in [discord] token ({})", me.message()),
            format!("in the Developer Portal ({PORTAL} › your app › Bot) press Reset Token, and put the new token in [discord] token (or the variable it names)"),
        ));
        return out;
    }
    if me.status != 200 {
        out.push(Check::fail(
            format!(
                "Discord answered GET /users/@me with {}: {}",
                me.status,
                me.message()
            ),
            reach,
        ));
        return out;
    }
    let bot_id = id_of(&me.body);
    let bot_name = me.body["username"].as_str().unwrap_or("?").to_string();
    out.push(Check::pass(format!(
        "Discord accepts the bot token: it is {bot_name} (id {bot_id})"
    )));

    // The application: its id (for URLs) and the privileged intents it may use.
    let app = match rest.get("/oauth2/applications/@me").await {
        Ok(a) if a.status == 200 => a.body,
        Ok(a) => {
            out.push(Check::fail(
                format!(
                    "cannot read the bot's application ({}: {})",
                    a.status,
                    a.message()
                ),
                reach,
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(format!("cannot talk to Discord: {e}"), reach));
            return out;
        }
    };
    let app_id = app["id"].as_str().unwrap_or(&bot_id).to_string();
    let flags = bits(&app["flags"]);
    for (intent, full, limited, name) in PRIVILEGED {
        if !intents().contains(intent) {
            continue;
        }
        if flags & (full | limited) != 0 {
            out.push(Check::pass(format!("the {name} is enabled")));
        } else {
            let why = if intent == GatewayIntents::MESSAGE_CONTENT {
                ", and deploybot needs it to read text commands"
            } else {
                ", and deploybot asks for it"
            };
            out.push(Check::fail(
                format!("the {name} is off{why} (the gateway would refuse to connect)"),
                format!("enable it in the Developer Portal ({PORTAL}/{app_id}/bot): Bot › Privileged Gateway Intents › {name}, then Save Changes"),
            ));
        }
    }

    // Servers.
    let guilds = match rest.get("/users/@me/guilds").await {
        Ok(a) if a.status == 200 => a.body.as_array().cloned().unwrap_or_default(),
        Ok(a) => {
            out.push(Check::fail(
                format!(
                    "cannot list the bot's servers ({}: {})",
                    a.status,
                    a.message()
                ),
                reach,
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(format!("cannot talk to Discord: {e}"), reach));
            return out;
        }
    };
    if guilds.is_empty() {
        out.push(Check::fail(
            "the bot is in no server",
            format!("invite it: {}", invite_url(&app_id, None)),
        ));
        return out;
    }
    let names: Vec<String> = guilds
        .iter()
        .map(|g| g["name"].as_str().unwrap_or("?").to_string())
        .collect();
    out.push(Check::pass(format!(
        "the bot is in {} server{}: {}",
        guilds.len(),
        if guilds.len() == 1 { "" } else { "s" },
        names.join(", ")
    )));
    let joined: BTreeSet<String> = guilds.iter().map(id_of).collect();
    for g in &discord.guild_ids {
        if !joined.contains(&g.to_string()) {
            out.push(Check::fail(
                format!("[discord] guild_ids has {g}, a server the bot is not in"),
                format!(
                    "invite it there: {}, or remove {g} from guild_ids",
                    invite_url(&app_id, Some(&g.to_string()))
                ),
            ));
        }
    }

    // Slash commands, where `deploybot run` registers them.
    let expected = slash::names();
    let places: Vec<(String, String)> = if discord.guild_ids.is_empty() {
        vec![(
            format!("/applications/{app_id}/commands"),
            "globally".into(),
        )]
    } else {
        discord
            .guild_ids
            .iter()
            .filter(|g| joined.contains(&g.to_string()))
            .map(|g| {
                (
                    format!("/applications/{app_id}/guilds/{g}/commands"),
                    format!("in server {g}"),
                )
            })
            .collect()
    };
    for (path, place) in places {
        match rest.get(&path).await {
            Ok(a) if a.status == 200 => {
                let registered: BTreeSet<String> = a
                    .body
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| c["name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<String> = expected
                    .iter()
                    .filter(|n| !registered.contains(*n))
                    .map(|n| format!("/{n}"))
                    .collect();
                if missing.is_empty() {
                    out.push(Check::pass(format!(
                        "slash commands registered {place}: {}",
                        expected
                            .iter()
                            .map(|n| format!("/{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                } else {
                    out.push(Check::warn(format!(
                        "slash commands not registered {place} yet: {} — `deploybot run` registers them when it connects",
                        missing.join(", ")
                    )));
                }
            }
            Ok(a) if a.status == 403 => out.push(Check::fail(
                format!("cannot see the slash commands {place} ({})", a.message()),
                format!(
                    "invite the bot again with the applications.commands scope: {}",
                    invite_url(&app_id, None)
                ),
            )),
            Ok(a) => out.push(Check::warn(format!(
                "cannot list the slash commands {place} ({}: {})",
                a.status,
                a.message()
            ))),
            Err(e) => out.push(Check::warn(format!("cannot list the slash commands: {e}"))),
        }
    }

    // Channels: each app's `channels` and `notify_channel`, by name or id.
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &config.apps {
        for c in &a.channels {
            wanted
                .entry(c.clone())
                .or_default()
                .push(format!("[apps.{}] channels", a.name));
        }
        if let Some(c) = &a.notify_channel {
            wanted
                .entry(c.clone())
                .or_default()
                .push(format!("[apps.{}] notify_channel", a.name));
        }
    }
    if wanted.is_empty() {
        return out;
    }
    let mut found: BTreeMap<String, bool> = wanted.keys().map(|k| (k.clone(), false)).collect();
    for g in &guilds {
        let gid = id_of(g);
        let gname = g["name"].as_str().unwrap_or("?");
        let owner = g["owner"].as_bool().unwrap_or(false);
        let channels = match rest.get(&format!("/guilds/{gid}/channels")).await {
            Ok(a) if a.status == 200 => a.body.as_array().cloned().unwrap_or_default(),
            Ok(a) => {
                out.push(Check::warn(format!(
                    "cannot list the channels of {gname} ({}: {})",
                    a.status,
                    a.message()
                )));
                continue;
            }
            Err(e) => {
                out.push(Check::warn(format!(
                    "cannot list the channels of {gname}: {e}"
                )));
                continue;
            }
        };
        let matches: Vec<(&String, &Value)> = wanted
            .keys()
            .filter_map(|w| {
                let w_name = w.trim_start_matches('#');
                channels
                    .iter()
                    .find(|c| {
                        id_of(c) == *w
                            || c["name"]
                                .as_str()
                                .is_some_and(|n| n.eq_ignore_ascii_case(w_name))
                    })
                    .map(|c| (w, c))
            })
            .collect();
        if matches.is_empty() {
            continue;
        }
        let base = base_permissions(&rest, &gid, &bot_id, owner).await;
        for (w, channel) in matches {
            found.insert(w.clone(), true);
            let cname = channel["name"].as_str().unwrap_or("?");
            let Some((base, member_roles)) = &base else {
                out.push(Check::warn(format!(
                    "#{cname} exists in {gname}, but the bot's roles there cannot be read, so its permissions are not checked"
                )));
                continue;
            };
            let perms = channel_permissions(*base, &gid, &bot_id, member_roles, channel);
            let lacking: Vec<&str> = NEEDED
                .iter()
                .filter(|(bit, _)| perms & bit == 0)
                .map(|(_, n)| *n)
                .collect();
            if !lacking.is_empty() {
                out.push(Check::fail(
                    format!("#{cname} in {gname}: the bot lacks {}", lacking.join(", ")),
                    format!(
                        "in Discord: #{cname} › Edit Channel › Permissions, add the bot's role (or {bot_name}) and allow {}",
                        lacking.join(", ")
                    ),
                ));
                continue;
            }
            let short: Vec<&str> = WANTED
                .iter()
                .filter(|(bit, _)| perms & bit == 0)
                .map(|(_, n)| *n)
                .collect();
            if short.is_empty() {
                out.push(Check::pass(format!(
                    "#{cname} in {gname}: the bot can read, post and embed"
                )));
            } else {
                out.push(Check::warn(format!(
                    "#{cname} in {gname}: the bot can post, but lacks {} (allow it in the channel's permissions for commands in threads)",
                    short.join(", ")
                )));
            }
        }
    }
    for (w, ok) in found {
        if !ok {
            out.push(Check::fail(
                format!(
                    "channel {w} ({}) is in none of the bot's servers",
                    wanted[&w].join(", ")
                ),
                "create it, invite the bot to its server, or fix the name (channel names without #, or ids)",
            ));
        }
    }
    out
}

/// The bot's server-wide permissions (its roles and @everyone) and its role ids;
/// `None` when they cannot be read.
async fn base_permissions(
    rest: &Rest,
    guild: &str,
    bot_id: &str,
    owner: bool,
) -> Option<(u64, Vec<String>)> {
    let member = rest
        .get(&format!("/guilds/{guild}/members/{bot_id}"))
        .await
        .ok()?;
    let roles = rest.get(&format!("/guilds/{guild}/roles")).await.ok()?;
    if member.status != 200 || roles.status != 200 {
        return None;
    }
    let member_roles: Vec<String> = member.body["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let by_id: BTreeMap<String, u64> = roles
        .body
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (id_of(r), bits(&r["permissions"])))
                .collect()
        })
        .unwrap_or_default();
    Some((
        guild_permissions(owner, guild, &member_roles, &by_id),
        member_roles,
    ))
}

/// Discord's rule: the owner and administrators may do everything; otherwise the
/// union of @everyone (the role whose id is the server's) and the member's roles.
fn guild_permissions(
    owner: bool,
    guild: &str,
    member_roles: &[String],
    roles: &BTreeMap<String, u64>,
) -> u64 {
    if owner {
        return u64::MAX;
    }
    let mut perms = roles.get(guild).copied().unwrap_or(0);
    for r in member_roles {
        perms |= roles.get(r).copied().unwrap_or(0);
    }
    if perms & ADMINISTRATOR != 0 {
        u64::MAX
    } else {
        perms
    }
}

/// Discord's rule for a channel: @everyone's overwrite, then the member's roles'
/// (denies, then allows, combined), then the member's own.
fn channel_permissions(
    base: u64,
    guild: &str,
    member: &str,
    member_roles: &[String],
    channel: &Value,
) -> u64 {
    if base & ADMINISTRATOR != 0 {
        return u64::MAX;
    }
    let overwrites = channel["permission_overwrites"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |id: &str| overwrites.iter().find(|o| o["id"].as_str() == Some(id));
    let mut perms = base;
    if let Some(o) = find(guild) {
        perms &= !bits(&o["deny"]);
        perms |= bits(&o["allow"]);
    }
    let (mut allow, mut deny) = (0, 0);
    for r in member_roles {
        if let Some(o) = find(r) {
            allow |= bits(&o["allow"]);
            deny |= bits(&o["deny"]);
        }
    }
    perms &= !deny;
    perms |= allow;
    if let Some(o) = find(member) {
        perms &= !bits(&o["deny"]);
        perms |= bits(&o["allow"]);
    }
    perms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_invite_asks_for_what_the_readme_says() {
        assert_eq!(INVITE_PERMISSIONS, 274_877_991_936);
        assert!(invite_url("1", None).contains("scope=bot+applications.commands"));
    }

    #[test]
    fn permissions_follow_discords_order() {
        let roles = BTreeMap::from([
            ("g".to_string(), VIEW_CHANNEL),
            ("bot".to_string(), SEND_MESSAGES | EMBED_LINKS),
        ]);
        let member = vec!["bot".to_string()];
        let base = guild_permissions(false, "g", &member, &roles);
        assert_eq!(base, VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS);
        // @everyone denied view, the bot's role allowed it back.
        let ch = json!({"permission_overwrites": [
            {"id": "g", "type": 0, "allow": "0", "deny": VIEW_CHANNEL.to_string()},
            {"id": "bot", "type": 0, "allow": VIEW_CHANNEL.to_string(), "deny": "0"},
        ]});
        assert_ne!(
            channel_permissions(base, "g", "me", &member, &ch) & VIEW_CHANNEL,
            0
        );
        // The member's own overwrite wins.
        let ch = json!({"permission_overwrites": [
            {"id": "me", "type": 1, "allow": "0", "deny": SEND_MESSAGES.to_string()},
        ]});
        assert_eq!(
            channel_permissions(base, "g", "me", &member, &ch) & SEND_MESSAGES,
            0
        );
        // Administrators and owners may do everything.
        let admin = BTreeMap::from([("g".to_string(), ADMINISTRATOR)]);
        assert_eq!(guild_permissions(false, "g", &[], &admin), u64::MAX);
        assert_eq!(
            guild_permissions(true, "g", &[], &BTreeMap::new()),
            u64::MAX
        );
    }
}
