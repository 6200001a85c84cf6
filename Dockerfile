# syntax=docker/dockerfile:1
#
# deploybot's container image.
#
#   docker build -t deploybot .
#   docker run -d --name deploybot --init \
#     -v "$PWD/bot.toml:/etc/deploybot/bot.toml:ro" -v deploybot-data:/data \
#     -e GITHUB_TOKEN -e DISCORD_TOKEN -e DEPLOYBOT_WEBHOOK_SECRET \
#     -p 8787:8787 --stop-timeout 90 deploybot
#
# The config is read from /etc/deploybot/bot.toml (mount it; secrets stay in the
# environment through ${VAR}), the SQLite database lives in the /data volume
# (`[storage] url = "sqlite://deploybot.db"`, relative to the working directory
# /data), and `[webhook] listen` must be "0.0.0.0:8787" for the published port to
# reach it. See "Install and run as a service" in README.md.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# The slim Rust image already has gcc and libc6-dev, all that ring and the bundled
# SQLite (libsqlite3-sys) need to compile their C parts.
WORKDIR /src

# Dependencies first, in a layer of their own: the manifests and the lock file with
# empty stand-ins for the workspace's crates. A change to deploybot's code alone
# reuses this layer instead of compiling ~300 crates again.
COPY Cargo.toml Cargo.lock ./
COPY commands/Cargo.toml commands/
COPY sandbox/Cargo.toml sandbox/
RUN mkdir -p src commands/src sandbox/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs commands/src/lib.rs sandbox/src/lib.rs \
    && cargo build --release --locked --bin deploybot \
    && rm -rf src commands/src sandbox/src

# The real sources. sqlx::migrate! embeds migrations/ at compile time. COPY keeps
# the files' modification times, which can be older than the stand-ins built
# above, so they are touched: cargo then rebuilds the workspace's own crates
# instead of taking the stand-ins for up to date.
COPY src src
COPY commands/src commands/src
COPY sandbox/src sandbox/src
COPY migrations migrations
RUN find src commands/src sandbox/src migrations -type f -exec touch {} + \
    && cargo build --release --locked --bin deploybot \
    && install -D -m 0755 target/release/deploybot /out/deploybot

# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
# debian:bookworm-slim rather than distroless: the HEALTHCHECK needs an HTTP client
# (curl) and deploybot has no health subcommand of its own. The binary needs only
# glibc and libgcc_s (SQLite is compiled in). No ca-certificates: deploybot's TLS
# (reqwest and serenity over rustls) trusts the Mozilla roots built into the binary
# (webpki-roots), not the system store, and the health check is plain HTTP on
# loopback.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="deploybot" \
      org.opencontainers.image.description="A ChatOps bot for chat-driven deploys through GitHub Deployments, driven from Discord" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:${DEBIAN_RELEASE}-slim"

# Not pinning curl's version (DL3008): Debian's archive keeps only the current
# point release of a package, so a pinned version stops installing at the next
# security update; the base image tag fixes the release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 deploybot \
    && useradd --system --uid 10001 --gid deploybot --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin deploybot \
    && install -d -o deploybot -g deploybot -m 0700 /data \
    && install -d -m 0755 /etc/deploybot

COPY --from=builder /out/deploybot /usr/local/bin/deploybot
COPY bot.toml.example /usr/share/doc/deploybot/bot.toml.example

ENV DEPLOYBOT_CONFIG=/etc/deploybot/bot.toml \
    DEPLOYBOT_HEALTHCHECK_URL=http://127.0.0.1:8787/healthz

# Numeric, so that a runtime's "must not run as root" check can verify it.
USER 10001:10001
WORKDIR /data
# The SQLite database and its -wal/-shm files. Declared after /data is created and
# owned by the deploybot user, so a new named volume starts out writable by it.
VOLUME ["/data"]

# `[webhook] listen`: GitHub's deliveries, and /healthz, /readyz, /metrics unless
# `[metrics] listen` moves those elsewhere.
EXPOSE 8787

# /healthz answers 200 while the process is alive (liveness; /readyz is readiness).
# Moved the endpoints ([metrics] listen) or the port? Set DEPLOYBOT_HEALTHCHECK_URL.
# curl's own exit codes (22, 7, 28…) are folded into 1, Docker's "unhealthy".
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null --max-time 4 \"$DEPLOYBOT_HEALTHCHECK_URL\" || exit 1"]

# On SIGTERM deploybot closes the Discord gateway, lets commands in flight finish
# and gives running deployments a bounded time to report (status_timeout, at most
# 20 s): it is gone within about a minute. Allow 90 s: `docker stop -t 90`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["deploybot"]
CMD ["run"]
