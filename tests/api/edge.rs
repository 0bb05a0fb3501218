//! The edge, attacked over raw sockets: what the upstream actually receives for each trick a client can try.
//!
//! Long file: 23 edge rules, each attack sent over a raw socket through both engines beside the recording upstream they share; splitting it would duplicate that upstream.

use crate::helpers::raw::{closed, read_response, send_raw, RawUpstream};
use crate::helpers::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Routes: /pub public, /api required, /shop optional with /shop/admin required,
/// /host public for internal.example only, /fwd required and forwarding Authorization.
pub(crate) fn routes(up: &RawUpstream) -> String {
    format!(
        r#"
upstreams:
  up: {{ peers: ['{up}'] }}
routes:
  - {{ prefix: /pub, upstream: up, auth: public }}
  - {{ prefix: /api, upstream: up }}
  - {{ prefix: /shop, upstream: up, auth: optional }}
  - {{ prefix: /shop/admin, upstream: up }}
  - {{ prefix: /host, upstream: up, host: internal.example, auth: public }}
  - {{ prefix: /fwd, upstream: up, forward_authorization: true }}
"#,
        up = up.addr
    )
}

/// A gateway with `routes` and `extra` config.
fn gateway(up: &RawUpstream, extra: &str) -> TestGateway {
    TestGateway::builder()
        .yaml(&format!("{}{extra}", routes(up)))
        .start()
}

/// `GET target` with `headers` (already `Name: value\r\n` lines), Host a.example, closing.
fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: a.example\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn bearer(user: u64) -> String {
    format!("Authorization: Bearer {}\r\n", token(user))
}

#[tokio::test]
async fn no_spelling_of_an_identity_header_reaches_the_upstream() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for spelling in [
        "X_User_Id",
        "x_user_id",
        "X-User_Id",
        "X-USER-ID",
        "x-user-id",
    ] {
        let spoof = format!("{spelling}: 1\r\nX_Trace: t\r\n");
        // public and optional routes without a token: no identity at all
        for path in ["/pub/x", "/shop/x"] {
            let r = send_raw(gw.addr, &get(path, &spoof)).await;
            assert_eq!(r.status, 200, "{spelling} {path}: {r:?}");
            let seen = up.last().expect("forwarded");
            assert!(
                seen.spellings_of("x-user-id").is_empty(),
                "{spelling} on {path} reached the upstream: {seen:?}"
            );
            assert!(seen.header("x_trace").is_empty(), "underscore header kept");
        }
        // with a token: exactly the gateway's own header
        let r = send_raw(gw.addr, &get("/shop/x", &format!("{spoof}{}", bearer(7)))).await;
        assert_eq!(r.status, 200);
        let seen = up.last().expect("forwarded");
        assert_eq!(
            seen.spellings_of("x-user-id"),
            vec!["X-User-Id"],
            "{seen:?}"
        );
        assert_eq!(seen.header("x-user-id"), vec!["7"]);
    }
}

#[tokio::test]
async fn underscore_headers_can_be_refused_or_allowed() {
    let up = RawUpstream::start().await;
    let strict = gateway(&up, "underscore_headers: reject\n");
    let r = send_raw(strict.addr, &get("/pub/x", "X_Trace: 1\r\n")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_error(&r.json(), "invalid_header");
    assert_eq!(up.count(), 0);

    let lax = gateway(&up, "underscore_headers: allow\n");
    let spoof = "X_Trace: 1\r\nX_User_Id: 1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n";
    let r = send_raw(lax.addr, &get("/pub/x", spoof)).await;
    assert_eq!(r.status, 200);
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("x_trace"), vec!["1"]);
    assert!(seen.spellings_of("x-user-id").is_empty(), "{seen:?}");
    // CGI-style upstreams read these as X-Forwarded-For and X-Real-IP.
    assert_eq!(
        seen.spellings_of("x-forwarded-for"),
        vec!["X-Forwarded-For"],
        "{seen:?}"
    );
    assert!(seen.spellings_of("x-real-ip").is_empty(), "{seen:?}");
}

