//! The command line: `-t` checks a config, and the gateway refuses to start without a proper secret.

use crate::helpers::*;
use std::process::Command;

fn authgate(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (code, text) = run_authgate(args, env);
    (code.unwrap_or(-1), text)
}

fn conf(yaml: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("{}.yaml", unique("authgate-cli")));
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn the_shipped_config_checks_ok() {
    let (code, out) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn a_bad_config_names_the_key() {
    let cases = [
        (
            r#"
listen: ['127.0.0.1:1']
threds: 4
"#,
            "threds",
        ),
        (
            r#"
redis:
  url: redis://x
  timeout: 5
"#,
            "timeout",
        ),
        ("threads: many\n", "threads"),
        ("listen: ['localhost']\n", "listen[0]"),
        (
            r#"
upstreams:
  a: { peers: ['nohost'] }
"#,
            "upstreams.a.peers[0]",
        ),
        (
            r#"
upstreams:
  a: { peers: ['127.0.0.1:1'] }
routes:
  - { prefix: /api, upstream: b }
"#,
            "routes[0].upstream",
        ),
        (
            r#"
routes:
  - { prefix: /api, upstream: a, auth: maybe }
"#,
            "auth",
        ),
        (
            r#"
passwords:
  memory_kib: 1
"#,
            "passwords",
        ),
        (
            r#"
upstreams:
  a: { peers: ['127.0.0.1:1'] }
routes:
  - { prefix: /x, upstream: a, host: 'a.example:80' }
"#,
            "routes[0].host",
        ),
        (
            r#"
upstreams:
  a: { peers: ['127.0.0.1:1'] }
routes:
  - { prefix: /x, upstream: a, host: 'bad host' }
"#,
            "routes[0].host",
        ),
        ("trusted_proxies: ['10.0.0.0/33']\n", "trusted_proxies"),
        ("underscore_headers: sometimes\n", "underscore_headers"),
    ];
    for (yaml, key) in cases {
        let p = conf(yaml);
        let (code, out) = authgate(
            &["-t", "-c", p.to_str().unwrap()],
            &[("AUTHGATE_JWT_SECRET", SECRET)],
        );
        assert_ne!(code, 0, "{yaml} accepted");
        assert!(
            out.contains(key),
            "message for {yaml:?} does not name {key}: {out}"
        );
    }
}

/// Requests are routed on their canonical path: a prefix that is not canonical
/// never matches, and its requests would fall to a shorter route.
#[test]
fn route_prefixes_that_can_never_match_are_refused_naming_the_route() {
    for (prefix, why) in [
        ("/%61dmin", "\"/admin\""),
        ("/a//b", "\"/a/b\""),
        ("/pub/../admin", "\"/admin\""),
        ("/a/./b", "\"/a/b\""),
        ("/a%2Fb", "encoded /"),
        ("/a;v=1", "';'"),
        ("/a?x=1", "never contains"),
    ] {
        let p = conf(&format!(
            "upstreams:\n  a: {{ peers: ['127.0.0.1:1'] }}\nroutes:\n  - {{ prefix: /ok, upstream: a }}\n  - {{ prefix: '{prefix}', upstream: a }}\n"
        ));
        let (code, out) = authgate(
            &["-t", "-c", p.to_str().unwrap()],
            &[("AUTHGATE_JWT_SECRET", SECRET)],
        );
        assert_ne!(code, 0, "{prefix} accepted: {out}");
        assert!(
            out.contains("routes[1].prefix") && out.contains(why),
            "message for {prefix} does not name routes[1].prefix and {why}: {out}"
        );
    }
    let p = conf(
        "upstreams:\n  a: { peers: ['127.0.0.1:1'] }\nroutes:\n  - { prefix: '/Caf%c3%a9/', upstream: a }\n",
    );
    let (code, out) = authgate(
        &["-t", "-c", p.to_str().unwrap()],
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_eq!(
        code, 0,
        "a canonical prefix but for letter case is refused: {out}"
    );
}

#[test]
fn a_missing_or_short_secret_is_refused_without_echoing_it() {
    let (code, out) = authgate(&["-c", "conf/gateway.yaml"], &[]);
    assert_ne!(code, 0);
    assert!(out.contains("AUTHGATE_JWT_SECRET"), "{out}");
    let (code, out) = authgate(
        &["-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET", "tooshort-secret-value")],
    );
    assert_ne!(code, 0);
    assert!(out.contains("at least 32 bytes"), "{out}");
    assert!(
        !out.contains("tooshort-secret-value"),
        "secret echoed: {out}"
    );
}

#[test]
fn the_secret_can_come_from_a_file() {
    let p = conf(&format!("{SECRET}\n"));
    let (code, out) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET_FILE", p.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{out}");
    let short = conf("short\n");
    let (code, _) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET_FILE", short.to_str().unwrap())],
    );
    assert_ne!(code, 0);
}

#[test]
fn environment_overrides_are_checked() {
    let (code, out) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[
            ("AUTHGATE_JWT_SECRET", SECRET),
            ("AUTHGATE_THREADS", "lots"),
        ],
    );
    assert_ne!(code, 0);
    assert!(out.contains("AUTHGATE_THREADS"), "{out}");
}

#[test]
fn an_upgrade_socket_in_a_shared_directory_is_refused() {
    let shared = std::env::temp_dir().join(unique("authgate-shared"));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let p = conf(&format!(
        r#"
listen: ['127.0.0.1:{port}']
ops_listen: ''
upgrade_sock: {shared}/up.sock
"#,
        port = free_port(),
        shared = shared.display()
    ));
    let (code, out) = authgate(
        &["-c", p.to_str().unwrap()],
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("upgrade_sock") && out.contains("writable by other users"),
        "{out}"
    );
}

