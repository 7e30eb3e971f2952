//! From a [`TraceEvent`] to a line in `--trace-log`, through `tracing-subscriber`, with
//! nothing dropped silently (`docs/events.md`, "Nothing lost silently"; T48).
//!
//! [`TraceLog::emit`] serialises the event (with `serde_json`, so no value can break a
//! line or fake another: T47) and sends it as one field of a `tracing` event under
//! [`TRACE_TARGET`]. [`layer`] writes that field and a newline, nothing else. The file
//! writer is `tracing-appender`'s non-blocking writer in non-lossy mode (callers wait
//! when its buffer is full: back-pressure), over a file writer that counts what it
//! wrote and what failed. [`TraceGuard`] waits for the queue to drain at exit.

use crate::code::Code;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{EventsLost, Pseudonymizer, TraceEvent};

/// The `tracing` target of trace events. Not a module path, so no `module::…` target
/// of the crate's operational logs can match it by prefix.
pub const TRACE_TARGET: &str = "bonenfant_trace";

/// The field of the `tracing` event that carries the rendered JSON object.
const LINE_FIELD: &str = "trace_line";

/// Lines the background writer may hold before callers wait. At 500 validations/s
/// (the design burst, `docs/performance.md`) this is minutes of a stalled disk.
const BUFFERED_LINES: usize = 128_000;

/// How long [`TraceGuard`] waits for queued lines at exit before counting them lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `metadata` is a trace event: the operational log layer filters these out.
pub fn is_trace_event(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TRACE_TARGET
}

/// The layer that renders trace events, one JSON object per line, to `writer`. Takes
/// only [`TRACE_TARGET`] events.
pub fn layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .event_format(LineFormat)
        .with_writer(writer)
        .with_filter(Targets::new().with_target(TRACE_TARGET, Level::INFO))
}

/// Opens (appends to, creates with mode 0640) the trace log and starts its writer.
/// Hold the guard until exit: dropping it flushes.
pub fn open_trace_file(path: &Path) -> Result<(TraceWriter, TraceGuard), TraceError> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let file = options.open(path).map_err(|source| TraceError::Open {
        path: path.to_owned(),
        source,
    })?;
    let losses = LossCounter::default();
    let (non_blocking, worker) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("bonenfant-trace")
        .finish(CountingFile::new(file, losses.clone()));
    let writer = TraceWriter {
        inner: non_blocking,
        losses: losses.clone(),
    };
    let guard = TraceGuard {
        worker: Some(worker),
        losses,
        drain_timeout: DRAIN_TIMEOUT,
    };
    Ok((writer, guard))
}

/// Why the trace log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot open the trace log {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
}

impl TraceError {
    pub fn code(&self) -> Code {
        match self {
            TraceError::Open { .. } => Code::EventsOpen,
        }
    }
}

// === impl TraceLog ===

/// Emits trace events. Cheap to clone; one per process, shared by every request.
#[derive(Clone, Debug)]
pub struct TraceLog {
    inner: Arc<TraceLogInner>,
}

#[derive(Debug)]
struct TraceLogInner {
    pseudonyms: Pseudonymizer,
    losses: LossCounter,
    /// Losses already reported by an `events_lost` event.
    reported: AtomicU64,
}

/// Bytes reserved for a line: a `validate` line with every pseudonym is about 400, so
/// the line is written without growing its buffer.
const LINE_CAPACITY: usize = 512;

impl TraceLog {
    pub fn new(pseudonyms: Pseudonymizer, losses: LossCounter) -> Self {
        Self {
            inner: Arc::new(TraceLogInner {
                pseudonyms,
                losses,
                reported: AtomicU64::new(0),
            }),
        }
    }

