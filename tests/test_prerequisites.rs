//! `cargo test` on a machine without `redis-server` fails with one line saying what is
//! missing and how to get it, not with a panic and a backtrace per Redis test.

/// Runs one Redis test of this very binary with a `PATH` that has no `redis-server`.
#[cfg(unix)]
#[test]
fn a_missing_redis_server_is_one_line_and_a_failure() {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.path().join("sh")).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "session_redis::front_channel_on_one_instance_correlates_with_back_channel_on_another",
        ])
        .env("PATH", bin.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cannot start redis-server") && lines[0].contains("bash .ci/run"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("panicked"));
}
