//! Integration tests: the sandbox over real HTTP on loopback.

mod common;

mod access;
mod api;
mod apps;
mod deployer;
mod deployments;
mod faults;
mod graphql;
mod shapes;
mod webhooks;
