//! The API contract (docs/api.md): `src/api/openapi.json`, which the gateway
//! serves at `GET /openapi.json`, checked against the running gateway two ways:
//! - Schemathesis generates requests for every operation (and follows the
//!   document's links register → login → refresh → logout) and checks that no
//!   answer is a 5xx, and every status and body is one the document lists;
//! - every error code the document lists for an operation is produced here by a
//!   request, so neither the document nor the code can drift silently.
//!
//! Long file: the documented error catalogue is one table checked against a running gateway, beside the Schemathesis run.

use crate::helpers::raw::{send_raw, RawResponse};
use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Instant;

/// The document, as the gateway embeds it.
const DOCUMENT: &str = include_str!("../../src/api/openapi.json");
/// The same file, for Schemathesis.
const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/openapi.json");
/// No 5xx; every status, body, Content-Type and promised header as documented;
/// unlisted methods 405 with a matching `Allow`; and every request the schema
/// calls valid accepted (or answered with a status that may meet valid data:
/// 401, 404, 409, 429).
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance,\
     content_type_conformance,response_headers_conformance,unsupported_method,\
     allow_header_conformance,positive_data_acceptance";
/// Where the Schemathesis hooks module is.
const HOOKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis");
/// Test cases Schemathesis generates per operation and phase (`AUTHGATE_SCHEMATHESIS_EXAMPLES`).
const EXAMPLES: &str = "50";

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

