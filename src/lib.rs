//! deploybot: chat-driven deploys through GitHub Deployments.
//!
//! See ARCHITECTURE.md for the map. In short: adapters (`chat::shell`, the Discord
//! adapter, the webhook server) call the core ([`bot::Bot`] and `flow/`), which talks
//! to the [`github::GitHub`], [`chat::Chat`] and store ports.

pub mod bot;
pub mod chat;
pub mod clock;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod flow;
pub mod freeze;
pub mod github;
pub mod history;
pub mod inbox;
pub mod intents;
pub mod lease;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod policy;
pub mod resolve;
pub mod routing;
pub mod server;
pub mod service;
pub mod store;
pub mod tracker;
pub mod waits;
pub mod webhook;