    /// The pseudonymizer events are built with.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.inner.pseudonyms
    }

    /// What the writer lost so far (`/metrics`, the `shutdown` event).
    pub fn losses(&self) -> &LossCounter {
        &self.inner.losses
    }

    /// Writes `event` to the trace log, stamped now. If the writer lost events since the
    /// last report, an `events_lost` event goes first.
    ///
    /// Cheap (a serialisation and a channel send), but it waits when the writer's
    /// buffer is full: that back-pressure is what keeps the trace complete.
    pub fn emit(&self, event: TraceEvent) {
        let lost = self.inner.losses.lost();
        let reported = self.inner.reported.fetch_max(lost, Ordering::AcqRel);
        if lost > reported {
            self.write(&TraceEvent::EventsLost(EventsLost {
                count: lost - reported,
                total: lost,
            }));
        }
        self.write(&event);
    }

    fn write(&self, event: &TraceEvent) {
        // Nobody listens (no `--trace-log`): skip the formatting, not the event.
        if !tracing::event_enabled!(target: TRACE_TARGET, Level::INFO) {
            return;
        }
        match render_line(event) {
            Ok(line) => {
                tracing::event!(target: TRACE_TARGET, Level::INFO, trace_line = line.as_str())
            }
            // Only a serialiser bug gets here (every field is a plain value): count it.
            Err(_) => {
                self.inner
                    .losses
                    .counters
                    .unwritable
                    .fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// One line, the timestamp first and then the event's fields:
/// `{"ts":"2026-11-30T17:04:05.123Z","event":"validate",…}`. The event is serialised on
/// its own after the timestamp and its opening brace becomes the comma: the bytes a
/// struct with the event `#[serde(flatten)]`ed would give, without serde's flattening
/// (a map of unknown length, each field through an adapter) or a second buffer.
fn render_line(event: &TraceEvent) -> Result<String, serde_json::Error> {
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    line.extend_from_slice(br#"{"ts":""#);
    write_timestamp(&mut line);
    line.push(b'"');
    let event_start = line.len();
    serde_json::to_writer(&mut line, event)?;
    if let Some(brace) = line.get_mut(event_start) {
        *brace = b',';
    }
    // serde_json writes UTF-8; checked rather than assumed (no unsafe in this crate).
    String::from_utf8(line).map_err(|e| serde::ser::Error::custom(e.utf8_error()))
}

/// Appends now, UTC, RFC 3339 with milliseconds (`2026-11-30T17:04:05.123Z`): sorts as
/// text and cuts to a day with `ts[..10]`.
fn write_timestamp(out: &mut Vec<u8>) {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let start = out.len();
    if time::OffsetDateTime::now_utc()
        .format_into(out, &format)
        .is_err()
    {
        out.truncate(start);
        out.extend_from_slice(b"1970-01-01T00:00:00.000Z");
    }
}

// === impl LineFormat ===

/// Writes the event's [`LINE_FIELD`] and a newline; an event without it writes nothing.
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut visitor = LineVisitor {
            writer: &mut writer,
            written: None,
        };
        event.record(&mut visitor);
        visitor.written.unwrap_or(Err(std::fmt::Error))
    }
}

/// Writes the line field straight to the layer's buffer (no copy of the line).
struct LineVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    written: Option<std::fmt::Result>,
}

impl Visit for LineVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == LINE_FIELD && self.written.is_none() {
            let writer = &mut *self.writer;
            self.written = Some(
                writer
                    .write_str(value)
                    .and_then(|()| writer.write_char('\n')),
            );
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

// === impl LossCounter ===

/// Counts what happened to trace lines, shared by the writer, [`TraceLog`] and
/// `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct LossCounter {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// Lines the background writer accepted.
    queued: AtomicU64,
    /// Lines that reached the file.
    written: AtomicU64,
    /// Lines the file refused (disk full, I/O error), or still queued at exit.
    write_failed: AtomicU64,
    /// Lines the background writer refused (its thread is gone), or that could not
    /// be rendered.
    unwritable: AtomicU64,
}

impl LossCounter {
    /// Trace lines lost since startup.
    pub fn lost(&self) -> u64 {
        self.counters.write_failed.load(Ordering::Acquire)
            + self.counters.unwritable.load(Ordering::Acquire)
    }

    /// Trace lines written to the file since startup.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Acquire)
    }

    /// Lines queued but neither written nor failed yet.
    fn pending(&self) -> u64 {
        let done = self.written() + self.counters.write_failed.load(Ordering::Acquire);
        self.counters
            .queued
            .load(Ordering::Acquire)
            .saturating_sub(done)
    }
}

// === impl TraceWriter ===

/// The `MakeWriter` of the trace file: the non-blocking writer, counting refusals.
#[derive(Clone, Debug)]
pub struct TraceWriter {
    inner: NonBlocking,
    losses: LossCounter,
}

impl TraceWriter {
    /// The counters of this writer, for [`TraceLog::new`] and `/metrics`.
    pub fn losses(&self) -> LossCounter {
        self.losses.clone()
    }
}

