//! Ports, scratch directories and child processes that cannot outlive the test run.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (free when asked; the caller binds it right away).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A name no other test in this run uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new private directory under the system temp dir.
pub(super) fn scratch_dir() -> PathBuf {
    let d = std::env::temp_dir()
        .join("authgate-tests")
        .join(unique("run"));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    // The gateway refuses an upgrade socket in a directory others can write to,
    // whatever umask this test runs under.
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod scratch dir");
    d
}

/// Run `program` so that it dies with this test process even if the process is killed:
/// a shell watches our pid and then `exec`s the program, so the child's pid is the program's.
/// With `stdout_unread` its stdout is a pipe kept open in the returned `Child` and never read.
pub(super) fn spawn_tied(
    program: &str,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
    stdout_unread: bool,
) -> Child {
    let script = format!(
        "(while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill -9 $$ 2>/dev/null) & exec \"$0\" \"$@\"",
        std::process::id()
    );
    let log_file = std::fs::File::create(log).expect("create log");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(program).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let stdout = if stdout_unread {
        Stdio::piped()
    } else {
        Stdio::from(log_file.try_clone().expect("clone log"))
    };
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// Wait until `port` accepts connections; panic with `child`'s log if it exits or takes over 15 s.
pub(super) fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