#[tokio::test]
async fn the_gateway_serves_the_document_it_is_built_with() {
    let gw = TestGateway::start();
    for path in ["/openapi.json", "/openapi.json/"] {
        let r = gw.get(path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        assert_eq!(r.headers()["content-type"], "application/json");
        let served: Value = r.json().await.expect("JSON");
        assert_eq!(served, document(), "{path}");
    }
}

/// Schemathesis over every operation: examples, coverage, fuzzing and the
/// stateful phase (the document's links register → login → refresh → logout),
/// with [`CHECKS`]. Skipped where `schemathesis` is not installed ([`skip`]:
/// a failure under `CI=true`); `scripts/test.sh` installs it.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let Some(version) = schemathesis_version() else {
        skip(
            "contract::schemathesis_finds_no_server_error_and_no_undocumented_answer",
            "schemathesis is not installed (scripts/test.sh installs it into target/test-venv)",
        );
        return;
    };
    // Throttles off, so that generated logins and registrations meet the handlers;
    // 429 is produced by `every_documented_error_code_is_reachable`.
    let gw = TestGateway::builder()
        .yaml("throttle:\n  enabled: false\n")
        .env("AUTHGATE_ACCESS_TTL", "3600")
        .start();
    let examples =
        std::env::var("AUTHGATE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    let url = gw.url("");
    // Schemathesis writes its reports and caches under the working directory: not the repo.
    let work = std::env::temp_dir().join(unique("schemathesis"));
    std::fs::create_dir_all(&work).expect("scratch dir");
    let report = work.join("events.ndjson");
    let args = [
        "--config-file".to_owned(),
        format!("{HOOKS_DIR}/schemathesis.toml"),
        "run".to_owned(),
        DOCUMENT_PATH.to_owned(),
        "--url".to_owned(),
        url.clone(),
        "--checks".to_owned(),
        CHECKS.to_owned(),
        "--phases".to_owned(),
        "examples,coverage,fuzzing,stateful".to_owned(),
        "--max-examples".to_owned(),
        examples,
        "--seed".to_owned(),
        "20261129".to_owned(),
        // One worker: CPython 3.11 can fail compiling in two threads at once
        // ("AST constructor recursion depth mismatch" from Schemathesis itself).
        "--workers".to_owned(),
        "1".to_owned(),
        "--request-timeout".to_owned(),
        "15".to_owned(),
        "--max-failures".to_owned(),
        "20".to_owned(),
        // Nothing kept between runs: the same seed, the same cases.
        "--generation-database".to_owned(),
        "none".to_owned(),
        "--report".to_owned(),
        "ndjson".to_owned(),
        "--report-ndjson-path".to_owned(),
        report.display().to_string(),
    ];
    // More options, such as `--report ndjson` (AUTHGATE_SCHEMATHESIS_ARGS, space-separated).
    let extra = std::env::var("AUTHGATE_SCHEMATHESIS_ARGS").unwrap_or_default();
    let args: Vec<String> = args
        .into_iter()
        .chain(extra.split_whitespace().map(str::to_owned))
        .collect();
    let started = Instant::now();
    let cwd = work.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("schemathesis")
            .args(&args)
            .current_dir(&cwd)
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            // Bearer tokens of fresh users: tests/api/schemathesis/authgate_hooks.py.
            .env("SCHEMATHESIS_HOOKS", "authgate_hooks")
            .env("PYTHONPATH", HOOKS_DIR)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("AUTHGATE_CONTRACT_URL", &url)
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{version} ran {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{text}\n--- gateway log tail ---\n{}",
        out.status,
        tail(&gw.output(), 40)
    );
    let followed = links_followed(&report);
    eprintln!("links followed to a 2xx: {followed:?}");
    // Which links the stateful phase walks to a 2xx varies from run to run (the
    // generated registrations decide whether `/login` follows one); the token
    // pair's links are followed in every run seen, and a broken link expression
    // (a renamed field) would follow none.
    assert!(
        followed.contains("POST /refresh") || followed.contains("POST /logout"),
        "no link from a token pair was followed to a 2xx: {followed:?}\n{text}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The operations the stateful phase reached through a link and that answered 2xx
/// there (`/login` from a registration, `/refresh` and `/logout` from a token pair).
fn links_followed(report: &std::path::Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(report).unwrap_or_default();
    let mut followed = BTreeSet::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let scenario = &event["ScenarioFinished"];
        if scenario["phase"] != "stateful" {
            continue;
        }
        let recorder = &scenario["recorder"];
        let Some(cases) = recorder["cases"].as_object() else {
            continue;
        };
        for (id, case) in cases {
            let status = recorder["interactions"][id]["response"]["status_code"].as_u64();
            if case["is_transition_applied"] == true && status.is_some_and(|s| s / 100 == 2) {
                let v = &case["value"];
                followed.insert(format!(
                    "{} {}",
                    v["method"].as_str().unwrap_or(""),
                    v["path"].as_str().unwrap_or("")
                ));
            }
        }
    }
    followed
}

fn schemathesis_version() -> Option<String> {
    let out = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One documented error: an operation, a status and a code its body may carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Documented {
    op: String,
    method: String,
    path: String,
    status: u16,
    code: String,
    /// Response headers the document says this answer always carries.
    headers: Vec<String>,
}

fn documented_errors(doc: &Value) -> Vec<Documented> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, resp) in responses {
                let codes =
                    &resp["content"]["application/json"]["schema"]["properties"]["error"]["enum"];
                let Some(codes) = codes.as_array() else {
                    continue;
                };
                let headers: Vec<String> = resp["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter()
                            .filter(|(_, v)| v["required"] == true)
                            .map(|(k, _)| k.to_ascii_lowercase())
                            .collect()
                    })
                    .unwrap_or_default();
                for code in codes {
                    all.push(Documented {
                        op: op["operationId"].as_str().expect("operationId").to_owned(),
                        method: method.to_ascii_uppercase(),
                        path: path.clone(),
                        status: status.parse().expect("numeric status"),
                        code: code.as_str().expect("code").to_owned(),
                        headers: headers.clone(),
                    });
                }
            }
        }
    }
    all
}

/// A request written byte for byte, so that it can carry what no client library
/// sends (two Authorization headers, an underscore in a header name, a body that
/// never arrives).
#[derive(Clone)]
struct Raw {
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// Content-Length to declare instead of the body's.
    declared: Option<usize>,
}

impl Raw {
    fn new(method: &str, path: &str) -> Raw {
        Raw {
            method: method.into(),
            path: path.into(),
            host: "gateway.test".into(),
            headers: vec![],
            body: None,
            declared: None,
        }
    }

    fn header(mut self, k: &str, v: &str) -> Raw {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn bearer(self, token: &str) -> Raw {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    fn without_authorization(mut self) -> Raw {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self
    }

    fn body(mut self, body: &str) -> Raw {
        self.body = Some(body.into());
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.method, self.path, self.host
        );
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = self.body.clone().unwrap_or_default();
        if self.body.is_some() || self.declared.is_some() {
            let n = self.declared.unwrap_or(body.len());
            s.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {n}\r\n"
            ));
        }
        s.push_str("\r\n");
        s.push_str(&body);
        s.into_bytes()
    }

    async fn send(&self, gw: &TestGateway) -> RawResponse {
        send_raw(gw.addr, &self.bytes()).await
    }
}

