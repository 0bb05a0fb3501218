//! The `registration` section: whether `POST /register` is open, and the lowest id it hands out.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// How self-service registration behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Off: `POST /register` answers 403 `registration_closed` (for example until
    /// the final import of a Django service's users, so nobody takes an id first).
    pub enabled: bool,
    /// The lowest id a registration gets: a floor under `user:next_id`, so ids
    /// handed out here never meet the ids of users imported later.
    pub first_id: u64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            enabled: true,
            first_id: 1,
        }
    }
}

/// The highest floor accepted: ids stay exact in Redis's Lua (doubles) and in JSON.
const MAX_FIRST_ID: u64 = 1 << 53;

impl RegistrationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_FIRST_ID).contains(&self.first_id) {
            return Err(invalid(
                "registration.first_id",
                format!("must be between 1 and {MAX_FIRST_ID}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn defaults_open_from_one_and_bad_floors_are_refused() {
        let load = |y: &str| {
            Config::from_yaml(y, Path::new("x.yaml"))
                .and_then(|c| c.validate().map(|()| c))
                .map_err(|e| e.to_string())
        };
        let c = load("").unwrap();
        assert!(c.registration.enabled);
        assert_eq!(c.registration.first_id, 1);
        let c = load("registration: {enabled: false, first_id: 1000000}\n").unwrap();
        assert!(!c.registration.enabled);
        assert_eq!(c.registration.first_id, 1_000_000);
        let err = load("registration: {first_id: 0}\n").unwrap_err();
        assert!(err.contains("registration.first_id"), "{err}");
        let err = load("registration: {open: true}\n").unwrap_err();
        assert!(err.contains("open"), "{err}");
    }
}
