//! The admin API on the ops listener and the `authgate users` CLI: token check, every endpoint and verb, disable and delete, audit events.
//!
//! Long file: each admin endpoint's success, refusal, audit line and CLI twin share one admin-token fixture.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A gateway with the admin API on, and its admin token.
pub struct AdminGateway {
    pub gw: TestGateway,
    pub token: String,
}

/// An owner-only file holding `text`.
fn private_file(text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join("authgate-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(unique("admin-token"));
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

impl AdminGateway {
    /// A gateway to `up` with `yaml` appended and a fresh admin token.
    pub fn start(up: &Upstream, yaml: &str) -> AdminGateway {
        Self::start_to(up.addr, yaml)
    }

    /// `start`, to an upstream of any kind at `upstream`.
    pub fn start_to(upstream: std::net::SocketAddr, yaml: &str) -> AdminGateway {
        Self::start_from(TestGateway::builder().upstream(upstream).yaml(yaml))
    }

    /// An admin instance of the same deployment as `other` (its store).
    pub fn beside(other: &TestGateway) -> AdminGateway {
        Self::start_from(TestGateway::builder().same_store_as(other))
    }

    fn start_from(builder: GatewayBuilder) -> AdminGateway {
        let token = format!("{}-{}", unique("admin"), "0123456789abcdef0123456789abcdef");
        let file = private_file(&format!("{token}\n"));
        let gw = builder
            .yaml(&format!("admin:\n  token_file: {}\n", file.display()))
            .start();
        AdminGateway { gw, token }
    }
}

/// A gateway with the admin API, and a second instance of the same deployment.
fn admin_and_second(up: &Upstream) -> (AdminGateway, TestGateway) {
    let a = AdminGateway::start(up, "");
    let b = TestGateway::builder()
        .upstream(up.addr)
        .same_store_as(&a.gw)
        .start();
    (a, b)
}

/// `method path` on the ops listener with the admin token; status and JSON body.
pub async fn admin_call(
    gw: &AdminGateway,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, gw.gw.ops_url(path))
        .bearer_auth(&gw.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `authgate -t` over a config made of `yaml` and a default upstream: exit code and output.
pub fn check_conf(yaml: &str) -> (i32, String) {
    let p = std::env::temp_dir().join(format!("{}.yaml", unique("authgate-admin")));
    std::fs::write(
        &p,
        format!("upstreams:\n  default:\n    peers: ['127.0.0.1:1']\n{yaml}"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["-t", "-c"])
        .arg(&p)
        .env("AUTHGATE_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `authgate -c <gw's conf> users ...`: exit code, stdout, stderr.
fn users(gw: &TestGateway, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.arg("-c").arg(gw.conf()).arg("users").args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_line(s: &str) -> Value {
    serde_json::from_str(s.lines().next().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

#[tokio::test]
async fn without_a_token_file_the_admin_api_is_off_and_the_public_listener_proxies_admin_paths() {
    let up = Upstream::start("echo").await;
    let plain = TestGateway::builder().upstream(up.addr).start();
    let r = plain.ops_get("/admin/users").await;
    assert_eq!(r.status(), 404);
    assert_error(&r.json().await.unwrap(), "not_found");

    // With the API on, the public listener still treats /admin/* as a path to proxy:
    // the admin token is not a user token, and nothing there answers as the admin API.
    let gw = AdminGateway::start(&up, "");
    let before = up.hits();
    let r = gw
        .gw
        .request(Method::GET, "/admin/users")
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the admin token is no access token");
    let user = gw.gw.new_user().await;
    let (s, echo) = (
        gw.gw.get_status("/admin/users", Some(&user.access)).await,
        gw.gw.get_json("/admin/users", &user.access).await,
    );
    assert_eq!(s, 200);
    assert_eq!(echo["path"], "/admin/users", "{echo}");
    assert_eq!(up.hits(), before + 2);
}

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_401_in_the_admin_realm_and_never_logged() {
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, "");
    for auth in [None, Some("Bearer wrong"), Some("Basic YWRtaW46YWRtaW4=")] {
        let mut req = client().get(gw.gw.ops_url("/admin/users"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"admin\"");
    }
    // A token one byte short of the real one is as wrong as any.
    let short = &gw.token[..gw.token.len() - 1];
    let r = client()
        .get(gw.gw.ops_url("/admin/users"))
        .bearer_auth(short)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, b) = admin_call(&gw, Method::GET, "/admin/users", None).await;
    assert_eq!(s, 200, "{b}");
    // The document is public, like the auth API's.
    let r = client()
        .get(gw.gw.ops_url("/admin/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["paths"]["/admin/users/{id}/roles"]["put"].is_object());
    let user = gw.gw.new_user().await;
    let _ = admin_call(
        &gw,
        Method::POST,
        &format!("/admin/users/{}/disable", user.id),
        None,
    )
    .await;
    let out = gw.gw.output_containing("admin.user_disabled").await;
    assert!(!out.contains(&gw.token), "the admin token was logged");
}

#[tokio::test]
async fn a_short_or_open_admin_token_file_is_refused_at_load() {
    let short = private_file("too-short\n");
    let (code, out) = check_conf(&format!("admin:\n  token_file: {}\n", short.display()));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("at least 32"), "{out}");
    let open = private_file(&"x".repeat(40));
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, out) = check_conf(&format!("admin:\n  token_file: {}\n", open.display()));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("chmod 600"), "{out}");
    let good = private_file(&"x".repeat(40));
    let (code, out) = check_conf(&format!("admin:\n  token_file: {}\n", good.display()));
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn users_are_created_found_paged_and_validated() {
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, "");
    let email = format!("{}@Example.COM", unique("made"));
    let (s, made) = admin_call(
        &gw,
        Method::POST,
        "/admin/users",
        Some(json!({"email": email, "password": PASSWORD, "roles": ["ops", "admin", "ops"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["roles"], json!(["admin", "ops"]));
    assert_eq!(made["disabled"], false);
    assert!(made["created_at"].as_str().unwrap().ends_with('Z'));
    let id = made["id"].as_u64().unwrap();
    // It can log in, and its token carries the roles.
    let (s, b) = gw.gw.login(&email.to_lowercase(), PASSWORD).await;
    assert_eq!(s, 200, "{b}");

    let (s, b) = admin_call(&gw, Method::GET, &format!("/admin/users/{id}"), None).await;
    assert_eq!((s, &b), (200, &made));
    let (s, b) = admin_call(
        &gw,
        Method::GET,
        &format!("/admin/users?email={}", email.replace('@', "%40")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["users"],
        json!([made]),
        "found by email, normalised as at login"
    );
    assert_eq!(b["next"], Value::Null);

    // Paging by id: every user shows up once, in id order.
    let mut ids = vec![id];
    for _ in 0..3 {
        ids.push(gw.gw.new_user().await.id);
    }
    let mut seen = Vec::new();
    let mut after = id - 1;
    loop {
        let (s, b) = admin_call(
            &gw,
            Method::GET,
            &format!("/admin/users?after={after}&limit=2"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let page: Vec<u64> = b["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_u64().unwrap())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match b["next"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    for i in &ids {
        assert_eq!(
            seen.iter().filter(|s| *s == i).count(),
            1,
            "{i} in {seen:?}"
        );
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // Bad input: a clear error, nothing changed.
    let cases = [
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({"roles": ["Bad Name"]})),
            400,
            "invalid_field",
        ),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({"roles": (0..33).map(|i| format!("r{i}")).collect::<Vec<_>>()})),
            400,
            "invalid_field",
        ),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({"roles": "admin"})),
            400,
            "invalid_field",
        ),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({})),
            400,
            "missing_field",
        ),
        (
            Method::GET,
            "/admin/users?limit=501".into(),
            None,
            400,
            "invalid_field",
        ),
        (
            Method::GET,
            "/admin/users?limit=abc".into(),
            None,
            400,
            "invalid_field",
        ),
        (
            Method::GET,
            "/admin/users/99999999".into(),
            None,
            404,
            "not_found",
        ),
        (
            Method::GET,
            "/admin/users/abc".into(),
            None,
            404,
            "not_found",
        ),
        (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"email": email})),
            409,
            "email_taken",
        ),
        (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"email": "not an email"})),
            400,
            "invalid_field",
        ),
        (
            Method::PATCH,
            format!("/admin/users/{id}"),
            None,
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (s, b) = admin_call(&gw, method.clone(), &path, body.clone()).await;
        assert_eq!(s, status, "{method} {path} {body:?}: {b}");
        assert_error(&b, code);
    }
    let r = client()
        .put(gw.gw.ops_url(&format!("/admin/users/{id}/roles")))
        .bearer_auth(&gw.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "malformed_json");
    let (_, b) = admin_call(&gw, Method::GET, &format!("/admin/users/{id}"), None).await;
    assert_eq!(b, made, "a refused change changed the user");
    let (_, b) = admin_call(
        &gw,
        Method::PUT,
        &format!("/admin/users/{id}/roles"),
        Some(json!({"roles": ["Bad"]})),
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("\"Bad\""),
        "names the bad role: {b}"
    );
}

#[tokio::test]
async fn a_disabled_user_keeps_the_cost_of_a_login_and_learns_only_with_the_password() {
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, "");
    let user = gw.gw.new_user().await;
    let (s, b) = admin_call(
        &gw,
        Method::POST,
        &format!("/admin/users/{}/disable", user.id),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["disabled"], true);
    // Every token is refused at once, every refresh token too.
    assert_eq!(gw.gw.get_status("/x", Some(&user.access)).await, 401);
    let (s, b) = gw.gw.refresh(&user.refresh).await;
    assert_eq!(s, 401, "{b}");
    assert_error(&b, "invalid_refresh_token");
    // A wrong password is what anyone gets; only the right one says disabled.
    let (s, b) = gw.gw.login(&user.email, "wrong password!").await;
    assert_eq!(s, 401, "{b}");
    assert_error(&b, "invalid_credentials");
    let (s, b) = gw.gw.login(&user.email, PASSWORD).await;
    assert_eq!(s, 403, "{b}");
    assert_error(&b, "account_disabled");
    assert!(gw
        .gw
        .metrics()
        .await
        .contains("authgate_admin_requests_total{operation=\"disable_user\",outcome=\"ok\"} 1"));

    // Enabled again: login works; the old sessions stay ended.
    let (s, b) = admin_call(
        &gw,
        Method::POST,
        &format!("/admin/users/{}/enable", user.id),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["disabled"], false);
    let (s, b) = gw.gw.refresh(&user.refresh).await;
    assert_eq!(s, 401, "an old session came back: {b}");
    let (s, b) = gw.gw.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200, "{b}");
    let out = gw.gw.output_containing("admin.user_enabled").await;
    let line = out
        .lines()
        .find(|l| l.contains("admin.user_disabled"))
        .expect("disable audited");
    let event: Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["target_user_id"], user.id);
    assert_eq!(event["old"], json!({"disabled": false}));
    assert_eq!(event["new"], json!({"disabled": true}));
    assert_eq!(event["via"], "api");
    assert_eq!(event["client"], "127.0.0.1");
}

