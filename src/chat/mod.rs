//! The chat port: what the core needs from a chat platform, and the platform-neutral
//! shape of what it says.
//!
//! Adapters (`shell`, `discord`) turn their platform's events into [`Request`]s for
//! [`crate::bot::Bot::handle`] and implement [`Chat`] to post and edit [`Message`]s.
//! The core never sees a Discord or terminal type.

pub mod discord;
pub mod shell;

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;

use crate::metrics::{ChatResult, Metrics};
use crate::model::DeploymentState;

/// Who is talking, as the chat platform knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatUser {
    /// Stable id (Discord snowflake; the shell's `--user`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role names (Discord roles; the shell's `--role`). Matched against config rules.
    pub roles: Vec<String>,
}

/// Where a message was said, and where replies go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    /// `"discord"`, `"shell"`.
    pub adapter: String,
    /// Channel id.
    pub channel: String,
    /// Channel name without `#`, when the platform has one; config may use either.
    pub channel_name: Option<String>,
    /// Thread id, when the command came in a thread.
    pub thread: Option<String>,
    /// An adapter's handle for answering the event that started this conversation
    /// (Discord: the interaction token of a slash command or button press). Opaque to
    /// the core; it may expire, and adapters fall back to a plain channel message.
    #[serde(default)]
    pub interaction: Option<String>,
}

impl Conversation {
    /// `#deploys` (or the id when there is no name).
    pub fn display(&self) -> String {
        format!("#{}", self.channel_name.as_deref().unwrap_or(&self.channel))
    }
}

/// How a message reached the bot; decides what to do with lines that are not commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// Said to the bot (an @mention, the shell, a slash command): always answered.
    Direct,
    /// Started with the configured prefix, which other bots may share: only answered
    /// when it looks like one of ours.
    Prefix,
}

/// One line said to the bot.
#[derive(Debug, Clone)]
pub struct Request {
    pub conversation: Conversation,
    /// The platform's id of the user's message, if any.
    pub message_id: Option<String>,
    pub user: ChatUser,
    /// The command text, with prefix or mention already removed.
    pub text: String,
    pub addressing: Addressing,
    /// Set when the line is a button's command: the button is used once.
    pub pressed: Option<Pressed>,
}

/// A press of one of the next-step buttons on a message the bot posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pressed {
    /// The platform's id of the message the button is on: its buttons are used once
    /// (a press that changed nothing, such as a refusal, does not count).
    pub message: String,
    /// A Roll back button's deployment: the rollback goes ahead only while that
    /// deployment is still the one it would replace.
    pub replacing: Option<u64>,
}

/// The platform's id of a message the bot posted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(pub String);

/// How a message should look: colour, symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    /// Work under way (e.g. waiting for GitHub).
    Working,
    Success,
    Warning,
    /// The bot refused: nothing was sent to GitHub.
    Refused,
    /// GitHub or the deployment failed.
    Failed,
    /// A deployment's progress message.
    Progress(DeploymentState),
}

