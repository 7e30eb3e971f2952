//! A throwaway `redis-server` for the Redis store's tests: 127.0.0.1 on a free port, no
//! persistence, killed when dropped; plain or over TLS. And the store key every test
//! instance shares, as `--store-key-file` gives it.

#![allow(dead_code)] // Each test crate uses its own part of this module.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bonenfant::session::{StoreConfig, StoreKeys};

/// The store key of the test instances (a real deployment generates one:
/// `openssl rand -hex 32`).
pub const STORE_KEY: [u8; 32] = [0x5a; 32];

pub fn store_keys() -> StoreKeys {
    StoreKeys::new([STORE_KEY]).unwrap()
}

/// The default store config with the shared test key.
pub fn store_config() -> StoreConfig {
    StoreConfig {
        keys: Some(store_keys()),
        ..StoreConfig::default()
    }
}

/// Writes [`STORE_KEY`] as a `--store-key-file` in `dir`.
pub fn store_key_file(dir: &Path) -> PathBuf {
    let path = dir.join("store.keys");
    std::fs::write(&path, format!("{}\n", hex::encode(STORE_KEY))).unwrap();
    path
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// (certificate, key, CA) PEM files when the server speaks TLS only.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl RedisServer {
    /// Starts a server, or fails the test saying how to install one.
    pub fn start() -> Self {
        let port = free_port();
        let server = Self {
            child: spawn(port, None),
            port,
            tls: None,
        };
        server.wait_ready();
        server
    }

    /// Starts a server that speaks TLS only, with the certificate `cert` (for
    /// 127.0.0.1) and its `key`; `ca` is the CA that signed it. Clients need no
    /// certificate of their own.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Self {
        let port = free_port();
        let tls = Some((cert.to_owned(), key.to_owned(), ca.to_owned()));
        let server = Self {
            child: spawn(port, tls.as_ref()),
            port,
            tls,
        };
        server.wait_ready();
        server
    }

    /// Kills the server and starts an empty one on the same port (Redis restarted).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, self.tls.as_ref());
        self.wait_ready();
    }

    /// `redis://…`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Waits until the server accepts connections (a readiness wait, not a timed
    /// assertion: the deadline only turns a hang into a clear failure).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server now (the store must then report `Unavailable`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn spawn(port: u16, tls: Option<&(PathBuf, PathBuf, PathBuf)>) -> Child {
    let mut command = Command::new("redis-server");
    command.args(["--bind", "127.0.0.1"]);
    match tls {
        None => command.args(["--port", &port.to_string()]),
        Some((cert, key, ca)) => command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .arg("--tls-ca-cert-file")
            .arg(ca)
            .args(["--tls-auth-clients", "no"]),
    };
    command
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| missing_redis_server(&e))
}

/// Without `redis-server` every Redis test would fail with its own panic and
/// backtrace: a wall of output that hides the one cause. The first test to find it
/// missing says so in one line and ends the test run.
fn missing_redis_server(error: &std::io::Error) -> ! {
    use std::io::Write as _;
    // Straight to the process's stderr: the test harness captures `eprintln!`, and
    // would drop it with the process.
    let _ = writeln!(
        std::io::stderr(),
        "\nbonenfant tests: cannot start redis-server ({error}); the Redis store tests need it: \
         `apt-get install redis-server`, or run `bash .ci/run`, which installs what every test needs."
    );
    std::process::exit(1)
}

// === concurrent session updates ===

use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::{RetryProgress, SessionChange, SessionState};

/// A child no other updater adds: (updater, its nth update).
pub fn child(updater: &str, n: usize) -> PupilKey {
    PupilKey {
        uai: Uai::parse("0330012A").expect("fixture UAI"),
        eleve_id: format!("{updater}-{n}"),
    }
}

/// A commutative change, as an `update_session` closure: learns `child` and counts
/// one update in `retry.retries`, creating the session if absent. Any lost update
/// shows as a missing child and a short count.
pub fn learn_and_count(
    child: PupilKey,
) -> impl FnMut(Option<SessionState>) -> (SessionChange, ()) + Send {
    move |current| {
        let mut state = current.unwrap_or_default();
        state
            .known
            .push(bonenfant::session::KnownChild::new(child.clone()));
        let counter = state.retry.get_or_insert_with(|| RetryProgress {
            service: String::new(),
            retries: 0,
            started_ms: 0,
        });
        counter.retries += 1;
        (SessionChange::Put(state), ())
    }
}

/// Asserts `state` holds exactly the children of the updates that succeeded, each
/// once, and counted them all.
pub fn assert_holds_exactly(state: Option<&SessionState>, mut added: Vec<PupilKey>) {
    let mut known: Vec<PupilKey> = state
        .map(|s| s.known.iter().map(|k| k.key.clone()).collect())
        .unwrap_or_default();
    let count = state
        .and_then(|s| s.retry.as_ref())
        .map_or(0, |r| r.retries as usize);
    let by_id = |a: &PupilKey, b: &PupilKey| a.eleve_id.cmp(&b.eleve_id);
    known.sort_by(by_id);
    added.sort_by(by_id);
    assert_eq!(known, added, "an update was lost (or applied twice)");
    assert_eq!(count, added.len(), "the update count is off");
}

// === concurrent ticket takes ===

/// Races `takers` tasks, spread in turn over `stores` (instances sharing one map), to
/// take `ticket`; returns how many got its binding. A ticket is taken exactly once: 1.
pub async fn ticket_take_winners<S: bonenfant::session::SessionStore>(
    stores: &[std::sync::Arc<S>],
    takers: usize,
    ticket: &bonenfant::cas::ServiceTicket,
) -> usize {
    let takers: Vec<_> = (0..takers)
        .map(|i| {
            let store = std::sync::Arc::clone(&stores[i % stores.len()]);
            let ticket = ticket.clone();
            tokio::spawn(async move {
                store
                    .take_ticket(&store.ticket_key(&ticket))
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut winners = 0;
    for taker in takers {
        winners += usize::from(taker.await.unwrap());
    }
    winners
}
