//! The config loader: YAML text (Config::from_yaml), the `AUTHGATE_*` overrides
//! from a fake environment (apply_env, load_secret), then validate.
//!
//! Input: YAML text, then optionally a 0x00 byte and environment lines: each
//! line's first byte picks a variable of `config::env::VARIABLES`, the rest is
//! its value. The JWT secret's file (variable and key) is dropped: reading a
//! fuzzer-chosen `/dev/stdin` would block; its path is plain text anyway.
//!
//! Properties: nothing panics; a parse error names the file and says something;
//! an environment error names the variable at fault; a validation error names a
//! key that starts with a top-level config key; applying the same environment
//! twice is the same as once; an empty environment changes nothing.
#![no_main]

use authgate::config::env::VARIABLES;
use authgate::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::Path;

const TOP: &[&str] = &[
    "listen",
    "ops_listen",
    "tls",
    "access_log",
    "upstream_ca_file",
    "threads",
    "work_stealing",
    "client_read_buffer_bytes",
    "keepalive_timeout_seconds",
    "idle_parking",
    "grace_period_seconds",
    "graceful_shutdown_timeout_seconds",
    "upgrade_sock",
    "pid_file",
    "log_level",
    "redis",
    "tokens",
    "passwords",
    "limits",
    "throttle",
    "upstreams",
    "routes",
    "identity_headers",
    "underscore_headers",
    "trusted_proxies",
    "jwt_secret",
];

fn names_a_key(key: &str) -> bool {
    let first = key.split(['.', '[']).next().unwrap_or("");
    TOP.contains(&first) || VARIABLES.iter().any(|v| v.name == key)
}

fuzz_target!(|data: &[u8]| {
    let (yaml, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let mut vars = HashMap::new();
    for line in env.split(|&b| b == b'\n') {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        let var = &VARIABLES[usize::from(pick) % VARIABLES.len()];
        if var.name == "AUTHGATE_JWT_SECRET_FILE" {
            continue;
        }
        vars.insert(var.name, String::from_utf8_lossy(value).into_owned());
    }
    let get = |k: &str| vars.get(k).cloned();

    let path = Path::new("fuzz.yaml");
    let mut cfg = match Config::from_yaml(yaml, path) {
        Ok(cfg) => cfg,
        Err(ConfigError::Parse { path: p, message }) => {
            assert_eq!(p, path);
            assert!(!message.trim().is_empty());
            return;
        }
        Err(e) => panic!("from_yaml gave {e:?}"),
    };
    cfg.tokens.jwt_secret_file = None;

    let before = format!("{cfg:?}");
    let mut untouched = cfg.clone();
    untouched
        .apply_env(|_| None)
        .expect("an empty environment is fine");
    assert_eq!(
        format!("{untouched:?}"),
        before,
        "an empty environment changed the config"
    );

    match cfg.apply_env(get) {
        Ok(()) => {
            let once = format!("{cfg:?}");
            cfg.apply_env(get).expect("applies twice");
            assert_eq!(format!("{cfg:?}"), once, "apply_env is not idempotent");
        }
        Err(ConfigError::Invalid { key, reason }) => {
            assert!(
                vars.contains_key(key.as_str()),
                "env error names {key:?}, not a variable given"
            );
            assert!(!reason.is_empty());
            return;
        }
        Err(e) => panic!("apply_env gave {e:?}"),
    }
    cfg.tokens.jwt_secret_file = None;
    match cfg.load_secret(get) {
        Ok(()) => {}
        Err(ConfigError::Invalid { key, .. }) => {
            assert!(
                key.starts_with("AUTHGATE_JWT_SECRET"),
                "secret error names {key:?}"
            );
            return;
        }
        Err(e) => panic!("load_secret gave {e:?}"),
    }
    match cfg.validate() {
        Ok(()) => {}
        Err(ConfigError::Invalid { key, reason }) => {
            assert!(
                names_a_key(&key),
                "validation error names {key:?}: {reason}"
            );
        }
        Err(e) => panic!("validate gave {e:?}"),
    }
});
