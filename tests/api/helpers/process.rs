//! Ports, scratch directories and child processes that cannot outlive the test run.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 reserved for this test process until it exits, for a
/// child to listen on (or a test to bind).
///
/// A port asked of the kernel with bind(0) and closed again can be handed to
/// anyone before the child binds it: to another test's bind(0), or as the source
/// port of any outgoing connection. So the port comes from below the kernel's
/// ephemeral range (`ip_local_port_range`), which neither ever uses, and is
/// reserved with a lock file that this process holds (flock, released by the
/// kernel when the process ends however it ends): no other caller of this
/// function, in this process or another running the suite, is handed it. It
/// stays reserved while its server is down, so a restart on it is safe.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());
    let (low, high) = reservable_ports();
    let span = usize::from(high - low);
    // Each process starts at its own place in the range: fewer lock files tried.
    let start = std::process::id() as usize * 97;
    let dir = std::env::temp_dir().join("authgate-tests").join("ports");
    std::fs::create_dir_all(&dir).expect("create the port lock dir");
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = low + ((start + n) % span) as u16;
        let lock = File::create(dir.join(port.to_string())).expect("create a port lock file");
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue; // Reserved by another test process.
        }
        // Free now (nothing outside this scheme binds below the ephemeral range
        // on a test machine, but check rather than hope).
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().expect("port locks").push(lock);
        return port;
    }
    panic!("no reservable port left in {low}..{high}");
}

/// Ports below the kernel's ephemeral range: `[10000, its low end)`.
fn reservable_ports() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".into());
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768);
    assert!(
        low > 12000,
        "the ephemeral range starts at {low}: too low to leave room for test ports"
    );
    (10000, low)
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

/// Runs the gateway binary with `args` and only the environment given here of
/// its own settings (a developer's `AUTHGATE_JWT_SECRET` or `AUTHGATE_UPSTREAM`
/// must not decide a test): its exit code and everything it printed.
pub fn run_authgate(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
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
    (out.status.code(), text)
}

/// `authgate -t` on `yaml`, written as `gateway.yaml` in a directory of its own.
pub fn check_config(yaml: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(unique("authgate-check"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("gateway.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let conf = conf.to_str().expect("a UTF-8 temp dir");
    run_authgate(&["-t", "-c", conf], env)
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
///
/// The watcher is the program's child. It kills `$$` (the program) only while
/// the program is still its parent (`/proc/self/stat`'s fourth field, read by
/// the watcher's own shell): once the program has ended, its pid may belong to
/// another process (pids wrap at 32768 here, and a run starts thousands), and
/// a watcher of the previous pass used to SIGKILL whatever had taken it, such
/// as the next pass's shared Redis.
pub(super) fn spawn_tied(
    program: &str,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
    stdout_unread: bool,
) -> Child {
    let script = format!(
        "(mine() {{ read -r _ _ _ p _ < /proc/self/stat; [ \"$p\" = \"$$\" ]; }}; \
         while kill -0 {} 2>/dev/null; do mine || exit 0; sleep 0.5; done; \
         mine && kill -9 $$ 2>/dev/null) & exec \"$0\" \"$@\"",
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

/// Wait until `port` accepts connections and the listening socket is `child`'s
/// own (not another process's that holds the port); panic with `child`'s log if
/// it exits or takes over 15 s.
pub(super) fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && listens_on(child.id(), port) {
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
        "{what} (pid {}) did not listen on {port}{}: {}",
        child.id(),
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            " (another process does)"
        } else {
            ""
        },
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Whether process `pid` holds a socket listening on TCP `port` (IPv4 or IPv6),
/// from /proc: the listening sockets' inodes in /proc/net/tcp{,6}, matched
/// against the process's open descriptors.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex, st 0A is LISTEN, inode is field 9.
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}
