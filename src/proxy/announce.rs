//! A set-up that explains itself: the one line `serve` logs once it serves (where it
//! listens, in front of what, how, and where the trace goes), the warnings about a
//! set-up that runs but will not do what its operator expects, and the watch that
//! warns when the establishment pattern recognises none of the first services seen
//! (behind another Pronote host name, every verdict would be silently `unresolved`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::config::Config;
use crate::events::TRACE_TARGET;

/// Tickets (logins and successful validations) the establishment watch looks at before
/// it warns: enough that an ENT's other services (mail, timetable) rarely fill it alone.
pub const WATCHED_TICKETS: u32 = 50;

/// Logs the start-up line, then every [`startup_warnings`]. `proxy` and `admin` are
/// the addresses bound (`--listen …:0` picks a port).
pub fn log(config: &Config, proxy: SocketAddr, admin: Option<SocketAddr>) {
    tracing::info!("{}", startup_line(config, proxy, admin));
    for warning in startup_warnings(config) {
        tracing::warn!("{warning}");
    }
}

/// `serving on http://127.0.0.1:8443 (admin http://127.0.0.1:9901) in front of
/// https://ent.example/, pin retry, store redis (127.0.0.1:6379/0), trace
/// /var/log/bonenfant/trace.jsonl`. Never a password: the store is its kind and
/// address, the upstream loses any user information.
pub fn startup_line(config: &Config, proxy: SocketAddr, admin: Option<SocketAddr>) -> String {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let admin = match admin {
        Some(addr) => format!("admin http://{addr}"),
        None => "no admin server".to_owned(),
    };
    let trace = match &config.trace_log {
        Some(path) => format!("trace {}", path.display()),
        None => "no trace log (--trace-log): the DSI's trace is not written".to_owned(),
    };
    format!(
        "serving on {scheme}://{proxy} ({admin}) in front of {}, pin {}, store {}, {trace}",
        without_credentials(&config.upstream),
        config.pin.mode.as_str(),
        store(&config.store),
    )
}

/// What in `config` runs but will surprise its operator.
pub fn startup_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let upstream = &config.upstream;
    if upstream.path() != "/" || upstream.query().is_some() {
        let mut root = without_credentials(upstream);
        root.set_path("/");
        root.set_query(None);
        warnings.push(format!(
            "--upstream {} has a path, which bonenfant ignores: every request keeps its own \
             path (/cas/login goes to {}cas/login). Give the ENT's root: --upstream {root}",
            without_credentials(upstream),
            root
        ));
    }
    if !config.service_targets.any() {
        warnings.push(format!(
            "--establishment-pattern {} does not pin the Pronote host (it must start with \
             ^https://, then the host's literal text and the uai group, up to a /), and no \
             --service-origin is given: after the chooser a pin is only noted, and the \
             give-up page cannot send a parent on. Give --service-origin https://HOST (or \
             https://*.DOMAIN)",
            config.establishment.as_str()
        ));
    }
    warnings
}

/// `url` without user name and password.
fn without_credentials(url: &url::Url) -> url::Url {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean
}

/// `memory`, or `redis (HOST:PORT/DB)`: the kind and where, never the URL's password.
fn store(store: &str) -> String {
    if store == "memory" {
        return store.to_owned();
    }
    match url::Url::parse(store) {
        Ok(url) => format!(
            "redis ({}:{}{})",
            url.host_str().unwrap_or("?"),
            url.port().unwrap_or(6379),
            url.path()
        ),
        Err(_) => "redis".to_owned(),
    }
}

/// Counts tickets whose service named an establishment the pattern recognises, and
/// warns once when [`WATCHED_TICKETS`] went by without one. Fed trace lines by
/// [`EstablishmentWatch::layer`]; stops looking once it has decided.
#[derive(Debug, Default)]
pub struct EstablishmentWatch {
    seen: AtomicU32,
    done: AtomicBool,
}

impl EstablishmentWatch {
    /// Looks at one trace line; returns the warning when this line is the one that
    /// decides it (at most once).
    pub fn observe(&self, line: &str) -> Option<String> {
        if self.done.load(Ordering::Relaxed) {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Ticket {
            event: String,
            uai_expected: Option<String>,
            error: Option<String>,
        }
        let ticket: Ticket = serde_json::from_str(line).ok()?;
        let counted = match ticket.event.as_str() {
            "login_redirect" => true,
            // A failed validation has no assertion, and so no expected establishment
            // either, whatever the pattern: it says nothing.
            "validate" => ticket.error.is_none(),
            _ => false,
        };
        if !counted {
            return None;
        }
        if ticket.uai_expected.is_some() {
            self.done.store(true, Ordering::Relaxed);
            return None;
        }
        let seen = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if seen == WATCHED_TICKETS && !self.done.swap(true, Ordering::Relaxed) {
            return Some(format!(
                "the establishment pattern recognised none of the first {WATCHED_TICKETS} \
                 tickets' services: verdicts for them are `unresolved` \
                 (no_expected_establishment). If Pronote's validations go through bonenfant, \
                 set --establishment-pattern to match its URLs (docs/domain.md, \
                 \"Words\"; `bonenfant sim pronote` needs --establishment-pattern '{}')",
                crate::sim::SIM_SERVICE_PATTERN
            ));
        }
        None
    }

    /// A `tracing` layer that feeds this watch the trace lines, until it has decided;
    /// the warning goes to the operational log.
    pub fn layer<S>(self: Arc<Self>) -> impl Layer<S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let filter = Arc::clone(&self);
        WatchLayer { watch: self }.with_filter(WatchFilter { watch: filter })
    }
}