/// gunicorn reads a `SCRIPT_NAME` header as the mount point: `SCRIPT_NAME: /pub`
/// on `/pub/admin` would reach its `/admin` with the public route's policy.
#[tokio::test]
async fn cgi_variable_names_never_reach_the_upstream() {
    let up = RawUpstream::start().await;
    let spoof: String = [
        "SCRIPT_NAME: /pub",
        "Script-Name: /pub",
        "PATH_INFO: /admin",
        "Path-Info: /admin",
        "REMOTE_USER: admin",
        "remote-user: admin",
        "REMOTE_ADDR: 10.0.0.1",
        "Server_Name: internal.example",
        "QUERY_STRING: admin=1",
        "AUTH_TYPE: Basic",
        "CONTENT_TYPE: text/plain",
        "Content_Length: 5",
        "GATEWAY-INTERFACE: CGI/1.1",
    ]
    .iter()
    .map(|h| format!("{h}\r\n"))
    .collect();
    for fast_path in [true, false] {
        for underscores in ["drop", "allow"] {
            let gw = TestGateway::builder()
                .yaml(&format!(
                    "{}underscore_headers: {underscores}\n",
                    routes(&up)
                ))
                .fast_path(fast_path)
                .start();
            let r = send_raw(gw.addr, &get("/pub/admin", &spoof)).await;
            assert_eq!(r.status, 200, "{r:?}");
            let seen = up.last().expect("forwarded");
            for name in [
                "script-name",
                "path-info",
                "remote-user",
                "remote-addr",
                "server-name",
                "query-string",
                "auth-type",
                "content-type",
                "content-length",
                "gateway-interface",
            ] {
                assert!(
                    seen.spellings_of(name).is_empty(),
                    "fast_path {fast_path}, {underscores}: {name} reached the upstream: {seen:?}"
                );
            }
        }
    }
    // The real Content-Type and Content-Length are not CGI names.
    let gw = TestGateway::builder().yaml(&routes(&up)).start();
    let r = send_raw(
        gw.addr,
        b"POST /pub/x HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("content-type"), vec!["text/plain"], "{seen:?}");
    assert_eq!(seen.header("content-length"), vec!["2"], "{seen:?}");
}

#[tokio::test]
async fn connection_naming_the_identity_header_keeps_the_injected_one() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for nominated in ["x-user-id", "X-User-Id, x_user_id"] {
        let req = format!(
            "GET /api/x HTTP/1.1\r\nHost: a\r\n{}Connection: {nominated}\r\nX-User-Id: 9\r\n\r\n",
            bearer(7)
        );
        let r = send_raw(gw.addr, req.as_bytes()).await;
        assert_eq!(r.status, 200, "{r:?}");
        let seen = up.last().expect("forwarded");
        assert_eq!(seen.header("x-user-id"), vec!["7"], "{seen:?}");
    }
}

#[tokio::test]
async fn the_policy_is_chosen_on_the_canonical_path_and_that_path_is_forwarded() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for (raw, canonical) in [
        ("/pub/../api/admin", "/api/admin"),
        ("/pub/%2e%2e/api/admin", "/api/admin"),
        ("/pub/%2E%2e/api/admin", "/api/admin"),
        ("/pub//../api/admin", "/api/admin"),
        ("/pub/./../api/admin", "/api/admin"),
        ("//pub/..//api/admin", "/api/admin"),
        ("/shop/%61dmin", "/shop/admin"),
        ("/shop/x/../admin/", "/shop/admin/"),
    ] {
        let before = up.count();
        let r = send_raw(gw.addr, &get(raw, "")).await;
        assert_eq!(r.status, 401, "{raw} without a token: {r:?}");
        assert_eq!(up.count(), before, "{raw} reached the upstream");

        let r = send_raw(gw.addr, &get(raw, &bearer(3))).await;
        assert_eq!(r.status, 200, "{raw} with a token: {r:?}");
        let seen = up.last().expect("forwarded");
        assert_eq!(seen.target(), canonical, "{raw}");
        assert_eq!(seen.header("x-user-id"), vec!["3"]);
    }
    // dot segments never climb above the root; the query is forwarded untouched
    let r = send_raw(gw.addr, &get("/../../pub/./x?a=%2F..&b=1", "")).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.last().expect("forwarded").target(), "/pub/x?a=%2F..&b=1");
    // an absolute-form target is forwarded in origin form
    let r = send_raw(
        gw.addr,
        b"GET http://a.example/pub/y HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(up.last().expect("forwarded").target(), "/pub/y");
}