impl<'a> MakeWriter<'a> for TraceWriter {
    type Writer = TraceWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    /// One call per line (the fmt layer writes a whole formatted event at once).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let counters = &self.losses.counters;
        match self.inner.write_all(buf) {
            Ok(()) => {
                counters.queued.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                counters.unwritable.fetch_add(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The file under the background writer. The writer hands it one line per
/// `write_all` and calls `flush` after each batch it drained from its queue: lines are
/// gathered and written with one system call per batch (one per line cost more than
/// the rest of a validation), and counted written only once in the kernel, so a counted
/// line survives a crash of the process.
struct CountingFile {
    file: File,
    losses: LossCounter,
    /// Lines of the current batch, not yet written.
    pending: Vec<u8>,
    pending_lines: u64,
}

/// A batch larger than this is written without waiting for the end of the batch.
const BATCH_BYTES: usize = 256 * 1024;

/// After writing a batch, the background writer pauses this long before it looks at its
/// queue again. Lines queued meanwhile make the next batch, and the request threads that
/// queue them do not wake a parked writer line by line (a futex wake, the channel's
/// spinning receive and a context switch on a core that serves requests). A line reaches
/// the file at most this much later; none is dropped (the queue is bounded and non-lossy
/// either way).
const BATCH_WINDOW: Duration = Duration::from_millis(1);

impl CountingFile {
    fn new(file: File, losses: LossCounter) -> Self {
        Self {
            file,
            losses,
            pending: Vec::with_capacity(BATCH_BYTES),
            pending_lines: 0,
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending_lines == 0 {
            return Ok(());
        }
        let counters = &self.losses.counters;
        let lines = std::mem::take(&mut self.pending_lines);
        let result = self.file.write_all(&self.pending);
        self.pending.clear();
        match result {
            Ok(()) => {
                counters.written.fetch_add(lines, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                counters.write_failed.fetch_add(lines, Ordering::AcqRel);
                Err(e)
            }
        }
    }
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    /// The background writer calls this once per queued line.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(buf);
        self.pending_lines += 1;
        if self.pending.len() >= BATCH_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    /// The background writer calls this once per batch it drained.
    fn flush(&mut self) -> io::Result<()> {
        let wrote = self.pending_lines > 0;
        self.write_pending()?;
        self.file.flush()?;
        if wrote {
            std::thread::sleep(BATCH_WINDOW);
        }
        Ok(())
    }
}

impl Drop for CountingFile {
    fn drop(&mut self) {
        // The writer flushes before it stops; this is for a writer that did not.
        let _ = self.write_pending();
    }
}

// === impl TraceGuard ===

/// Keeps the background writer alive; on drop, waits (bounded) until every queued line
/// is written, then stops it. Lines still queued after the wait are counted lost and
/// reported on the operational log.
#[must_use = "dropping the guard stops the trace writer"]
pub struct TraceGuard {
    worker: Option<WorkerGuard>,
    losses: LossCounter,
    drain_timeout: Duration,
}

impl std::fmt::Debug for TraceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceGuard").finish_non_exhaustive()
    }
}

impl TraceGuard {
    /// The writer's counters.
    pub fn losses(&self) -> LossCounter {
        self.losses.clone()
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + self.drain_timeout;
        while self.losses.pending() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(self.worker.take());
        let stranded = self.losses.pending();
        if stranded > 0 {
            self.losses
                .counters
                .write_failed
                .fetch_add(stranded, Ordering::AcqRel);
        }
        let lost = self.losses.lost();
        if lost > 0 {
            tracing::error!(lost, "trace log: events could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{LatencyMs, Passthrough, Shutdown};
    use tracing_subscriber::layer::SubscriberExt;

    fn passthrough() -> TraceEvent {
        TraceEvent::Passthrough(Passthrough {
            endpoint: None,
            status: 204,
            latency_ms: LatencyMs(Duration::from_micros(10)),
        })
    }

    fn trace_log(losses: LossCounter) -> TraceLog {
        TraceLog::new(Pseudonymizer::new(&[3; 32]).unwrap(), losses)
    }

    #[test]
    fn file_receives_every_event_after_guard_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let (writer, guard) = open_trace_file(&path).unwrap();
        let log = trace_log(writer.losses());
        let subscriber = tracing_subscriber::registry().with(layer(writer));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5_000 {
                log.emit(passthrough());
            }
        });
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5_000);
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["event"], "passthrough");
        }
        assert_eq!(log.losses().lost(), 0);
        assert_eq!(log.losses().written(), 5_000);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_failures_are_counted_not_silent() {
        // /dev/full refuses every write with ENOSPC: a full disk.
        let (writer, guard) = open_trace_file(Path::new("/dev/full")).unwrap();
        let log = trace_log(writer.losses());
        let subscriber = tracing_subscriber::registry().with(layer(writer));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..100 {
                log.emit(passthrough());
            }
        });
        drop(guard);
        assert_eq!(log.losses().written(), 0);
        assert!(log.losses().lost() >= 100);
        assert_eq!(log.losses().pending(), 0);
    }

