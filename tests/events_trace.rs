//! The trace log as the DSI receives it: one JSON object per line from the closed list,
//! no identifier in clear (T45), no injected line (T47), nothing lost (T48), and read
//! back by `bonenfant report`.

use std::time::Duration;

use bonenfant::cas::Endpoint;
use bonenfant::code::Code;
use bonenfant::events::{
    self, capture, Chooser, EventsLost, FrontAction, GiveUpChoice, KeySource, LatencyMs,
    LoginRedirect, Logout, LogoutKind, LossCounter, Passthrough, PinOutcome, PinRefused, PinSet,
    Pseudonymizer, Rejected, Retry, RetryGaveUp, RewriteRefused, Shutdown, Startup, TraceEvent,
    TraceLog, UpstreamError, Validate,
};
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::SessionId;
use bonenfant::verdict::{rule, Verdict};
use tracing_subscriber::layer::SubscriberExt;

/// Canaries: identifiers a leak would show, with characters that would break a line.
const PRINCIPAL: &str = "jean.dupont-CANARY\n{\"event\":\"validate\"}\u{2028}\u{1b}[31m";
const ELEVE_ID: &str = "CANARY7012945";
const SESSION_BYTES: [u8; 16] = *b"CANARYSESSION-16";

fn log() -> TraceLog {
    let key = b"a fixture key of at least thirty-two bytes";
    TraceLog::new(Pseudonymizer::new(key).unwrap(), LossCounter::default())
}

fn uai(s: &str) -> Uai {
    Uai::parse(s).unwrap()
}

fn ms(n: u64) -> LatencyMs {
    LatencyMs(Duration::from_millis(n))
}

fn validate(log: &TraceLog, verdict: Verdict, rule: &'static str) -> TraceEvent {
    let p = log.pseudonyms();
    let pupil = PupilKey {
        uai: uai("0330012A"),
        eleve_id: ELEVE_ID.into(),
    };
    TraceEvent::Validate(Validate {
        verdict,
        rule,
        endpoint: Endpoint::P3ServiceValidate,
        uai_expected: Some(uai("0330012A")),
        uai_asserted: Some(uai("0330012A")),
        pin: PinOutcome::Retry,
        retries: 2,
        latency_ms: ms(3),
        principal: Some(p.principal(PRINCIPAL)),
        pupil: Some(p.pupil(&pupil)),
        session: Some(p.session(&SessionId(SESSION_BYTES))),
        error: None,
    })
}

/// One event of every kind, built from the canaries.
fn every_event(log: &TraceLog) -> Vec<TraceEvent> {
    let p = log.pseudonyms();
    let principal = p.principal(PRINCIPAL);
    let session = p.session(&SessionId(SESSION_BYTES));
    let pupil = p.pupil(&PupilKey {
        uai: uai("0330012A"),
        eleve_id: ELEVE_ID.into(),
    });
    vec![
        TraceEvent::Startup(Startup {
            version: env!("CARGO_PKG_VERSION"),
            pin_strategy: "retry",
            store: "memory",
            pseudonym_key: KeySource::File,
        }),
        validate(log, Verdict::WrongChild, rule::INTENT_PIN),
        TraceEvent::LoginRedirect(LoginRedirect {
            uai_expected: Some(uai("0330012A")),
            session: Some(session.clone()),
            bound: true,
            action: FrontAction::Relogin,
            retries: 0,
            principal: Some(principal.clone()),
            latency_ms: ms(1),
        }),
        TraceEvent::Retry(Retry {
            attempt: 1,
            verdict: Verdict::WrongChild,
            rule: rule::INTENT_PIN,
            uai_expected: Some(uai("0330012A")),
            uai_asserted: Some(uai("0330099Z")),
            principal: Some(principal.clone()),
            pupil: Some(pupil.clone()),
            session: Some(session.clone()),
            latency_ms: ms(40),
        }),
        TraceEvent::RetryGaveUp(RetryGaveUp {
            retries: 8,
            reason: "attempts",
            uai_expected: None,
            principal: Some(principal.clone()),
            session: Some(session.clone()),
            latency_ms: ms(900),
        }),
        TraceEvent::Chooser(Chooser {
            uai_expected: Some(uai("0330012A")),
            children: 2,
            principal: Some(principal.clone()),
            session: Some(session.clone()),
        }),
        TraceEvent::PinSet(PinSet {
            uai: uai("0330012A"),
            pupil,
            principal: Some(principal.clone()),
            session: session.clone(),
            code: None,
        }),
        TraceEvent::GiveUpChoice(GiveUpChoice {
            choice: "continue",
            uai_expected: Some(uai("0330012A")),
            principal: Some(principal.clone()),
            session: Some(session.clone()),
        }),
        TraceEvent::RewriteRefused(RewriteRefused {
            code: Code::PinRewriteStale,
            principal: Some(principal.clone()),
            session: Some(session.clone()),
        }),
        TraceEvent::PinRefused(PinRefused {
            code: Code::PinCsrf,
            principal: None,
            session: Some(session.clone()),
        }),
        TraceEvent::Logout(Logout {
            kind: LogoutKind::SingleLogout,
            session: Some(session),
            dropped: true,
        }),
        TraceEvent::Passthrough(Passthrough {
            endpoint: None,
            status: 200,
            latency_ms: ms(0),
        }),
        TraceEvent::Rejected(Rejected {
            code: Code::CasTicketPrefix,
            endpoint: Some(Endpoint::Login),
            status: 400,
            latency_ms: ms(0),
        }),
        TraceEvent::UpstreamError(UpstreamError {
            code: Code::ProxyUpstreamTimeout,
            endpoint: Some(Endpoint::Login),
            status: 504,
            latency_ms: ms(5000),
        }),
        TraceEvent::EventsLost(EventsLost { count: 1, total: 1 }),
        TraceEvent::Shutdown(Shutdown {
            reason: "signal",
            events_lost: 0,
        }),
    ]
}

