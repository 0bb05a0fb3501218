//! Time one argon2id hash at the configured parameters, as the gateway computes it.
//!
//! `cargo run --release --example hash_time -- [memory_kib iterations parallelism]`

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::time::Instant;

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, t, p) = match args[..] {
        [m, t, p] => (m, t, p),
        _ => (19456, 2, 1),
    };
    let params = Params::new(m, t, p, None).unwrap_or_else(|e| panic!("bad parameters: {e}"));
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut times = Vec::new();
    for _ in 0..20 {
        let salt = SaltString::generate(&mut OsRng);
        let start = Instant::now();
        argon
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap_or_else(|e| panic!("hash failed: {e}"));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
}
