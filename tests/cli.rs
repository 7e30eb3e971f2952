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
