//! Which throttles each hashing endpoint consults: checked and counted in one
//! atomic step per counter, before any password hashing.

use super::{now_ms, AuthApi, Endpoint, Request};
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use crate::store::throttle::{Counter, Reserved};
use std::net::IpAddr;

/// The failure rules of a login: a correct password takes back what it reserved there.
pub(super) const LOGIN_FAILURE_SCOPES: [&str; 3] =
    ["login_per_account_ip", "login_per_account", "login_per_ip"];

/// The counters of one login attempt.
pub(super) struct LoginCounters {
    /// Per (account, client IP), then per account, then per client IP (failures,
    /// [`LOGIN_FAILURE_SCOPES`]), then attempts per account and per client IP;
    /// none when throttling is off.
    pub(super) all: Vec<Counter>,
}

impl LoginCounters {
    /// The (account, client IP) counter, which a successful login clears.
    pub(super) fn account_ip(&self) -> &[Counter] {
        &self.all[..self.all.len().min(1)]
    }
}

impl AuthApi {
    /// The counters of a login to `account` (the normalised email, or the trimmed
    /// lowercase text of one that does not parse: known or not, it is counted alike).
    pub(super) fn login_counters(&self, account: &str, req: &Request<'_>) -> LoginCounters {
        let t = &self.throttle;
        if !t.enabled {
            return LoginCounters { all: Vec::new() };
        }
        let ip = client_key(req.client_ip);
        LoginCounters {
            all: vec![
                Counter::new(
                    "login_per_account_ip",
                    &format!("{account}\n{ip}"),
                    t.login_per_account_ip,
                ),
                Counter::new("login_per_account", account, t.login_per_account),
                Counter::new("login_per_ip", &ip, t.login_per_ip),
                Counter::new(
                    "login_attempts_per_account",
                    account,
                    t.login_attempts_per_account,
                ),
                Counter::new("login_attempts_per_ip", &ip, t.login_attempts_per_ip),
            ],
        }
    }

    /// The per-account failure counter of `account` alone (a wrong current
    /// password at `POST /password` is a failed login of the account).
    pub(super) fn account_failure_counter(&self, account: &str) -> Vec<Counter> {
        let t = &self.throttle;
        if !t.enabled {
            return Vec::new();
        }
        vec![Counter::new(
            "login_per_account",
            account,
            t.login_per_account,
        )]
    }

    /// Count one attempt against every one of `counters`, or answer 429 (counted
    /// in the metrics as `endpoint`) if any is at its limit: checked and counted
    /// in one step per counter, so concurrent attempts pass no more than the
    /// limit, on every instance together.
    pub(super) async fn reserve(
        &self,
        endpoint: Endpoint,
        counters: &[Counter],
    ) -> Result<Reserved, ErrorReply> {
        match self.store.throttle_reserve(counters, now_ms()).await? {
            Ok(reserved) => Ok(reserved),
            Err(retry_after) => {
                METRICS
                    .throttled
                    .with_label_values(&[endpoint.name()])
                    .inc();
                Err(ErrorReply::TooManyAttempts { retry_after })
            }
        }
    }

    /// One attempt at `endpoint` by the client's IP (`register_per_ip`,
    /// `password_per_ip`): refused with 429 past its rule, else counted.
    /// Called before any hashing; other endpoints have no such rule.
    pub(super) async fn attempt_per_ip(
        &self,
        endpoint: Endpoint,
        req: &Request<'_>,
    ) -> Result<(), ErrorReply> {
        let t = &self.throttle;
        let (scope, rate) = match endpoint {
            Endpoint::Register => ("register_per_ip", t.register_per_ip),
            Endpoint::Password => ("password_per_ip", t.password_per_ip),
            _ => return Ok(()),
        };
        if !t.enabled {
            return Ok(());
        }
        let counter = [Counter::new(scope, &client_key(req.client_ip), rate)];
        self.reserve(endpoint, &counter).await.map(drop)
    }
}

/// What a client IP is counted as: the address, an IPv6 client by its /64 (the
/// block one subscriber holds), `unknown` without one.
fn client_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(v4) => v4.to_string(),
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a = client_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = client_key(Some("2001:db8:1:2:bbbb::9".parse().unwrap()));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, client_key(Some("2001:db8:1:3::1".parse().unwrap())));
        assert_eq!(
            client_key(Some("::ffff:10.1.2.3".parse().unwrap())),
            "10.1.2.3"
        );
        assert_eq!(client_key(Some("10.1.2.3".parse().unwrap())), "10.1.2.3");
        assert_eq!(client_key(None), "unknown");
    }
}
