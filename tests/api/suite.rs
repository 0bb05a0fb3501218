//! The suite's own bookkeeping: every module is assigned to the passes of scripts/test.sh that run it.

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
