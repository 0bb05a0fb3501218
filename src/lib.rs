//! authgate: a Pingora reverse proxy that serves an auth API and lets only verified users through to upstreams.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod edge;
pub mod error;
pub mod events;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod run_dir;
pub mod shutdown;
pub mod startup;
pub mod store;
