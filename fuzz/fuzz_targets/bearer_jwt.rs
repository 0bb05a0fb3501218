//! Bearer-token extraction and JWT verification with the key ring.
//!
//! Two verifiers as the gateway builds them (authgate::fuzz_api::Verifier): a
//! legacy ring (the JWT secret alone, tokens without `kid` accepted) and a ring
//! of `hs` (HS256, signs) and `ed` (EdDSA, verifies only). The first byte picks:
//! - 0: the rest is up to three `Authorization` values (split at `\n`), checked
//!   by the edge (authorization::single), then extracted and verified;
//! - 1: the rest is a token, verified as is;
//! - 2: a round trip: user id and session id from the input, a token issued,
//!   verified, then one byte of it changed and verified again.
//!
//! Properties:
//! - never accepts a token the ring did not sign: every accepted token is checked
//!   again with an independent HMAC (ring) or Ed25519 (dalek) verification over
//!   `header.payload`, with the key its `kid` names, and its payload's `user_id`
//!   and `exp` agree with what was accepted;
//! - a token the ring signs verifies to the same user and session;
//! - the token verified is exactly the credential the edge lets through to the
//!   upstream (`Bearer <token>` with only ASCII spaces around it).
#![no_main]

use authgate::fuzz_api::{
    bearer_token, edge_authorization, Verified, Verifier, ED25519_SEED, HS256_SECRET,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Verifier as _;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Rings {
    legacy: Verifier,
    keyed: Verifier,
}

fn rings() -> &'static Rings {
    static RINGS: OnceLock<Rings> = OnceLock::new();
    RINGS.get_or_init(|| Rings {
        legacy: Verifier::new(true).expect("legacy ring"),
        keyed: Verifier::new(false).expect("keyed ring"),
    })
}

/// Whether `token` carries a valid signature by the ring's key for its `kid`.
fn signed_by_ring(token: &str, legacy: bool) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(header) = URL_SAFE_NO_PAD.decode(h) else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(s) else {
        return false;
    };
    let msg = format!("{h}.{p}");
    let hmac = || {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &HS256_SECRET);
        ring::hmac::verify(&key, msg.as_bytes(), &sig).is_ok()
    };
    let ed = || {
        let vk = ed25519_dalek::SigningKey::from_bytes(&ED25519_SEED).verifying_key();
        ed25519_dalek::Signature::from_slice(&sig)
            .is_ok_and(|sig| vk.verify(msg.as_bytes(), &sig).is_ok())
    };
    if legacy {
        return hmac();
    }
    match header.get("kid").and_then(|k| k.as_str()) {
        Some("hs") => hmac(),
        Some("ed") => ed(),
        _ => false,
    }
}

fn check_accepted(token: &str, legacy: bool, v: Verified) {
    assert!(
        signed_by_ring(token, legacy),
        "accepted a token the ring did not sign: {token:?}"
    );
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
    let claims: serde_json::Value =
        serde_json::from_slice(&payload.expect("payload")).expect("payload JSON");
    assert_eq!(claims["user_id"].as_u64(), Some(v.user), "{token:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    assert!(
        claims["exp"].as_u64().is_some_and(|exp| exp >= now),
        "expired token accepted"
    );
}

fn verify_both(token: &str) {
    let r = rings();
    if let Ok(v) = r.legacy.verify(token) {
        check_accepted(token, true, v);
    }
    if let Ok(v) = r.keyed.verify(token) {
        check_accepted(token, false, v);
    }
}

fn word<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut w = [0; N];
    for (d, s) in w.iter_mut().zip(b) {
        *d = *s;
    }
    w
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let values: Vec<&[u8]> = rest.splitn(3, |&b| b == b'\n').collect();
            let Ok(Some(value)) = edge_authorization(&values) else {
                // Refused at the edge, or no header: the verifier sees nothing.
                if edge_authorization(&values) == Ok(None) {
                    assert_eq!(bearer_token(None), Err("missing"));
                }
                return;
            };
            let token = bearer_token(Some(&value));
            if value.len() >= 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
                // What an upstream reads as the credential.
                let forwarded = value[7..].trim_ascii();
                if let Ok(t) = token {
                    assert_eq!(
                        t.as_bytes(),
                        forwarded,
                        "the gateway verifies {t:?} but forwards {value:?}"
                    );
                }
            }
            if let Ok(t) = token {
                verify_both(t);
            }
        }
        1 => {
            if let Ok(t) = std::str::from_utf8(rest) {
                verify_both(t);
            }
        }
        _ => {
            let user = u64::from_le_bytes(word(rest));
            let sid = u128::from_le_bytes(word(rest.get(8..).unwrap_or(&[])));
            let r = rings();
            for (ring, legacy) in [(&r.legacy, true), (&r.keyed, false)] {
                let token = ring.issue(user, sid).expect("issue");
                let v = ring
                    .verify(&token)
                    .expect("a token the ring signs verifies");
                assert_eq!(
                    v,
                    Verified {
                        user,
                        sid: Some(sid)
                    }
                );
                check_accepted(&token, legacy, v);
                let header = format!("Bearer {token}");
                let edge = edge_authorization(&[header.as_bytes()]);
                assert_eq!(edge, Ok(Some(header.clone().into_bytes())));
                assert_eq!(bearer_token(Some(header.as_bytes())), Ok(token.as_str()));
                // One byte changed: refused, unless what is left still checks out.
                if let (Some(&at), Some(&x)) = (rest.get(24), rest.get(25)) {
                    let mut bytes = token.into_bytes();
                    let i = usize::from(at) * bytes.len() / 256;
                    bytes[i] ^= x.max(1);
                    if let Ok(t) = std::str::from_utf8(&bytes) {
                        if let Ok(v) = ring.verify(t) {
                            check_accepted(t, legacy, v);
                        }
                    }
                }
            }
        }
    }
});
