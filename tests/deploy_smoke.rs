//! `scripts/deploy-smoke.sh`, which CI runs on `docs/deploy.md`: a marked block that
//! fails fails the run, and what the blocks left running is stopped. Here on small
//! documents of its own; the real one runs in `.ci/run`.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the script on a document holding `markdown`.
fn smoke(markdown: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(&doc, markdown).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_bonenfant")).parent().unwrap();
    Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/deploy-smoke.sh"
        ))
        .arg(&doc)
        .env("BONENFANT_BIN", bin)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn deploy_smoke_fails_when_a_marked_block_fails() {
    let out = smoke(
        "Ignored:\n\n```sh\nfalse\n```\n\n```sh loopback\nbonenfant --version\n```\n\n\
         ```sh loopback\ntrue\nfalse\necho after-the-failure\n```\n",
    );
    assert!(!out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bonenfant"), "{stdout}");
    assert!(!stdout.contains("after-the-failure"), "{stdout}");
    assert!(stderr(&out).contains("block 2"), "{}", stderr(&out));
}

#[test]
fn deploy_smoke_fails_without_a_marked_block() {
    let out = smoke("```sh\ntrue\n```\n");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no ```sh loopback block"),
        "{}",
        stderr(&out)
    );
}

/// A server a block starts and leaves running is stopped at the end, by its PID; the
/// doc's loopback port is swapped for a free one, the same in every place it appears.
#[test]
fn deploy_smoke_stops_what_the_blocks_left_running_on_free_ports() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let out = smoke(&format!(
        "```sh loopback\nbonenfant sim ent --listen 127.0.0.1:9081 & echo $! > {pid}\n\
         curl -fsS --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null \
         http://127.0.0.1:9081/cas/login\necho port 9081 at 127.0.0.1:9081\n```\n",
        pid = pid_file.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = stdout.lines().find(|l| l.starts_with("port ")).unwrap();
    let (port, address) = said["port ".len()..].split_once(" at 127.0.0.1:").unwrap();
    assert_eq!(port, address, "one port, replaced everywhere: {said}");
    assert_ne!(port, "9081", "{said}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the test ENT {pid} still runs"
    );
}
