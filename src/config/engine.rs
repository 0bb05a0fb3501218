//! `http1_engine`: which of authgate's HTTP/1 servers takes a client connection, and the two older keys it replaces.
//!
//! `idle_parking` and `fast_path` used to be two booleans, and one of their
//! four combinations (`fast_path: true` without `idle_parking`) was accepted
//! and did nothing: the fast path is reached only from a parked connection.
//! One setting with three values has no such combination.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// The HTTP/1 server of the plain and TLS listeners (`docs/configuration.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Http1Engine {
    /// Idle connections parked outside Pingora (`proxy/h1/mod.rs`), and plain
    /// body-less GET/HEAD requests served by `proxy/h1/fast_path.rs`.
    #[default]
    Fast,
    /// Parked idle connections; every request through pingora-proxy.
    Parked,
    /// Pingora's own keep-alive loop and pingora-proxy for everything.
    Pingora,
}

impl Http1Engine {
    /// Whether idle connections wait in `proxy/h1/mod.rs`.
    pub fn parks(self) -> bool {
        self != Http1Engine::Pingora
    }

    /// Whether the body-less fast path serves what it can.
    pub fn fast_path(self) -> bool {
        self == Http1Engine::Fast
    }
}

/// The engine the three keys name, and the deprecation warning to log at
/// start when the older keys were used. Both kinds at once is refused: which
/// one was meant cannot be known.
pub(super) fn resolve(
    engine: Option<Http1Engine>,
    idle_parking: Option<bool>,
    fast_path: Option<bool>,
) -> Result<(Http1Engine, Option<String>), ConfigError> {
    let old = idle_parking.is_some() || fast_path.is_some();
    match engine {
        Some(_) if old => Err(invalid(
            "http1_engine",
            "set either http1_engine or the deprecated idle_parking/fast_path, not both",
        )),
        Some(e) => Ok((e, None)),
        None if !old => Ok((Http1Engine::default(), None)),
        None => {
            let (engine, note) = match (idle_parking.unwrap_or(true), fast_path.unwrap_or(true)) {
                (true, true) => (Http1Engine::Fast, ""),
                (true, false) => (Http1Engine::Parked, ""),
                (false, false) => (Http1Engine::Pingora, ""),
                (false, true) => (
                    Http1Engine::Pingora,
                    " (fast_path: true had no effect without idle_parking)",
                ),
            };
            let name = format!("{engine:?}").to_lowercase();
            Ok((
                engine,
                Some(format!(
                    "idle_parking and fast_path are deprecated: this is `http1_engine: {name}`{note}"
                )),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_keys_map_onto_one_engine_with_a_warning() {
        let e = |p, f| resolve(None, p, f).unwrap();
        assert_eq!(e(None, None), (Http1Engine::Fast, None));
        assert_eq!(e(Some(true), Some(true)).0, Http1Engine::Fast);
        assert_eq!(e(None, Some(false)).0, Http1Engine::Parked);
        assert_eq!(e(Some(false), Some(false)).0, Http1Engine::Pingora);
        let (engine, warning) = e(Some(false), None);
        assert_eq!(engine, Http1Engine::Pingora);
        let warning = warning.unwrap();
        assert!(
            warning.contains("http1_engine: pingora") && warning.contains("no effect"),
            "{warning}"
        );
        assert!(e(Some(true), None)
            .1
            .unwrap()
            .contains("http1_engine: fast"));
    }

    #[test]
    fn the_new_key_alone_or_refused_beside_an_old_one() {
        assert_eq!(
            resolve(Some(Http1Engine::Parked), None, None).unwrap(),
            (Http1Engine::Parked, None)
        );
        let err = resolve(Some(Http1Engine::Fast), None, Some(false)).unwrap_err();
        assert!(err.to_string().contains("http1_engine"), "{err}");
        assert!(!Http1Engine::Pingora.parks() && Http1Engine::Parked.parks());
        assert!(Http1Engine::Fast.fast_path() && !Http1Engine::Parked.fast_path());
    }
}
