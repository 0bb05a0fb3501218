//! The black-box suite, one test binary: a real redis-server (a Redis Cluster with
//! `AUTHGATE_TEST_REDIS=cluster`), real upstreams and the real `authgate` binary on loopback
//! ports. `helpers` starts them; each module is one documented part (README, docs/), run by
//! the passes of scripts/test.sh that passes.txt assigns it.

// Setting up a test (a process, a port, a file) either works or the test must
// fail loudly there: unwrap and expect are the point. Helpers are `pub` for the
// modules of this binary, not for anyone else.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod helpers;

mod admin;
mod auth_api;
mod browser;
mod browser_accounts;
mod browser_edges;
mod browser_hosts;
mod browser_refresh;
mod chromium;
mod cli;
mod cluster;
mod contract;
mod cors;
mod dead_peer;
mod django_import;
mod edge;
mod engine_parity;
mod fast_path;
mod grpc;
mod grpc_health;
mod h2c;
mod http2;
mod keys;
mod operations;
mod proxy;
mod races;
mod redis_outage;
mod redis_tls;
mod roles;
mod routing;
mod sessions;
mod settings;
mod shutdown;
mod smuggling;
mod streams;
mod suite;
mod throttle;
mod websocket;