struct WatchLayer {
    watch: Arc<EstablishmentWatch>,
}

impl<S: Subscriber> Layer<S> for WatchLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = LineVisitor(None);
        event.record(&mut line);
        if let Some(warning) = line.0.and_then(|line| self.watch.observe(&line)) {
            tracing::warn!("{warning}");
        }
    }
}

/// Trace events only, and none once the watch has decided (so that a `serve` without
/// `--trace-log` stops rendering trace lines for it).
struct WatchFilter {
    watch: Arc<EstablishmentWatch>,
}

impl<S> Filter<S> for WatchFilter {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        meta.target() == TRACE_TARGET && !self.watch.done.load(Ordering::Relaxed)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.target() == TRACE_TARGET {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// The rendered trace line of a trace event.
struct LineVisitor(Option<String>);

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "trace_line" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn config(upstream: &str, store: &str) -> Config {
        let mut config = RawConfig {
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            upstream: Some(url::Url::parse(upstream).unwrap()),
            ..RawConfig::default()
        }
        .validate()
        .unwrap();
        // As validated, without the Redis store's key file this line does not need.
        config.store = store.to_owned();
        config
    }

    #[test]
    fn the_startup_line_says_where_and_how_without_a_password() {
        let config = config(
            "https://bot:secret@ent.example/",
            "redis://bonenfant:hunter2@10.0.0.5:6380/2",
        );
        let line = startup_line(&config, config.listen, None);
        assert_eq!(
            line,
            "serving on http://127.0.0.1:8443 (no admin server) in front of https://ent.example/, \
             pin observe, store redis (10.0.0.5:6380/2), no trace log (--trace-log): the DSI's \
             trace is not written"
        );
        assert!(!line.contains("secret") && !line.contains("hunter2"));
    }

    #[test]
    fn an_upstream_with_a_path_is_warned_about() {
        assert!(startup_warnings(&config("https://ent.example", "memory")).is_empty());
        let warnings = startup_warnings(&config("https://ent.example/cas", "memory"));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("/cas/login goes to https://ent.example/cas/login"),
            "{warnings:?}"
        );
        assert!(warnings[0].ends_with("--upstream https://ent.example/"));
    }

    /// A pattern that does not pin the host, without `--service-origin`, leaves the
    /// chooser and the give-up page nowhere to send a parent: said at start-up.
    #[test]
    fn a_pattern_that_does_not_pin_the_host_is_warned_about() {
        let mut raw = RawConfig {
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            upstream: Some(url::Url::parse("https://ent.example/").unwrap()),
            establishment_pattern: Some(r"(?P<uai>\d{7}[a-z])".to_owned()),
            ..RawConfig::default()
        };
        let warnings = startup_warnings(&raw.clone().validate().unwrap());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("--service-origin"), "{warnings:?}");
        raw.service_origin = Some(vec!["https://pronote.example".to_owned()]);
        assert!(startup_warnings(&raw.validate().unwrap()).is_empty());
    }

    fn redirect(uai: Option<&str>) -> String {
        let uai = uai.map_or("null".to_owned(), |u| format!("\"{u}\""));
        format!(
            r#"{{"ts":"2026-01-01T00:00:00.000Z","event":"login_redirect","uai_expected":{uai},"session":null,"bound":false,"action":"forwarded","retries":0,"principal":null,"latency_ms":1}}"#
        )
    }

    #[test]
    fn the_watch_warns_once_after_the_first_unrecognised_services() {
        let watch = EstablishmentWatch::default();
        let failed = r#"{"ts":"2026-01-01T00:00:00.000Z","event":"validate","uai_expected":null,"error":"proxy.upstream_connect"}"#;
        for _ in 0..WATCHED_TICKETS * 2 {
            assert_eq!(watch.observe(failed), None);
        }
        for _ in 1..WATCHED_TICKETS {
            assert_eq!(watch.observe(&redirect(None)), None);
        }
        let warning = watch.observe(&redirect(None)).unwrap();
        assert!(warning.contains("--establishment-pattern"));
        assert_eq!(watch.observe(&redirect(None)), None);
    }

    #[test]
    fn one_recognised_service_silences_the_watch() {
        let watch = EstablishmentWatch::default();
        assert_eq!(watch.observe(&redirect(Some("0330012A"))), None);
        for _ in 0..WATCHED_TICKETS * 2 {
            assert_eq!(watch.observe(&redirect(None)), None);
        }
    }
}
