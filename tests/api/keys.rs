//! Signing keys (docs/signing-keys.md): EdDSA, ES256 and HS256 rings, `kid` and algorithm
//! pinning, `iss`/`aud`, the JWKS checked by another language's JWT library, rotation on
//! SIGHUP under load, and key files that are refused.
//!
//! Long file: key rotation, JWKS and three independent verifiers (PyJWT, SimpleJWT, cryptography) share the key fixtures written here.

use crate::helpers::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A gateway in front of an echo upstream whose `tokens` section is `tokens`.
async fn gateway(tokens: &str) -> (Upstream, TestGateway) {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml(tokens)
        .start();
    (up, gw)
}

#[tokio::test]
async fn each_algorithm_signs_and_verifies_with_kid_iss_and_aud() {
    let ed = KeyFiles::generate("EdDSA", "ed-1");
    let ec = KeyFiles::generate("ES256", "ec-1");
    let secret = ed.private.with_file_name("hs.secret");
    std::fs::write(&secret, format!("{SECRET}-own-file\n")).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let hs = format!(
        "    - {{kid: hs-1, alg: HS256, secret_file: {}, active: true}}\n",
        secret.display()
    );
    for (entry, alg, kid) in [
        (ed.entry(true), "EdDSA", "ed-1"),
        (ec.entry(true), "ES256", "ec-1"),
        (hs, "HS256", "hs-1"),
    ] {
        let (_up, gw) = gateway(&tokens_yaml(&[entry], "  audience: [orders, billing]\n")).await;
        let user = gw.new_user().await;
        let header = token_part(&user.access, 0);
        assert_eq!(
            (&header["alg"], &header["kid"], &header["typ"]),
            (&json!(alg), &json!(kid), &json!("JWT"))
        );
        let c = token_part(&user.access, 1);
        assert_eq!(c["iss"], gw.issuer());
        assert_eq!(c["aud"], json!(["orders", "billing"]));
        assert_eq!(c["sub"], user.id.to_string());
        assert!(c["sid"].is_string() && c["exp"].as_u64() > c["iat"].as_u64());
        let echo: Value = gw.get_json("/api/x", &user.access).await;
        assert_eq!(header_values(&echo, "x-user-id"), vec![user.id.to_string()]);
        assert_eq!(gw.get_status("/me", Some(&user.access)).await, 200, "{alg}");
        let (s, b) = gw.refresh(&user.refresh).await;
        assert_eq!(s, 200, "{b}");
        let refreshed = b["access_token"].as_str().unwrap();
        assert_eq!(gw.get_status("/api/x", Some(refreshed)).await, 200);
        assert_eq!(
            gw.get_status("/api/x", Some(&token(user.id))).await,
            401,
            "the env secret is not a key of this ring"
        );
    }
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let a = KeyFiles::generate("EdDSA", "a");
    let b = KeyFiles::generate("EdDSA", "b");
    let c = KeyFiles::generate("ES256", "c");
    let outsider = KeyFiles::generate("EdDSA", "outsider");
    let (_up, gw) = gateway(&tokens_yaml(
        &[a.entry(true), b.entry(false), c.entry(false)],
        "",
    ))
    .await;
    let iss = gw.issuer();
    let good = claims(7, &iss, "authgate");
    for (key, kid) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let jwt = key.sign(Some(kid), &good);
        assert_eq!(gw.get_status("/api/x", Some(&jwt)).await, 200, "{kid}");
    }
    let public_pem = std::fs::read(&a.public).unwrap();
    let public_raw = {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let pem = String::from_utf8(public_pem.clone()).unwrap();
        ed25519_dalek::VerifyingKey::from_public_key_pem(&pem)
            .unwrap()
            .to_bytes()
    };
    let hs_with = |key: &[u8]| {
        sign_with(
            Algorithm::HS256,
            Some("a"),
            &EncodingKey::from_secret(key),
            &good,
        )
    };
    let alg_none = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "a", "typ": "JWT"})),
            b64(&good)
        )
    };
    let mut oversize = good.clone();
    oversize["pad"] = json!("x".repeat(8 * 1024));
    let cases = [
        ("kid mismatch", a.sign(Some("b"), &good)),
        ("unknown kid", outsider.sign(Some("outsider"), &good)),
        ("unknown kid, right key", a.sign(Some("nope"), &good)),
        ("no kid", a.sign(None, &good)),
        ("alg none", alg_none),
        ("HS256 keyed with the public PEM", hs_with(&public_pem)),
        ("HS256 keyed with the raw public key", hs_with(&public_raw)),
        ("ES256 under an EdDSA kid", c.sign(Some("a"), &good)),
        (
            "wrong iss",
            a.sign(Some("a"), &claims(7, "http://staging.example", "authgate")),
        ),
        (
            "wrong aud",
            a.sign(Some("a"), &claims(7, &iss, "another-service")),
        ),
        ("oversize", a.sign(Some("a"), &oversize)),
        ("seed HS256 token, EdDSA ring", token(7)),
    ];
    for (what, jwt) in &cases {
        let r = gw.get("/api/x", Some(jwt)).await;
        assert_eq!(r.status(), 401, "{what}");
        assert!(r.headers().contains_key("www-authenticate"), "{what}");
        assert_error(&r.json().await.unwrap(), "invalid_token");
        assert_eq!(gw.get_status("/me", Some(jwt)).await, 401, "{what} on /me");
    }
    let metrics = gw.metrics().await;
    for reason in [
        "unknown_key",
        "wrong_algorithm",
        "wrong_issuer",
        "wrong_audience",
        "too_large",
    ] {
        assert!(
            metrics.contains(&format!(
                "authgate_token_rejections_total{{reason=\"{reason}\"}}"
            )),
            "{reason}: {metrics}"
        );
    }
}

