//! The `passwords` section: Argon2id parameters and the thread pool that computes them.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// Argon2id parameters and the pool that runs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Time cost (passes).
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait their turn.
    pub hash_threads: usize,
    /// Scheduling niceness of the hashing threads (0 to 19): higher yields more CPU to proxying.
    pub nice: i32,
    /// How long a request waits for a hashing slot before getting 503.
    pub queue_timeout_ms: u64,
    /// Requests allowed to wait for a hashing slot; any more get 503 at once.
    /// Unset: 8 per hashing thread (see [`PasswordConfig::max_queue`]).
    pub max_queue: Option<usize>,
    /// Requests of one client (IP, an IPv6 client by its /64) hashing or waiting
    /// at once; any more of that client's get 503 `busy` at once, so one client
    /// cannot fill the queue for everyone. Unset: a quarter of the queue and the
    /// threads, at least 2 (see [`PasswordConfig::max_queue_per_client`]).
    pub max_queue_per_client: Option<usize>,
    /// Load Argon2 parameters below OWASP's minimum (tests, never production):
    /// a warning line is logged at start.
    pub allow_insecure_parameters: bool,
}

/// OWASP's Argon2id configurations (Password Storage Cheat Sheet), each as
/// (memory KiB, iterations) at parallelism 1; any one of them is the floor.
const OWASP_ARGON2ID: [(u32, u32); 5] = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)];

impl Default for PasswordConfig {
    fn default() -> Self {
        // Leave a core to the proxy on small machines so a login storm cannot starve it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordConfig {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            hash_threads: cores.saturating_sub(1).max(1),
            nice: 10,
            queue_timeout_ms: 10_000,
            max_queue: None,
            max_queue_per_client: None,
            allow_insecure_parameters: false,
        }
    }
}

impl PasswordConfig {
    /// Requests that may wait for a hashing slot: `max_queue`, or 8 per thread
    /// (with a hash taking tens of milliseconds, a wait of a few hundred at most).
    pub fn max_queue(&self) -> usize {
        self.max_queue
            .unwrap_or_else(|| self.hash_threads.saturating_mul(8))
    }

    /// Requests one client may have hashing or waiting at once.
    pub fn max_queue_per_client(&self) -> usize {
        self.max_queue_per_client
            .unwrap_or_else(|| ((self.hash_threads + self.max_queue()) / 4).max(2))
    }

    /// Whether memory and iterations reach at least one of OWASP's rows.
    pub fn meets_owasp_minimum(&self) -> bool {
        OWASP_ARGON2ID
            .iter()
            .any(|&(m, t)| self.memory_kib >= m && self.iterations >= t)
    }

    /// The warning to log at start when insecure parameters were let through.
    pub fn insecure_warning(&self) -> Option<String> {
        (self.allow_insecure_parameters && !self.meets_owasp_minimum()).then(|| {
            format!(
                "passwords.allow_insecure_parameters: Argon2 memory_kib={} iterations={} is below OWASP's minimum; password hashes are cheap to crack (never use this in production)",
                self.memory_kib, self.iterations
            )
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_queue_per_client == Some(0) {
            return Err(invalid(
                "passwords.max_queue_per_client",
                "must be at least 1",
            ));
        }
        if argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None).is_err() {
            return Err(invalid(
                "passwords",
                format!(
                    "argon2 rejects memory_kib={} iterations={} parallelism={} (memory must be >= 8 x parallelism, iterations >= 1)",
                    self.memory_kib, self.iterations, self.parallelism
                ),
            ));
        }
        if !self.allow_insecure_parameters && !self.meets_owasp_minimum() {
            return Err(invalid(
                "passwords",
                format!(
                    "memory_kib={} iterations={} is below OWASP's Argon2id minimum (memory_kib >= 19456 with iterations >= 2, or 47104/1, 12288/3, 9216/4, 7168/5); raise them, or set passwords.allow_insecure_parameters: true (AUTHGATE_ARGON2_ALLOW_INSECURE=1) for tests only",
                    self.memory_kib, self.iterations
                ),
            ));
        }
        if !(0..=19).contains(&self.nice) {
            return Err(invalid("passwords.nice", "must be between 0 and 19"));
        }
        if self.hash_threads == 0 {
            return Err(invalid("passwords.hash_threads", "must be at least 1"));
        }
        Ok(())
    }
}
