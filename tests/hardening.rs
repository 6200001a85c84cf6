//! What a stranger can do to the listener, tried on the release-like binary with a
//! small descriptor limit: idle and half-sent connections are closed, one host cannot
//! fill the listener, and real deliveries, chat commands and the store keep working.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use deploybot::github::events::sign;

const SECRET: &str = "hardening-secret-0123456789abcdef";

/// `deploybot shell` under `ulimit -n LIMIT` (soft and hard), with a webhook listener
/// on a free port. Returns the child, its stdin, the webhook address, and a channel of
/// stdout lines.
struct Bot {
    child: Child,
    stdin: Option<ChildStdin>,
    webhook: SocketAddr,
    stdout: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Bot {
    fn start(sandbox: &sandbox::Sandbox, fd_limit: u32) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.toml");
        let config = format!(
            "{}\n[webhook]\nlisten = \"127.0.0.1:0\"\nsecret = \"{SECRET}\"\n\n[defaults]\nstatus_timeout = \"5s\"\n\n[log]\nlevel = \"info\"\nformat = \"json\"\n\n[storage]\nurl = \"sqlite://{}\"\n",
            support::CONFIG,
            dir.path().join("state.db").display()
        );
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_deploybot"))
            .args(["shell", "--user", "carol", "--role", "release"])
            .args(["--channel", "deploys", "--config"])
            .arg(&path)
            .env("SANDBOX_URL", sandbox.url())
            .env("SANDBOX_TOKEN", sandbox.token())
            .env_remove("DEPLOYBOT_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn deploybot");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (started_tx, started_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["message"] == "deploybot started" {
                    let _ = started_tx.send(json);
                }
            }
        });
        let started = started_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the startup summary");
        let webhook: SocketAddr = started["webhook"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .trim_end_matches("/webhook")
            .parse()
            .unwrap();
        assert!(
            started["max_connections"].as_u64().unwrap() < u64::from(fd_limit),
            "the connection cap leaves descriptors free: {started}"
        );
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Bot {
            child,
            stdin,
            webhook,
            stdout,
            _dir: dir,
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a stdout line containing `text`.
    fn expect_line(&self, text: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with `{text}` within {bound:?}"),
            }
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed `ping`, sent from 127.0.0.1; the HTTP status.
fn deliver_ping(addr: SocketAddr) -> u16 {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/github/webhooks/ping/repository.octokit-webhooks.json"
    ))
    .unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-github-event: ping\r\nx-github-delivery: ping-1\r\nx-hub-signature-256: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        sign(SECRET.as_bytes(), &body),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A connection from another loopback address (another "host"), that sends `prefix`
/// and then nothing.
fn stalled_from(source: &str, to: SocketAddr, prefix: &[u8]) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).ok()?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(2))
        .ok()?;
    let mut stream: TcpStream = socket.into();
    let _ = stream.write_all(prefix);
    Some(stream)
}

/// Whether the server closed `stream` within `bound` (EOF or reset; an answer
/// before the close, like a 408, is fine).
fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    stream.set_read_timeout(Some(bound)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return started.elapsed() < bound,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_connections_neither_blocks_deliveries_nor_starves_the_bot() {
    let sb = sandbox::Sandbox::start().await.unwrap();
    support::seed(&sb);
    let mut bot = Bot::start(&sb, 256);
    let addr = bot.webhook;

    // One host opens more idle and half-sent connections than the process has
    // descriptors.
    let flood = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for i in 0..400 {
            let prefix: &[u8] = if i % 2 == 0 {
                b""
            } else {
                b"POST /webhook HTTP/1.1\r\nhost: x\r\n"
            };
            if let Some(s) = stalled_from("127.0.0.2", addr, prefix) {
                held.push(s);
            }
        }
        held
    })
    .await
    .unwrap();
    assert!(flood.len() >= 300, "opened {}", flood.len());

    // A real delivery from another address gets through at once…
    let status = tokio::task::spawn_blocking(move || deliver_ping(addr))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // …and chat commands, GitHub and the store still work.
    bot.say("deploy api/topic to staging");
    bot.expect_line("Created deployment #", Duration::from_secs(20));
    bot.say("lock qa -- still works");
    bot.expect_line("locked qa on api", Duration::from_secs(10));
    assert_eq!(sb.deployments("acme/api").len(), 1);

    // The stalled connections are closed by the server, idle and half-sent alike.
    let closed = tokio::task::spawn_blocking(move || {
        let mut flood = flood;
        let mut closed = 0;
        for s in flood.iter_mut().take(40) {
            if closed_within(s, Duration::from_secs(20)) {
                closed += 1;
            }
        }
        closed
    })
    .await
    .unwrap();
    assert_eq!(closed, 40, "every stalled connection was closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let sb = sandbox::Sandbox::start().await.unwrap();
    support::seed(&sb);
    let bot = Bot::start(&sb, 1024);
    let addr = bot.webhook;
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = stalled_from("127.0.0.1", addr, b"POST /webhook HTTP/1.1\r\nhost: x\r\n")
            .expect("connect");
        closed_within(&mut s, Duration::from_secs(30))
    })
    .await
    .unwrap();
    assert!(closed, "closed by the server");
    let took = started.elapsed();
    assert!(
        took >= deploybot::server::HEADER_TIMEOUT - Duration::from_secs(1),
        "closed after {took:?}, before the header timeout"
    );
}

#[tokio::test]
async fn a_huge_line_is_refused_whole_and_never_echoed() {
    let t = support::TestBot::start().await;
    let huge = format!("frobnicate{}", "x".repeat(1_000_000));
    let out = t.say(&huge).await;
    assert!(
        out.contains("commands are at most 2000"),
        "{}",
        &out[..out.len().min(300)]
    );
    assert!(out.len() < 500, "the answer is short: {} bytes", out.len());
    // Under the limit, an unknown word is echoed, but cut short.
    let long_word = "y".repeat(1500);
    let out = t.say(&format!("@bot {long_word}")).await;
    assert!(out.len() < 500, "{} bytes", out.len());
    assert!(t.sandbox.requests().is_empty(), "nothing reached GitHub");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shell_skips_a_line_that_is_not_utf8_and_keeps_reading() {
    let sb = sandbox::Sandbox::start().await.unwrap();
    support::seed(&sb);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(&path, support::CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deploybot"))
        .current_dir(dir.path())
        .args(["shell", "--user", "carol", "--role", "release"])
        .args(["--channel", "deploys", "--config"])
        .arg(&path)
        .env("SANDBOX_URL", sb.url())
        .env("SANDBOX_TOKEN", sb.token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"help \xff\xfe lock\n").unwrap();
    stdin.write_all(b"deploy api/topic to staging\n").unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1 is not valid UTF-8"), "{stderr}");
    assert!(stdout.contains("Created deployment #"), "{stdout}");
}