#[tokio::test]
async fn the_jwks_verifies_gateway_tokens_in_pyjwt() {
    if Command::new("python3").arg("--version").output().is_err() {
        skip(
            "keys::the_jwks_verifies_gateway_tokens_in_pyjwt",
            "python3 is not installed (scripts/test.sh installs it)",
        );
        return;
    }
    let ed = KeyFiles::generate("EdDSA", "ed-jwks");
    let ec = KeyFiles::generate("ES256", "ec-jwks");
    let hs = "    - {kid: hs-jwks, alg: HS256}\n".to_owned();
    let (_up, gw) = gateway(&tokens_yaml(
        &[ed.entry(true), ec.entry(false), hs],
        "  jwks_max_age_seconds: 120\n  issuer: https://auth.example\n  audience: [orders]\n",
    ))
    .await;
    let r = gw.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=120");
    assert_eq!(r.headers()["content-type"], "application/json");
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(
        kids,
        ["ed-jwks", "ec-jwks"],
        "public keys only, never HS256: {jwks}"
    );
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(
            k.get("d").is_none() && k.get("k").is_none(),
            "private part: {k}"
        );
    }
    assert_eq!(
        (&keys[0]["kty"], &keys[0]["crv"], &keys[0]["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    assert_eq!(
        (&keys[1]["kty"], &keys[1]["crv"], &keys[1]["alg"]),
        (&json!("EC"), &json!("P-256"), &json!("ES256"))
    );
    assert!(keys[1]["y"].is_string());

    let user = gw.new_user().await;
    let es_token = ec.sign(
        Some("ec-jwks"),
        &claims(user.id, "https://auth.example", "orders"),
    );
    let script = r#"
import sys
try:
    import jwt
    from jwt import PyJWKClient
except ImportError as e:
    sys.exit(f"PyJWT is missing ({e}): pip install 'pyjwt[crypto]'")
url, iss, aud = sys.argv[1:4]
client = PyJWKClient(url)
for token in sys.argv[4:]:
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], issuer=iss, audience=aud)
    print(jwt.get_unverified_header(token)["kid"], claims["user_id"])
try:
    jwt.decode(sys.argv[4][:-4] + "AAAA", client.get_signing_key_from_jwt(sys.argv[4]).key,
               algorithms=["EdDSA"], issuer=iss, audience=aud)
    sys.exit("a tampered token verified")
except jwt.InvalidSignatureError:
    print("tampered refused")
