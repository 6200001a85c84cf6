//! A [`Message`] as Discord shows it: one embed (colour and title by tone, the lines as
//! its description, fields inline), link buttons for the links, action buttons for the
//! actions, and a mention as the message content, allowed to ping that user only.
//!
//! Everything is cut to Discord's limits here, so a long reply never becomes a failed
//! request: Discord refuses the whole message when one part is too long.

use serenity::builder::{
    CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed, CreateMessage,
    EditInteractionResponse, EditMessage,
};
use serenity::model::application::ButtonStyle;
use serenity::model::id::UserId;

use super::buttons::Buttons;
use crate::chat::{Action, Message, Tone};
use crate::model::DeploymentState;

/// Discord's limits, in characters (Unicode scalar values) or items.
pub mod limits {
    pub const CONTENT: usize = 2000;
    pub const TITLE: usize = 256;
    pub const DESCRIPTION: usize = 4096;
    pub const FIELDS: usize = 25;
    pub const FIELD_NAME: usize = 256;
    pub const FIELD_VALUE: usize = 1024;
    /// Title + description + field names and values + footer + author, together.
    pub const EMBED_TOTAL: usize = 6000;
    pub const ROWS: usize = 5;
    pub const BUTTONS_PER_ROW: usize = 5;
    pub const LABEL: usize = 80;
    pub const CUSTOM_ID: usize = 100;
    pub const URL: usize = 512;
}

