//! The `throttle` section: how many failed logins, login attempts, registrations and password changes a window allows.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// At most `limit` events in any `window_seconds` (a sliding window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Events allowed per window; the next one is refused.
    pub limit: u64,
    /// Length of the window.
    pub window_seconds: u64,
}

impl Rate {
    const fn new(limit: u64, window_seconds: u64) -> Rate {
        Rate {
            limit,
            window_seconds,
        }
    }
}

/// Longest window accepted (30 days): counters live twice as long.
const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

/// Throttles, shared by every instance through Redis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Off: no throttle is checked or counted.
    pub enabled: bool,
    /// Failed logins per account from one client IP.
    pub login_per_account_ip: Rate,
    /// Failed logins per account, from anywhere.
    pub login_per_account: Rate,
    /// Failed logins per client IP, whatever the account.
    pub login_per_ip: Rate,
    /// Login attempts per account, successful ones included: a correct password
    /// sent in a loop cannot keep the hashing pool busy either.
    pub login_attempts_per_account: Rate,
    /// Login attempts per client IP, successful ones included.
    pub login_attempts_per_ip: Rate,
    /// Registration attempts per client IP.
    pub register_per_ip: Rate,
    /// Password-change attempts per client IP.
    pub password_per_ip: Rate,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            login_per_account_ip: Rate::new(5, 900),
            login_per_account: Rate::new(20, 900),
            login_per_ip: Rate::new(100, 900),
            login_attempts_per_account: Rate::new(60, 300),
            login_attempts_per_ip: Rate::new(600, 300),
            register_per_ip: Rate::new(20, 3600),
            password_per_ip: Rate::new(10, 900),
        }
    }
}

impl ThrottleConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (name, rate) in [
            ("login_per_account_ip", self.login_per_account_ip),
            ("login_per_account", self.login_per_account),
            ("login_per_ip", self.login_per_ip),
            (
                "login_attempts_per_account",
                self.login_attempts_per_account,
            ),
            ("login_attempts_per_ip", self.login_attempts_per_ip),
            ("register_per_ip", self.register_per_ip),
            ("password_per_ip", self.password_per_ip),
        ] {
            if rate.limit == 0 {
                return Err(invalid(format!("throttle.{name}.limit"), "must be above 0"));
            }
            if !(1..=MAX_WINDOW_SECONDS).contains(&rate.window_seconds) {
                return Err(invalid(
                    format!("throttle.{name}.window_seconds"),
                    format!("must be between 1 and {MAX_WINDOW_SECONDS}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn a_rule_needs_both_fields_and_sane_values() {
        let load = |y: &str| {
            Config::from_yaml(y, Path::new("x.yaml"))
                .and_then(|c| c.validate().map(|()| c))
                .map_err(|e| e.to_string())
        };
        let c = load("throttle:\n  login_per_ip: {limit: 3, window_seconds: 60}\n").unwrap();
        assert_eq!(c.throttle.login_per_ip.limit, 3);
        assert_eq!(c.throttle.register_per_ip.limit, 20);
        let err = load("throttle:\n  login_per_ip: {limit: 3}\n").unwrap_err();
        assert!(err.contains("window_seconds"), "{err}");
        let err =
            load("throttle:\n  password_per_ip: {limit: 0, window_seconds: 60}\n").unwrap_err();
        assert!(err.contains("throttle.password_per_ip.limit"), "{err}");
        let err =
            load("throttle:\n  register_per_ip: {limit: 1, window_seconds: 0}\n").unwrap_err();
        assert!(
            err.contains("throttle.register_per_ip.window_seconds"),
            "{err}"
        );
    }
}