"#;
    let out = tokio::task::spawn_blocking({
        let url = gw.url("/.well-known/jwks.json");
        let tokens = [user.access.clone(), es_token];
        move || {
            Command::new("python3")
                .args(["-c", script, &url, "https://auth.example", "orders"])
                .args(tokens)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyJWT: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = user.id;
    assert_eq!(
        stdout,
        format!("ed-jwks {id}\nec-jwks {id}\ntampered refused\n")
    );
}

#[tokio::test]
async fn sighup_rotation_under_load_logs_nobody_out() {
    let k1 = KeyFiles::generate("EdDSA", "k1");
    let k2 = KeyFiles::generate("ES256", "k2");
    let ttl = "  access_ttl_seconds: 2\n";
    let (_up, gw) = gateway(&tokens_yaml(&[k1.entry(true)], ttl)).await;
    let gw = Arc::new(gw);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, refused) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let kids = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut user = gw.new_user().await;
        let (gw, stop, ok, refused, kids) = (
            gw.clone(),
            stop.clone(),
            ok.clone(),
            refused.clone(),
            kids.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut since_refresh = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // A client refreshes well before its 2 s token expires.
                if since_refresh.elapsed() > Duration::from_millis(300) {
                    let (s, b) = gw.refresh(&user.refresh).await;
                    assert_eq!(s, 200, "refresh: {b}");
                    user.access = b["access_token"].as_str().unwrap().to_owned();
                    user.refresh = b["refresh_token"].as_str().unwrap().to_owned();
                    since_refresh = std::time::Instant::now();
                }
                let kid = token_part(&user.access, 0)["kid"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                match gw.get_status("/api/x", Some(&user.access)).await {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    s => {
                        refused
                            .lock()
                            .unwrap()
                            .push(format!("{s} with a {kid} token"));
                        0
                    }
                };
                kids.lock().unwrap().insert(kid);
            }
        }));
    }
    let k1_minted = k1.sign(Some("k1"), &claims(1, &gw.issuer(), "authgate"));
    let pause = || tokio::time::sleep(Duration::from_millis(700));
    pause().await;
    // 1. The new key, verify-only: every instance learns it before any token needs it.
    let only_k1 = tokens_yaml(&[k1.entry(true)], ttl);
    let both_k1_signs = tokens_yaml(&[k1.entry(true), k2.entry(false)], ttl);
    gw.edit_conf(&only_k1, &both_k1_signs);
    assert!(gw
        .sighup()
        .await
        .contains("k1 (EdDSA, signs), k2 (ES256, verifies)"));
    pause().await;
    // 2. The new key signs; tokens of the old one still verify.
    let both_k2_signs = tokens_yaml(&[k1.entry(false), k2.entry(true)], ttl);
    gw.edit_conf(&both_k1_signs, &both_k2_signs);
    assert!(gw.sighup().await.contains("k2 (ES256, signs)"));
    let fresh = gw.new_user().await;
    assert_eq!(token_part(&fresh.access, 0)["kid"], "k2");
    assert_eq!(gw.get_status("/api/x", Some(&k1_minted)).await, 200);
    // 3. After one access-token lifetime no valid token is signed by the old key: drop it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let only_k2 = tokens_yaml(&[k2.entry(true)], ttl);
    gw.edit_conf(&both_k2_signs, &only_k2);
    assert!(gw
        .sighup()
        .await
        .contains("signing keys reloaded: k2 (ES256, signs); iss"));
    pause().await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "valid tokens refused during rotation: {refused:?}"
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "too little load: {ok:?}");
    assert_eq!(
        kids.lock().unwrap().iter().cloned().collect::<Vec<_>>(),
        ["k1", "k2"],
        "the load used tokens of both keys"
    );
    assert_eq!(
        gw.get_status("/api/x", Some(&k1_minted)).await,
        401,
        "the old key is gone"
    );
}

