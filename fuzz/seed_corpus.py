#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/.

The seeds are the project's own examples, in each target's input layout (see the doc
comment at the top of each file in fuzz_targets/): the help examples of every command,
GitHub's webhook fixtures signed with a test secret, the example and demo configs, and
one request per sandbox route. `fuzz/corpus/<target>/` is what fuzzing grew from them
(minimised); run this again after adding examples, then fuzz from both folders.

Usage: python3 fuzz/seed_corpus.py
"""

import hashlib
import json
import pathlib
import re

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


def rust_strings(text):
    """The string literals of a Rust source, unescaped well enough for seeds."""
    out = []
    for m in re.finditer(r'r#"(.*?)"#|"((?:[^"\\]|\\.)*)"', text, re.S):
        if m.group(1) is not None:
            out.append(m.group(1))
        else:
            s = m.group(2)
            s = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda u: chr(int(u.group(1), 16)), s)
            s = s.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
            out.append(s)
    return out


def command_parser():
    lines = set()
    for src in sorted((ROOT / "commands" / "src").glob("*.rs")):
        text = src.read_text()
        for m in re.finditer(r'(?:input|canonical):\s*"((?:[^"\\]|\\.)*)"', text):
            lines.add(m.group(1).replace('\\"', '"'))
    # The chatty vocabulary of the property tests, one word a line and in pairs.
    fuzz_rs = (ROOT / "commands" / "tests" / "fuzz.rs").read_text()
    vocab = rust_strings(fuzz_rs.split("const VOCABULARY")[1].split("];")[0])
    lines.update(vocab)
    lines.update(
        [
            "deploy api/topic to staging -- hotfix for #12",
            "deploy:migrate api to prod/web-1,web-2 force",
            "lock staging on api for 1h30m -- release",
            "deploys api/main in staging last 5",
            "where can i deploy api",
            "what's on staging for api",
            "rollback! api in production -- bad deploy",
            "deplyo api",
            "deploy api to",
            "lock staging for 0s",
            "help deploy",
        ]
    )
    for line in sorted(lines):
        write("command_parser", "seed-" + hashlib.sha1(line.encode()).hexdigest()[:16], line)


WEBHOOK_EVENTS = [
    "ping",
    "deployment",
    "deployment_status",
    "check_run",
    "check_suite",
    "status",
    "push",
    "workflow_run",
    "installation",
]
SECRET = b"fuzz-secret-0123"


def webhook():
    fixtures = ROOT / "fixtures" / "github" / "webhooks"
    for folder in sorted(p for p in fixtures.iterdir() if p.is_dir()):
        event = folder.name
        if event in ("signature", "headers"):
            continue
        for path in sorted(folder.glob("*.json")):
            body = path.read_bytes()
            if event in WEBHOOK_EVENTS:
                head = bytes([WEBHOOK_EVENTS.index(event), 1, len(SECRET)]) + SECRET
            else:
                name = event.encode()
                head = bytes([9, 1, len(SECRET)]) + SECRET + bytes([len(name)]) + name
            write("webhook", f"{event}-{path.stem}", head + body)
    vector = json.loads((fixtures / "signature" / "hmac-sha256-test-vector.github-docs.json").read_text())
    secret = vector["secret"].encode()
    header = vector["x_hub_signature_256"].encode()
    write(
        "webhook",
        "signature-test-vector",
        bytes([0, 3, len(secret)]) + secret + bytes([len(header)]) + header + vector["payload"].encode(),
    )
    for mode in (0, 2, 4):
        write("webhook", f"ping-header-mode-{mode}", bytes([0, mode, len(SECRET)]) + SECRET + b'{"zen":"hi"}')


def config():
    write("config", "bot.toml.example", (ROOT / "bot.toml.example").read_bytes())
    write("config", "demo.toml", (ROOT / "src" / "demo" / "demo.toml").read_bytes())
    tests = (ROOT / "src" / "config.rs").read_text().split("mod tests")[1]
    for i, s in enumerate(rust_strings(tests)):
        if "[" in s and "=" in s:
            write("config", f"test-{i:03}.toml", s)


def sandbox_request():
    source = (FUZZ / "fuzz_targets" / "sandbox_request.rs").read_text()
    words = rust_strings(source.split("const WORDS: &[&str] = &[")[1].split("];")[0])
    headers = rust_strings(source.split("const HEADER_NAMES: &[&str] = &[")[1].split("];")[0])
    methods = ["GET", "POST", "HEAD", "PATCH", "PUT", "DELETE", "OPTIONS"]

    def text(s):
        b = s.encode() if isinstance(s, str) else s
        assert len(b) < 256
        return bytes([len(b)]) + b

    def request(method, credential, path, query=None, extra=(), body=b""):
        out = bytes([methods.index(method), credential])
        segments = [s for s in path.split("/") if s]
        out += bytes([len(segments)])
        for s in segments:
            out += bytes([words.index(s)]) if s in words else bytes([0xC0]) + text(s)
        out += bytes([0]) if query is None else bytes([1]) + text(query)
        out += bytes([len(extra)])
        for name, value in extra:
            out += bytes([headers.index(name)]) + text(value)
        return out + (body.encode() if isinstance(body, str) else body)

    seeds = {
        "repo": request("GET", 1, "/repos/acme/api"),
        "repo-read-only": request("GET", 3, "/repos/acme/api"),
        "repo-narrow": request("GET", 4, "/repos/acme/api"),
        "repo-noscope": request("GET", 5, "/repos/acme/api/deployments"),
        "repo-unknown-token": request("GET", 6, "/repos/acme/api"),
        "repo-anonymous": request("GET", 0, "/repos/acme/api"),
        "repo-spent": request("GET", 0x81, "/repos/acme/api"),
        "deployments-page": request("GET", 1, "/repos/acme/api/deployments", "per_page=1&page=2&environment=staging"),
        "deployments-filter": request("GET", 2, "/repos/acme/api/deployments", "ref=main&task=deploy&sha=x"),
        "create-deployment": request(
            "POST", 1, "/repos/acme/api/deployments",
            body='{"ref":"feature/x","environment":"qa","required_contexts":["ci/build"],"payload":{"a":1},"auto_merge":false}',
        ),
        "create-deployment-read-only": request("POST", 3, "/repos/acme/api/deployments", body='{"ref":"main"}'),
        "deployment": request("GET", 1, "/repos/acme/api/deployments/1"),
        "deployment-statuses": request("GET", 1, "/repos/acme/api/deployments/1/statuses", "per_page=1"),
        "deployment-status": request("GET", 1, "/repos/acme/api/deployments/1/statuses/1"),
        "create-deployment-status": request(
            "POST", 8, "/repos/acme/api/deployments/1/statuses",
            body='{"state":"in_progress","log_url":"http://x/log","description":"d","environment_url":"http://e"}',
        ),
        "commit": request("GET", 1, "/repos/acme/api/commits/{sha}"),
        "commit-short": request("GET", 1, "/repos/acme/api/commits/{short}"),
        "combined-status": request("GET", 1, "/repos/acme/api/commits/main/status"),
        "commit-statuses": request("GET", 1, "/repos/acme/api/commits/feature/x/statuses"),
        "check-runs": request("GET", 1, "/repos/acme/api/commits/main/check-runs", "check_name=test&filter=latest"),
        "create-status": request("POST", 1, "/repos/acme/api/statuses/{sha}", body='{"state":"success","context":"ci/x"}'),
        "branches": request("GET", 1, "/repos/acme/api/branches", "per_page=100"),
        "branch": request("GET", 1, "/repos/acme/api/branches/feature%2Fx"),
        "compare": request("GET", 1, "/repos/acme/api/compare/main...feature/x"),
        "compare-two-dots": request("GET", 1, "/repos/acme/api/compare/main..v1.0"),
        "hooks": request("GET", 1, "/repos/acme/api/hooks"),
        "rate-limit": request("GET", 1, "/rate_limit"),
        "user": request("GET", 1, "/user"),
        "user-installation": request("GET", 8, "/user"),
        "etag": request("GET", 1, "/repos/acme/api", extra=[("if-none-match", 'W/"x", *')]),
        "app": request("GET", 7, "/app"),
        "app-installation": request("GET", 7, "/app/installations/77"),
        "app-token": request("POST", 7, "/app/installations/77/access_tokens", body='{"repositories":["api"]}'),
        "app-hook": request("GET", 7, "/app/hook/config"),
        "app-no-jwt": request("GET", 1, "/app"),
        "page-index": request("GET", 0, "/"),
        "page-repo": request("GET", 0, "/acme/api"),
        "page-run": request("GET", 0, "/acme/api/actions/runs/1"),
        "page-commit": request("GET", 0, "/acme/api/commits/{sha}"),
        "head": request("HEAD", 1, "/repos/acme/api/deployments"),
    }
    seeds["custom-header"] = bytes([0, 9]) + text("token  sandbox-token ") + bytes([2, words.index("repos"), 0xC0]) + text("acme") + bytes([0, 0])
    for name, data in seeds.items():
        write("sandbox_request", name, data)


if __name__ == "__main__":
    command_parser()
    webhook()
    config()
    sandbox_request()
    for target in sorted(p.name for p in SEEDS.iterdir()):
        files = list((SEEDS / target).iterdir())
        print(f"{target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")