#[test]
fn every_event_of_the_closed_list_is_one_json_line() {
    let log = log();
    let (captured, _guard) = capture::capture();
    let events = every_event(&log);
    let names: Vec<&str> = events.iter().map(TraceEvent::name).collect();
    for event in events {
        log.emit(event);
    }
    let lines = captured.events();
    assert_eq!(lines.len(), TraceEvent::NAMES.len());
    let mut seen: Vec<&str> = Vec::new();
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(line["event"], *name);
        assert!(line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
        seen.push(name);
    }
    seen.sort_unstable();
    let mut all = TraceEvent::NAMES.to_vec();
    all.sort_unstable();
    assert_eq!(seen, all, "the test covers the whole closed list");
}

#[test]
fn validate_has_exactly_the_documented_fields() {
    let log = log();
    let (captured, _guard) = capture::capture();
    log.emit(validate(&log, Verdict::Ok, rule::INTENT_PIN));
    let line = &captured.events()[0];
    let mut keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "endpoint",
            "error",
            "event",
            "latency_ms",
            "pin",
            "principal",
            "pupil",
            "retries",
            "rule",
            "session",
            "ts",
            "uai_asserted",
            "uai_expected",
            "verdict"
        ]
    );
    assert_eq!(line["endpoint"], "p3/serviceValidate");
    assert_eq!(line["pin"], "retry");
    assert_eq!(line["latency_ms"], 3.0);
    assert_eq!(line["principal"].as_str().unwrap().len(), 32);
    assert!(captured.text().starts_with("{\"ts\":"));
}

#[test]
fn no_identifier_reaches_the_trace_in_clear() {
    let log = log();
    let (captured, _guard) = capture::capture();
    for event in every_event(&log) {
        log.emit(event);
    }
    let session_text = std::str::from_utf8(&SESSION_BYTES).unwrap();
    captured.assert_no_leaks(&[
        PRINCIPAL,
        "jean.dupont",
        "CANARY",
        ELEVE_ID,
        session_text,
        &hex::encode(SESSION_BYTES),
    ]);
    assert!(!captured.text().contains('\u{1b}'));
    assert!(!captured.text().contains('\u{2028}'));
}

#[test]
#[should_panic(expected = "ticket")]
fn the_leak_scan_catches_tickets() {
    capture::assert_no_leaks("{\"x\":\"ST-1-abcdefgh\"}", &[]);
}

#[test]
fn file_trace_reads_back_in_the_report_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.jsonl");
    let (writer, guard) = events::open_trace_file(&path).unwrap();
    let log = TraceLog::new(Pseudonymizer::new(&[5; 32]).unwrap(), writer.losses());
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(events::layer(writer)));
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (log, dispatch) = (log.clone(), dispatch.clone());
            scope.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..2_500 {
                        let verdict = if (thread + i) % 4 == 0 {
                            Verdict::WrongChild
                        } else {
                            Verdict::Ok
                        };
                        log.emit(validate(&log, verdict, rule::INTENT_PIN));
                    }
                });
            });
        }
    });
    drop(guard);
    assert_eq!(log.losses().lost(), 0);
    assert_eq!(log.losses().written(), 10_000);
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let report = bonenfant::report::summarize(file).unwrap();
    assert_eq!(report.bad_lines.count, 0);
    assert_eq!(report.totals.validations, 10_000);
    assert_eq!(report.totals.verdicts["wrong_child"], 2_500);
    assert_eq!(report.totals.families_seen, 1);
}