#[tokio::test]
async fn a_deleted_user_is_gone_everywhere_its_email_is_free_and_its_id_is_never_reused() {
    let up = Upstream::start("echo").await;
    let (a, b) = admin_and_second(&up);
    let user = b.new_user().await;
    let (s, sessions) = admin_call(
        &a,
        Method::GET,
        &format!("/admin/users/{}/sessions", user.id),
        None,
    )
    .await;
    assert_eq!(s, 200, "{sessions}");
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    assert_eq!(b.get_status("/x", Some(&user.access)).await, 200);

    let r = client()
        .delete(a.gw.ops_url(&format!("/admin/users/{}", user.id)))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    eventually(
        Duration::from_secs(1),
        "B refuses the deleted user's token",
        || {
            let (b, t) = (&b, user.access.clone());
            async move { b.get_status("/x", Some(&t)).await == 401 }
        },
    )
    .await;
    let (s, _) = b.refresh(&user.refresh).await;
    assert_eq!(s, 401);
    let (s, body) = b.login(&user.email, PASSWORD).await;
    assert_eq!(s, 401, "{body}");
    let (s, body) = admin_call(&a, Method::GET, &format!("/admin/users/{}", user.id), None).await;
    assert_eq!(s, 404, "{body}");
    let (s, _) = admin_call(
        &a,
        Method::DELETE,
        &format!("/admin/users/{}", user.id),
        None,
    )
    .await;
    assert_eq!(s, 404, "deleting twice");
    // The email can register again, under a new id.
    let (s, body) = b.register(&user.email, PASSWORD).await;
    assert_eq!(s, 201, "{body}");
    assert_ne!(body["id"].as_u64().unwrap(), user.id);
}