#[tokio::test]
async fn paths_with_more_than_one_meaning_are_refused() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for raw in [
        "/api;x/admin",
        "/pub;jsessionid=1",
        "/pub/a%2fb",
        "/pub/a%2F..%2Fapi",
        "/pub/a%5Cb",
        "/pub/a%5c..%5capi",
        "/pub/%00",
        "/pub/a%0d%0aX-User-Id:%201",
        "/pub/%252e%252e/api/admin",
        "/pub/a%zz",
        "/pub/%25%32%65%25%32%65/api/admin",
        "/pub/%2561dmin",
        "/pub/a\\..\\api",
        "pub/x",
    ] {
        let r = send_raw(gw.addr, &get(raw, &bearer(1))).await;
        assert_eq!(r.status, 400, "{raw}: {r:?}");
        assert_error(&r.json(), "invalid_path");
        assert!(!r.body.contains(raw), "path echoed: {}", r.body);
    }
    assert_eq!(up.count(), 0, "{:?}", up.requests());
}

#[tokio::test]
async fn auth_endpoints_are_found_on_the_canonical_path() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "underscore_headers: drop\n");
    let body = r#"{"email":"nobody@example.com","password":"wrong password"}"#;
    for path in ["/pub/../login", "//login", "/%6cogin"] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let r = send_raw(gw.addr, req.as_bytes()).await;
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_error(&r.json(), "invalid_credentials");
    }
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn hosts_are_canonical_and_must_agree() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for host in [
        "internal.example",
        "Internal.Example.",
        "INTERNAL.example.:8080",
    ] {
        let req = format!("GET /host/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let r = send_raw(gw.addr, req.as_bytes()).await;
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    let r = send_raw(gw.addr, &get("/host/x", "")).await;
    assert_eq!(r.status, 404, "other hosts do not match the host route");

    let before = up.count();
    let r = send_raw(
        gw.addr,
        b"GET http://internal.example/host/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "target and Host disagree: {r:?}");
    let r = send_raw(
        gw.addr,
        b"GET /pub/x HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_error(&r.json(), "invalid_host");
    assert_eq!(up.count(), before);
}

/// RFC 9112 §3.2: no Host (or an empty one) is a 400, for HTTP/1.0 too, through
/// either engine; an absolute-form target's authority is forwarded as `Host`.
#[tokio::test]
async fn a_request_without_a_host_is_refused_and_absolute_form_supplies_one() {
    let up = RawUpstream::start().await;
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&routes(&up))
            .fast_path(fast_path)
            .start();
        let before = up.count();
        for req in [
            "GET /pub/x HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /pub/x HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
            "GET /pub/x HTTP/1.0\r\n\r\n",
            "GET /pub/x HTTP/1.0\r\nHost:\r\n\r\n",
            "POST /pub/x HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ] {
            let r = send_raw(gw.addr, req.as_bytes()).await;
            assert_eq!(r.status, 400, "fast_path {fast_path}: {req:?}: {r:?}");
            assert_error(&r.json(), "invalid_host");
        }
        // An empty Host is a second, different answer to "which host?"
        // (Pingora's parser refuses it before the edge: its empty 400).
        let r = send_raw(
            gw.addr,
            b"GET http://a.example/pub/x HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(up.count(), before, "{:?}", up.requests());

        for (req, host) in [
            (
                "GET http://Internal.example/host/x HTTP/1.1\r\nConnection: close\r\n\r\n",
                "Internal.example",
            ),
            (
                "GET http://internal.example:8080/host/x HTTP/1.0\r\n\r\n",
                "internal.example:8080",
            ),
            (
                "GET /pub/x HTTP/1.0\r\nHost: a.example\r\n\r\n",
                "a.example",
            ),
        ] {
            let r = send_raw(gw.addr, req.as_bytes()).await;
            assert_eq!(r.status, 200, "fast_path {fast_path}: {req:?}: {r:?}");
            let seen = up.last().expect("forwarded");
            assert_eq!(seen.header("host"), vec![host], "{req:?}: {seen:?}");
            assert!(seen.target().starts_with('/'), "{seen:?}");
        }
    }
}

const FORWARDING_CLAIMS: &str = "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\nX-Original-URL: /api/admin\r\nX-Rewrite-URL: /api/admin\r\n";

/// The rest of the forwarding family, as frameworks read it: each only from a trusted proxy.
const FORWARDING_FAMILY: [(&str, &str); 9] = [
    ("X-Forwarded-Ssl", "on"),
    ("X-Forwarded-Scheme", "https"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Forwarded-Protocol", "https"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-Host", "evil.example"),
    ("X-Url-Scheme", "https"),
    ("Front-End-Https", "on"),
];

/// Each of `FORWARDING_FAMILY` in the spellings a CGI-style upstream folds together.
fn family_spellings() -> String {
    FORWARDING_FAMILY
        .iter()
        .flat_map(|(n, v)| {
            [
                format!("{n}: {v}\r\n"),
                format!("{}: {v}\r\n", n.to_ascii_uppercase()),
                format!("{}: {v}\r\n", n.replace('-', "_")),
            ]
        })
        .collect()
}

#[tokio::test]
async fn the_forwarding_family_passes_only_from_a_trusted_proxy() {
    let up = RawUpstream::start().await;
    let yaml = format!(
        "{}  - {{ prefix: /strip/me, upstream: up, auth: public, strip_prefix: true }}\n",
        routes(&up)
    );
    for fast_path in [true, false] {
        for underscores in ["drop", "allow"] {
            let gw = TestGateway::builder()
                .yaml(&format!("{yaml}underscore_headers: {underscores}\n"))
                .fast_path(fast_path)
                .start();
            for path in ["/pub/x", "/strip/me/x"] {
                let r = send_raw(gw.addr, &get(path, &family_spellings())).await;
                assert_eq!(r.status, 200, "{r:?}");
                let seen = up.last().expect("forwarded");
                for (name, _) in FORWARDING_FAMILY {
                    let kept = seen.spellings_of(name);
                    if name == "X-Forwarded-Prefix" && path == "/strip/me/x" {
                        assert_eq!(kept, vec!["X-Forwarded-Prefix"], "{seen:?}");
                        assert_eq!(seen.header(name), vec!["/strip/me"], "{seen:?}");
                        assert_eq!(seen.target(), "/x");
                    } else {
                        assert!(
                            kept.is_empty(),
                            "fast_path {fast_path}, {underscores}, {path}: {name} kept: {seen:?}"
                        );
                    }
                }
            }
        }
    }
    // A trusted proxy speaks for the client: its hyphen spellings pass, and a
    // stripped prefix is added after its own.
    let gw = TestGateway::builder()
        .yaml(&format!("{yaml}trusted_proxies: ['127.0.0.0/8']\n"))
        .start();
    let sent: String = FORWARDING_FAMILY
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let r = send_raw(gw.addr, &get("/pub/x", &sent)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = up.last().expect("forwarded");
    for (name, value) in FORWARDING_FAMILY {
        assert_eq!(seen.header(name), vec![value], "{seen:?}");
    }
    let r = send_raw(gw.addr, &get("/strip/me/x", &sent)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("x-forwarded-prefix"), vec!["/evil/strip/me"]);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let r = send_raw(gw.addr, &get("/pub/x", FORWARDING_CLAIMS)).await;
    assert_eq!(r.status, 200);
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), vec!["http"]);
    assert_eq!(seen.header("x-forwarded-host"), vec!["a.example"]);
    for gone in ["forwarded", "x-real-ip", "x-original-url", "x-rewrite-url"] {
        assert!(seen.header(gone).is_empty(), "{gone} kept: {seen:?}");
    }
    gw.output_containing(r#""client":"127.0.0.1""#).await;
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_appended_to() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "trusted_proxies: ['127.0.0.0/8']\n");
    let r = send_raw(gw.addr, &get("/pub/x", FORWARDING_CLAIMS)).await;
    assert_eq!(r.status, 200);
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("x-forwarded-for"), vec!["1.2.3.4, 127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), vec!["https"]);
    assert_eq!(seen.header("x-forwarded-host"), vec!["evil.example"]);
    assert_eq!(seen.header("forwarded"), vec!["for=1.2.3.4"]);
    for gone in ["x-original-url", "x-rewrite-url"] {
        assert!(seen.header(gone).is_empty(), "{gone} kept: {seen:?}");
    }
    // The log names the client behind the proxy.
    gw.output_containing(r#""client":"1.2.3.4""#).await;
}

#[tokio::test]
async fn authorization_must_be_unambiguous_and_is_not_forwarded_by_default() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let t = token(4);
    for headers in [
        format!("Authorization: Bearer {t}\r\nAuthorization: Bearer {t}\r\n"),
        format!("Authorization: Bearer {t}, Basic eDp5\r\n"),
        format!("Authorization: Basic eDp5, Bearer {t}\r\n"),
        format!("Authorization: Bearer {t} {t}\r\n"),
        format!("Authorization: Bearer\t{t}\r\n"),
    ] {
        for path in ["/api/x", "/pub/x"] {
            let r = send_raw(gw.addr, &get(path, &headers)).await;
            assert_eq!(r.status, 400, "{path} {headers}: {r:?}");
            assert_error(&r.json(), "invalid_authorization");
            assert!(!r.body.contains(&t), "token echoed");
        }
    }
    assert_eq!(up.count(), 0);

    let r = send_raw(gw.addr, &get("/api/x", &bearer(4))).await;
    assert_eq!(r.status, 200);
    let seen = up.last().expect("forwarded");
    assert!(seen.header("authorization").is_empty(), "{seen:?}");
    assert_eq!(seen.header("x-user-id"), vec!["4"]);

    let r = send_raw(
        gw.addr,
        &get("/fwd/x", &format!("Authorization: Bearer {t}\r\n")),
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("authorization"), vec![format!("Bearer {t}")]);
}

/// A valid token padded with Unicode whitespace (not HTTP whitespace) is not that
/// token: it was once verified trimmed while the upstream got it padded.
#[tokio::test]
async fn a_token_padded_with_unicode_spaces_is_refused_and_never_forwarded() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let t = token(4);
    for (before, after) in [("", "\u{a0}"), ("\u{3000}", ""), ("\u{2003}", "\u{85}")] {
        let headers = format!("Authorization: Bearer {before}{t}{after}\r\n");
        for path in ["/api/x", "/fwd/x", "/shop/admin/x"] {
            let r = send_raw(gw.addr, &get(path, &headers)).await;
            assert_eq!(r.status, 401, "{path} {headers:?}: {r:?}");
            assert_error(&r.json(), "invalid_token");
            assert!(!r.body.contains(&t), "token echoed");
        }
    }
    assert_eq!(up.count(), 0, "a padded token reached the upstream");
}

#[tokio::test]
async fn an_auth_body_that_trickles_in_meets_one_deadline() {
    let up = RawUpstream::start().await;
    let gw = gateway(
        &up,
        r#"
limits:
  auth_body_timeout_ms: 1000
"#,
    );
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    // One byte every 200 ms would take 20 s; each read on its own is quick.
    let drip = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), drip).await;
    let r = read_response(&mut s).await;
    assert_eq!(r.status, 408, "{r:?}");
    assert_error(&r.json(), "request_timeout");
}

