//! Trace events in memory, for tests: the same layer and line format as the file, into
//! a buffer, plus the leak scan every test can end with (T45).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The lines captured so far. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    buffer: Arc<Mutex<Vec<u8>>>,
}

/// Captures this thread's trace events until the guard drops. With tokio, use a
/// current-thread runtime (the default of `#[tokio::test]`) so every task runs here.
pub fn capture() -> (Captured, CaptureGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(super::layer(captured.clone()));
    // `tracing` caches each callsite's interest once for the whole process. With a
    // single dispatcher registered, it asks the *registering thread's* default: a
    // parallel test without a subscriber that first reaches the trace callsite would
    // cache "never", and this capture would see nothing. A second live dispatcher
    // makes every registration ask all of them, this one included.
    let anchor = tracing::Dispatch::new(tracing_subscriber::registry());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (
        captured,
        CaptureGuard {
            _default: guard,
            _anchor: anchor,
        },
    )
}

/// Keeps a [`capture`] going; dropping it ends it.
#[must_use = "the capture ends when the guard drops"]
pub struct CaptureGuard {
    _default: DefaultGuard,
    _anchor: tracing::Dispatch,
}

impl Captured {
    /// Everything written, as text.
    pub fn text(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }

    /// Every line parsed as JSON; a line that is not a JSON object is a test failure.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(
                |line| match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(value) if value.is_object() => value,
                    _ => panic!("trace line is not a JSON object: {line}"),
                },
            )
            .collect()
    }

    /// The events named `name`.
    pub fn named(&self, name: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    /// Panics if any line holds a CAS ticket or one of `secrets` (raw principals,
    /// names, ticket and cookie values, keys, INE…): T45's check.
    pub fn assert_no_leaks(&self, secrets: &[&str]) {
        assert_no_leaks(&self.text(), secrets);
    }
}

/// Panics if `text` holds a CAS ticket (`ST-…`, `PT-…`, `PGT-…`, `PGTIOU-…`, `TGT-…`)
/// or one of `secrets`.
pub fn assert_no_leaks(text: &str, secrets: &[&str]) {
    let ticket = Regex::new(r"\b(ST|PT|PGT|PGTIOU|TGT)-[A-Za-z0-9.-]{4,}").ok();
    if let Some(found) = ticket.as_ref().and_then(|re| re.find(text)) {
        panic!("trace holds a ticket: {}", found.as_str());
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !text.contains(secret),
            "trace holds a secret in clear: {secret}"
        );
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