/// The value of header `name` in a raw response head.
fn header(r: &RawResponse, name: &str) -> Option<String> {
    r.head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The gateways the requests run against.
struct Gateways {
    /// Throttles off, auth bodies given 300 ms.
    main: TestGateway,
    /// Every throttle rule at one attempt.
    tight: TestGateway,
    /// Its Redis port is closed.
    down: TestGateway,
    /// One hashing thread, no queue, a slow hash.
    slow: TestGateway,
    /// A user of `slow`.
    slow_user: TestUser,
    /// `registration.enabled: false`.
    closed: TestGateway,
    /// Keeps `down`'s Redis port closed.
    _dead: DeadPort,
}

const NO_USER: u64 = 987_654_321;
const NEW_PASSWORD: &str = "a new correct horse";

/// The request for `op` that succeeds or fails only for the reason under test:
/// well-formed, with a valid token on `gw` where it needs one.
fn base(op: &str, token: &str) -> Raw {
    let email = format!("{}@example.com", unique("contract"));
    let creds = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let refresh = format!(r#"{{"refresh_token":"{}"}}"#, uuid::Uuid::new_v4());
    match op {
        "register" => Raw::new("POST", "/register").body(&creds),
        "login" => Raw::new("POST", "/login").body(&creds),
        "refresh" => Raw::new("POST", "/refresh").body(&refresh),
        "logout" => Raw::new("POST", "/logout").body(&refresh),
        "logoutAll" => Raw::new("POST", "/logout/all").bearer(token),
        "getMe" => Raw::new("GET", "/me").bearer(token),
        "putMe" => Raw::new("PUT", "/me")
            .bearer(token)
            .body(r#"{"username":"Ann"}"#),
        "changePassword" => Raw::new("POST", "/password").bearer(token).body(&format!(
            r#"{{"current_password":"{PASSWORD}","new_password":"{NEW_PASSWORD}"}}"#
        )),
        "listSessions" => Raw::new("GET", "/sessions").bearer(token),
        "deleteSession" => {
            Raw::new("DELETE", "/sessions/0123456789abcdef0123456789abcdef").bearer(token)
        }
        "jwks" => Raw::new("GET", "/.well-known/jwks.json"),
        "openapi" => Raw::new("GET", "/openapi.json"),
        other => panic!("no base request for operation {other}: add one"),
    }
}

/// The body field the 400 `invalid_field` of `op` is produced with.
fn invalid_field_body(op: &str) -> &'static str {
    match op {
        "register" => r#"{"email":"ann@example","password":"correct horse battery"}"#,
        "login" => r#"{"email":"ann@example.com","password":12345678}"#,
        "refresh" | "logout" => r#"{"refresh_token":42}"#,
        "putMe" => r#"{"username":"   "}"#,
        "changePassword" => r#"{"current_password":"x","new_password":"short"}"#,
        other => panic!("no invalid_field body for {other}: add one"),
    }
}

/// Produce `d` (status and code) with one or more requests; the answer that carries it.
async fn reach(g: &Gateways, d: &Documented) -> RawResponse {
    let op = d.op.as_str();
    // A user of its own: a request that wrongly succeeded (a logout everywhere,
    // a password change) would end the sessions of a shared one.
    let user = g.main.new_user().await;
    let main = || base(op, &user.access);
    match d.code.as_str() {
        "malformed_json" => main().body("{").send(&g.main).await,
        "missing_field" => main().body("{}").send(&g.main).await,
        "invalid_field" => main().body(invalid_field_body(op)).send(&g.main).await,
        "invalid_header" => main().header("X_Forwarded_User", "1").send(&g.main).await,
        "invalid_authorization" => {
            main()
                .header("Authorization", "Bearer a")
                .header("Authorization", "Bearer b")
                .send(&g.main)
                .await
        }
        "invalid_host" => {
            let mut r = main();
            r.host = "bad host!".into();
            r.send(&g.main).await
        }
        "invalid_framing" | "unsupported_transfer_coding" => {
            let mut r = main();
            r.body = None;
            r.declared = None;
            let coding = match d.code.as_str() {
                "invalid_framing" => "chunked, chunked",
                _ => "gzip, chunked",
            };
            r.header("Transfer-Encoding", coding).send(&g.main).await
        }
        "invalid_path" => {
            let mut r = main();
            r.path = "/sessions/a%2Fb".into();
            r.send(&g.main).await
        }
        "missing_token" => main().without_authorization().send(&g.main).await,
        "invalid_token" => {
            main()
                .without_authorization()
                .bearer("not.a.token")
                .send(&g.main)
                .await
        }
        "token_expired" => {
            let expired = jwt(SECRET, jsonwebtoken::Algorithm::HS256, user.id, -3600);
            main()
                .without_authorization()
                .bearer(&expired)
                .send(&g.main)
                .await
        }
        "unknown_user" => base(op, &token(NO_USER)).send(&g.main).await,
        "invalid_credentials" if op == "changePassword" => {
            main()
                .body(&format!(
                    r#"{{"current_password":"wrong password","new_password":"{NEW_PASSWORD}"}}"#
                ))
                .send(&g.main)
                .await
        }
        "invalid_credentials" | "invalid_refresh_token" => main().send(&g.main).await,
        "not_found" => main().send(&g.main).await,
        "method_not_allowed" if op == "deleteSession" => {
            // A dot segment: `/sessions/.` is `/sessions`.
            let mut r = main();
            r.path = "/sessions/.".into();
            r.send(&g.main).await
        }
        "registration_closed" => main().send(&g.closed).await,
        "account_disabled" => {
            // Disabled by an operator, with the CLI against the same store.
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
                .arg("-c")
                .arg(g.main.conf())
                .args(["users", "disable", "--id", &user.id.to_string()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let creds = user.credentials().to_string();
            Raw::new("POST", "/login").body(&creds).send(&g.main).await
        }
        "email_taken" => {
            let r = main();
            assert_eq!(r.send(&g.main).await.status, 201);
            r.send(&g.main).await
        }
        "request_timeout" => {
            let mut r = main();
            r.body = Some("{".into());
            r.declared = Some(100);
            r.send(&g.main).await
        }
        "body_too_large" => {
            let mut r = main();
            r.body = Some(String::new());
            r.declared = Some(10 * 1024 * 1024);
            r.send(&g.main).await
        }
        "too_many_attempts" => {
            // Every rule allows one attempt: the second (third for login, whose
            // first failure may be cleared by nothing) is refused.
            let r = base(op, &token(NO_USER));
            let r = if op == "login" {
                r.body(r#"{"email":"nobody@example.com","password":"wrong password"}"#)
            } else {
                r
            };
            let mut last = r.send(&g.tight).await;
            for _ in 0..3 {
                if last.status == 429 {
                    break;
                }
                last = r.send(&g.tight).await;
            }
            last
        }
        "store_unavailable" => base(op, &token(1)).send(&g.down).await,
        "busy" => {
            // One hashing slot and no queue: of concurrent hashing requests, all
            // but the one hashing are refused at once.
            let r = base(op, &g.slow_user.access);
            let answers =
                send_concurrently((0..4).map(|_| r.clone()).collect::<Vec<_>>(), &g.slow).await;
            answers
                .into_iter()
                .find(|a| a.status == 503)
                .unwrap_or_else(|| panic!("no 503 among concurrent {op} requests"))
        }
        other => panic!("no request produces {other} for {op}: add one to `reach`"),
    }
}

async fn send_concurrently(reqs: Vec<Raw>, gw: &TestGateway) -> Vec<RawResponse> {
    let addr = gw.addr;
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|r| tokio::spawn(async move { send_raw(addr, &r.bytes()).await }))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}

/// Every (operation, status, error code) the document lists is produced by a
/// request here, with the headers the document promises. `store_unavailable`
/// runs against a gateway whose Redis port is closed (the outage itself, with
/// recovery, is `redis_outage.rs`); `busy` against one with a single hashing
/// slot and no queue.
#[tokio::test]
async fn every_documented_error_code_is_reachable() {
    let doc = document();
    let documented = documented_errors(&doc);
    assert!(
        documented.len() > 50,
        "{} documented errors",
        documented.len()
    );
    let dead = DeadPort::new();
    let main = TestGateway::builder()
        .yaml(
            "throttle:\n  enabled: false\nlimits:\n  auth_body_timeout_ms: 300\n\
             underscore_headers: reject\n",
        )
        .start();
    let tight = TestGateway::builder()
        .yaml(
            "throttle:\n  login_per_account_ip: {limit: 1, window_seconds: 600}\n  \
             login_per_account: {limit: 1, window_seconds: 600}\n  \
             login_per_ip: {limit: 1, window_seconds: 600}\n  \
             register_per_ip: {limit: 1, window_seconds: 600}\n  \
             password_per_ip: {limit: 1, window_seconds: 600}\n",
        )
        .start();
    let down = TestGateway::builder()
        .redis_url(format!("redis://{}/0", dead.addr))
        .start();
    let slow = TestGateway::builder()
        .yaml("throttle:\n  enabled: false\n")
        .env("AUTHGATE_HASH_THREADS", "1")
        .env("AUTHGATE_HASH_MAX_QUEUE", "0")
        .env("AUTHGATE_ARGON2_MEMORY_KIB", "65536")
        .env("AUTHGATE_ARGON2_ITERATIONS", "4")
        .start();
    let slow_user = slow.new_user().await;
    let closed = TestGateway::builder()
        .yaml("registration:\n  enabled: false\n")
        .start();
    let g = Gateways {
        main,
        tight,
        down,
        slow,
        slow_user,
        closed,
        _dead: dead,
    };
    let mut failures = Vec::new();
    let mut reached = BTreeSet::new();
    for d in &documented {
        let r = reach(&g, d).await;
        let body = r.json();
        let mut wrong = Vec::new();
        if r.status != d.status || body["error"] != d.code.as_str() {
            let shown: String = r.body.chars().take(200).collect();
            wrong.push(format!("got {} {shown}", r.status));
        }
        if body["detail"].as_str().is_none_or(str::is_empty) {
            wrong.push("no detail".into());
        }
        for h in &d.headers {
            if header(&r, h).is_none() {
                wrong.push(format!("no {h} header"));
            }
        }
        if d.code == "busy" && header(&r, "retry-after").as_deref() != Some("1") {
            wrong.push("busy without Retry-After: 1".into());
        }
        if wrong.is_empty() {
            reached.insert((d.op.clone(), d.code.clone()));
        } else {
            failures.push(format!(
                "{} {} ({}) {} {}: {}",
                d.method,
                d.path,
                d.op,
                d.status,
                d.code,
                wrong.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "documented but not produced as documented:\n{}",
        failures.join("\n")
    );
    eprintln!("{} documented error answers produced", reached.len());
}

/// Each path answers every method the document does not list with 405 and an
/// `Allow` naming exactly the listed ones, under both spellings (with and
/// without the trailing slash).
#[tokio::test]
async fn other_methods_get_405_with_the_documented_allow_under_both_spellings() {
    let doc = document();
    let gw = TestGateway::start();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let listed: BTreeSet<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
            .map(|k| k.to_ascii_uppercase())
            .collect();
        let allow: BTreeSet<String> = item["x-allow"]
            .as_str()
            .expect("x-allow")
            .split(", ")
            .map(str::to_owned)
            .collect();
        assert_eq!(listed, allow, "{path}: operations vs x-allow");
        let concrete = path.replace("{id}", "0123456789abcdef0123456789abcdef");
        for spelling in [concrete.clone(), format!("{concrete}/")] {
            for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
                if allow.contains(method) {
                    continue;
                }
                let r = Raw::new(method, &spelling).body("{}").send(&gw).await;
                assert_eq!(r.status, 405, "{method} {spelling}: {}", r.body);
                assert_error(&r.json(), "method_not_allowed");
                assert_eq!(
                    header(&r, "allow").as_deref(),
                    item["x-allow"].as_str(),
                    "{method} {spelling}"
                );
            }
        }
    }
}

/// `x-browser-mode` names the GETs that exist in browser mode only (the login
/// and registration pages): there they answer HTML, without it 405 (checked
/// above); and no other path answers a browser's GET with a page.
#[tokio::test]
async fn the_pages_of_browser_mode_are_the_ones_the_document_names() {
    let doc = document();
    let up = crate::helpers::raw::RawUpstream::start().await;
    let gw = TestGateway::builder()
        .yaml(&crate::browser::yaml(&up, ""))
        .start();
    let mut pages = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", "0123456789abcdef0123456789abcdef");
        let r = Raw::new("GET", &concrete)
            .header("Accept", "text/html")
            .send(&gw)
            .await;
        let html = header(&r, "content-type").is_some_and(|t| t.starts_with("text/html"));
        assert_eq!(
            html,
            item.get("x-browser-mode").is_some(),
            "GET {path}: {r:?}"
        );
        if html {
            assert_eq!(r.status, 200, "GET {path}");
            pages.push(path.clone());
        }
    }
    assert_eq!(pages, ["/register", "/login"]);
}