#[tokio::test]
async fn no_log_line_carries_a_query_header_value_or_token() {
    let dead = DeadPort::new();
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  up: {{ peers: ['{dead}'] }}
routes:
  - {{ prefix: /, upstream: up }}
"#,
            dead = dead.addr
        ))
        .start();
    let t = token(5);
    let req = format!(
        "GET /api/x?token=QUERYSECRET HTTP/1.1\r\nHost: hostsecret.example\r\nAuthorization: Bearer {t}\r\nX-Api-Key: HEADERSECRET\r\nCookie: s=COOKIESECRET\r\nConnection: close\r\n\r\n"
    );
    let r = send_raw(gw.addr, req.as_bytes()).await;
    assert_eq!(r.status, 502, "{r:?}");
    // The access line is written last (after the error log), so once it is there, all is.
    let out = gw.output_containing(r#""path":"/api/x""#).await;
    assert!(out.contains("/api/x"), "the failure was logged: {out}");
    for secret in [
        "QUERYSECRET",
        "hostsecret",
        "HEADERSECRET",
        "COOKIESECRET",
        &t,
        SECRET,
    ] {
        assert!(!out.contains(secret), "{secret} in the log: {out}");
    }
}

#[tokio::test]
async fn letter_case_does_not_pick_a_weaker_policy() {
    let up = RawUpstream::start().await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"upstreams:
  up: {{ peers: ['{}'] }}
routes:
  - {{ prefix: /, upstream: up, auth: public }}
  - {{ prefix: /admin, upstream: up }}
"#,
            up.addr
        ))
        .start();
    // Express, ASP.NET and IIS serve /ADMIN/x as /admin/x.
    for path in ["/ADMIN/x", "/Admin", "/aDmIn/users"] {
        let r = send_raw(gw.addr, &get(path, "")).await;
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
    assert_eq!(up.count(), 0);
    let r = send_raw(gw.addr, &get("/ADMIN/x", &bearer(2))).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.last().expect("forwarded").header("x-user-id"), vec!["2"]);
}