impl Tone {
    pub fn symbol(self) -> &'static str {
        match self {
            Tone::Info => "ℹ️",
            Tone::Working => "⏳",
            Tone::Success => "✅",
            Tone::Warning => "⚠️",
            Tone::Refused => "🚫",
            Tone::Failed => "❌",
            Tone::Progress(state) => state.symbol(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Something the reader can do next. Platforms with buttons render a button; text
/// platforms show the equivalent command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Re-run a deploy with force (offered only to people allowed to force).
    Force {
        command: String,
    },
    /// Roll back a finished deployment (`rollback APP in ENV`), while it is still the
    /// one a rollback would replace.
    Rollback {
        command: String,
        replacing: u64,
    },
    /// Run a failed deploy again (its `deploy …` command, not forced).
    Retry {
        command: String,
    },
    /// Release a lock (`unlock ENV on APP`).
    Unlock {
        command: String,
    },
    Confirm {
        id: String,
    },
    Cancel {
        id: String,
    },
    /// Wait in line for a busy environment (`deploy … queue`).
    Queue {
        command: String,
    },
    /// Keep a lock its holder was reminded of (`lock ENV on APP …`, which renews it).
    Keep {
        command: String,
    },
    /// Deploy once the pending checks pass (`deploy … when green`).
    WhenGreen {
        command: String,
    },
}

impl Action {
    /// What a platform without buttons says instead: what to type, and what for.
    pub fn hint(&self) -> String {
        let command = self.command();
        match self {
            Action::Force { .. } => format!("to force it, type `{command}`"),
            Action::Rollback { .. } => format!("to roll it back, type `{command}`"),
            Action::Retry { .. } => format!("to try again, type `{command}`"),
            Action::Unlock { .. } => format!("to release it, type `{command}`"),
            Action::Confirm { .. } => "type `yes` to go ahead".to_string(),
            Action::Cancel { .. } => "type `no` to cancel".to_string(),
            Action::Queue { .. } => format!("to wait in line, type `{command}`"),
            Action::Keep { .. } => format!("to keep it, type `{command}`"),
            Action::WhenGreen { .. } => {
                format!("to deploy it the moment they pass, type `{command}`")
            }
        }
    }

    /// What to type instead of pressing the button.
    pub fn command(&self) -> String {
        match self {
            Action::Force { command }
            | Action::Rollback { command, .. }
            | Action::Retry { command }
            | Action::Unlock { command }
            | Action::Queue { command }
            | Action::Keep { command }
            | Action::WhenGreen { command } => command.clone(),
            Action::Confirm { id } => format!("confirm {id}"),
            Action::Cancel { id } => format!("cancel {id}"),
        }
    }
}

/// What the bot says: a title line, then details. Adapters decide the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tone: Tone,
    pub title: String,
    pub lines: Vec<String>,
    pub fields: Vec<Field>,
    pub links: Vec<Link>,
    pub actions: Vec<Action>,
    /// A user id to notify (edits do not notify on most platforms, so the final state
    /// of a deployment is announced with a mention).
    pub mention: Option<String>,
}

impl Message {
    pub fn new(tone: Tone, title: impl Into<String>) -> Self {
        Message {
            tone,
            title: title.into(),
            lines: Vec::new(),
            fields: Vec::new(),
            links: Vec::new(),
            actions: Vec::new(),
            mention: None,
        }
    }

    pub fn info(title: impl Into<String>) -> Self {
        Self::new(Tone::Info, title)
    }

    pub fn refused(title: impl Into<String>) -> Self {
        Self::new(Tone::Refused, title)
    }

    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    pub fn link(mut self, label: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.push(Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }

    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// One line: for platforms that cannot edit, where each update is printed anew.
    pub fn to_line(&self) -> String {
        let mut parts = vec![format!("{} {}", self.tone.symbol(), self.title)];
        parts.extend(self.lines.iter().map(|l| l.replace('\n', " ")));
        parts.extend(
            self.fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.value)),
        );
        parts.extend(self.links.iter().map(|l| format!("{}: {}", l.label, l.url)));
        parts.extend(self.actions.iter().map(Action::hint));
        let mut s = parts.join(" · ");
        if let Some(user) = &self.mention {
            s = format!("@{user} {s}");
        }
        s
    }

