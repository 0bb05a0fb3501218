//! The auth endpoints, black-box over real sockets against a real Redis.
//!
//! Long file: the seed's whole JSON contract (16 scenarios, every endpoint's shapes and errors) in one place, as the Django service defined it.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn register_login_me_refresh_logout_with_and_without_slash() {
    let gw = TestGateway::start();
    for slash in ["", "/"] {
        let email = format!("{}@Example.com", unique("Ann"));
        let creds = json!({"email": format!("  {email} "), "password": PASSWORD});

        let (s, b) = gw
            .post_json(&format!("/register{slash}"), creds.clone())
            .await;
        assert_eq!(s, 201, "{b}");
        let id = b["id"].as_u64().expect("integer id");
        assert_eq!(
            b["email"],
            email.to_lowercase(),
            "email is trimmed and lowercased"
        );
        assert_eq!(
            b.as_object().map(|o| o.len()),
            Some(2),
            "exactly id and email: {b}"
        );

        let (s, b) = gw.post_json(&format!("/login{slash}"), creds.clone()).await;
        assert_eq!(s, 200, "{b}");
        let access = b["access_token"].as_str().unwrap().to_owned();
        let refresh = b["refresh_token"].as_str().unwrap().to_owned();
        assert!(
            uuid::Uuid::parse_str(&refresh).is_ok(),
            "refresh token is a UUID"
        );

        let r = gw.get(&format!("/me{slash}"), Some(&access)).await;
        assert_eq!(r.status(), 200);
        let me: Value = r.json().await.unwrap();
        assert_eq!(
            me,
            json!({"id": id, "username": "", "email": email.to_lowercase()})
        );

        let r = gw
            .put_json(
                &format!("/me{slash}"),
                &access,
                &json!({"username": "ann_b"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let me: Value = r.json().await.unwrap();
        assert_eq!(
            me,
            json!({"id": id, "username": "ann_b", "email": email.to_lowercase()})
        );
        assert_eq!(
            gw.get_json("/me", &access).await["username"],
            "ann_b",
            "update persisted"
        );

        let (s, b) = gw
            .post_json(
                &format!("/refresh{slash}"),
                json!({"refresh_token": refresh}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let refresh2 = b["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(refresh2, refresh, "refresh rotates");
        assert!(b["access_token"].as_str().is_some());
        let (s, b) = gw.refresh(&refresh).await;
        assert_eq!(s, 401, "old refresh token is dead");
        assert_error(&b, "invalid_refresh_token");

        let (s, b) = gw
            .post_json(
                &format!("/logout{slash}"),
                json!({"refresh_token": refresh2}),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(b, json!({"success": "User logged out."}));
        let (s, _) = gw.refresh(&refresh2).await;
        assert_eq!(s, 401, "logged-out refresh token is dead");
        let (s, _) = gw.logout(&refresh2).await;
        assert_eq!(s, 401, "second logout of the same token");
    }
}

#[tokio::test]
async fn refresh_tokens_are_stored_hashed_with_a_ttl() {
    let gw = TestGateway::builder()
        .env("AUTHGATE_REFRESH_TTL", "1000")
        .start();
    let refresh = gw.new_user().await.refresh;
    let redis = shared_redis();
    let keys = redis.keys(&format!("{}rt:*", gw.prefix));
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(!keys.contains(&refresh), "token stored in clear");
    let ttl: i64 = redis.cli(&["TTL", keys.trim()]).parse().unwrap();
    assert!(ttl > 900 && ttl <= 1000, "ttl {ttl}");
    for k in redis.keys(&format!("{}*", gw.prefix)).lines() {
        let dump = redis.cli(&["DUMP", k]);
        assert!(!dump.contains(&refresh), "refresh token in clear under {k}");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let (s1, b1) = gw.login(&user.email, "wrong password!").await;
    // Same cost too: an unknown or unparsable email is checked against a dummy
    // hash, one hash each, like a wrong password.
    let hashes = gw.metric(PASSWORD_HASHES).await;
    let (s2, b2) = gw.login("nobody-here@example.com", "wrong password!").await;
    assert_eq!(
        gw.metric(PASSWORD_HASHES).await,
        hashes + 1.0,
        "unknown email"
    );
    let (s3, b3) = gw.login("not an email", "wrong password!").await;
    assert_eq!(
        gw.metric(PASSWORD_HASHES).await,
        hashes + 2.0,
        "unparsable email"
    );
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_error(&b1, "invalid_credentials");
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);
}

#[tokio::test]
async fn duplicate_email_is_409_in_any_case() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let (s, b) = gw
        .register(&user.email.to_uppercase(), "another password")
        .await;
    assert_eq!(s, 409);
    assert_error(&b, "email_taken");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_changes_nothing() {
    let gw = TestGateway::start();
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        ("/register", "{not json".into(), "malformed_json", None),
        ("/register", "[1,2]".into(), "malformed_json", None),
        ("/register", "".into(), "malformed_json", None),
        (
            "/register",
            r#"{"password":"long enough"}"#.into(),
            "missing_field",
            Some("email"),
        ),
        (
            "/register",
            r#"{"email":"a@example.com"}"#.into(),
            "missing_field",
            Some("password"),
        ),
        (
            "/register",
            r#"{"email":"nope","password":"long enough"}"#.into(),
            "invalid_field",
            Some("email"),
        ),
        (
            "/register",
            r#"{"email":"b@example.com","password":"short"}"#.into(),
            "invalid_field",
            Some("password"),
        ),
        (
            "/register",
            format!(
                r#"{{"email":"c@example.com","password":"{}"}}"#,
                "x".repeat(129)
            ),
            "invalid_field",
            Some("password"),
        ),
        (
            "/register",
            r#"{"email":5,"password":"long enough"}"#.into(),
            "invalid_field",
            Some("email"),
        ),
        (
            "/login",
            r#"{"email":"a@example.com"}"#.into(),
            "missing_field",
            Some("password"),
        ),
        (
            "/refresh",
            r#"{}"#.into(),
            "missing_field",
            Some("refresh_token"),
        ),
        (
            "/logout",
            r#"{"token":"x"}"#.into(),
            "missing_field",
            Some("refresh_token"),
        ),
    ];
    for (path, body, code, field) in cases {
        let r = gw
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let b: Value = r.json().await.unwrap();
        assert_error(&b, code);
        if let Some(f) = field {
            assert!(
                b["detail"].as_str().unwrap().contains(f),
                "detail names {f}: {b}"
            );
        }
    }
    let keys = shared_redis().keys(&format!("{}*", gw.prefix));
    assert_eq!(keys, "", "nothing was written");
}

#[tokio::test]
async fn a_password_is_neither_trimmed_nor_truncated() {
    let gw = TestGateway::start();
    let email = format!("{}@example.com", unique("pw"));
    let pw = format!("  {}  ", "é".repeat(120));
    let (s, _) = gw.register(&email, &pw).await;
    assert_eq!(s, 201);
    let (s, _) = gw.login(&email, pw.trim()).await;
    assert_eq!(s, 401, "trimmed password must not match");
    let (s, _) = gw.login(&email, &pw[..pw.len() - 1]).await;
    assert_eq!(s, 401, "truncated password must not match");
    let (s, _) = gw.login(&email, &pw).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let gw = TestGateway::start();
    for (method, path, allow) in [
        ("GET", "/register", "POST"),
        ("GET", "/login/", "POST"),
        ("DELETE", "/refresh", "POST"),
        ("PUT", "/logout", "POST"),
        ("POST", "/me", "GET, PUT"),
        ("DELETE", "/me/", "GET, PUT"),
    ] {
        let r = gw
            .request(method.parse().unwrap(), path)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow);
        assert_error(&r.json().await.unwrap(), "method_not_allowed");
    }
}

#[tokio::test]
async fn oversized_auth_body_is_413() {
    let gw = TestGateway::builder()
        .env("AUTHGATE_MAX_AUTH_BODY_BYTES", "1024")
        .start();
    let (s, b) = gw.register("big@example.com", &"x".repeat(2000)).await;
    assert_eq!(s, 413);
    assert_error(&b, "body_too_large");

    // Without Content-Length (chunked), the cap holds too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 100])).collect();
    let r = gw
        .request(Method::POST, "/login")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn me_needs_a_valid_access_token() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let r = gw.get("/me", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_error(&r.json().await.unwrap(), "missing_token");
    let r = gw.get("/me", Some(&user.refresh)).await;
    assert_eq!(r.status(), 401, "a refresh token is not an access token");
    let r = gw
        .put_json("/me", "garbage", &json!({"username": "x"}))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn put_me_validates_username() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    for body in [
        json!({}),
        json!({"username": ""}),
        json!({"username": "   "}),
        json!({"username": 7}),
    ] {
        let r = gw.put_json("/me", &user.access, &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.unwrap();
        assert!(b["detail"].as_str().unwrap().contains("username"), "{b}");
    }
    assert_eq!(
        gw.get_json("/me", &user.access).await["username"],
        "",
        "unchanged"
    );
}

#[tokio::test]
async fn expect_100_continue_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = TestGateway::start();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let body = br#"{"refresh_token":"00000000-0000-4000-8000-000000000000"}"#;
    let head = format!(
        "POST /logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("100 Continue in time")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(body).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
}

#[tokio::test]
async fn bodies_keep_the_django_field_order() {
    let gw = TestGateway::start();
    let email = format!("{}@example.com", unique("order"));
    let text = gw
        .request(Method::POST, "/register")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(text, format!(r#"{{"id":{id},"email":"{email}"}}"#));
    let (_, b) = gw.login(&email, PASSWORD).await;
    let access = b["access_token"].as_str().unwrap();
    let text = gw.get_text("/me", Some(access)).await;
    assert_eq!(
        text,
        format!(r#"{{"id":{id},"username":"","email":"{email}"}}"#)
    );
    let text = gw.get_text("/nothing-here", None).await;
    assert!(text.starts_with(r#"{"error":"#), "{text}");
}

/// PUT /me `{"username"}` as `user` and return (status, body as text).
async fn put_username(gw: &TestGateway, user: &TestUser, username: &str) -> (u16, String) {
    let r = gw
        .put_json("/me", &user.access, &json!({ "username": username }))
        .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn username_is_a_display_name_like_django() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let (id, email) = (user.id, &user.email);
    let expected = format!(r#"{{"id":{id},"username":"John Smith","email":"{email}"}}"#);

    let (s, text) = put_username(&gw, &user, "John Smith").await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        text, expected,
        "Django's body, key order id, username, email"
    );
    assert_eq!(gw.get_text("/me", Some(&user.access)).await, expected);

    // A bidi override anywhere is refused and the stored name stays as it was.
    for bad in [
        "John\u{202E}htimS",
        "\u{202E}John",
        "John\u{200B}",
        "\u{FEFF}John",
    ] {
        let (s, text) = put_username(&gw, &user, bad).await;
        assert_eq!(s, 400, "{bad:?}: {text}");
        let b: Value = serde_json::from_str(&text).unwrap();
        assert_error(&b, "invalid_field");
        assert!(b["detail"].as_str().unwrap().contains("username"), "{b}");
    }
    assert_eq!(gw.get_text("/me", Some(&user.access)).await, expected);
}

#[tokio::test]
async fn nfc_nfd_and_case_spellings_of_an_idn_email_are_one_account() {
    let gw = TestGateway::start();
    let local = unique("ann");
    // "Exämple" with a composed ä (U+00E4), then decomposed (a + U+0308) in capitals.
    let composed = format!("{local}@Ex\u{E4}mple.com");
    let decomposed = format!("{}@EXA\u{308}MPLE.COM", local.to_uppercase());
    let stored = format!("{local}@xn--exmple-cua.com");

    let (s, b) = gw.register(&composed, PASSWORD).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], stored, "domain stored in its IDNA ASCII form");

    let (s, b) = gw.register(&decomposed, "another password").await;
    assert_eq!(s, 409, "{b}");
    assert_error(&b, "email_taken");

    let (s, b) = gw.login(&decomposed, PASSWORD).await;
    assert_eq!(s, 200, "{b}");
    let access = b["access_token"].as_str().unwrap();
    assert_eq!(gw.get_json("/me", access).await["email"], stored);
}

#[tokio::test]
async fn an_email_with_a_bidi_override_is_refused_and_stores_nothing() {
    let gw = TestGateway::start();
    let local = unique("eve");
    for email in [
        format!("{local}\u{202E}@example.com"),
        format!("{local}@exa\u{202E}mple.com"),
        format!("{local}@example.com\u{200B}"),
        format!("\u{0000}{local}@example.com"),
    ] {
        let (s, b) = gw.register(&email, PASSWORD).await;
        assert_eq!(s, 400, "{email:?}: {b}");
        assert_error(&b, "invalid_field");
        assert!(b["detail"].as_str().unwrap().contains("email"), "{b}");
        let (s, b) = gw.login(&email, PASSWORD).await;
        assert_eq!(s, 401, "{email:?}: {b}");
        assert_error(&b, "invalid_credentials");
    }
    let (s, _) = gw.login(&format!("{local}@example.com"), PASSWORD).await;
    assert_eq!(
        s, 401,
        "not stored under the address without the override either"
    );
    let keys = shared_redis().keys(&format!("{}*", gw.prefix));
    // Nothing but the failed logins' throttle counters.
    let thr = format!("{}thr:", gw.prefix);
    let stored: Vec<&str> = keys.lines().filter(|k| !k.starts_with(&thr)).collect();
    assert!(stored.is_empty(), "nothing was written: {stored:?}");
}

/// Issue #23 (form bodies): as the original service's DRF parsers did, the
/// endpoints take `application/x-www-form-urlencoded` (`curl -d`) and
/// `multipart/form-data` with the same field rules and JSON answers; a
/// repeated field is 400 `invalid_field`, a malformed form 400 `malformed_json`.
#[tokio::test]
async fn form_bodies_are_read_as_the_seed_read_them() {
    let gw = TestGateway::start();
    let send = |path: &'static str, ct: &str, body: String| {
        let r = gw
            .request(Method::POST, path)
            .header("content-type", ct)
            .body(body);
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            assert_eq!(r.headers()["content-type"], "application/json", "{path}");
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let email = format!("{}@example.com", unique("form"));
    let enc = |s: &str| s.replace('@', "%40").replace(' ', "+");
    let (s, b) = send(
        "/register",
        FORM,
        format!("email={}&password={}", enc(&email), enc(PASSWORD)),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], email.as_str());
    let (s, b) = send(
        "/login",
        FORM,
        format!("email={}&password={}", enc(&email), enc(PASSWORD)),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let refresh = b["refresh_token"].as_str().unwrap().to_owned();

    let boundary = "----authgate23";
    let multipart = |fields: &[(&str, &str)]| {
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body + &format!("--{boundary}--\r\n")
    };
    let mp = format!("multipart/form-data; boundary={boundary}");
    let (s, b) = send(
        "/login",
        &mp,
        multipart(&[("email", &email), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send("/refresh", &mp, multipart(&[("refresh_token", &refresh)])).await;
    assert_eq!(s, 200, "{b}");
    let access = b["access_token"].as_str().unwrap().to_owned();
    assert_eq!(gw.get_status("/me", Some(&access)).await, 200);

    // The same field rules as JSON.
    let (s, b) = send("/login", FORM, format!("email={}", enc(&email))).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("missing_field")),
        "{b}"
    );
    let (s, b) = send(
        "/login",
        FORM,
        format!("email={}&password=wrong-password", enc(&email)),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("invalid_credentials")),
        "{b}"
    );
    // A repeated field is refused, unlike DRF's last-wins.
    for (ct, body) in [
        (
            FORM.to_owned(),
            format!(
                "email=x%40example.com&email={}&password={}",
                enc(&email),
                enc(PASSWORD)
            ),
        ),
        (
            mp.clone(),
            multipart(&[
                ("email", "x@example.com"),
                ("email", &email),
                ("password", PASSWORD),
            ]),
        ),
    ] {
        let (s, b) = send("/login", &ct, body).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_field")),
            "{ct}: {b}"
        );
        assert!(b["detail"].as_str().unwrap().contains("repeated"), "{b}");
    }
    let (s, b) = send("/login", FORM, "email=%zz".into()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("malformed_json")),
        "{b}"
    );
    // Anything else is still JSON.
    let (s, b) = send(
        "/login",
        "text/plain",
        json!({"email": email, "password": PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}