#[test]
fn the_default_run_directory_is_private() {
    let runtime = std::env::temp_dir().join(unique("authgate-xdg"));
    std::fs::create_dir_all(&runtime).unwrap();
    let p = conf(&format!(
        r#"
listen: ['127.0.0.1:{port}']
ops_listen: ''
"#,
        port = free_port()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["-c", p.to_str().unwrap()])
        .env("AUTHGATE_JWT_SECRET", SECRET)
        .env("RUNTIME_DIRECTORY", runtime.join("authgate"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start authgate");
    let dir = runtime.join("authgate");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&dir).expect("run dir"));
    assert_eq!(mode & 0o777, 0o700);
}

/// Issue #23: Argon2 parameters below every OWASP row are refused by `-t`
/// unless `passwords.allow_insecure_parameters` (or its variable) is set, which
/// is then said in a warning line; each OWASP row itself loads.
#[test]
fn argon2_parameters_below_owasp_are_refused_unless_allowed() {
    let env = [("AUTHGATE_JWT_SECRET", SECRET)];
    let check = |m: u32, t: u32, more: &str, env: &[(&str, &str)]| {
        let p = conf(&format!(
            "passwords:\n  memory_kib: {m}\n  iterations: {t}\n{more}"
        ));
        authgate(&["-t", "-c", p.to_str().unwrap()], env)
    };
    for (m, t) in [
        (1024, 1),
        (19456, 1),
        (12288, 2),
        (47103, 1),
        (7167, 5),
        (9216, 3),
    ] {
        let (code, out) = check(m, t, "", &env);
        assert_eq!(code, 2, "m={m} t={t}: {out}");
        assert!(
            out.contains("passwords")
                && out.contains("OWASP")
                && out.contains("allow_insecure_parameters"),
            "m={m} t={t}: {out}"
        );
        assert!(!out.contains("WARN"), "{out}");
    }
    for (m, t) in [
        (19456, 2),
        (47104, 1),
        (12288, 3),
        (9216, 4),
        (7168, 5),
        (65536, 3),
    ] {
        let (code, out) = check(m, t, "", &env);
        assert_eq!(code, 0, "m={m} t={t}: {out}");
        assert!(!out.contains("allow_insecure_parameters"), "{out}");
    }
    let (code, out) = check(1024, 1, "  allow_insecure_parameters: true\n", &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARN") && out.contains("below OWASP's minimum"),
        "a warning line: {out}"
    );
    let (code, out) = check(
        1024,
        1,
        "",
        &[
            ("AUTHGATE_JWT_SECRET", SECRET),
            ("AUTHGATE_ARGON2_ALLOW_INSECURE", "1"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("below OWASP's minimum"), "{out}");
}

/// Issue #23: a JWT secret long enough but guessable (one letter, few
/// distinct bytes, a repeated pattern) is refused, from the variable and from a
/// file, with the rule it breaks named and the secret never echoed.
#[test]
fn a_low_entropy_secret_is_refused_naming_the_rule() {
    let cases = [
        ("a".repeat(32), "at least 16 distinct byte values"),
        (
            "abcdefghijklmno".repeat(3),
            "at least 16 distinct byte values",
        ),
        (
            "0123456789ABCDEFGHIJ".repeat(2),
            "pattern of 20 bytes repeated",
        ),
        ("q7X!m2Lp9#vR4wZk".repeat(3), "pattern of 16 bytes repeated"),
    ];
    for (secret, rule) in &cases {
        let (code, out) = authgate(
            &["-t", "-c", "conf/gateway.yaml"],
            &[("AUTHGATE_JWT_SECRET", secret)],
        );
        assert_eq!(code, 2, "{rule}: {out}");
        assert!(
            out.contains(rule) && out.contains("AUTHGATE_JWT_SECRET"),
            "{out}"
        );
        assert!(!out.contains(secret.as_str()), "secret echoed: {out}");
        let file = conf(&format!("{secret}\n"));
        let (code, out) = authgate(
            &["-t", "-c", "conf/gateway.yaml"],
            &[("AUTHGATE_JWT_SECRET_FILE", file.to_str().unwrap())],
        );
        assert_eq!(code, 2, "{rule} from a file: {out}");
        assert!(out.contains(rule), "{out}");
    }
    let (code, out) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET", "q7X!m2Lp9#vR4wZk".repeat(2).as_str())],
    );
    assert_eq!(code, 2, "exactly twice is a pattern too: {out}");
    let (code, out) = authgate(
        &["-t", "-c", "conf/gateway.yaml"],
        &[("AUTHGATE_JWT_SECRET", "Zq8rJm1Vx4TcLw9HbN3pKs6YfD2gRa7E")],
    );
    assert_eq!(code, 0, "a random one passes: {out}");
}

/// Issue #23: the image a plain `docker build .` makes (the last stage) does
/// not ship the demo echo upstream; compose builds it from the `demo` target.
#[test]
fn the_production_image_ships_no_demo_upstream() {
    let dockerfile = std::fs::read_to_string("Dockerfile").unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").collect();
    let last = stages.last().unwrap();
    let built_from = last.split_whitespace().next().unwrap();
    let mut chain = vec![*last];
    if let Some(parent) = stages.iter().find(|s| {
        s.lines()
            .next()
            .is_some_and(|l| l.ends_with(&format!(" AS {built_from}")))
    }) {
        chain.push(parent);
    }
    for stage in chain {
        assert!(
            !stage.contains("examples/echo"),
            "the production image copies the demo: {stage}"
        );
    }
    let compose = std::fs::read_to_string("docker-compose.yml").unwrap();
    assert!(
        compose.contains("target: demo"),
        "compose builds the echo from the demo target"
    );
    assert!(
        compose.contains("0.0.0.0:9090"),
        "compose says where ops listens"
    );
}
