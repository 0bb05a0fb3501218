//! Browser mode in a real browser: Debian's Chromium, driven by Playwright
//! (tests/browser/flow.py), logs in on the gateway's login page, keeps its
//! cookie session past the access token's lifetime, shares it with a second tab
//! and logs out, in front of an app with no auth code of its own
//! (tests/browser/demo_app.py).

use crate::helpers::*;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The access token's lifetime the gateway is given: the browser outlives it.
const ACCESS_TTL_SECONDS: u64 = 3;

/// A file of tests/browser/.
fn browser_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(name)
}

/// The Chromium flow.py launches: `$CHROMIUM`, else Debian's.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Whether python3 with Playwright and a Chromium are here; when not, the
/// test is skipped (a failure under CI).
fn have_browser(test: &str) -> bool {
    if !have_python_module(test, "playwright.sync_api", "Playwright") {
        return false;
    }
    let browser = chromium();
    if !std::path::Path::new(&browser).is_file() {
        skip(
            test,
            &format!("no Chromium at {browser} (scripts/test.sh installs Debian's chromium)"),
        );
        return false;
    }
    true
}

/// The demo app (tests/browser/demo_app.py) on a port of its own, killed when dropped.
struct DemoApp {
    child: Child,
    addr: SocketAddr,
    /// Its stderr: a line per request.
    log: PathBuf,
}

impl DemoApp {
    fn start() -> DemoApp {
        let port = free_port();
        let log = std::env::temp_dir()
            .join("authgate-tests")
            .join(format!("{}.log", unique("demo-app")));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let mut child = Command::new("python3")
            .arg(browser_file("demo_app.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "listening" {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the demo app did not start: {line:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        DemoApp {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    /// What it logged so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_real_browser_logs_in_refreshes_and_logs_out() {
    let test = "chromium::a_real_browser_logs_in_refreshes_and_logs_out";
    if !have_browser(test) {
        return;
    }
    let app = DemoApp::start();
    // `public_url` names the address the browser uses, known before the
    // gateway starts: one more listen address of the gateway's.
    let public = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = TestGateway::builder()
        .also_listen(public)
        .yaml(&format!(
            r#"
public_url: "http://{public}"
browser:
  enabled: true
upstreams:
  demo: {{ peers: ['{app}'] }}
routes:
  - {{ prefix: /app/, upstream: demo, auth: required }}
tokens:
  access_ttl_seconds: {ACCESS_TTL_SECONDS}
"#,
            app = app.addr
        ))
        .start();
    let email = format!("{}@example.com", unique("browser"));
    let (s, b) = gw.register(&email, PASSWORD).await;
    assert_eq!(s, 201, "register: {b}");
    let id = b["id"].as_u64().expect("integer id");

    let shot = std::env::temp_dir()
        .join("authgate-tests")
        .join(format!("{}.png", unique("login-page")));
    let args: Vec<String> = vec![
        browser_file("flow.py").display().to_string(),
        "--gateway".into(),
        format!("http://{public}"),
        "--email".into(),
        email,
        "--password".into(),
        PASSWORD.into(),
        "--access-ttl".into(),
        ACCESS_TTL_SECONDS.to_string(),
        "--screenshot".into(),
        shot.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(&args)
            .env("CHROMIUM", chromium())
            .stdin(Stdio::null())
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "flow.py ({}):\n{stdout}\nstderr:\n{stderr}\ngateway:\n{}\ndemo app:\n{}",
        out.status,
        gw.output(),
        app.output()
    );
    assert!(
        stdout.contains(&format!("'Hello, user {id}'")),
        "the browser is not the user registered ({id}):\n{stdout}"
    );
    println!("login page: {}", shot.display());
}
