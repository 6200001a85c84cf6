//! Gateway events → the core: messages addressed to the bot, slash commands,
//! autocompletion, buttons and modals. Every command, however it arrived, becomes a
//! [`Request`] for [`Bot::handle`], as the person who typed or pressed it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use commands::{Kind, Value};
use serenity::all::{
    AutocompleteChoice, Builder, CommandInteraction, ComponentInteraction, Context,
    CreateActionRow, CreateAutocompleteResponse, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateModal, EventHandler, GuildId, InputTextStyle,
    Interaction, Member, ModalInteraction, Ready, ResumedEvent, User,
};
use serenity::all::{ButtonKind, CreateAllowedMentions, CreateButton, EditInteractionResponse};
use serenity::gateway::ConnectionStage;
use serenity::gateway::ShardStageUpdateEvent;
use serenity::http::RatelimitInfo;
use serenity::model::application::ActionRowComponent;
use serenity::model::channel::Message as DiscordMessage;
use serenity::model::guild::Guild;
use tokio::sync::Notify;

use super::buttons::{self, Press, Unusable, REASON_INPUT};
use super::chat::{Ack, Shared};
use super::{people, slash};
use crate::bot::Bot;
use crate::chat::{self, addressed, Addressing, ChatUser, Message, Request};
use crate::flow::Decision;
use crate::metrics::Status;
use crate::resolve;

/// How long autocompletion may wait for GitHub's branch list: Discord gives 3 s.
const BRANCHES_BOUND: Duration = Duration::from_millis(2000);

/// Commands being handled; shutdown waits for them.
#[derive(Default)]
pub struct Inflight {
    n: AtomicUsize,
    idle: Notify,
}

pub struct InflightGuard(Arc<Inflight>);

