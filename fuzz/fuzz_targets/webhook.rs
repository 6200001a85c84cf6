//! The webhook's way in: `verify_signature` on any `X-Hub-Signature-256` header, then
//! `Event::parse` on any event name and body, as `src/webhook.rs` does. The input also
//! says how to sign the body, so that most runs get past the signature to the decoder.
//!
//! Input layout (see `seed_corpus.py` for how the seeds are made):
//!
//! ```text
//! byte 0   event: ping, deployment, deployment_status, check_run, check_suite,
//!          status, push, workflow_run, installation, or (9) a name read from the input
//! byte 1   header: 0 none, 1 signed, 2 signed with uppercase hex and blanks around,
//!          3 any text read from the input, 4 signed then one hex digit changed,
//!          5 `sha256=` then any text read from the input
//! byte 2   secret length (mod 48), then the secret
//! [len, bytes]  the event name, for event 9
//! [len, bytes]  the header text, for headers 3 and 5
//! rest     the body
//! ```
//!
//! Never panics; a correct signature verifies, a wrong one never does.
#![no_main]

use deploybot::github::events::{sign, verify_signature, Event};
use libfuzzer_sys::fuzz_target;

const EVENTS: &[&str] = &[
    "ping",
    "deployment",
    "deployment_status",
    "check_run",
    "check_suite",
    "status",
    "push",
    "workflow_run",
    "installation",
];

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

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn text(&mut self) -> String {
        let n = self.byte() as usize;
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let event_choice = input.byte() as usize % (EVENTS.len() + 1);
    let header_mode = input.byte() % 6;
    let secret_len = input.byte() as usize % 48;
    let secret = input.bytes(secret_len).to_vec();
    let event = match EVENTS.get(event_choice) {
        Some(e) => e.to_string(),
        None => input.text(),
    };
    let custom_header = matches!(header_mode, 3 | 5).then(|| input.text());
    let body = input.0;

    let signature = sign(&secret, body);
    let header = match header_mode {
        0 => None,
        1 => Some(signature.clone()),
        2 => Some(format!(
            " \t{}{} ",
            "sha256=",
            signature["sha256=".len()..].to_ascii_uppercase()
        )),
        3 => custom_header.clone(),
        4 => {
            let mut wrong = signature.clone().into_bytes();
            let i = "sha256=".len() + body.len() % 64;
            wrong[i] = if wrong[i] == b'0' { b'1' } else { b'0' };
            Some(String::from_utf8(wrong).unwrap())
        }
        _ => custom_header.map(|h| format!("sha256={h}")),
    };

    let verified = verify_signature(&secret, body, header.as_deref());
    match header_mode {
        1 | 2 => assert_eq!(verified, Ok(()), "a correct signature is refused"),
        0 | 4 => assert!(verified.is_err(), "a missing or wrong signature passes"),
        _ => {
            if verified.is_ok() {
                // Only the body's own HMAC passes, whatever the spelling of its hex.
                let given = header.as_deref().unwrap_or_default().trim();
                assert!(
                    given.len() == signature.len()
                        && given.starts_with("sha256=")
                        && given[7..].eq_ignore_ascii_case(&signature[7..]),
                    "forged signature {given:?} passes"
                );
            }
        }
    }
    if let Err(why) = verified {
        assert!(!why.is_empty());
        return;
    }

    match Event::parse(&event, body) {
        Ok(Event::Ping(ping)) => {
            let _ = format!(
                "pong{}",
                ping.zen.map(|z| format!(" ({z})")).unwrap_or_default()
            );
        }
        Ok(Event::Deployment(e)) => {
            let _ = e.repository.name();
            let _ = e.deployment.deploybot();
            let _ = format!("{:?}", e);
        }
        Ok(Event::DeploymentStatus(e)) => {
            let _ = e.repository.name();
            let _ = e.deployment.deploybot();
            let _ = e.deployment_status.state();
            let _ = e.deployment_status.log_link();
            let _ = e.deployment_status.environment_link();
            let _ = format!("{:?}", e);
        }
        Ok(Event::Checks(e)) => {
            assert!(matches!(event.as_str(), "status" | "check_run" | "check_suite"));
            let _ = e.repository.name();
        }
        Ok(Event::Ignored(name)) => assert_eq!(name, event),
        Err(why) => assert!(why.contains("not a valid")),
    }
});