/// The id the upstream sees is the one the client gets back: the client's only
/// when it is plain (at most 128 of `[A-Za-z0-9-_.:]`), else a new 32-hex one;
/// never two.
#[tokio::test]
async fn a_request_id_that_is_not_plain_is_replaced_before_the_upstream() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let echoed = |head: &str| -> String {
        head.lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-request-id")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let plain = "trace-42.a:b_c";
    let r = send_raw(
        gw.addr,
        &get("/pub/x", &format!("X-Request-Id: {plain}\r\n")),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        up.last().expect("forwarded").header("x-request-id"),
        vec![plain]
    );
    assert_eq!(echoed(&r.head), plain);

    let long = "a".repeat(129);
    let mut attempts: Vec<Vec<u8>> = ["a b", "x<script>", "a\"b", long.as_str(), "id,other"]
        .iter()
        .map(|v| get("/pub/x", &format!("X-Request-Id: {v}\r\n")))
        .collect();
    attempts.push(get("/pub/x", "X-Request-Id: caf\u{e9}\r\n"));
    // Two ids, the first plain: the upstream still gets exactly one.
    attempts.push(get("/pub/x", "X-Request-Id: one\r\nX-Request-Id: two\r\n"));
    for (i, request) in attempts.iter().enumerate() {
        let r = send_raw(gw.addr, request).await;
        assert_eq!(r.status, 200, "attempt {i}: {r:?}");
        let seen = up.last().expect("forwarded");
        let ids = seen.header("x-request-id");
        assert_eq!(ids.len(), 1, "attempt {i}: {seen:?}");
        assert_eq!(echoed(&r.head), ids[0], "attempt {i}");
        if i + 1 == attempts.len() {
            assert_eq!(ids[0], "one");
        } else {
            assert!(
                ids[0].len() == 32 && ids[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "attempt {i}: {ids:?}"
            );
        }
    }
}

/// Send `request` on a fresh connection: the response, and whether the gateway then closed it.
async fn send_and_watch(
    gw: &TestGateway,
    request: &[u8],
) -> (crate::helpers::raw::RawResponse, bool) {
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let r = read_response(&mut s).await;
    (r, closed(&mut s).await)
}

/// A second request after each one, on the same socket: it must never be served.
const SMUGGLED: &str = "GET /pub/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

/// Framing two parsers could read differently is refused, the connection
/// closed, and nothing of it (or of what follows) reaches the upstream.
#[tokio::test]
async fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let up = RawUpstream::start().await;
    let post = |headers: &str, body: &str| {
        format!("POST /pub/x HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}{SMUGGLED}").into_bytes()
    };
    let cases: [(&str, Vec<u8>, u16, Option<&str>); 6] = [
        (
            "TE and CL",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
            None,
        ),
        (
            "CL and TE",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                "0\r\n\r\n",
            ),
            400,
            None,
        ),
        (
            "chunked twice",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            400,
            Some("invalid_framing"),
        ),
        (
            "two chunked lines",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
            Some("invalid_framing"),
        ),
        (
            "gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            501,
            Some("unsupported_transfer_coding"),
        ),
        (
            "gzip line, chunked line",
            post(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            501,
            Some("unsupported_transfer_coding"),
        ),
    ];
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&routes(&up))
            .fast_path(fast_path)
            .start();
        for (what, request, status, code) in &cases {
            let (r, closed) = send_and_watch(&gw, request).await;
            assert_eq!(r.status, *status, "fast_path {fast_path}, {what}: {r:?}");
            if let Some(code) = code {
                assert_error(&r.json(), code);
            }
            assert!(
                closed,
                "fast_path {fast_path}, {what}: connection left open"
            );
            assert_eq!(up.count(), 0, "{what}: {:?}", up.requests());
        }
    }
}