impl Inflight {
    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.n.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self.clone())
    }

    pub fn count(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }

    /// Waits until no command is being handled, for at most `bound`.
    pub async fn wait_idle(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub struct Handler {
    pub bot: Arc<OnceLock<Bot>>,
    pub shared: Arc<Shared>,
    pub prefix: String,
    pub guild_ids: Vec<u64>,
    pub inflight: Arc<Inflight>,
    pub registered: AtomicBool,
    /// Fencing: a gateway event is acted on only while this instance leads.
    pub lease: crate::lease::Lease,
    /// The chat port's REST client: it answers interactions too, so it needs the
    /// application id that `READY` brings.
    pub chat_http: Arc<serenity::http::Http>,
}

const STALE: &str = "This button is from before deploybot restarted, and it no longer knows what it was for. Type the command instead (`help` lists them).";
const FOREIGN: &str = "deploybot does not know this button (it may come from another version or another bot). Type the command instead (`help` lists them).";

impl Handler {
    /// Whether this instance may act on a gateway event now. An instance that lost
    /// the lead (its local deadline passed) while its gateway was still open drops
    /// what arrives: another instance answers it.
    fn fenced(&self, what: &str) -> bool {
        if self.lease.is_leader() {
            return false;
        }
        tracing::warn!(
            event = what,
            "dropped a Discord event: this instance is not the leader any more (another instance answers)"
        );
        if let Some(bot) = self.bot.get() {
            bot.metrics().gateway_event_fenced();
        }
        true
    }

    async fn user(
        &self,
        ctx: &Context,
        guild: Option<GuildId>,
        user: &User,
        member: Option<&Member>,
    ) -> ChatUser {
        let roles = match member {
            Some(m) => people::role_names(&ctx.http, &ctx.cache, guild, &m.roles).await,
            None => Vec::new(),
        };
        people::chat_user(user, member.and_then(|m| m.nick.as_deref()), roles)
    }

    /// Replaces the buttons of the message a button (or its modal) was on: after a
    /// deferred update, the interaction's original response is that message.
    async fn set_buttons(ctx: &Context, token: &str, rows: Vec<CreateActionRow>) {
        let edit = EditInteractionResponse::new()
            .components(rows)
            .allowed_mentions(CreateAllowedMentions::new());
        if let Err(e) = edit.execute(&ctx.http, token).await {
            tracing::warn!(error = %e, "could not change a message's buttons after a press");
        }
    }

    /// Answers an interaction at once, privately, with a sentence.
    async fn tell(ctx: &Context, id: serenity::all::InteractionId, token: &str, text: &str) {
        let response = CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .ephemeral(true)
                .content(text)
                .allowed_mentions(CreateAllowedMentions::new()),
        );
        if let Err(e) = response.execute(&ctx.http, (id, token)).await {
            tracing::warn!(error = %e, "could not answer an interaction");
        }
    }

    async fn slash(&self, ctx: &Context, c: CommandInteraction) {
        let Some(bot) = self.bot.get() else { return };
        let _busy = self.inflight.enter();
        // Within Discord's 3 seconds, before anything slow: "deploybot is thinking…",
        // visible to the invoker only. What the core posts goes to the channel.
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(true),
        );
        if let Err(e) = defer.execute(&ctx.http, (c.id, &c.token)).await {
            tracing::warn!(command = %c.data.name, error = %e, "could not acknowledge a slash command");
            return;
        }
        let private = c.data.name == "help";
        let handle = self.shared.begin(
            c.id.to_string(),
            c.token.clone(),
            c.guild_id,
            Ack::Thinking,
            private,
        );
        let conversation = people::conversation(
            &ctx.http,
            &ctx.cache,
            c.guild_id,
            c.channel_id,
            Some(handle.clone()),
        )
        .await;
        let (options, _) = slash::options(&c.data.options);
        match slash::to_text(&c.data.name, &options) {
            Ok(text) => {
                let user = self
                    .user(ctx, c.guild_id, &c.user, c.member.as_deref())
                    .await;
                bot.handle(Request {
                    conversation,
                    message_id: None,
                    user,
                    text,
                    addressing: Addressing::Direct,
                    pressed: None,
                })
                .await;
            }
            Err(problem) => {
                bot.say(&conversation, &Message::refused(problem)).await;
            }
        }
        self.shared.finish(&ctx.http, &handle).await;
    }

    async fn autocomplete(&self, ctx: &Context, c: CommandInteraction) {
        let Some(bot) = self.bot.get() else { return };
        let (options, focused) = slash::options(&c.data.options);
        let typed = match focused.as_deref().and_then(|f| options.get(f)) {
            Some(Value::Text(s)) => s.clone(),
            _ => String::new(),
        };
        let app = match options.get("app") {
            Some(Value::Text(a)) if focused.as_deref() != Some("app") => Some(a.as_str()),
            _ => None,
        };
        let config = bot.config();
        let kind = focused
            .as_deref()
            .and_then(|f| slash::kind_of(&c.data.name, f));
        let choices = match kind {
            Some(Kind::App) => slash::complete_apps(config, &typed),
            Some(Kind::Environment) => slash::complete_environments(config, app, &typed),
            Some(Kind::Ref) => {
                let app = match app.and_then(|a| config.app(a)) {
                    Some(a) => Some(a),
                    None => {
                        let here = people::conversation(
                            &ctx.http,
                            &ctx.cache,
                            c.guild_id,
                            c.channel_id,
                            None,
                        )
                        .await;
                        resolve::channel_app(config, &here)
                    }
                };
                match app {
                    Some(app) => {
                        match tokio::time::timeout(BRANCHES_BOUND, bot.branches(&app.repository))
                            .await
                        {
                            Ok(Ok(branches)) => slash::complete_refs(&branches, &typed),
                            Ok(Err(e)) => {
                                tracing::warn!(app = %app.name, error = %e, "no branches to suggest");
                                Vec::new()
                            }
                            Err(_) => Vec::new(),
                        }
                    }
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let response = CreateInteractionResponse::Autocomplete(
            CreateAutocompleteResponse::new().set_choices(
                choices
                    .into_iter()
                    .map(|c| AutocompleteChoice::new(c.name, c.value))
                    .collect(),
            ),
        );
        if let Err(e) = response.execute(&ctx.http, (c.id, &c.token)).await {
            tracing::warn!(error = %e, "could not answer an autocomplete request");
        }
    }

    async fn button(&self, ctx: &Context, c: ComponentInteraction) {
        let Some(bot) = self.bot.get() else { return };
        let _busy = self.inflight.enter();
        let (text, replacing) = match self.shared.buttons.decode(&c.data.custom_id) {
            Err(Unusable::Stale) => return Self::tell(ctx, c.id, &c.token, STALE).await,
            Err(Unusable::Foreign) => return Self::tell(ctx, c.id, &c.token, FOREIGN).await,
            Ok(Press::AskReason(command)) => {
                let input = CreateInputText::new(
                    InputTextStyle::Short,
                    "Reason (kept with the deployment)",
                    REASON_INPUT,
                )
                .placeholder("hotfix for the login outage")
                .min_length(3)
                .max_length(300);
                let modal = CreateModal::new(
                    self.shared.buttons.reason_modal_id(&command),
                    "Why force this deploy?",
                )
                .components(vec![CreateActionRow::InputText(input)]);
                if let Err(e) = CreateInteractionResponse::Modal(modal)
                    .execute(&ctx.http, (c.id, &c.token))
                    .await
                {
                    tracing::warn!(error = %e, "could not open the reason dialog");
                }
                return;
            }
            Ok(
                Press::Force(command)
                | Press::Retry(command)
                | Press::Unlock(command)
                | Press::Queue(command)
                | Press::Keep(command)
                | Press::WhenGreen(command),
            ) => (command, None),
            Ok(Press::Rollback { command, replacing }) => (command, Some(replacing)),
            Ok(Press::Confirm(id)) => (format!("confirm {id}"), None),
            Ok(Press::Cancel(id)) => (format!("cancel {id}"), None),
        };
        self.run_pressed(
            ctx,
            bot,
            Pressed {
                id: c.id,
                token: &c.token,
                guild: c.guild_id,
                channel: c.channel_id,
                user: &c.user,
                member: c.member.as_ref(),
                text,
                message: Some(&c.message),
                replacing,
            },
        )
        .await;
    }

    async fn modal(&self, ctx: &Context, m: ModalInteraction) {
        let Some(bot) = self.bot.get() else { return };
        let _busy = self.inflight.enter();
        let command = match self.shared.buttons.decode(&m.data.custom_id) {
            Ok(Press::AskReason(command)) => command,
            Err(Unusable::Stale) => return Self::tell(ctx, m.id, &m.token, STALE).await,
            _ => return Self::tell(ctx, m.id, &m.token, FOREIGN).await,
        };
        let reason = m
            .data
            .components
            .iter()
            .flat_map(|row| row.components.iter())
            .find_map(|c| match c {
                ActionRowComponent::InputText(t) if t.custom_id == REASON_INPUT => t.value.clone(),
                _ => None,
            })
            .unwrap_or_default();
        let Some(text) = buttons::with_reason(&command, &reason) else {
            return Self::tell(
                ctx,
                m.id,
                &m.token,
                "Forcing a production deploy needs a reason: press the button again and say why.",
            )
            .await;
        };
        self.run_pressed(
            ctx,
            bot,
            Pressed {
                id: m.id,
                token: &m.token,
                guild: m.guild_id,
                channel: m.channel_id,
                user: &m.user,
                member: m.member.as_ref(),
                text,
                message: m.message.as_deref(),
                replacing: None,
            },
        )
        .await;
    }

    /// Runs a button's command as the presser. The press is acknowledged silently; the
    /// core's refusals come back privately, everything else in the channel. A press
    /// that did something greys out the message's buttons (the core also answers any
    /// later press of them as used).
    async fn run_pressed(&self, ctx: &Context, bot: &Bot, p: Pressed<'_>) {
        if let Err(e) = CreateInteractionResponse::Acknowledge
            .execute(&ctx.http, (p.id, p.token))
            .await
        {
            tracing::warn!(error = %e, "could not acknowledge a button press");
            return;
        }
        let handle = self.shared.begin(
            p.id.to_string(),
            p.token.to_string(),
            p.guild,
            Ack::Silent,
            false,
        );
        let conversation = people::conversation(
            &ctx.http,
            &ctx.cache,
            p.guild,
            p.channel,
            Some(handle.clone()),
        )
        .await;
        // Greyed out at once, so a second click does not even get here; the core
        // answers any later press of this message's buttons as used.
        if let Some(message) = p.message {
            self.shared.used(&message.id.to_string());
            Self::set_buttons(ctx, p.token, action_rows(&message.components, true)).await;
        }
        let user = self.user(ctx, p.guild, p.user, p.member).await;
        let decision = bot
            .handle(Request {
                conversation,
                message_id: None,
                user,
                text: p.text,
                addressing: Addressing::Direct,
                pressed: p.message.map(|m| chat::Pressed {
                    message: m.id.to_string(),
                    replacing: p.replacing,
                }),
            })
            .await;
        // A refused press changed nothing: the buttons are usable again (by someone
        // who may).
        if let Some(message) = p.message {
            if matches!(decision, Some(Decision::Refused(_)) | None) {
                self.shared.unused(&message.id.to_string());
                Self::set_buttons(ctx, p.token, action_rows(&message.components, false)).await;
            }
        }
        self.shared.finish(&ctx.http, &handle).await;
    }

    async fn register(&self, ctx: &Context) {
        if self.registered.swap(true, Ordering::SeqCst) {
            return;
        }
        let definitions = slash::definitions();
        if self.guild_ids.is_empty() {
            match serenity::all::Command::set_global_commands(&ctx.http, definitions).await {
                Ok(c) => tracing::info!(
                    n = c.len(),
                    "slash commands registered globally (Discord may take up to an hour to show them; set [discord] guild_ids for instant registration)"
                ),
                Err(e) => tracing::error!(error = %e, "could not register slash commands: invite the bot with the `applications.commands` scope (README › Connect to Discord)"),
            }
            return;
        }
        for &g in &self.guild_ids {
            let guild = GuildId::new(g);
            match guild.set_commands(&ctx.http, definitions.clone()).await {
                Ok(c) => tracing::info!(guild = g, n = c.len(), "slash commands registered"),
                Err(e) => {
                    tracing::error!(guild = g, error = %e, "could not register slash commands in this guild: is the bot in it (check [discord] guild_ids), and was it invited with the `applications.commands` scope?")
                }
            }
        }
    }
}

struct Pressed<'a> {
    id: serenity::all::InteractionId,
    token: &'a str,
    guild: Option<GuildId>,
    channel: serenity::all::ChannelId,
    user: &'a User,
    member: Option<&'a Member>,
    text: String,
    /// The message the button is on (a modal opened from a button has it too).
    message: Option<&'a DiscordMessage>,
    /// A Roll back button's deployment.
    replacing: Option<u64>,
}

/// A message's buttons as they were, with its action buttons greyed out (`grey`) or
/// usable again; link buttons always stay usable.
fn action_rows(
    rows: &[serenity::model::application::ActionRow],
    grey: bool,
) -> Vec<CreateActionRow> {
    rows.iter()
        .map(|row| {
            CreateActionRow::Buttons(
                row.components
                    .iter()
                    .filter_map(|c| match c {
                        ActionRowComponent::Button(b) => {
                            let link = matches!(b.data, ButtonKind::Link { .. });
                            Some(CreateButton::from(b.clone()).disabled(grey && !link))
                        }
                        _ => None,
                    })
                    .collect(),
            )
        })
        .collect()
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.chat_http.set_application_id(ready.application.id);
        let apps = self
            .bot
            .get()
            .map(|b| {
                b.config()
                    .apps
                    .iter()
                    .map(|a| {
                        if a.channels.is_empty() {
                            format!("{} (any channel)", a.name)
                        } else {
                            format!("{} (#{})", a.name, a.channels.join(", #"))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        tracing::info!(
            user = %ready.user.name,
            id = %ready.user.id,
            guilds = ready.guilds.len(),
            prefix = %self.prefix,
            %apps,
            "connected to Discord"
        );
        if let Some(bot) = self.bot.get() {
            bot.metrics().health.set_chat(Status::ready());
        }
        self.register(&ctx).await;
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        let Some(bot) = self.bot.get() else { return };
        let health = &bot.metrics().health;
        if event.new == ConnectionStage::Connected {
            health.set_chat(Status::ready());
        } else if event.old == ConnectionStage::Connected {
            tracing::warn!(stage = %event.new, "lost the Discord gateway connection; reconnecting");
            health.set_chat(Status::not_ready(format!(
                "Discord gateway connection lost ({}); reconnecting",
                event.new
            )));
        }
    }

    async fn ratelimit(&self, data: RatelimitInfo) {
        tracing::debug!(path = %data.path, wait = ?data.timeout, "Discord rate limit");
        if let Some(bot) = self.bot.get() {
            bot.metrics().chat_rate_limited();
        }
    }

    async fn guild_create(&self, _ctx: Context, guild: Guild, _is_new: Option<bool>) {
        let Some(bot) = self.bot.get() else { return };
        let mut served = Vec::new();
        for app in &bot.config().apps {
            let here: Vec<String> = guild
                .channels
                .values()
                .filter(|c| {
                    !app.channels.is_empty() && app.allows_channel(&c.id.to_string(), Some(&c.name))
                })
                .map(|c| format!("#{}", c.name))
                .collect();
            if app.channels.is_empty() {
                served.push(format!("{}: any channel", app.name));
            } else if !here.is_empty() {
                served.push(format!("{}: {}", app.name, here.join(" ")));
            }
        }
        tracing::info!(
            guild = %guild.name,
            id = %guild.id,
            channels = guild.channels.len(),
            apps = %served.join("; "),
            "serving guild"
        );
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
        if let Some(bot) = self.bot.get() {
            bot.metrics().health.set_chat(Status::ready());
        }
    }

    async fn message(&self, ctx: Context, msg: DiscordMessage) {
        let Some(guild) = msg.guild_id.filter(|_| !msg.author.bot) else {
            return;
        };
        let me = ctx.cache.current_user().id;
        let mentions = [format!("<@{me}>"), format!("<@!{me}>")];
        let Some((addressing, text)) = addressed(&msg.content, &self.prefix, &mentions) else {
            return;
        };
        if self.fenced("message") {
            return;
        }
        let Some(bot) = self.bot.get() else { return };
        let _busy = self.inflight.enter();
        let text = text.to_string();
        let (nick, role_ids) = match &msg.member {
            Some(m) => (m.nick.clone(), m.roles.clone()),
            None => match ctx.http.get_member(guild, msg.author.id).await {
                Ok(m) => (m.nick, m.roles),
                Err(e) => {
                    tracing::warn!(user = %msg.author.id, error = %e, "cannot read a member's roles");
                    (None, Vec::new())
                }
            },
        };
        let roles = people::role_names(&ctx.http, &ctx.cache, Some(guild), &role_ids).await;
        let conversation =
            people::conversation(&ctx.http, &ctx.cache, Some(guild), msg.channel_id, None).await;
        bot.handle(Request {
            conversation,
            message_id: Some(msg.id.to_string()),
            user: people::chat_user(&msg.author, nick.as_deref(), roles),
            text,
            addressing,
            pressed: None,
        })
        .await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if self.fenced("interaction") {
            return;
        }
        match interaction {
            Interaction::Command(c) => self.slash(&ctx, c).await,
            Interaction::Autocomplete(c) => self.autocomplete(&ctx, c).await,
            Interaction::Component(c) => self.button(&ctx, c).await,
            Interaction::Modal(m) => self.modal(&ctx, m).await,
            _ => {}
        }
    }
}
