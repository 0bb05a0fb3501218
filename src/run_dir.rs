//! The private run directory for the upgrade socket and pid file: created 0700, refused when others can write to it.
//!
//! Whoever can create files where the upgrade socket lives can hand a new
//! process listening sockets of their own, or replace the pid file with a
//! link; a world-writable `/tmp` is therefore no place for either.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where the socket and pid file go when the config names none:
/// `$RUNTIME_DIRECTORY` (systemd), `/run/authgate` for root,
/// `$XDG_RUNTIME_DIR/authgate`, else `/tmp/authgate-<uid>`.
pub(crate) fn default_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("RUNTIME_DIRECTORY") {
        // systemd joins several directories with ':'.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/authgate");
    }
    match env("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("authgate"),
        None => PathBuf::from(format!("/tmp/authgate-{uid}")),
    }
}

/// Create `dir` with mode 0700 if it is missing (its parent must exist).
pub(crate) fn create_private(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

/// The directory holding `file` must belong to this user (or root) and be
/// writable by no one else.
pub(crate) fn check_private(key: &str, file: &Path) -> Result<(), String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("{key}: cannot use directory {}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(format!(
            "{key}: directory {} belongs to uid {}, not to this user ({uid})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{key}: directory {} is writable by other users (mode {:o}); use a private directory or `chmod go-w {}`",
            dir.display(),
            meta.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn shared_directories_are_refused() {
        let base = std::env::temp_dir().join(format!("authgate-rundir-{}", std::process::id()));
        create_private(&base).unwrap();
        assert_eq!(
            std::fs::metadata(&base).unwrap().mode() & 0o777,
            0o700,
            "created private"
        );
        assert!(check_private("upgrade_sock", &base.join("s.sock")).is_ok());
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private("upgrade_sock", &base.join("s.sock")).unwrap_err();
        assert!(err.contains("writable by other users"), "{err}");
        assert!(check_private("pid_file", Path::new("/tmp/x.pid")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
