//! Roles on routes: who may reach what, `X-User-Roles` upstream, and role changes that refuse older tokens on every instance within a second.

use crate::admin::{admin_call, AdminGateway};
use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// `/staff` needs `staff` or `admin`; `/reports` takes GET and HEAD only; the rest any valid token.
const ROUTES: &str = r#"
routes:
  - prefix: /staff
    upstream: default
    roles: [staff, admin]
  - prefix: /reports
    upstream: default
    methods: [GET, HEAD]
  - prefix: /
    upstream: default
"#;

async fn get(gw: &TestGateway, path: &str, bearer: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut req = gw.request(Method::GET, path).bearer_auth(bearer);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A fresh token pair for `user` through `/refresh`.
async fn refreshed(gw: &TestGateway, user: &mut TestUser) {
    let (s, b) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200, "refresh: {b}");
    user.access = b["access_token"].as_str().unwrap().to_owned();
    user.refresh = b["refresh_token"].as_str().unwrap().to_owned();
}

#[tokio::test]
async fn a_role_route_refuses_tokens_without_the_role_and_admits_holders_with_their_roles_upstream()
{
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, ROUTES);
    let mut user = gw.gw.new_user().await;

    // A valid token without the role: 403, and the upstream sees nothing.
    let before = up.hits();
    let (s, b) = get(&gw.gw, "/staff/payroll", &user.access, &[]).await;
    assert_eq!(s, 403, "{b}");
    assert_error(&b, "forbidden");
    let (s, b) = get(&gw.gw, "/staff/payroll", "not-a-token", &[]).await;
    assert_eq!(s, 401, "no valid token stays 401: {b}");
    assert_eq!(up.hits(), before, "a refused request reached the upstream");
    assert!(gw
        .gw
        .metrics()
        .await
        .contains("authgate_role_refusals_total{route=\"/staff\"} 1"));

    // `superadmin` is not `admin`: matching is exact.
    let (s, b) = admin_call(
        &gw,
        Method::PUT,
        &format!("/admin/users/{}/roles", user.id),
        Some(json!({"roles": ["superadmin"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    refreshed(&gw.gw, &mut user).await;
    let (s, _) = get(&gw.gw, "/staff/payroll", &user.access, &[]).await;
    assert_eq!(s, 403);

    let (s, b) = admin_call(
        &gw,
        Method::PUT,
        &format!("/admin/users/{}/roles", user.id),
        Some(json!({"roles": ["staff", "billing", "staff"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["roles"],
        json!(["billing", "staff"]),
        "sorted, without duplicates"
    );
    // The token from before the change is refused (the client refreshes)...
    let (s, b) = get(&gw.gw, "/staff/payroll", &user.access, &[]).await;
    assert_eq!(s, 401, "{b}");
    assert_error(&b, "invalid_token");
    // ...and the refreshed one carries the new roles.
    refreshed(&gw.gw, &mut user).await;
    let spoofed = [
        ("X-User-Roles", "admin"),
        ("x-user-roles", "root"),
        ("X_User_Roles", "root"),
    ];
    let (s, echo) = get(&gw.gw, "/staff/payroll", &user.access, &spoofed).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(header_values(&echo, "x-user-roles"), vec!["billing,staff"]);
    assert_eq!(header_values(&echo, "x-user-id"), vec![user.id.to_string()]);
    assert!(header_values(&echo, "x_user_roles").is_empty(), "{echo}");

    // Elsewhere too: the roles travel with every verified request.
    let (s, echo) = get(
        &gw.gw,
        "/anything",
        &user.access,
        &[("X-User-Roles", "admin")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(header_values(&echo, "x-user-roles"), vec!["billing,staff"]);

    // No roles: no header, and a client-sent one is still removed.
    let other = gw.gw.new_user().await;
    let (s, echo) = get(
        &gw.gw,
        "/anything",
        &other.access,
        &[("X-User-Roles", "admin")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(header_values(&echo, "x-user-roles").is_empty(), "{echo}");
}

#[tokio::test]
async fn a_route_limited_to_methods_answers_405_with_allow() {
    let up = Upstream::start("echo").await;
    let gw = AdminGateway::start(&up, ROUTES);
    let user = gw.gw.new_user().await;
    let before = up.hits();
    let r = gw
        .gw
        .request(Method::DELETE, "/reports/2026")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_error(&r.json().await.unwrap(), "method_not_allowed");
    assert_eq!(up.hits(), before);
    // Without a token it is 401 first: the method list is not shown to strangers.
    let r = gw
        .gw
        .request(Method::DELETE, "/reports/2026")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = get(&gw.gw, "/reports/2026", &user.access, &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn removing_a_role_on_one_instance_refuses_the_old_token_on_another_within_a_second() {
    let up = Upstream::start("echo").await;
    let a = AdminGateway::start(&up, ROUTES);
    let b = TestGateway::builder()
        .upstream(up.addr)
        .yaml(ROUTES)
        .same_store_as(&a.gw)
        .start();
    let mut user = b.new_user().await;
    let (s, body) = admin_call(
        &a,
        Method::PUT,
        &format!("/admin/users/{}/roles", user.id),
        Some(json!({"roles": ["staff"]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // The role change itself is a revocation on B too: refresh there to get the role.
    eventually(
        Duration::from_secs(1),
        "B refuses the token from before the role was added",
        || {
            let (b, token) = (&b, user.access.clone());
            async move { get(b, "/anything", &token, &[]).await.0 == 401 }
        },
    )
    .await;
    refreshed(&b, &mut user).await;
    let (s, _) = get(&b, "/staff/x", &user.access, &[]).await;
    assert_eq!(s, 200);

    // Removed on A: B refuses the token that held it within a second.
    let started = std::time::Instant::now();
    let (s, body) = admin_call(
        &a,
        Method::PUT,
        &format!("/admin/users/{}/roles", user.id),
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["roles"], json!([]));
    eventually(
        Duration::from_secs(1),
        "B refuses the token that held the removed role",
        || {
            let (b, token) = (&b, user.access.clone());
            async move { get(b, "/staff/x", &token, &[]).await.0 == 401 }
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    // The refreshed token has no role left: 403 on B.
    refreshed(&b, &mut user).await;
    let (s, body) = get(&b, "/staff/x", &user.access, &[]).await;
    assert_eq!(s, 403, "{body}");
}

#[tokio::test]
async fn roles_need_a_required_route_and_valid_names_at_load() {
    for (yaml, key) in [
        (
            "routes:\n  - {prefix: /x, upstream: default, auth: public, roles: [admin]}\n",
            "auth: required",
        ),
        (
            "routes:\n  - {prefix: /x, upstream: default, roles: [Admin]}\n",
            "routes[0].roles",
        ),
        (
            "routes:\n  - {prefix: /x, upstream: default, methods: [get]}\n",
            "routes[0].methods",
        ),
    ] {
        let (code, out) = crate::admin::check_conf(yaml);
        assert_eq!(code, 2, "{yaml}: {out}");
        assert!(out.contains(key), "{yaml}: {out}");
    }
}

/// `authgate -c conf routes explain ARGS --json`: exit code and report.
fn explain(conf: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("-c")
        .arg(conf)
        .args(["routes", "explain", "--json"])
        .args(args)
        .env_remove("AUTHGATE_UPSTREAM")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(text.trim()).unwrap_or_else(
        |_| json!({ "stdout": text, "stderr": String::from_utf8_lossy(&out.stderr) }),
    );
    (out.status.code().unwrap_or(-1), report)
}

#[test]
fn routes_explain_answers_as_the_gateway_would_on_the_shipped_and_a_role_conf() {
    let shipped = std::path::Path::new("conf/gateway.yaml");
    let (code, r) = explain(shipped, &["--anonymous", "GET", "/api/x"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["answer"]["status"], 401, "{r}");
    assert_eq!(r["route"]["prefix"], "/", "{r}");
    let (code, r) = explain(shipped, &["GET", "/api/./x/../y?q=1"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["canonical_path"], "/api/y", "{r}");
    assert_eq!(r["answer"]["forwarded"], true, "{r}");
    let (code, r) = explain(shipped, &["POST", "/login/"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["answer"]["served_by"], "gateway", "{r}");
    let (code, r) = explain(shipped, &["GET", "/a%2fb"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["answer"]["error"], "invalid_path", "{r}");

    let conf = std::env::temp_dir().join(format!("{}.yaml", unique("explain")));
    std::fs::write(
        &conf,
        format!("upstreams:\n  default:\n    peers: ['127.0.0.1:1']\n{ROUTES}"),
    )
    .unwrap();
    let (code, r) = explain(&conf, &["--roles", "staff,billing", "GET", "/STAFF/pay"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["route"]["prefix"], "/staff", "{r}");
    assert_eq!(r["answer"]["x_user_roles"], "billing,staff", "{r}");
    let (code, r) = explain(&conf, &["--roles", "superadmin", "GET", "/staff/pay"]);
    assert_eq!(
        (code, r["answer"]["status"].clone()),
        (1, json!(403)),
        "{r}"
    );
    let (code, r) = explain(&conf, &["--anonymous", "GET", "/staff/pay"]);
    assert_eq!(
        (code, r["answer"]["status"].clone()),
        (1, json!(401)),
        "{r}"
    );
    let (code, r) = explain(&conf, &["DELETE", "/reports/1"]);
    assert_eq!(
        (code, r["answer"]["status"].clone()),
        (1, json!(405)),
        "{r}"
    );
    let (code, r) = explain(&conf, &["--roles", "Bad Role", "GET", "/x"]);
    assert_eq!(code, 2, "{r}");
}
