//! The terminal as a chat: each input line is a message from one user in one channel;
//! everything the bot says (replies and later edits) is printed.
//!
//! Used by `deploybot shell` and `deploybot demo`, and by the integration tests, which
//! drive it with in-memory input and output.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{Addressing, Chat, ChatError, ChatUser, Conversation, Message, MessageId, Request};
use crate::bot::Bot;

pub const ADAPTER: &str = "shell";

/// Who is typing, and where.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub roles: Vec<String>,
    pub channel: String,
}

impl Identity {
    pub fn conversation(&self) -> Conversation {
        Conversation {
            adapter: ADAPTER.to_string(),
            channel: self.channel.clone(),
            channel_name: Some(self.channel.clone()),
            thread: None,
            interaction: None,
        }
    }

    pub fn chat_user(&self) -> ChatUser {
        ChatUser {
            id: self.user.clone(),
            name: self.user.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// A [`Chat`] that prints to a writer (stdout, or a buffer in tests).
pub struct ShellChat {
    out: Mutex<Box<dyn Write + Send>>,
    next_id: AtomicU64,
}

impl ShellChat {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        ShellChat {
            out: Mutex::new(out),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    fn print(&self, to: &Conversation, text: &str) -> Result<(), ChatError> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| ChatError::new("output lock poisoned"))?;
        // Made whole first: one write for the message, not one per piece (stdout is
        // line-buffered, and a reader of the pipe is woken for each write).
        let mut line = if to.channel_name.as_deref() == Some(&to.channel) {
            format!("[#{}] ", to.channel)
        } else {
            format!("[{}] ", to.display())
        };
        line.push_str(text);
        line.push('\n');
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| ChatError::new(e.to_string()))
    }
}

#[async_trait]
impl Chat for ShellChat {
    async fn send(&self, to: &Conversation, message: &Message) -> Result<MessageId, ChatError> {
        self.print(to, &message.to_text())?;
        Ok(MessageId(format!(
            "shell-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )))
    }

    async fn edit(
        &self,
        to: &Conversation,
        _id: &MessageId,
        message: &Message,
    ) -> Result<(), ChatError> {
        // A terminal cannot change what it printed: an update is printed anew, and a
        // deployment's progress as one line per update.
        match message.tone {
            super::Tone::Progress(_) => self.print(to, &message.to_line()),
            _ => self.print(to, &message.to_text()),
        }
    }
}

/// Reads lines until EOF (or `exit`), handing each to the bot in order. Returns after
/// the last command's work is done.
pub async fn run<R: AsyncBufRead + Unpin>(bot: &Bot, identity: &Identity, input: R, prefix: &str) {
    let mut input = input;
    let mut raw = Vec::new();
    let mut n = 0u64;
    let mut read = 0u64;
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw).await {
            Ok(0) => break,
            Ok(_) => read += 1,
            Err(e) => {
                tracing::warn!(error = %e, "reading input failed");
                break;
            }
        }
        // A line that is not UTF-8 (a stray binary paste) is skipped, not the end.
        let Ok(line) = std::str::from_utf8(&raw) else {
            eprintln!("deploybot: line {read} is not valid UTF-8; skipped it");
            continue;
        };
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if matches!(text, "exit" | "quit") {
            break;
        }
        // People used to the chat prefix type it here too.
        let text = text.strip_prefix(prefix).map(str::trim).unwrap_or(text);
        n += 1;
        bot.handle(Request {
            conversation: identity.conversation(),
            message_id: Some(format!("line-{n}")),
            user: identity.chat_user(),
            text: text.to_string(),
            addressing: Addressing::Direct,
            pressed: None,
        })
        .await;
    }
}

/// A writer that appends to a shared buffer: lets tests read what the shell printed.
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer lock")).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
