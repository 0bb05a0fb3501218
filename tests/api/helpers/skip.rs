//! Skipping a test that cannot run here: said where `scripts/test.sh`'s summary shows it, and a failure under `CI=true`.

use std::io::Write as _;

/// Record that `test` is skipped for `reason`; the caller returns right after.
/// libtest shows a passing test's output only with `--nocapture`, and counts a
/// skipped test as passed: so the note also goes, one line, to the file named
/// by `AUTHGATE_TEST_SKIP_LOG` (scripts/test.sh lists those in its summary).
/// Under `CI=true` (CI, where everything a test needs is installed) a skip is
/// a failure: a check must not vanish from a green run.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
    if let Ok(path) = std::env::var("AUTHGATE_TEST_SKIP_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open the skip log {path}: {e}"));
        // One write of a whole line: tests run in parallel threads of one process.
        f.write_all(format!("{test}: {reason}\n").as_bytes())
            .unwrap_or_else(|e| panic!("cannot write the skip log {path}: {e}"));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} was skipped under CI=true (a skip is a failure in CI): {reason}"
    );
}

/// Whether python3 (the test virtualenv's, first on PATH under scripts/test.sh)
/// can import `module`; when not, `test` is skipped naming `package`.
pub fn have_python_module(test: &str, module: &str, package: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            test,
            &format!("python3 with {package} is not installed (scripts/test.sh installs it)"),
        );
    }
    ok
}
