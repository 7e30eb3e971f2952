//! The binary as users drive it: `check-config` prints the effective configuration with
//! secrets masked, and every configuration error names its key and fails the process.

use std::process::Command;

fn bonenfant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bonenfant"))
}

#[test]
fn check_config_prints_effective_config_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, "a-very-secret-pseudonym-key-of-40-bytes!").unwrap();
    let config = dir.path().join("bonenfant.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:8443\"\nupstream = \"http://127.0.0.1:9/cas\"\npin = \"retry\"\n\
             store = \"redis://:hunter2@127.0.0.1:6379/0\"\npseudonym-key-file = {:?}\n",
            key.display().to_string()
        ),
    )
    .unwrap();
    let out = bonenfant()
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pin = \"retry\""), "{stdout}");
    assert!(
        stdout.contains("retry-max = 8"),
        "defaults are filled in: {stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(!stdout.contains("a-very-secret"), "{stdout}");
}

#[test]
fn check_config_error_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:8443\"\nupstream = \"http://127.0.0.1:9\"\nretry-budget = \"soon\"\n",
    )
    .unwrap();
    let out = bonenfant()
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retry-budget"), "{stderr}");
}

#[test]
fn unknown_config_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("typo.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:8443\"\nupstreem = \"http://x\"\n",
    )
    .unwrap();
    let out = bonenfant()
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstreem"));
}

#[test]
fn the_example_configuration_is_valid_apart_from_its_files() {
    // The shipped example names files that exist only on a server: every other key
    // must parse, so the only complaint is about a file.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/bonenfant.toml");
    let out = bonenfant()
        .arg("check-config")
        .arg(example)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls-cert"), "{stderr}");
}

#[test]
fn serve_without_upstream_fails_naming_the_flag() {
    let out = bonenfant()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstream"));
}

/// Starts `bonenfant serve` under `sh` after `limits` (an `ulimit` command), stderr to a
/// file; the shell `exec`s, so the child's pid is bonenfant's.
#[cfg(target_os = "linux")]
fn serve_under(limits: &str, max_connections: &str) -> (Serving, tempfile::NamedTempFile) {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"{limits} && exec "$0" serve --listen 127.0.0.1:0 --upstream http://127.0.0.1:9 --max-connections {max_connections}"#
        ))
        .arg(env!("CARGO_BIN_EXE_bonenfant"))
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    (Serving(child), stderr)
}

/// A `bonenfant serve` process, killed when the test ends, passed or not.
#[cfg(target_os = "linux")]
struct Serving(std::process::Child);

#[cfg(target_os = "linux")]
impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `condition` until it holds; the deadline only turns a hang into a failure.
#[cfg(target_os = "linux")]
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Soft and hard "Max open files" of a process.
#[cfg(target_os = "linux")]
fn open_file_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Regression: under the usual soft limit of 1,024 open files (systemd's default),
/// `serve` ran out of descriptors at about 500 concurrent parents (two each) although
/// `max-connections` promised 10,000. It raises the soft limit to the hard one.
#[cfg(target_os = "linux")]
#[test]
fn serve_raises_the_soft_open_file_limit_to_the_hard_one() {
    let (serving, _stderr) = serve_under("ulimit -Sn 256", "100");
    let pid = serving.0.id();
    wait_for("bonenfant raises its open-file limit", || {
        open_file_limits(pid).is_some_and(|(soft, hard)| soft != "256" && soft == hard)
    });
}

#[cfg(target_os = "linux")]
#[test]
fn serve_warns_when_the_hard_open_file_limit_is_below_max_connections() {
    let (_serving, stderr) = serve_under("ulimit -n 300", "1000");
    wait_for("bonenfant warns about the open-file limit", || {
        std::fs::read_to_string(stderr.path())
            .is_ok_and(|log| log.contains("open-file limit is too low for max-connections"))
    });
}