#[tokio::test]
async fn a_bad_key_file_on_reload_keeps_the_current_keys() {
    let k1 = KeyFiles::generate("EdDSA", "keep");
    let spare = KeyFiles::generate("EdDSA", "spare");
    let ring = tokens_yaml(&[k1.entry(true)], "");
    let (_up, gw) = gateway(&ring).await;
    let before = gw.new_user().await;
    let garbage = k1.private.with_file_name("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &garbage,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        &spare.private,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let missing = k1.private.with_file_name("missing.pem");
    let entry = |path: &std::path::Path| {
        format!(
            "    - {{kid: keep, alg: EdDSA, private_key_file: {}, active: true}}\n",
            path.display()
        )
    };
    let cases = [
        (
            tokens_yaml(&[entry(&missing)], ""),
            missing.display().to_string(),
        ),
        (
            tokens_yaml(&[entry(&garbage)], ""),
            "not a PKCS#8 PEM private EdDSA key".to_owned(),
        ),
        (
            tokens_yaml(&[k1.entry(true), spare.entry(false)], ""),
            format!("chmod 600 {}", spare.private.display()),
        ),
        (
            tokens_yaml(&[k1.entry(false)], ""),
            "exactly one key".to_owned(),
        ),
        (format!("{ring}  bogus: 1\n"), "bogus".to_owned()),
    ];
    let mut current = ring.clone();
    for (bad, says) in cases {
        gw.edit_conf(&current, &bad);
        current = bad;
        let answer = gw.sighup().await;
        assert!(
            answer.contains("keeping the current signing keys") && answer.contains(&says),
            "{says}: {answer}"
        );
        assert_eq!(gw.get_status("/api/x", Some(&before.access)).await, 200);
        let user = gw.new_user().await;
        assert_eq!(token_part(&user.access, 0)["kid"], "keep");
        assert_eq!(gw.get_status("/api/x", Some(&user.access)).await, 200);
    }
    gw.edit_conf(&current, &ring);
    assert!(gw.sighup().await.contains("signing keys reloaded"));
}

#[test]
fn a_private_key_others_can_read_is_refused_at_start() {
    let k = KeyFiles::generate("ES256", "open");
    let yaml = tokens_yaml(&[k.entry(true)], "");
    let (code, out) = check_config(&yaml, &[]);
    assert_eq!(
        code,
        Some(0),
        "no JWT secret is needed with tokens.keys: {out}"
    );
    assert!(out.contains("open (ES256, signs)"), "{out}");
    std::fs::set_permissions(
        &k.private,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let (code, out) = check_config(&yaml, &[]);
    assert_eq!(code, Some(2), "{out}");
    let file = k.private.display().to_string();
    assert!(
        out.contains("tokens.keys[0].private_key_file")
            && out.contains(&format!("chmod 600 {file}")),
        "{out}"
    );
}

#[test]
fn keygen_writes_an_owner_only_key_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let k = KeyFiles::generate("EdDSA", "fresh");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&k.private), 0o600);
    assert_eq!(mode(k.private.parent().unwrap()), 0o700);
    let again = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["keygen", "--alg", "EdDSA", "--kid", "fresh", "--out"])
        .arg(k.private.parent().unwrap())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );
}

/// Issue #23: `nbf` in the future, any `crit` header (an empty list included)
/// and a fractional `exp`/`iat`/`nbf` are refused as `invalid_token`, each
/// reason counted; an `nbf` already past passes.
#[tokio::test]
async fn nbf_crit_and_fractional_dates_are_refused() {
    use jsonwebtoken::Header;
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signed =
        |header: &Header, claims: &Value| jsonwebtoken::encode(header, claims, &key).unwrap();
    let plain = Header::new(Algorithm::HS256);
    let base = json!({"user_id": 7, "sub": "7", "iat": now, "exp": now + 300});
    let with = |field: &str, value: Value| {
        let mut c = base.clone();
        c[field] = value;
        c
    };
    assert_eq!(
        gw.get_status("/api/x", Some(&signed(&plain, &base))).await,
        200
    );
    assert_eq!(
        gw.get_status(
            "/api/x",
            Some(&signed(&plain, &with("nbf", json!(now - 5))))
        )
        .await,
        200,
        "an nbf already past passes"
    );
    let crit = |names: Vec<String>| Header {
        crit: Some(names),
        ..Header::new(Algorithm::HS256)
    };
    let cases = [
        (
            "nbf in an hour",
            signed(&plain, &with("nbf", json!(now + 3600))),
        ),
        ("nbf in 5 s", signed(&plain, &with("nbf", json!(now + 5)))),
        ("crit [exp]", signed(&crit(vec!["exp".into()]), &base)),
        ("crit []", signed(&crit(vec![]), &base)),
        (
            "fractional exp",
            signed(&plain, &with("exp", json!(now as f64 + 300.5))),
        ),
        (
            "fractional iat",
            signed(&plain, &with("iat", json!(now as f64 - 0.5))),
        ),
        (
            "fractional nbf",
            signed(&plain, &with("nbf", json!(now as f64 - 10.5))),
        ),
    ];
    for (what, jwt) in &cases {
        let r = gw.get("/api/x", Some(jwt)).await;
        assert_eq!(r.status(), 401, "{what}");
        assert_error(&r.json().await.unwrap(), "invalid_token");
        assert_eq!(gw.get_status("/me", Some(jwt)).await, 401, "{what} on /me");
    }
    let metrics = gw.metrics().await;
    for reason in ["not_yet_valid", "unsupported_crit", "malformed"] {
        assert!(
            metrics.contains(&format!(
                "authgate_token_rejections_total{{reason=\"{reason}\"}}"
            )),
            "{reason}: {metrics}"
        );
    }
}

