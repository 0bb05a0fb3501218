//! The suite's own bookkeeping: every module is assigned to the passes of scripts/test.sh that run it, and the harness hands out ports no one else gets.

use crate::helpers::*;
use std::collections::BTreeSet;

/// The `mod` lines of main.rs: every module of this binary but the harness.
fn modules() -> BTreeSet<&'static str> {
    include_str!("main.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .filter(|m| *m != "helpers")
        .collect()
}

/// The rows of passes.txt: module and its three yes/no columns.
fn rows() -> Vec<(&'static str, [bool; 3])> {
    include_str!("passes.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(
                cols.len(),
                4,
                "passes.txt: {l:?}: a module and three columns"
            );
            let yes = |c: &str| match c {
                "yes" => true,
                "no" => false,
                other => panic!("passes.txt: {l:?}: {other:?} is not yes or no"),
            };
            (cols[0], [yes(cols[1]), yes(cols[2]), yes(cols[3])])
        })
        .collect()
}

#[test]
fn every_module_is_assigned_its_passes() {
    let rows = rows();
    let listed: BTreeSet<&str> = rows.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        listed.len(),
        rows.len(),
        "a module listed twice in passes.txt"
    );
    let modules = modules();
    assert!(modules.len() > 10, "main.rs read wrong: {modules:?}");
    let missing: Vec<_> = modules.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "give these modules a row in tests/api/passes.txt (which passes run them): {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&modules).collect();
    assert!(
        stale.is_empty(),
        "passes.txt lists no such modules: {stale:?}"
    );
    // scripts/test.sh leaves a module out with `--skip <module>::`, a substring
    // match on test paths: it must not also match another module.
    for a in &modules {
        for b in modules.iter().filter(|b| b != &a) {
            assert!(
                !b.ends_with(a),
                "`--skip {a}::` would skip {b} too: rename one"
            );
        }
    }
    for (m, passes) in &rows {
        assert!(passes.contains(&true), "{m} runs in no pass");
    }
}

#[test]
fn ports_are_reserved_below_the_ephemeral_range_and_never_handed_out_twice() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "a port handed out twice: {ports:?}"
    );
    // Below the ephemeral range: no bind(0) and no outgoing connection takes them.
    assert!(
        ports.iter().all(|&p| p < low),
        "{ports:?} (ephemeral from {low})"
    );
    // Another test process (here: a second holder of the lock files) gets none of them.
    let dir = std::env::temp_dir().join("authgate-tests").join("ports");
    for p in &ports {
        let f = std::fs::File::open(dir.join(p.to_string())).unwrap();
        // SAFETY: flock on a descriptor of this test; no memory involved.
        let got = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        assert_ne!(got, 0, "port {p} is not reserved");
    }
}

#[tokio::test]
async fn a_started_gateway_is_the_process_listening_on_its_port() {
    let gw = TestGateway::start();
    assert!(
        gw.is_listening(),
        "pid {} does not hold port {}",
        gw.pid(),
        gw.addr.port()
    );
    // Someone else's listener is told apart: this process's own.
    let mine = std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let port = mine.local_addr().unwrap().port();
    assert!(listens_on(std::process::id(), port));
    assert!(
        !listens_on(gw.pid(), port),
        "the gateway does not hold the test's port"
    );
    drop(mine);
    assert!(!listens_on(std::process::id(), port), "a closed listener");
}

/// Every relative link of the README and of docs/*.md, and every `src/...`,
/// `docs/...`, `bench/...` or `scripts/...` path they name (and every source
/// file named from `src/`, as docs/architecture.md names them), exists in
/// the tree: a moved file cannot leave a dead pointer behind.
#[test]
fn the_readme_and_docs_point_only_at_files_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    let mut dead = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let base = page.parent().unwrap();
        // Markdown links: ](target) with no scheme.
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap_or("");
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            if !base.join(path).exists() {
                dead.push(format!("{}: link {target}", page.display()));
            }
        }
    }
    // Paths in the pages' text and commands (`src/x.rs`, `bench/y.sh`...),
    // from the project root, as the commands are run.
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page
            .strip_prefix(root)
            .unwrap_or(page)
            .display()
            .to_string();
        dead.extend(dead_paths(root, &text).map(|w| format!("{name}: path {w}")));
    }
    assert!(dead.is_empty(), "dead pointers:\n{}", dead.join("\n"));
}

/// The words of `text` that name a tracked file or folder that does not
/// exist: a path from the project root (`src/x.rs`, `bench/y.sh`), or a
/// source file named from `src/` as docs/architecture.md does
/// (`proxy/h1/mod.rs`, `store/sessions.rs::rotate`).
fn dead_paths<'a>(root: &'a std::path::Path, text: &'a str) -> impl Iterator<Item = &'a str> {
    text.split(|c: char| c.is_whitespace() || "`()[],;'\"".contains(c))
        .filter_map(move |word| {
            let word = word.split('#').next().unwrap_or("");
            // `file.rs::item` names the file.
            let word = word.split("::").next().unwrap_or("");
            let word = word.split(':').next().unwrap_or("");
            let word = word.trim_end_matches(['.', ':']);
            let tracked = [
                "src/", "docs/", "bench/", "scripts/", "conf/", "tests/", "patches/",
            ];
            let from_root = tracked.iter().any(|t| word.starts_with(t));
            let from_src = !from_root
                && word.ends_with(".rs")
                && word.contains('/')
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_/.".contains(&b));
            let pattern = word.contains('*') || word.contains('<');
            let exists =
                root.join(word).exists() || (from_src && root.join("src").join(word).exists());
            ((from_root || from_src) && !pattern && !exists).then_some(word)
        })
}

/// Lines of `text` that count against the length rule: a source file's code
/// before its unit tests (`#[cfg(test)]`), a test file's whole text.
fn counted_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

/// The guard rail of #25: no file in src/ or tests/ grows past 450 lines
/// (code, for src/: its unit tests do not count) unless its opening lines say
/// why (`//! Long file: ...`), so a module that should be split is noticed
/// when it grows, not found later.
#[test]
fn no_file_is_longer_than_450_lines_without_a_reason_at_its_top() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src"), root.join("tests")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 100, "walked {} files", files.len());
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let n = counted_lines(&text);
            let reason = text
                .lines()
                .take(12)
                .any(|l| l.starts_with("//! Long file: "));
            (n > 450 && !reason).then(|| format!("{} ({n} lines)", path.display()))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "split these, or say at the top why not (`//! Long file: ...`): {unexplained:?}"
    );
}
