//! The command line: `-t` checks a config, and the gateway refuses to start without a proper secret.

use crate::helpers::*;
use std::process::Command;

fn authgate(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.args(args)
        .env_remove("AUTHGATE_JWT_SECRET")
        .env_remove("AUTHGATE_UPSTREAM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run authgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
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