/// Issue #23: a key file others may write (a verify-only public key included)
/// or a directory others may write is refused by `-t`, at start and on SIGHUP:
/// whoever can replace a key can mint tokens after the next reload.
#[tokio::test]
async fn key_files_or_directories_others_can_write_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let signer = KeyFiles::generate("EdDSA", "w-sign");
    let verifier = KeyFiles::generate("EdDSA", "w-verify");
    let public_entry = format!(
        "    - {{kid: w-verify, alg: EdDSA, public_key_file: {}}}\n",
        verifier.public.display()
    );
    let yaml = tokens_yaml(&[signer.entry(true), public_entry], "");
    let (code, out) = check_config(&yaml, &[]);
    assert_eq!(code, Some(0), "{out}");
    let public = verifier.public.display().to_string();
    let dir = verifier.public.parent().unwrap().to_owned();
    for (path, mode, says) in [
        (&verifier.public, 0o666, format!("chmod go-w {public}")),
        (&verifier.public, 0o620, format!("chmod go-w {public}")),
        (&dir, 0o777, format!("chmod go-w {}", dir.display())),
        (&dir, 0o770, format!("chmod go-w {}", dir.display())),
    ] {
        let before = std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        chmod(path, mode);
        let (code, out) = check_config(&yaml, &[]);
        chmod(path, before);
        assert_eq!(code, Some(2), "{mode:o}: {out}");
        assert!(
            out.contains("tokens.keys[1].public_key_file") && out.contains(&says),
            "{mode:o}: {out}"
        );
    }
    let (code, out) = check_config(&yaml, &[]);
    assert_eq!(code, Some(0), "restored: {out}");

    let sdir = signer.private.parent().unwrap().to_owned();
    chmod(&sdir, 0o777);
    let (code, out) = check_config(&yaml, &[]);
    chmod(&sdir, 0o700);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("tokens.keys[0].private_key_file"), "{out}");

    let (_up, gw) = gateway(&yaml).await;
    let user = gw.new_user().await;
    chmod(&verifier.public, 0o666);
    let answer = gw.sighup().await;
    chmod(&verifier.public, 0o644);
    assert!(
        answer.contains("keeping the current signing keys")
            && answer.contains(&format!("chmod go-w {public}")),
        "{answer}"
    );
    assert_eq!(gw.get_status("/api/x", Some(&user.access)).await, 200);
}

/// Issue #23: `authgate keygen` writes standard PKCS#8 (private) and SPKI
/// (public) PEM, for each algorithm: `openssl pkey` reads both and derives the
/// same public key, and Python's `cryptography` loads both and signs with the
/// private key what the public key verifies.
#[test]
fn keygen_pem_is_read_by_openssl_and_python_cryptography() {
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        have("openssl", "version"),
        "openssl CLI missing: apt-get install openssl"
    );
    assert!(have("python3", "--version"), "python3 missing");
    let script = r#"
import sys
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
private = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
public = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
spki = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
assert spki(private.public_key()) == spki(public), "not the same key"
if isinstance(private, ed25519.Ed25519PrivateKey):
    public.verify(private.sign(b"m"), b"m")
    print("Ed25519")
else:
    assert isinstance(private.curve, ec.SECP256R1)
    public.verify(private.sign(b"m", ec.ECDSA(hashes.SHA256())), b"m", ec.ECDSA(hashes.SHA256()))
    print("P-256")
"#;
    for (alg, kid, curve) in [("EdDSA", "pem-ed", "Ed25519"), ("ES256", "pem-ec", "P-256")] {
        let k = KeyFiles::generate(alg, kid);
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{alg}: {cmd:?}: {text}");
            text
        };
        run(Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(&k.private));
        run(Command::new("openssl")
            .args(["pkey", "-pubin", "-noout", "-in"])
            .arg(&k.public));
        let derived = run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&k.private));
        assert_eq!(
            derived,
            std::fs::read_to_string(&k.public).unwrap(),
            "{alg}"
        );
        let printed = run(Command::new("python3")
            .args(["-c", script])
            .arg(&k.private)
            .arg(&k.public));
        assert!(printed.contains(curve), "{alg}: {printed}");
    }
}