    /// Plain text: the symbol and title, then each detail on its own indented line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(user) = &self.mention {
            let _ = write!(s, "@{user} ");
        }
        let _ = write!(s, "{} {}", self.tone.symbol(), self.title);
        for line in &self.lines {
            for l in line.lines() {
                let _ = write!(s, "\n   {l}");
            }
        }
        if !self.fields.is_empty() {
            let fields: Vec<String> = self
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.value))
                .collect();
            let _ = write!(s, "\n   {}", fields.join(" · "));
        }
        for link in &self.links {
            let _ = write!(s, "\n   {}: {}", link.label, link.url);
        }
        for action in &self.actions {
            let _ = write!(s, "\n   {}", action.hint());
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
#[error("chat: {message}")]
pub struct ChatError {
    pub message: String,
    /// The message to edit no longer exists (deleted, or an expired private answer):
    /// posting a new one is the right fallback. Any other failure may be transient,
    /// and posting anew would leave a duplicate.
    pub gone: bool,
}

impl ChatError {
    pub fn new(message: impl Into<String>) -> ChatError {
        ChatError {
            message: message.into(),
            gone: false,
        }
    }

    pub fn gone(message: impl Into<String>) -> ChatError {
        ChatError {
            message: message.into(),
            gone: true,
        }
    }
}

/// What the core asks of a chat platform.
#[async_trait]
pub trait Chat: Send + Sync {
    /// Posts a new message; returns its id so it can be edited later.
    async fn send(&self, to: &Conversation, message: &Message) -> Result<MessageId, ChatError>;

    /// Replaces a message the bot posted earlier.
    async fn edit(
        &self,
        to: &Conversation,
        id: &MessageId,
        message: &Message,
    ) -> Result<(), ChatError>;

    /// `false` for an adapter that must first connect (Discord's gateway): the bot is
    /// not ready until the adapter says it is. A terminal is there from the start.
    fn connected_at_start(&self) -> bool {
        true
    }

    /// The name of a conversation's channel when only its id is known (a route read
    /// from a deployment's payload), so the app's channel rules, which may name
    /// channels, can be applied. By default: the name the conversation carries.
    async fn channel_name(&self, to: &Conversation) -> Option<String> {
        to.channel_name.clone()
    }
}

/// A [`Chat`] that counts every send and edit in the bot's metrics.
pub struct MeteredChat {
    inner: Arc<dyn Chat>,
    metrics: Arc<Metrics>,
}

impl MeteredChat {
    pub fn new(inner: Arc<dyn Chat>, metrics: Arc<Metrics>) -> MeteredChat {
        MeteredChat { inner, metrics }
    }
}

fn counted<T>(metrics: &Metrics, operation: &'static str, r: &Result<T, ChatError>) {
    let result = if r.is_ok() {
        ChatResult::Ok
    } else {
        ChatResult::Error
    };
    metrics.chat_request(operation, result);
}

#[async_trait]
impl Chat for MeteredChat {
    async fn send(&self, to: &Conversation, message: &Message) -> Result<MessageId, ChatError> {
        let r = self.inner.send(to, message).await;
        counted(&self.metrics, "send", &r);
        r
    }

    async fn edit(
        &self,
        to: &Conversation,
        id: &MessageId,
        message: &Message,
    ) -> Result<(), ChatError> {
        let r = self.inner.edit(to, id, message).await;
        counted(&self.metrics, "edit", &r);
        r
    }

    fn connected_at_start(&self) -> bool {
        self.inner.connected_at_start()
    }

    async fn channel_name(&self, to: &Conversation) -> Option<String> {
        self.inner.channel_name(to).await
    }
}

/// Strips the prefix (`!deploy …`) or a leading mention (`@deploybot deploy …`,
/// `<@123> deploy …`) from a chat line. `None` when the line is not for the bot.
pub fn addressed<'a>(
    text: &'a str,
    prefix: &str,
    mentions: &[String],
) -> Option<(Addressing, &'a str)> {
    let t = text.trim_start();
    for m in mentions {
        if let Some(rest) = t.strip_prefix(m.as_str()) {
            let rest = rest.trim_start_matches([':', ',']).trim();
            return Some((Addressing::Direct, rest));
        }
    }
    if !prefix.is_empty() {
        if let Some(rest) = t.strip_prefix(prefix) {
            // `! deploy` is still for us; `!!!` is not a command.
            return Some((Addressing::Prefix, rest.trim()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prefixed_or_mentioned_lines_are_for_the_bot() {
        let mentions = vec!["<@42>".to_string(), "@deploybot".to_string()];
        assert_eq!(
            addressed("!deploy api", "!", &mentions),
            Some((Addressing::Prefix, "deploy api"))
        );
        assert_eq!(
            addressed("<@42> deploy api", "!", &mentions),
            Some((Addressing::Direct, "deploy api"))
        );
        assert_eq!(
            addressed("@deploybot: help", "!", &mentions),
            Some((Addressing::Direct, "help"))
        );
        assert_eq!(addressed("deploy api to staging", "!", &mentions), None);
        assert_eq!(addressed("we should deploy soon", "!", &mentions), None);
    }

    #[test]
    fn a_progress_line_ends_with_the_commands_its_buttons_stand_for() {
        let m = Message::new(
            Tone::Progress(DeploymentState::Failure),
            "Deployment #3: failure",
        )
        .action(Action::Retry {
            command: "deploy api/broken to staging".into(),
        })
        .action(Action::Rollback {
            command: "rollback api in staging".into(),
            replacing: 3,
        });
        assert_eq!(
            m.to_line(),
            "❌ Deployment #3: failure · to try again, type `deploy api/broken to staging` · to roll it back, type `rollback api in staging`"
        );
    }

    #[test]
    fn text_rendering_puts_details_on_indented_lines() {
        let m = Message::new(Tone::Success, "Created deployment #3")
            .line("requested by alice")
            .field("task", "deploy")
            .field("env", "staging")
            .link("logs", "https://example.test/1")
            .action(Action::Force {
                command: "deploy! api to staging".into(),
            });
        assert_eq!(
            m.to_text(),
            "✅ Created deployment #3\n   requested by alice\n   task: deploy · env: staging\n   logs: https://example.test/1\n   to force it, type `deploy! api to staging`"
        );
    }
}
