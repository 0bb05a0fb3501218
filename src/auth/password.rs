//! Argon2id password hashing on a bounded pool, off the proxy's event loop.

use super::django::DjangoHash;
use super::hash_pool::HashPool;
use crate::config::PasswordConfig;
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes and verifies passwords; at most `hash_threads` run at once and at
/// most `max_queue` requests wait for them: any more are refused at once.
pub(crate) struct Passwords {
    argon: Argon2<'static>,
    pool: HashPool,
    /// One per request running or waiting: `hash_threads + max_queue`.
    admitted: Arc<Semaphore>,
    /// One per request running: `hash_threads`.
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Verified against when the email is unknown, so that case costs what a wrong password costs.
    dummy_hash: String,
    /// Requests of each client running or waiting, at most `per_client`.
    clients: Arc<Mutex<HashMap<ClientKey, usize>>>,
    per_client: usize,
}

/// A client as the fair share counts it: its address, an IPv6 one by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6(u64),
    Unknown,
}

impl ClientKey {
    fn of(ip: Option<IpAddr>) -> ClientKey {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => ClientKey::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => ClientKey::V6((u128::from(v6) >> 64) as u64),
            None => ClientKey::Unknown,
        }
    }
}

/// One request of a client in the queue: counted while it lives.
struct Share {
    clients: Arc<Mutex<HashMap<ClientKey, usize>>>,
    key: ClientKey,
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Ok(mut map) = self.clients.lock() {
            if let Some(n) = map.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.key);
                }
            }
        }
    }
}

impl Passwords {
    /// Build from config (already validated); the hashing threads start on first use.
    pub(crate) fn new(cfg: &PasswordConfig) -> Result<Self, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| e.to_string())?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"authgate dummy password", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        let pool = HashPool::new(cfg.hash_threads, cfg.nice);
        Ok(Passwords {
            argon,
            pool,
            admitted: Arc::new(Semaphore::new(cfg.hash_threads + cfg.max_queue())),
            slots: Arc::new(Semaphore::new(cfg.hash_threads)),
            queue_timeout: Duration::from_millis(cfg.queue_timeout_ms),
            dummy_hash,
            clients: Arc::new(Mutex::new(HashMap::new())),
            per_client: cfg.max_queue_per_client(),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for a new password, hashed within
    /// the fair share of `client`.
    pub(crate) async fn hash(
        &self,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<String, ErrorReply> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        self.run(client, move || new_hash(&argon, &password)).await
    }

    /// Whether `password` matches `stored`, an argon2id PHC string or a hash
    /// imported from Django ([`DjangoHash`]); with no stored hash (an unknown or
    /// disabled account) or an unusable Django one, verify the dummy and say no.
    /// A Django hash that matches comes back with its argon2id replacement,
    /// computed in the same turn on the pool.
    pub(crate) async fn verify(
        &self,
        password: &str,
        stored: Option<String>,
        client: Option<IpAddr>,
    ) -> Result<Check, ErrorReply> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        let dummy = self.dummy_hash.clone();
        self.run(client, move || {
            let phc = match &stored {
                // The gateway's own hashes are PHC strings; Django's start with their algorithm.
                Some(h) if !h.starts_with('$') => {
                    // A hash the import would refuse today (stored by an older
                    // version: a truncated pbkdf2 digest, a cost past the
                    // ceilings) matches nothing, at the cost of an unknown account.
                    let django = DjangoHash::parse(h).unwrap_or_else(|e| {
                        log::warn!("a stored Django password hash is refused: {e}");
                        DjangoHash::Unusable
                    });
                    if !matches!(django, DjangoHash::Unusable) {
                        METRICS.password_hashes.inc();
                        if !django.verify(&password) {
                            return Ok(Check::NO);
                        }
                        return Ok(Check {
                            matched: true,
                            upgraded: Some(new_hash(&argon, &password)?),
                        });
                    }
                    // Unusable: costs what an unknown account costs.
                    None
                }
                other => other.as_deref(),
            };
            let known = phc.is_some();
            let phc = phc.unwrap_or(&dummy);
            // Parameters come from the stored hash, so changing the config
            // does not lock out users hashed with the old parameters.
            let parsed = PasswordHash::new(phc).map_err(|e| {
                ErrorReply::internal(format!("stored password hash is unreadable: {e}"))
            })?;
            METRICS.password_hashes.inc();
            let matched = argon.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(Check {
                matched: known && matched,
                upgraded: None,
            })
        })
        .await
    }

    /// Count one request of `client`, or `None` when it has its share already.
    fn share(&self, client: Option<IpAddr>) -> Option<Share> {
        let key = ClientKey::of(client);
        let mut map = self.clients.lock().ok()?;
        let n = map.entry(key).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(Share {
            clients: self.clients.clone(),
            key,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        client: Option<IpAddr>,
        work: impl FnOnce() -> Result<T, ErrorReply> + Send + 'static,
    ) -> Result<T, ErrorReply> {
        // One client's requests take at most its share of the queue.
        let _share = self.share(client).ok_or(ErrorReply::Busy)?;
        // Past the queue's length, waiting would only add latency to a 503: refuse now.
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| ErrorReply::Busy)?;
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| ErrorReply::Busy)?
            .map_err(|e| ErrorReply::internal(format!("hashing slots closed: {e}")))?;
        self.pool
            .run(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(ErrorReply::internal)?
    }
}

/// The outcome of [`Passwords::verify`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Check {
    /// The password is the account's.
    pub matched: bool,
    /// It matched a Django hash: the argon2id hash to store in its place.
    pub upgraded: Option<String>,
}