    #[test]
    fn appends_to_an_existing_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        std::fs::write(&path, "{\"event\":\"startup\"}\n").unwrap();
        let (writer, guard) = open_trace_file(&path).unwrap();
        let log = trace_log(writer.losses());
        let subscriber = tracing_subscriber::registry().with(layer(writer));
        tracing::subscriber::with_default(subscriber, || log.emit(passthrough()));
        drop(guard);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn unopenable_path_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_trace_file(&dir.path().join("missing/trace.jsonl")).unwrap_err();
        assert_eq!(err.code().as_str(), "events.open");
    }

    #[test]
    fn losses_are_reported_before_the_next_event() {
        let losses = LossCounter::default();
        losses.counters.write_failed.fetch_add(3, Ordering::AcqRel);
        let log = trace_log(losses);
        let (captured, _guard) = crate::events::capture::capture();
        log.emit(TraceEvent::Shutdown(Shutdown {
            reason: "signal",
            events_lost: 3,
        }));
        log.emit(passthrough());
        let names: Vec<_> = captured
            .events()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, ["events_lost", "shutdown", "passthrough"]);
        assert_eq!(captured.events()[0]["count"], 3);
    }

    #[test]
    fn other_targets_never_reach_the_trace() {
        let (captured, _guard) = crate::events::capture::capture();
        tracing::info!(trace_line = "{\"event\":\"validate\"}", "not a trace event");
        tracing::event!(target: TRACE_TARGET, Level::INFO, other = 1);
        assert!(captured.lines().is_empty());
    }

    fn timestamp() -> String {
        let mut ts = Vec::new();
        write_timestamp(&mut ts);
        String::from_utf8(ts).unwrap()
    }

    /// What [`render_line`] replaced: the event flattened after the timestamp.
    #[derive(serde::Serialize)]
    struct FlattenedLine<'a> {
        ts: &'a str,
        #[serde(flatten)]
        event: &'a TraceEvent,
    }

    #[test]
    fn a_line_is_the_timestamp_and_the_flattened_event_byte_for_byte() {
        let pseudonyms = Pseudonymizer::new(&[3; 32]).unwrap();
        let validate = TraceEvent::Validate(crate::events::Validate {
            verdict: crate::verdict::Verdict::WrongEstablishment,
            rule: "r\"ule\n",
            endpoint: crate::cas::Endpoint::ServiceValidate,
            uai_expected: crate::pupil::Uai::parse("0330012A"),
            uai_asserted: None,
            pin: crate::events::PinOutcome::GaveUp,
            retries: 3,
            latency_ms: LatencyMs(Duration::from_micros(1_234_567)),
            principal: Some(pseudonyms.principal("AC-BORDEAUX$1986923")),
            pupil: None,
            session: Some(pseudonyms.principal("é\u{1}")),
            error: Some(Code::ProxyTicketReplayed),
        });
        let events = [
            passthrough(),
            validate,
            TraceEvent::Shutdown(Shutdown {
                reason: "signal",
                events_lost: 7,
            }),
            TraceEvent::EventsLost(EventsLost { count: 1, total: 2 }),
        ];
        for event in &events {
            let line = render_line(event).unwrap();
            let ts = line.get(7..31).unwrap();
            let flattened = serde_json::to_string(&FlattenedLine { ts, event }).unwrap();
            assert_eq!(line, flattened);
        }
    }

    #[test]
    fn timestamp_is_rfc3339_utc_millis() {
        let ts = timestamp();
        assert_eq!(ts.len(), 24);
        assert!(ts.ends_with('Z'));
        assert!(
            time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
    }
}
