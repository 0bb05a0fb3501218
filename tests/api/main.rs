//! The black-box suite, one test binary: a real redis-server, real upstreams and the real
//! `authgate` binary on loopback ports. `helpers` starts them; each module is one part of the README.

mod helpers;

mod auth_api;
mod cli;
mod edge;
mod operations;
mod proxy;
mod races;
mod redis_outage;
mod redis_tls;
mod routing;
mod sessions;
mod throttle;