impl Check {
    const NO: Check = Check {
        matched: false,
        upgraded: None,
    };
}

/// An argon2id PHC string for `password` with a fresh salt.
fn new_hash(argon: &Argon2<'_>, password: &str) -> Result<String, ErrorReply> {
    METRICS.password_hashes.inc();
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ErrorReply::internal(format!("argon2 hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap hashing on one thread; the queue's settings come from `queue`.
    fn pool(queue: PasswordConfig) -> Passwords {
        Passwords::new(&PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            hash_threads: 1,
            nice: 0,
            ..queue
        })
        .unwrap()
    }

    fn cheap() -> Passwords {
        pool(PasswordConfig {
            queue_timeout_ms: 1000,
            max_queue: Some(1),
            ..PasswordConfig::default()
        })
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let p = cheap();
        let h = p.hash("correct horse", None).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let yes = Check {
            matched: true,
            upgraded: None,
        };
        assert_eq!(
            p.verify("correct horse", Some(h.clone()), None)
                .await
                .unwrap(),
            yes
        );
        assert_eq!(
            p.verify("correct horsE", Some(h), None).await.unwrap(),
            Check::NO
        );
        let dummy = p
            .verify("authgate dummy password", None, None)
            .await
            .unwrap();
        assert_eq!(dummy, Check::NO);
    }

    #[tokio::test]
    async fn a_django_hash_that_matches_comes_back_upgraded() {
        let p = cheap();
        // Django 5.2: PBKDF2PasswordHasher().encode("correct horse", "NaCl", 1000).
        let django = "pbkdf2_sha256$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=";
        let c = p
            .verify("correct horse", Some(django.into()), None)
            .await
            .unwrap();
        assert!(c.matched);
        let upgraded = c.upgraded.unwrap();
        assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
        let again = p
            .verify("correct horse", Some(upgraded), None)
            .await
            .unwrap();
        assert!(again.matched && again.upgraded.is_none());
        let wrong = p
            .verify("correct horsE", Some(django.into()), None)
            .await
            .unwrap();
        assert_eq!(wrong, Check::NO);
        for unusable in ["!", "!x7Gd", ""] {
            let c = p.verify("", Some(unusable.into()), None).await.unwrap();
            assert_eq!(c, Check::NO);
        }
    }

    #[tokio::test]
    async fn past_max_queue_a_request_is_busy_at_once() {
        let p = std::sync::Arc::new(cheap());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
        // One job holds the only thread, one waits (max_queue 1).
        let mut held = Vec::new();
        // From two clients, so neither client's share is what refuses the third.
        for i in 0..2u8 {
            let (p, gate) = (p.clone(), gate.clone());
            let client = Some(IpAddr::from([10, 0, 0, i]));
            held.push(tokio::spawn(async move {
                p.run(client, move || Ok(gate.lock().unwrap().recv().is_ok()))
                    .await
            }));
        }
        while p.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let third = p
            .hash("correct horse", Some(IpAddr::from([10, 0, 0, 9])))
            .await;
        assert!(matches!(third, Err(ErrorReply::Busy)), "{third:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            ErrorReply::Busy.headers(),
            [("Retry-After", "1".to_owned())]
        );
        for _ in 0..2 {
            release.send(()).unwrap();
        }
        for h in held {
            assert!(h.await.unwrap().unwrap());
        }
        // Admission is given back: the pool serves again.
        assert!(p.hash("correct horse", None).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_internal_error_and_the_pool_goes_on() {
        let p = cheap();
        let r = p
            .run(None, || -> Result<(), ErrorReply> { panic!("boom") })
            .await;
        assert!(matches!(r, Err(ErrorReply::Internal(_))), "{r:?}");
        assert!(p.hash("correct horse", None).await.is_ok());
    }

    /// One client's requests take at most its share; another client still gets in.
    #[tokio::test]
    async fn one_client_cannot_take_more_than_its_share_of_the_queue() {
        let p = std::sync::Arc::new(pool(PasswordConfig {
            queue_timeout_ms: 5000,
            max_queue: Some(8),
            max_queue_per_client: Some(2),
            ..PasswordConfig::default()
        }));
        let greedy = Some(IpAddr::from([192, 0, 2, 1]));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
        let mut held = Vec::new();
        for _ in 0..2 {
            let (p, gate) = (p.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                p.run(greedy, move || Ok(gate.lock().unwrap().recv().is_ok()))
                    .await
            }));
        }
        while p.admitted.available_permits() > 9 - 2 {
            tokio::task::yield_now().await;
        }
        let third = p.hash("correct horse", greedy).await;
        assert!(matches!(third, Err(ErrorReply::Busy)), "{third:?}");
        // The same /64 is the same client.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        assert_eq!(ClientKey::of(v6(1)), ClientKey::of(v6(2)));
        // Another client waits its turn and is served.
        let other = {
            let p = p.clone();
            tokio::spawn(async move {
                p.hash("correct horse", Some(IpAddr::from([192, 0, 2, 2])))
                    .await
            })
        };
        release.send(()).unwrap();
        release.send(()).unwrap();
        for h in held {
            assert!(h.await.unwrap().unwrap());
        }
        assert!(other.await.unwrap().is_ok());
        // Shares are given back: the greedy client is served again.
        assert!(p.hash("correct horse", greedy).await.is_ok());
        assert!(p.clients.lock().unwrap().is_empty());
    }
}