#[tokio::test]
async fn a_forced_logout_ends_every_session_on_every_instance() {
    let up = Upstream::start("echo").await;
    let (a, b) = admin_and_second(&up);
    let user = b.new_user().await;
    let (s, second) = b.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let r = client()
        .delete(a.gw.ops_url(&format!("/admin/users/{}/sessions", user.id)))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for token in [
        user.access.clone(),
        second["access_token"].as_str().unwrap().to_owned(),
    ] {
        eventually(
            Duration::from_secs(1),
            "B refuses every token of the user",
            || {
                let (b, t) = (&b, token.clone());
                async move { b.get_status("/x", Some(&t)).await == 401 }
            },
        )
        .await;
    }
    let (s, _) = b.refresh(&user.refresh).await;
    assert_eq!(s, 401);
    let (_, sessions) = admin_call(
        &a,
        Method::GET,
        &format!("/admin/users/{}/sessions", user.id),
        None,
    )
    .await;
    assert_eq!(sessions["sessions"], json!([]));
    // Logging in again works: a forced logout is not a disable.
    let (s, _) = b.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_cli_verbs_work_against_the_store_and_reach_running_gateways() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let email = format!("{}@example.com", unique("cli"));
    let (code, out, err) = users(
        &gw,
        &[
            "create",
            "--email",
            &email,
            "--roles",
            "ops",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{out}{err}");
    let made = json_line(&out);
    let id = made["id"].as_u64().unwrap();
    assert_eq!(made["roles"], json!(["ops"]));
    assert!(err.contains("admin.user_created"), "audit on stderr: {err}");
    assert!(
        !err.contains(PASSWORD) && !out.contains(PASSWORD),
        "the password was printed"
    );

    let (s, body) = gw.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    let (code, out, _) = users(&gw, &["show", "--email", &email], None);
    assert_eq!(code, 0);
    assert_eq!(json_line(&out)["id"], id);
    // Roles as trailing arguments; the running gateway refuses the older token within 1 s.
    let (code, out, err) = users(
        &gw,
        &["set-roles", "--id", &id.to_string(), "admin", "ops"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_line(&out)["roles"], json!(["admin", "ops"]));
    eventually(
        Duration::from_secs(1),
        "the gateway refuses the token minted before set-roles",
        || {
            let (gw, t) = (&gw, access.clone());
            async move { gw.get_status("/x", Some(&t)).await == 401 }
        },
    )
    .await;

    let (code, out, _) = users(
        &gw,
        &["list", "--after", &(id - 1).to_string(), "--limit", "1"],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json_line(&out)["id"], id);
    assert!(out.lines().last().unwrap().contains("\"next\""), "{out}");

    let (code, _, _) = users(&gw, &["disable", "--id", &id.to_string()], None);
    assert_eq!(code, 0);
    let (s, body) = gw.login(&email, PASSWORD).await;
    assert_eq!(s, 403, "{body}");
    let (code, _, _) = users(&gw, &["enable", "--id", &id.to_string()], None);
    assert_eq!(code, 0);
    let (s, body) = gw.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (code, out, _) = users(&gw, &["sessions", "--id", &id.to_string()], None);
    assert_eq!(code, 0);
    assert!(!json_line(&out)["sessions"].as_array().unwrap().is_empty());
    let (code, _, _) = users(&gw, &["logout", "--id", &id.to_string()], None);
    assert_eq!(code, 0);
    let (s, _) = gw.refresh(&refresh).await;
    assert_eq!(s, 401);
    let (code, _, _) = users(&gw, &["delete", "--email", &email], None);
    assert_eq!(code, 0);

    // Not found and refused: exit 1, nothing changed; a bad config: exit 2.
    let (code, _, err) = users(&gw, &["show", "--id", &id.to_string()], None);
    assert_eq!(code, 1, "{err}");
    let other = gw.new_user().await;
    let (code, _, err) = users(
        &gw,
        &[
            "set-roles",
            "--id",
            &other.id.to_string(),
            "--roles",
            "Not-Valid",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Not-Valid"), "{err}");
    assert_eq!(
        gw.get_status("/x", Some(&other.access)).await,
        200,
        "a refused change revoked tokens"
    );
    let (code, _, _) = users(&gw, &["show"], None);
    assert_eq!(code, 2, "no selector is a usage error");
}

/// Where the admin API's OpenAPI document is.
const ADMIN_DOCUMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/admin/openapi.json");

#[tokio::test]
async fn the_admin_api_serves_its_document_and_answers_as_it_says() {
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, "");
    let served: Value = client()
        .get(gw.gw.ops_url("/admin/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(ADMIN_DOCUMENT).unwrap()).unwrap();
    assert_eq!(served, file);
    let Ok(out) = Command::new("schemathesis").arg("--version").output() else {
        skip(
            "admin::the_admin_api_serves_its_document_and_answers_as_it_says",
            "schemathesis is not installed (scripts/test.sh installs it into target/test-venv)",
        );
        return;
    };
    assert!(out.status.success());
    // A few users to act on; Schemathesis then calls every operation with the
    // admin token: no 5xx, every status, body and header as documented, every
    // other method 405 with the documented Allow.
    for _ in 0..3 {
        gw.gw.new_user().await;
    }
    let work = std::env::temp_dir().join(unique("schemathesis-admin"));
    std::fs::create_dir_all(&work).unwrap();
    let url = gw.gw.ops_url("");
    let token = gw.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .args(["run", ADMIN_DOCUMENT, "--url", &url])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,response_schema_conformance,\
                 content_type_conformance,response_headers_conformance,unsupported_method",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "25",
                "--seed",
                "20261203",
                "--workers",
                "1",
                "--request-timeout",
                "15",
                "--generation-database",
                "none",
            ])
            .current_dir(&work)
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    let leaked: Vec<String> = gw
        .gw
        .output()
        .lines()
        .filter(|l| l.contains(&gw.token))
        .map(|l| l.replace(&gw.token, "<ADMIN TOKEN>"))
        .collect();
    assert!(
        leaked.is_empty(),
        "the admin token was logged:
{}",
        leaked.join(
            "
"
        )
    );
}

/// Review finding: a deleted user's refresh token from before sessions existed
/// opened a new session (the tombstone had lost the logout-everywhere mark), and
/// a session that a login opened while the delete ran kept rotating on the
/// tombstone. Neither may: a deleted user gets no token of any kind.
#[tokio::test]
async fn a_deleted_user_gets_no_session_from_any_refresh_token() {
    use sha2::Digest;
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, "");
    let user = gw.gw.new_user().await;
    // What the gateway stored before sessions existed: the token's SHA-256 -> user id.
    let legacy = "5b3e4c6d-0a1f-4e8b-9c7d-23456789abcd";
    let fp = hex::encode(sha2::Sha256::digest(legacy.as_bytes()));
    let key = format!("{}rt:{fp}", gw.gw.prefix);
    shared_redis().cli(&["SET", &key, &user.id.to_string(), "EX", "600"]);
    let (s, _) = admin_call(
        &gw,
        Method::DELETE,
        &format!("/admin/users/{}", user.id),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = gw.gw.refresh(legacy).await;
    assert_eq!(
        s, 401,
        "a deleted user's legacy token opened a session: {b}"
    );

    // The state a login racing the delete leaves: a live session beside the
    // tombstone (written here as the tombstone of an older version looked).
    let other = gw.gw.new_user().await;
    let user_key = format!("{}user:{{{}}}", gw.gw.prefix, other.id);
    shared_redis().cli(&["DEL", &user_key]);
    shared_redis().cli(&["HSET", &user_key, "gen", "9", "deleted_at", "1"]);
    let (s, b) = gw.gw.refresh(&other.refresh).await;
    assert_eq!(s, 401, "a session on a tombstone was renewed: {b}");
    assert_error(&b, "invalid_refresh_token");
}