/// httparse reads an empty chunk-size line as the last chunk (and what follows
/// as trailers); it is refused, and the upstream never gets a complete body.
#[tokio::test]
async fn an_empty_chunk_size_line_is_refused() {
    let up = RawUpstream::start().await;
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&routes(&up))
            .fast_path(fast_path)
            .start();
        for body in ["\r\n", ";ext\r\n\r\n"] {
            let request = format!(
                "POST /pub/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}{SMUGGLED}"
            );
            let (r, closed) = send_and_watch(&gw, request.as_bytes()).await;
            assert_eq!(r.status, 400, "fast_path {fast_path}, {body:?}: {r:?}");
            assert!(closed, "fast_path {fast_path}: connection left open");
        }
    }
    // The head may have gone ahead of the body; a body that ends never did.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for seen in up.requests() {
        assert!(!seen.contains("/pub/smuggled"), "{seen:?}");
        let body = seen.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(
            !body.contains("0\r\n\r\n"),
            "a complete body was forwarded: {seen:?}"
        );
    }
}

/// A keep-alive connection that has been served once (so the gateway holds it).
async fn held_connection(gw: &TestGateway) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /pub/held HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.status, 200);
    s
}

/// `authgate_connections_refused_total{reason}` as the gateway reports it.
async fn refused(gw: &TestGateway, reason: &str) -> u64 {
    let series = format!("authgate_connections_refused_total{{reason=\"{reason}\"}} ");
    gw.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()).map(str::to_owned))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn connections_over_a_cap_are_closed_at_accept_and_counted() {
    let up = RawUpstream::start().await;
    for (cap, reason) in [
        ("max_connections_per_ip: 2", "max_connections_per_ip"),
        ("max_connections: 2", "max_connections"),
    ] {
        let gw = gateway(&up, &format!("limits:\n  {cap}\n"));
        let first = held_connection(&gw).await;
        let _second = held_connection(&gw).await;
        let mut third = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let _ = third
            .write_all(b"GET /pub/third HTTP/1.1\r\nHost: a\r\n\r\n")
            .await;
        assert!(
            closed(&mut third).await,
            "{cap}: a third connection was kept"
        );
        assert_eq!(refused(&gw, reason).await, 1, "{cap}");
        assert!(
            !up.requests().iter().any(|r| r.contains("/pub/third")),
            "{cap}: the refused connection was served"
        );
        // A closed connection gives its place back.
        drop(first);
        eventually(Duration::from_secs(5), "a freed place", || async {
            let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
            s.write_all(b"GET /pub/again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .await
                .is_ok()
                && crate::helpers::raw::try_read_response(&mut s)
                    .await
                    .is_some_and(|r| r.status == 200)
        })
        .await;
    }
}

/// A request header trickled in a line at a time (each read on its own
/// quick) meets one deadline from its first byte, below and above the 4 KiB
/// first read, through either engine.
#[tokio::test]
async fn a_request_head_that_trickles_in_meets_one_deadline() {
    use tokio::io::AsyncReadExt;
    let up = RawUpstream::start().await;
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&format!(
                "{}limits:\n  request_head_timeout_ms: 500\n",
                routes(&up)
            ))
            .fast_path(fast_path)
            .start();
        for padding in [0, 5000] {
            let s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
            let (mut r, mut w) = s.into_split();
            let started = std::time::Instant::now();
            let head = format!(
                "GET /pub/slow HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n",
                "a".repeat(padding)
            );
            w.write_all(head.as_bytes()).await.unwrap();
            let trickle = async {
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if w.write_all(b"X-T: 1\r\n").await.is_err() {
                        break;
                    }
                }
            };
            let closed = async {
                let mut buf = [0u8; 512];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            tokio::select! {
                _ = closed => {}
                _ = trickle => {}
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(2500),
                "fast_path {fast_path}, {padding} bytes of padding: open for {took:?}"
            );
        }
        // An ordinary request is unaffected.
        let r = send_raw(gw.addr, &get("/pub/quick", "")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert!(
        !up.requests().iter().any(|r| r.contains("/pub/slow")),
        "{:?}",
        up.requests()
    );
}

/// An upstream that answers every request with an endless body; `gone` is set
/// once a write to the gateway fails (the gateway let go of the connection).
async fn endless_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gone = std::sync::Arc::new(AtomicBool::new(false));
    let flag = gone.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let chunk = vec![b'x'; 64 * 1024];
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_ok() {
                    while s.write_all(&chunk).await.is_ok() {}
                }
                flag.store(true, Ordering::SeqCst);
            });
        }
    });
    (addr, gone)
}

/// A client that stops reading a response does not hold it, and the upstream
/// connection behind it, forever: each write must keep to
/// `limits.min_send_bytes_per_second`.
#[tokio::test]
async fn a_client_that_never_reads_is_let_go() {
    use std::sync::atomic::Ordering;
    for fast_path in [true, false] {
        let (up, gone) = endless_upstream().await;
        let gw = TestGateway::builder()
            .yaml(&format!(
                "upstreams:\n  up: {{ peers: ['{up}'] }}\nroutes:\n  - {{ prefix: /, upstream: up, auth: public }}\nlimits:\n  min_send_bytes_per_second: 100000\n"
            ))
            .fast_path(fast_path)
            .start();
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        // Never read from `s`.
        eventually(
            Duration::from_secs(20),
            "the gateway let go of the upstream",
            || async { gone.load(Ordering::SeqCst) },
        )
        .await;
        drop(s);
    }
}