/// Issue #23 (seed-compatible tokens): with `tokens.shape: seed` an access token
/// carries no `aud` but `token_type: "access"` and a `jti`, so the original
/// service's consumers read it with exactly `jwt.decode(token, secret,
/// algorithms=["HS256"])` (a standard token fails that call on its `aud`);
/// the gateway still checks an `aud` when one is present; an asymmetric ring
/// refuses the shape.
#[tokio::test]
async fn seed_shaped_tokens_read_by_pyjwt_as_the_seed_did() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml("tokens:\n  shape: seed\n")
        .start();
    let user = gw.new_user().await;
    let c = token_part(&user.access, 1);
    assert!(c.get("aud").is_none(), "{c}");
    assert_eq!(c["token_type"], "access");
    let jti = c["jti"].as_str().unwrap();
    assert!(
        jti.len() == 32 && jti.bytes().all(|b| b.is_ascii_hexdigit()),
        "{c}"
    );
    assert_eq!(c["iss"], gw.issuer());
    assert_eq!(gw.get_status("/api/x", Some(&user.access)).await, 200);
    assert_eq!(gw.get_status("/me", Some(&user.access)).await, 200);
    let (s, b) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200, "{b}");
    let refreshed = b["access_token"].as_str().unwrap();
    assert_ne!(token_part(refreshed, 1)["jti"], c["jti"], "a jti per token");

    // `aud` is still checked when a token carries one.
    let kid = token_part(&user.access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut foreign = claims(user.id, &gw.issuer(), "another-service");
    foreign["token_type"] = json!("access");
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let jwt = sign_with(Algorithm::HS256, Some(&kid), &key, &foreign);
    assert_eq!(gw.get_status("/api/x", Some(&jwt)).await, 401);

    let standard = {
        let (_up2, gw2) = gateway("").await;
        gw2.new_user().await.access
    };
    let script = r#"
import sys
import jwt
token, secret = sys.argv[1], sys.argv[2]
try:
    print(jwt.decode(token, secret, algorithms=["HS256"])["user_id"])
except jwt.InvalidTokenError as e:
    print("refused", type(e).__name__)
"#;
    let run = |token: &str| {
        let out = Command::new("python3")
            .args(["-c", script, token, SECRET])
            .output()
            .expect("python3");
        assert!(out.status.success(), "PyJWT: {out:?} (pip install pyjwt)");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&user.access), user.id.to_string());
    assert_eq!(run(refreshed), user.id.to_string());
    assert_eq!(
        run(&standard),
        "refused InvalidAudienceError",
        "the control"
    );

    // djangorestframework-simplejwt's stateless authentication, as a backend
    // moved from the Django service uses it (SIGNING_KEY: the shared secret).
    let simplejwt = r#"
import sys
try:
    import django
    from django.conf import settings
except ImportError as e:
    sys.exit(f"Django is missing ({e}): pip install djangorestframework-simplejwt")
token, secret = sys.argv[1], sys.argv[2]
settings.configure(
    SECRET_KEY="not the jwt secret",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    SIMPLE_JWT={"SIGNING_KEY": secret, "ALGORITHM": "HS256"},
)
django.setup()
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION="Bearer " + token))
try:
    user, validated = JWTStatelessUserAuthentication().authenticate(request)
    print(user.id, validated["token_type"])
except InvalidToken:
    print("refused")
"#;
    let drf = |token: &str| {
        let out = Command::new("python3")
            .args(["-c", simplejwt, token, SECRET])
            .output()
            .expect("python3");
        assert!(out.status.success(), "SimpleJWT: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(drf(&user.access), format!("{} access", user.id));
    assert_eq!(drf(&standard), "refused", "the control");

    let ed = KeyFiles::generate("EdDSA", "seed-ed");
    let (code, out) = check_config(
        &format!("{}  shape: seed\n", tokens_yaml(&[ed.entry(true)], "")),
        &[],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("tokens.shape") && out.contains("HS256-only"),
        "{out}"
    );
}