/// The parts of a Discord message, already within limits; turned into whichever
/// builder the call needs (post, edit, interaction answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `<@id>` when the message mentions someone; empty otherwise.
    pub content: String,
    pub mention: Option<UserId>,
    pub colour: u32,
    pub title: String,
    pub description: String,
    /// (name, value), shown inline.
    pub fields: Vec<(String, String)>,
    pub rows: Vec<Vec<Button>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Button {
    Link {
        label: String,
        url: String,
    },
    Action {
        label: String,
        custom_id: String,
        style: Style,
        /// Shown greyed out: the message's next step was taken.
        disabled: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Primary,
    Success,
    Danger,
    Secondary,
}

/// The embed colour of a tone; a deployment's progress takes its state's colour.
pub fn colour(tone: Tone) -> u32 {
    const BLURPLE: u32 = 0x5865F2;
    const GREY: u32 = 0x99AAB5;
    const BLUE: u32 = 0x3498DB;
    const GREEN: u32 = 0x57F287;
    const YELLOW: u32 = 0xFEE75C;
    const ORANGE: u32 = 0xE67E22;
    const RED: u32 = 0xED4245;
    match tone {
        Tone::Info => BLURPLE,
        Tone::Working => GREY,
        Tone::Success => GREEN,
        Tone::Warning => YELLOW,
        Tone::Refused => ORANGE,
        Tone::Failed => RED,
        Tone::Progress(state) => match state {
            DeploymentState::Created | DeploymentState::Queued | DeploymentState::Pending => GREY,
            DeploymentState::InProgress => BLUE,
            DeploymentState::Success => GREEN,
            DeploymentState::Failure | DeploymentState::Error => RED,
            DeploymentState::Inactive => GREY,
        },
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Discord refuses empty field names and values.
fn non_empty(s: String) -> String {
    if s.trim().is_empty() {
        "—".to_string()
    } else {
        s
    }
}

/// Only absolute http(s) URLs within the limit can be link buttons.
fn linkable(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && chars(url) <= limits::URL
        && !url.chars().any(char::is_whitespace)
}

/// Lays a message out for Discord. `buttons` turns actions into custom ids.
pub fn render(message: &Message, buttons: &Buttons) -> Rendered {
    let title = truncate(
        &format!("{} {}", message.tone.symbol(), message.title),
        limits::TITLE,
    );
    let mut description = message.lines.join("\n");
    // Links that cannot be buttons (too long, not http) stay readable in the text.
    let (link_buttons, text_links): (Vec<_>, Vec<_>) =
        message.links.iter().partition(|l| linkable(&l.url));
    for link in text_links {
        if !description.is_empty() {
            description.push('\n');
        }
        description.push_str(&format!("{}: {}", link.label, link.url));
    }
    let mut description = truncate(&description, limits::DESCRIPTION);

    let mut fields: Vec<(String, String)> = message
        .fields
        .iter()
        .take(limits::FIELDS)
        .map(|f| {
            (
                non_empty(truncate(&f.name, limits::FIELD_NAME)),
                non_empty(truncate(&f.value, limits::FIELD_VALUE)),
            )
        })
        .collect();

    // The total: drop fields from the end, then shorten the description.
    let total = |title: &str, description: &str, fields: &[(String, String)]| {
        chars(title)
            + chars(description)
            + fields
                .iter()
                .map(|(n, v)| chars(n) + chars(v))
                .sum::<usize>()
    };
    while total(&title, &description, &fields) > limits::EMBED_TOTAL && !fields.is_empty() {
        fields.pop();
    }
    let over = total(&title, &description, &fields).saturating_sub(limits::EMBED_TOTAL);
    if over > 0 {
        description = truncate(&description, chars(&description).saturating_sub(over));
    }

    let mut all: Vec<Button> = Vec::new();
    for action in &message.actions {
        let Some(custom_id) = buttons.custom_id(action) else {
            continue;
        };
        let (label, style) = match action {
            Action::Force { .. } => ("Force deploy", Style::Danger),
            Action::Rollback { .. } => ("Roll back", Style::Danger),
            Action::Retry { .. } => ("Retry", Style::Primary),
            Action::Unlock { .. } => ("Unlock", Style::Secondary),
            Action::Confirm { .. } => ("Confirm", Style::Success),
            Action::Cancel { .. } => ("Cancel", Style::Secondary),
            Action::Queue { .. } => ("Queue", Style::Primary),
            Action::Keep { .. } => ("Keep", Style::Secondary),
            Action::WhenGreen { .. } => ("Deploy when green", Style::Primary),
        };
        // Custom ids must be unique within a message.
        if all
            .iter()
            .any(|b| matches!(b, Button::Action { custom_id: c, .. } if *c == custom_id))
        {
            continue;
        }
        all.push(Button::Action {
            label: label.to_string(),
            custom_id,
            style,
            disabled: false,
        });
    }
    for link in link_buttons {
        all.push(Button::Link {
            label: non_empty(truncate(&link.label, limits::LABEL)),
            url: link.url.clone(),
        });
    }
    all.truncate(limits::ROWS * limits::BUTTONS_PER_ROW);
    let rows = all
        .chunks(limits::BUTTONS_PER_ROW)
        .map(<[Button]>::to_vec)
        .collect();

    let mention = message
        .mention
        .as_deref()
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|id| *id != 0)
        .map(UserId::new);
    let content = mention
        .map(|id| truncate(&format!("<@{id}>"), limits::CONTENT))
        .unwrap_or_default();

    Rendered {
        content,
        mention,
        colour: colour(message.tone),
        title,
        description,
        fields,
        rows,
    }
}

impl Rendered {
    /// Greys out every action button (links stay): the message's next step was taken.
    pub fn disable_actions(&mut self) {
        for button in self.rows.iter_mut().flatten() {
            if let Button::Action { disabled, .. } = button {
                *disabled = true;
            }
        }
    }

    pub fn embed(&self) -> CreateEmbed {
        let mut e = CreateEmbed::new().colour(self.colour).title(&self.title);
        if !self.description.is_empty() {
            e = e.description(&self.description);
        }
        e.fields(
            self.fields
                .iter()
                .map(|(n, v)| (n.clone(), v.clone(), true)),
        )
    }

    pub fn components(&self) -> Vec<CreateActionRow> {
        self.rows
            .iter()
            .map(|row| {
                CreateActionRow::Buttons(
                    row.iter()
                        .map(|b| match b {
                            Button::Link { label, url } => {
                                CreateButton::new_link(url.clone()).label(label.clone())
                            }
                            Button::Action {
                                label,
                                custom_id,
                                style,
                                disabled,
                            } => CreateButton::new(custom_id.clone())
                                .label(label.clone())
                                .disabled(*disabled)
                                .style(match style {
                                    Style::Primary => ButtonStyle::Primary,
                                    Style::Success => ButtonStyle::Success,
                                    Style::Danger => ButtonStyle::Danger,
                                    Style::Secondary => ButtonStyle::Secondary,
                                }),
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// Pings the mentioned user and nobody else, whatever the text contains.
    pub fn allowed_mentions(&self) -> CreateAllowedMentions {
        match self.mention {
            Some(id) => CreateAllowedMentions::new().users([id]),
            None => CreateAllowedMentions::new().empty_users().empty_roles(),
        }
    }

    pub fn create(&self) -> CreateMessage {
        let mut m = CreateMessage::new()
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(self.allowed_mentions());
        if !self.content.is_empty() {
            m = m.content(&self.content);
        }
        m
    }

    /// An edit replaces content, embed and buttons: nothing of the old state survives.
    pub fn edit(&self) -> EditMessage {
        EditMessage::new()
            .content(&self.content)
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(self.allowed_mentions())
    }

    pub fn edit_interaction(&self) -> EditInteractionResponse {
        EditInteractionResponse::new()
            .content(&self.content)
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(self.allowed_mentions())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Message;

    fn buttons() -> Buttons {
        Buttons::default()
    }

    #[test]
    fn progress_takes_the_colour_of_its_state() {
        assert_eq!(
            colour(Tone::Progress(DeploymentState::Success)),
            colour(Tone::Success)
        );
        assert_eq!(
            colour(Tone::Progress(DeploymentState::Failure)),
            colour(Tone::Failed)
        );
        assert_ne!(
            colour(Tone::Progress(DeploymentState::InProgress)),
            colour(Tone::Progress(DeploymentState::Queued))
        );
    }

    #[test]
    fn a_message_becomes_one_embed_with_inline_fields_and_link_buttons() {
        let mut m = Message::new(Tone::Success, "Deployed")
            .line("first")
            .line("second")
            .field("app", "api")
            .field("", "")
            .link("logs", "https://ci.example.test/run/1")
            .link("local", "file:///tmp/x");
        m.mention = Some("42".into());
        let r = render(&m, &buttons());
        assert_eq!(r.title, "✅ Deployed");
        assert_eq!(r.description, "first\nsecond\nlocal: file:///tmp/x");
        assert_eq!(
            r.fields,
            vec![("app".into(), "api".into()), ("—".into(), "—".into())]
        );
        assert_eq!(
            r.rows,
            vec![vec![Button::Link {
                label: "logs".into(),
                url: "https://ci.example.test/run/1".into()
            }]]
        );
        assert_eq!(r.content, "<@42>");
        assert_eq!(r.mention, Some(UserId::new(42)));
    }

    #[test]
    fn everything_is_cut_to_discords_limits() {
        let mut m = Message::new(Tone::Info, "t".repeat(1000));
        for _ in 0..10 {
            m = m.line("d".repeat(1000));
        }
        for i in 0..40 {
            m = m.field(format!("{i}{}", "n".repeat(300)), "v".repeat(2000));
        }
        for i in 0..40 {
            m = m.link(
                format!("{i}{}", "l".repeat(100)),
                format!("https://x.test/{i}"),
            );
        }
        let r = render(&m, &buttons());
        assert_eq!(chars(&r.title), limits::TITLE);
        assert!(r.title.ends_with('…'));
        assert!(chars(&r.description) <= limits::DESCRIPTION);
        assert!(r.fields.len() <= limits::FIELDS);
        for (n, v) in &r.fields {
            assert!(chars(n) <= limits::FIELD_NAME && chars(v) <= limits::FIELD_VALUE);
        }
        let total = chars(&r.title)
            + chars(&r.description)
            + r.fields
                .iter()
                .map(|(n, v)| chars(n) + chars(v))
                .sum::<usize>();
        assert!(total <= limits::EMBED_TOTAL, "{total}");
        assert!(r.rows.len() <= limits::ROWS);
        for row in &r.rows {
            assert!(row.len() <= limits::BUTTONS_PER_ROW);
            for b in row {
                if let Button::Link { label, .. } = b {
                    assert!(chars(label) <= limits::LABEL);
                }
            }
        }
    }

    #[test]
    fn a_huge_description_alone_still_fits_the_total() {
        let m = Message::new(Tone::Info, "x")
            .line("y".repeat(10_000))
            .field("a", "b".repeat(1024))
            .field("c", "d".repeat(1024));
        let r = render(&m, &buttons());
        assert!(chars(&r.description) <= limits::DESCRIPTION);
        let total = chars(&r.title)
            + chars(&r.description)
            + r.fields
                .iter()
                .map(|(n, v)| chars(n) + chars(v))
                .sum::<usize>();
        assert!(total <= limits::EMBED_TOTAL);
    }

    #[test]
    fn actions_become_buttons_with_short_unique_ids() {
        let m = Message::new(Tone::Failed, "Not deployed")
            .action(Action::Force {
                command: format!("deploy! api/{} to staging", "x".repeat(200)),
            })
            .action(Action::Confirm { id: "7".into() })
            .action(Action::Cancel { id: "7".into() })
            .action(Action::Cancel { id: "7".into() });
        let r = render(&m, &buttons());
        let ids: Vec<&str> = r.rows[0]
            .iter()
            .filter_map(|b| match b {
                Button::Action { custom_id, .. } => Some(custom_id.as_str()),
                Button::Link { .. } => None,
            })
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids.iter().all(|id| id.chars().count() <= limits::CUSTOM_ID));
    }

    #[test]
    fn a_mention_that_is_not_a_discord_id_pings_nobody() {
        let mut m = Message::info("hi");
        m.mention = Some("alice".into());
        let r = render(&m, &buttons());
        assert!(r.content.is_empty());
        assert_eq!(r.mention, None);
    }
}
