//! The auth endpoints, black-box over real sockets against a real Redis.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn register_login_me_refresh_logout_with_and_without_slash() {
    let gw = GatewayOpts::new().start();
    let c = client();
    for slash in ["", "/"] {
        let email = format!("{}@Example.com", unique("Ann"));
        let creds = json!({"email": format!("  {email} "), "password": "correct horse battery"});

        let (s, b) = post(&c, &gw.url(&format!("/register{slash}")), creds.clone()).await;
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

        let (s, b) = post(&c, &gw.url(&format!("/login{slash}")), creds.clone()).await;
        assert_eq!(s, 200, "{b}");
        let access = b["access_token"].as_str().unwrap().to_owned();
        let refresh = b["refresh_token"].as_str().unwrap().to_owned();
        assert!(
            uuid::Uuid::parse_str(&refresh).is_ok(),
            "refresh token is a UUID"
        );

        let r = c
            .get(gw.url(&format!("/me{slash}")))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let me: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            me,
            json!({"id": id, "username": "", "email": email.to_lowercase()})
        );

        let r = c
            .put(gw.url(&format!("/me{slash}")))
            .bearer_auth(&access)
            .json(&json!({"username": "ann_b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let me: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            me,
            json!({"id": id, "username": "ann_b", "email": email.to_lowercase()})
        );
        let r = c
            .get(gw.url("/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["username"],
            "ann_b",
            "update persisted"
        );

        let (s, b) = post(
            &c,
            &gw.url(&format!("/refresh{slash}")),
            json!({"refresh_token": refresh}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let refresh2 = b["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(refresh2, refresh, "refresh rotates");
        assert!(b["access_token"].as_str().is_some());
        let (s, b) = post(&c, &gw.url("/refresh"), json!({"refresh_token": refresh})).await;
        assert_eq!(s, 401, "old refresh token is dead");
        assert_error(&b, "invalid_refresh_token");

        let (s, b) = post(
            &c,
            &gw.url(&format!("/logout{slash}")),
            json!({"refresh_token": refresh2}),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(b, json!({"success": "User logged out."}));
        let (s, _) = post(&c, &gw.url("/refresh"), json!({"refresh_token": refresh2})).await;
        assert_eq!(s, 401, "logged-out refresh token is dead");
        let (s, _) = post(&c, &gw.url("/logout"), json!({"refresh_token": refresh2})).await;
        assert_eq!(s, 401, "second logout of the same token");
    }
}

#[tokio::test]
async fn refresh_tokens_are_stored_hashed_with_a_ttl() {
    let gw = GatewayOpts::new()
        .env("AUTHGATE_REFRESH_TTL", "1000")
        .start();
    let c = client();
    let (_, _, refresh) = new_user(&c, &gw).await;
    let redis = shared_redis();
    let keys = redis.cli(&["--scan", "--pattern", &format!("{}rt:*", gw.prefix)]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(!keys.contains(&refresh), "token stored in clear");
    let ttl: i64 = redis.cli(&["TTL", keys.trim()]).parse().unwrap();
    assert!(ttl > 900 && ttl <= 1000, "ttl {ttl}");
    let all = redis.cli(&["--scan", "--pattern", &format!("{}*", gw.prefix)]);
    for k in all.lines() {
        let dump = redis.cli(&["DUMP", k]);
        assert!(!dump.contains(&refresh), "refresh token in clear under {k}");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let (email, _, _) = new_user(&c, &gw).await;
    let (s1, b1) = post(
        &c,
        &gw.url("/login"),
        json!({"email": email, "password": "wrong password!"}),
    )
    .await;
    let (s2, b2) = post(
        &c,
        &gw.url("/login"),
        json!({"email": "nobody-here@example.com", "password": "wrong password!"}),
    )
    .await;
    let (s3, b3) = post(
        &c,
        &gw.url("/login"),
        json!({"email": "not an email", "password": "wrong password!"}),
    )
    .await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_error(&b1, "invalid_credentials");
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);
}

#[tokio::test]
async fn duplicate_email_is_409_in_any_case() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let (email, _, _) = new_user(&c, &gw).await;
    let (s, b) = post(
        &c,
        &gw.url("/register"),
        json!({"email": email.to_uppercase(), "password": "another password"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_error(&b, "email_taken");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_changes_nothing() {
    let gw = GatewayOpts::new().start();
    let c = client();
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
        let r = c
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let b: serde_json::Value = r.json().await.unwrap();
        assert_error(&b, code);
        if let Some(f) = field {
            assert!(
                b["detail"].as_str().unwrap().contains(f),
                "detail names {f}: {b}"
            );
        }
    }
    let keys = shared_redis().cli(&["--scan", "--pattern", &format!("{}*", gw.prefix)]);
    assert_eq!(keys, "", "nothing was written");
}

#[tokio::test]
async fn a_password_is_neither_trimmed_nor_truncated() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let email = format!("{}@example.com", unique("pw"));
    let pw = format!("  {}  ", "é".repeat(120));
    let (s, _) = post(
        &c,
        &gw.url("/register"),
        json!({"email": email, "password": pw}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = post(
        &c,
        &gw.url("/login"),
        json!({"email": email, "password": pw.trim()}),
    )
    .await;
    assert_eq!(s, 401, "trimmed password must not match");
    let (s, _) = post(
        &c,
        &gw.url("/login"),
        json!({"email": email, "password": &pw[..pw.len() - 1]}),
    )
    .await;
    assert_eq!(s, 401, "truncated password must not match");
    let (s, _) = post(
        &c,
        &gw.url("/login"),
        json!({"email": email, "password": pw}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let gw = GatewayOpts::new().start();
    let c = client();
    for (method, path, allow) in [
        ("GET", "/register", "POST"),
        ("GET", "/login/", "POST"),
        ("DELETE", "/refresh", "POST"),
        ("PUT", "/logout", "POST"),
        ("POST", "/me", "GET, PUT"),
        ("DELETE", "/me/", "GET, PUT"),
    ] {
        let r = c
            .request(method.parse().unwrap(), gw.url(path))
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
    let gw = GatewayOpts::new()
        .env("AUTHGATE_MAX_AUTH_BODY_BYTES", "1024")
        .start();
    let c = client();
    let big = json!({"email": "big@example.com", "password": "x".repeat(2000)});
    let (s, b) = post(&c, &gw.url("/register"), big).await;
    assert_eq!(s, 413);
    assert_error(&b, "body_too_large");

    // Without Content-Length (chunked), the cap holds too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 100])).collect();
    let r = c
        .post(gw.url("/login"))
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
    let gw = GatewayOpts::new().start();
    let c = client();
    let (_, _, refresh) = new_user(&c, &gw).await;
    let r = c.get(gw.url("/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_error(&r.json().await.unwrap(), "missing_token");
    let r = c
        .get(gw.url("/me"))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a refresh token is not an access token");
    let r = c
        .put(gw.url("/me"))
        .bearer_auth("garbage")
        .json(&json!({"username": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn put_me_validates_username() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let (_, access, _) = new_user(&c, &gw).await;
    for body in [
        json!({}),
        json!({"username": ""}),
        json!({"username": "   "}),
        json!({"username": 7}),
    ] {
        let r = c
            .put(gw.url("/me"))
            .bearer_auth(&access)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert!(b["detail"].as_str().unwrap().contains("username"), "{b}");
    }
    let r = c
        .get(gw.url("/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["username"],
        "",
        "unchanged"
    );
}

#[tokio::test]
async fn expect_100_continue_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = GatewayOpts::new().start();
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
    let gw = GatewayOpts::new().start();
    let c = client();
    let email = format!("{}@example.com", unique("order"));
    let creds = json!({"email": email, "password": "correct horse battery"});
    let r = c
        .post(gw.url("/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(text, format!(r#"{{"id":{id},"email":"{email}"}}"#));
    let (_, b) = post(&c, &gw.url("/login"), creds).await;
    let access = b["access_token"].as_str().unwrap();
    let text = get_text(&c, &gw.url("/me"), Some(access)).await;
    assert_eq!(
        text,
        format!(r#"{{"id":{id},"username":"","email":"{email}"}}"#)
    );
    let text = get_text(&c, &gw.url("/nothing-here"), None).await;
    assert!(text.starts_with(r#"{"error":"#), "{text}");
}

/// PUT /me `{"username"}` and return (status, body as text).
async fn put_username(
    c: &reqwest::Client,
    gw: &Gateway,
    access: &str,
    username: &str,
) -> (u16, String) {
    let r = c
        .put(gw.url("/me"))
        .bearer_auth(access)
        .json(&json!({ "username": username }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn username_is_a_display_name_like_django() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let (email, access, _) = new_user(&c, &gw).await;
    let id = get_json(&c, &gw.url("/me"), &access).await["id"]
        .as_u64()
        .unwrap();
    let expected = format!(r#"{{"id":{id},"username":"John Smith","email":"{email}"}}"#);

    let (s, text) = put_username(&c, &gw, &access, "John Smith").await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        text, expected,
        "Django's body, key order id, username, email"
    );
    assert_eq!(get_text(&c, &gw.url("/me"), Some(&access)).await, expected);

    // A bidi override anywhere is refused and the stored name stays as it was.
    for bad in [
        "John\u{202E}htimS",
        "\u{202E}John",
        "John\u{200B}",
        "\u{FEFF}John",
    ] {
        let (s, text) = put_username(&c, &gw, &access, bad).await;
        assert_eq!(s, 400, "{bad:?}: {text}");
        let b: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_error(&b, "invalid_field");
        assert!(b["detail"].as_str().unwrap().contains("username"), "{b}");
    }
    assert_eq!(get_text(&c, &gw.url("/me"), Some(&access)).await, expected);
}

#[tokio::test]
async fn nfc_nfd_and_case_spellings_of_an_idn_email_are_one_account() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let local = unique("ann");
    let password = "correct horse battery";
    // "Exämple" with a composed ä (U+00E4), then decomposed (a + U+0308) in capitals.
    let composed = format!("{local}@Ex\u{E4}mple.com");
    let decomposed = format!("{}@EXA\u{308}MPLE.COM", local.to_uppercase());
    let stored = format!("{local}@xn--exmple-cua.com");

    let (s, b) = post(
        &c,
        &gw.url("/register"),
        json!({"email": composed, "password": password}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], stored, "domain stored in its IDNA ASCII form");

    let (s, b) = post(
        &c,
        &gw.url("/register"),
        json!({"email": decomposed, "password": "another password"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_error(&b, "email_taken");

    let (s, b) = post(
        &c,
        &gw.url("/login"),
        json!({"email": decomposed, "password": password}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let access = b["access_token"].as_str().unwrap();
    assert_eq!(get_json(&c, &gw.url("/me"), access).await["email"], stored);
}

#[tokio::test]
async fn an_email_with_a_bidi_override_is_refused_and_stores_nothing() {
    let gw = GatewayOpts::new().start();
    let c = client();
    let local = unique("eve");
    let password = "correct horse battery";
    for email in [
        format!("{local}\u{202E}@example.com"),
        format!("{local}@exa\u{202E}mple.com"),
        format!("{local}@example.com\u{200B}"),
        format!("\u{0000}{local}@example.com"),
    ] {
        let (s, b) = post(
            &c,
            &gw.url("/register"),
            json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!(s, 400, "{email:?}: {b}");
        assert_error(&b, "invalid_field");
        assert!(b["detail"].as_str().unwrap().contains("email"), "{b}");
        let (s, b) = post(
            &c,
            &gw.url("/login"),
            json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!(s, 401, "{email:?}: {b}");
        assert_error(&b, "invalid_credentials");
    }
    let (s, _) = post(
        &c,
        &gw.url("/login"),
        json!({"email": format!("{local}@example.com"), "password": password}),
    )
    .await;
    assert_eq!(
        s, 401,
        "not stored under the address without the override either"
    );
    let keys = shared_redis().cli(&["--scan", "--pattern", &format!("{}*", gw.prefix)]);
    assert_eq!(keys, "", "nothing was written");
}
