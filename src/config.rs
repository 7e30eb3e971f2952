//! Configuration in two stages, as ripgrep does: raw settings (command-line flags and
//! TOML keys, all optional) → one validated [`Config`].
//!
//! Every `serve` flag is also a TOML key with the same kebab-case name, because the same
//! struct ([`RawConfig`]) is both the clap argument set and the serde document. Flags win
//! over the file. Every error names the key and what is wrong with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::pages::{Brand, Color, Logo};
use crate::pin::target::{ServiceOrigin, ServiceTargets};
use crate::pupil::aaf::LoadReport;
use crate::pupil::{EstablishmentPattern, SharedIndex};
use crate::session::StoreKeys;

/// Why a configuration was refused. Each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("{key}: missing (give --{key} or `{key} = …` in the config file)")]
    Missing { key: &'static str },
    #[error("config file {path}: {problem}")]
    File { path: PathBuf, problem: String },
}

impl ConfigError {
    fn invalid(key: &'static str, problem: impl std::fmt::Display) -> Self {
        ConfigError::Invalid {
            key,
            problem: problem.to_string(),
        }
    }
}

/// How bonenfant acts on what it sees (`docs/domain.md`, "Pinning strategies").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PinMode {
    /// Never change anything; log verdicts.
    #[default]
    Observe,
    /// Re-run the silent login until the ENT asserts the intended pupil.
    Retry,
    /// Replace pupil-designating attributes from a guarded earlier assertion.
    Rewrite,
}

impl PinMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Observe => "observe",
            PinMode::Retry => "retry",
            PinMode::Rewrite => "rewrite",
        }
    }
}

/// The scheme browsers use to reach bonenfant: `https` behind a TLS-terminating load
/// balancer even when bonenfant itself listens in plain HTTP. It decides the session
/// cookie's `Secure` and `__Host-` and the origin a pin POST must come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PublicScheme {
    Http,
    Https,
}

impl PublicScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicScheme::Http => "http",
            PublicScheme::Https => "https",
        }
    }
}

/// Whether landing on a sibling in the collège the parent opened is wrong, for pinning
/// (`docs/domain.md`, "Siblings in one collège").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SameEstablishment {
    /// The parent meant one child: the chooser asks which, the retry re-rolls a sibling.
    #[default]
    Ask,
    /// Any of the parent's children in that collège will do: Pronote's parent space
    /// lists all of them, so no chooser and no re-roll for a sibling there.
    Any,
}

/// What Pronote receives when bonenfant lets a validation answer through unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerMode {
    /// The ENT's bytes, once the strict parser accepted them (transparent).
    #[default]
    Verbatim,
    /// bonenfant's canonical serialisation of the parsed answer (no parser
    /// differential between bonenfant and Pronote is possible).
    Canonical,
}

/// Raw settings: every field optional, every field both a flag and a TOML key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on (e.g. 127.0.0.1:8443).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where the ENT listens, everything is forwarded there: `scheme://host[:port]`
    /// (http or https). Give its root, not `…/cas`: a path here is put before every
    /// request's own path (`/cas/login` would go to `/cas/cas/login`).
    #[arg(long)]
    pub upstream: Option<Url>,
    /// TLS certificate chain (PEM) presented to browsers and Pronote.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) to verify the upstream with, instead of the webpki roots.
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Option<PathBuf>,
    /// observe (default), retry or rewrite. `--pin` alone means retry.
    #[arg(long, num_args = 0..=1, default_missing_value = "retry")]
    pub pin: Option<PinMode>,
    /// Regex with a named group `uai`, applied to the service URL.
    #[arg(long, value_name = "REGEX")]
    pub establishment_pattern: Option<String>,
    /// A Pronote origin bonenfant may send a parent on to after the chooser or the
    /// give-up page: `https://host[:port]`, or `https://*.domain` for any one label
    /// under it. Repeat the flag (or give a list in the file) for several. None given:
    /// the `https` host the establishment pattern's own text pins (the default's
    /// `<uai>.index-education.net`). `http` only when an `http` origin is given.
    #[arg(long, value_name = "ORIGIN")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub service_origin: Option<Vec<String>>,
    /// Trace log (JSON lines) for the DSI.
    #[arg(long, value_name = "PATH")]
    pub trace_log: Option<PathBuf>,
    /// Admin server address (/healthz, /readyz, /metrics, /status).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Session store: `memory` (default), `redis://host:port/db`, or `rediss://…` (TLS).
    #[arg(long, value_name = "memory|redis://…|rediss://…")]
    pub store: Option<String>,
    /// File holding the session-store keys, one per line (hex or base64, at least 32
    /// bytes each), the first one current, the others still accepted (rotation). They
    /// seal every Redis value and key its digests: required with a Redis store, the same
    /// file on every instance. Random per run for the memory store if absent.
    #[arg(long, value_name = "PATH")]
    pub store_key_file: Option<PathBuf>,
    /// CA bundle (PEM) to verify a `rediss://` store with, instead of the webpki roots.
    #[arg(long, value_name = "PEM")]
    pub store_ca: Option<PathBuf>,
    /// File holding the HMAC key for pseudonyms (≥ 32 bytes). Random per run if absent.
    #[arg(long, value_name = "PATH")]
    pub pseudonym_key_file: Option<PathBuf>,
    /// File holding the session-cookie keys, one per line (hex or base64, 64 bytes each),
    /// the first one current, the others still accepted (rotation). Random if absent.
    #[arg(long, value_name = "PATH")]
    pub cookie_key_file: Option<PathBuf>,
    /// Peers whose X-Forwarded-* headers are trusted (CIDR list, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CIDR,…")]
    pub trusted_proxies: Option<Vec<IpNet>>,
    /// The scheme browsers reach bonenfant with: `https` behind a TLS-terminating load
    /// balancer keeps the session cookie `Secure` and `__Host-` [default: https with
    /// --tls-cert, else http].
    #[arg(long, value_name = "http|https")]
    pub public_scheme: Option<PublicScheme>,
    /// The académie's AAF exports (`ficAlimMENESR` XML: folders or files, recognised by
    /// content), or one TOML/JSON file in the format of `bonenfant sim directory`: each
    /// parent's children, jointures, first names, classes and collège names, for
    /// intents, the chooser page and the `not_a_child_of_principal` verdict. Reloaded on
    /// SIGHUP. Repeat the flag (or give a list in the file) for several paths.
    #[arg(long, value_name = "PATH")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub directory: Option<Vec<PathBuf>>,
    /// Only paths under this prefix are CAS endpoints (default: any base path).
    #[arg(long, value_name = "PATH")]
    pub cas_prefix: Option<String>,
    /// Path prefix of bonenfant's own pages (chooser).
    #[arg(long, value_name = "PATH")]
    pub control_prefix: Option<String>,
    /// verbatim (default) or canonical answers to Pronote.
    #[arg(long)]
    pub answer: Option<AnswerMode>,
    /// Refuse validations whose ticket was never seen on the front channel.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub strict_correlation: Option<bool>,
    /// Retry strategy: most silent re-logins per login [default: 32].
    #[arg(long, value_name = "N")]
    pub retry_max: Option<u32>,
    /// Retry strategy: time budget for all re-logins of one login (e.g. 10s).
    #[arg(long, value_name = "DURATION")]
    pub retry_budget: Option<String>,
    /// Rewrite strategy: oldest earlier assertion that may be used (e.g. 10m).
    #[arg(long, value_name = "DURATION")]
    pub rewrite_max_age: Option<String>,
    /// Rewrite strategy: attributes that may be taken from an earlier assertion.
    #[arg(long, value_delimiter = ',', value_name = "NAME,…")]
    pub rewrite_allow: Option<Vec<String>>,
    /// ask (default): a parent with several children in the collège they open says
    /// which on the chooser, and a sibling there is re-rolled; any: any of them will do
    /// (Pronote's parent space lists them all), no chooser, no re-roll for a sibling.
    #[arg(long, value_name = "ask|any")]
    pub same_establishment: Option<SameEstablishment>,
    /// Window in which another pupil for the same principal and service is a flip.
    #[arg(long, value_name = "DURATION")]
    pub flip_window: Option<String>,
    /// Browser session lifetime (proxy cookie and state).
    #[arg(long, value_name = "DURATION")]
    pub session_ttl: Option<String>,
    /// Most live browser sessions held (memory store).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Most concurrent client connections.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Time a client has to send its request head.
    #[arg(long, value_name = "DURATION")]
    pub header_read_timeout: Option<String>,
    /// Idle keep-alive connections are closed after this.
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Time to connect to the upstream.
    #[arg(long, value_name = "DURATION")]
    pub upstream_connect_timeout: Option<String>,
    /// Time for the upstream to answer a request (head and buffered body).
    #[arg(long, value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// Largest validation answer buffered for inspection (bytes).
    #[arg(long, value_name = "BYTES")]
    pub max_validation_body: Option<usize>,
    /// Largest request body buffered for inspection (samlValidate, logout) (bytes).
    #[arg(long, value_name = "BYTES")]
    pub max_request_body: Option<usize>,
    /// Grace period for in-flight requests on shutdown.
    #[arg(long, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// The ENT's name, at the top of every page a parent sees (default `ENT`).
    #[arg(long, value_name = "NAME")]
    pub ent_name: Option<String>,
    /// Where "Retour à l'ENT" leads: the ENT's portal, a path on this host or an
    /// http(s) URL (default `/`, the ENT behind bonenfant).
    #[arg(long, value_name = "URL")]
    pub ent_url: Option<String>,
    /// The pages' header colour, `#rrggbb` (default #1f4e8c); text is black or white,
    /// whichever reads better.
    #[arg(long, value_name = "#RRGGBB")]
    pub brand_color: Option<String>,
    /// The ENT's logo (PNG, JPEG, GIF, WebP or SVG, ≤ 64 KiB), inlined in every page.
    #[arg(long, value_name = "PATH")]
    pub brand_logo: Option<PathBuf>,
}

/// Bounds and timeouts (invariant I5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub max_validation_body: usize,
    pub max_request_body: usize,
    pub max_sessions: usize,
    pub session_ttl: Duration,
    pub shutdown_grace: Duration,
}

/// Re-logins per login by default: with the ENT picking uniformly among four
/// children, (3/4)^33 < 10⁻⁴ of logins give up (`docs/performance.md`, "Re-roll
/// budget").
pub const DEFAULT_RETRY_MAX: u32 = 32;

/// Pinning settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinSettings {
    pub mode: PinMode,
    pub retry_max: u32,
    pub retry_budget: Duration,
    pub rewrite_max_age: Duration,
    pub rewrite_allow: Vec<String>,
    pub same_establishment: SameEstablishment,
    pub flip_window: Duration,
}

/// Keys, loaded from files or generated. `Debug` never shows them.
#[derive(Clone)]
pub struct Secrets {
    /// Session-store keys, current first (`--store-key-file`); `None` without the file
    /// (only the memory store runs so, on a random key).
    pub store_keys: Option<StoreKeys>,
    /// HMAC key for pseudonyms in trace events.
    pub pseudonym_key: Vec<u8>,
    /// Session-cookie keys, current first.
    pub cookie_keys: Vec<[u8; 64]>,
    /// Whether the keys came from files (random keys don't survive a restart and
    /// can't be shared by two instances).
    pub from_files: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("store_keys", &self.store_keys)
            .field("pseudonym_key", &"<masked>")
            .field(
                "cookie_keys",
                &format_args!("<{} masked>", self.cookie_keys.len()),
            )
            .finish()
    }
}

/// The validated configuration of `bonenfant serve`.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: Url,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub upstream_ca: Option<PathBuf>,
    pub establishment: EstablishmentPattern,
    /// Where a parent may be sent on to Pronote (`--service-origin`).
    pub service_targets: ServiceTargets,
    pub trace_log: Option<PathBuf>,
    pub admin: Option<SocketAddr>,
    pub store: String,
    /// CA bundle for a `rediss://` store (`--store-ca`).
    pub store_ca: Option<PathBuf>,
    pub trusted_proxies: Vec<IpNet>,
    pub public_scheme: PublicScheme,
    /// The directory index (empty when no `--directory`), shared with the running proxy
    /// and swapped by a reload.
    pub directory_index: SharedIndex,
    /// What loading the directory found, for the caller to log once.
    pub directory_report: Option<LoadReport>,
    pub cas_prefix: Option<String>,
    pub control_prefix: String,
    pub answer: AnswerMode,
    pub strict_correlation: bool,
    pub pin: PinSettings,
    pub limits: Limits,
    pub secrets: Secrets,
    /// How the pages a parent sees show the ENT.
    pub brand: Brand,
    /// The settings as given (flags over file), for `check-config`.
    pub raw: RawConfig,
}

// === impl RawConfig ===

impl RawConfig {
    /// Reads a TOML file; unknown keys are errors (a typo must not pass silently).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            problem: e.to_string(),
        })
    }

    /// `self` (flags) over `base` (file): a flag given wins.
    pub fn over(self, base: RawConfig) -> RawConfig {
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                RawConfig { $($field: self.$field.or(base.$field)),* }
            };
        }
        merge!(
            listen,
            upstream,
            tls_cert,
            tls_key,
            upstream_ca,
            pin,
            establishment_pattern,
            service_origin,
            trace_log,
            admin,
            store,
            store_key_file,
            store_ca,
            pseudonym_key_file,
            cookie_key_file,
            trusted_proxies,
            public_scheme,
            directory,
            cas_prefix,
            control_prefix,
            answer,
            strict_correlation,
            retry_max,
            retry_budget,
            rewrite_max_age,
            rewrite_allow,
            same_establishment,
            flip_window,
            session_ttl,
            max_sessions,
            max_connections,
            header_read_timeout,
            idle_timeout,
            upstream_connect_timeout,
            upstream_timeout,
            max_validation_body,
            max_request_body,
            shutdown_grace,
            ent_name,
            ent_url,
            brand_color,
            brand_logo,
        )
    }

    /// Validates every setting and loads the keys.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen = self.listen.ok_or(ConfigError::Missing { key: "listen" })?;
        let upstream = self
            .upstream
            .clone()
            .ok_or(ConfigError::Missing { key: "upstream" })?;
        if !matches!(upstream.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "upstream",
                format!("scheme must be http or https, not {:?}", upstream.scheme()),
            ));
        }
        if upstream.host_str().is_none() {
            return Err(ConfigError::invalid("upstream", "has no host"));
        }
        if upstream.query().is_some() || upstream.fragment().is_some() {
            return Err(ConfigError::invalid(
                "upstream",
                "must be a base URL without query or fragment",
            ));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                readable("tls-cert", cert)?;
                readable("tls-key", key)?;
                Some((cert.clone(), key.clone()))
            }
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing { key: "tls-key" }),
            (None, Some(_)) => return Err(ConfigError::Missing { key: "tls-cert" }),
        };
        if let Some(ca) = &self.upstream_ca {
            readable("upstream-ca", ca)?;
            if upstream.scheme() != "https" {
                return Err(ConfigError::invalid(
                    "upstream-ca",
                    "given, but the upstream is plain http",
                ));
            }
        }
        let establishment = EstablishmentPattern::new(
            self.establishment_pattern
                .as_deref()
                .unwrap_or(EstablishmentPattern::DEFAULT),
        )
        .map_err(|e| ConfigError::invalid("establishment-pattern", e))?;
        let service_targets = ServiceTargets::new(
            self.service_origin
                .iter()
                .flatten()
                .map(String::as_str)
                .map(ServiceOrigin::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| ConfigError::invalid("service-origin", e))?,
            establishment.clone(),
        );
        let store = self.store.clone().unwrap_or_else(|| "memory".to_owned());
        let tls_store = store.starts_with("rediss://");
        if store != "memory" && !store.starts_with("redis://") && !tls_store {
            // Only the scheme is echoed: a URL may carry a password.
            let scheme = store.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            return Err(ConfigError::invalid(
                "store",
                format!("expected `memory` or a redis:// or rediss:// URL, not scheme {scheme:?}"),
            ));
        }
        if let Some(ca) = &self.store_ca {
            readable("store-ca", ca)?;
            if !tls_store {
                return Err(ConfigError::invalid(
                    "store-ca",
                    "given, but the store is not a rediss:// URL",
                ));
            }
        }
        let store_keys = self
            .store_key_file
            .as_deref()
            .map(load_store_keys)
            .transpose()?;
        if store != "memory" && store_keys.is_none() {
            return Err(ConfigError::invalid(
                "store-key-file",
                "required with a Redis store: every instance sharing the Redis must be given \
                 the same key file (its values are sealed and its keys digested with it)",
            ));
        }
        let control_prefix = self
            .control_prefix
            .clone()
            .unwrap_or_else(|| "/bonenfant".to_owned());
        path_prefix("control-prefix", &control_prefix)?;
        if let Some(prefix) = &self.cas_prefix {
            path_prefix("cas-prefix", prefix)?;
        }
        let pin = PinSettings {
            mode: self.pin.unwrap_or_default(),
            retry_max: match self.retry_max.unwrap_or(DEFAULT_RETRY_MAX) {
                0 => return Err(ConfigError::invalid("retry-max", "must be at least 1")),
                n if n > 32 => return Err(ConfigError::invalid("retry-max", "at most 32")),
                n => n,
            },
            retry_budget: duration("retry-budget", &self.retry_budget, "15s")?,
            rewrite_max_age: duration("rewrite-max-age", &self.rewrite_max_age, "10m")?,
            rewrite_allow: self.rewrite_allow.clone().unwrap_or_else(|| {
                [
                    "FrEduVecteur",
                    "ENTEleveStructRattachId",
                    "ENTPersonJointure",
                ]
                .map(String::from)
                .to_vec()
            }),
            same_establishment: self.same_establishment.unwrap_or_default(),
            flip_window: duration("flip-window", &self.flip_window, "1h")?,
        };
        if pin.rewrite_allow.iter().any(|name| {
            matches!(
                name.as_str(),
                "authenticationDate" | "isFromNewLogin" | "longTermAuthenticationRequestTokenUsed"
            )
        }) {
            return Err(ConfigError::invalid(
                "rewrite-allow",
                "authentication metadata always comes from the current assertion",
            ));
        }
        let limits = Limits {
            max_connections: positive("max-connections", self.max_connections, 10_000)?,
            header_read_timeout: duration("header-read-timeout", &self.header_read_timeout, "10s")?,
            idle_timeout: duration("idle-timeout", &self.idle_timeout, "60s")?,
            upstream_connect_timeout: duration(
                "upstream-connect-timeout",
                &self.upstream_connect_timeout,
                "3s",
            )?,
            upstream_timeout: duration("upstream-timeout", &self.upstream_timeout, "10s")?,
            max_validation_body: positive(
                "max-validation-body",
                self.max_validation_body,
                64 * 1024,
            )?,
            max_request_body: positive("max-request-body", self.max_request_body, 64 * 1024)?,
            max_sessions: positive("max-sessions", self.max_sessions, 1_000_000)?,
            session_ttl: duration("session-ttl", &self.session_ttl, "8h")?,
            shutdown_grace: duration("shutdown-grace", &self.shutdown_grace, "10s")?,
        };
        let (directory_index, directory_report) = match &self.directory {
            Some(paths) => {
                let (index, report) = crate::pupil::directory::load_index(paths)
                    .map_err(|e| ConfigError::invalid("directory", e))?;
                (SharedIndex::from(index), Some(report))
            }
            None => (SharedIndex::default(), None),
        };
        let brand = self.brand()?;
        let mut secrets = load_secrets(
            self.pseudonym_key_file.as_deref(),
            self.cookie_key_file.as_deref(),
        )?;
        secrets.store_keys = store_keys;
        let public_scheme = self.public_scheme.unwrap_or(if tls.is_some() {
            PublicScheme::Https
        } else {
            PublicScheme::Http
        });
        Ok(Config {
            listen,
            upstream,
            tls,
            upstream_ca: self.upstream_ca.clone(),
            establishment,
            service_targets,
            trace_log: self.trace_log.clone(),
            admin: self.admin,
            store,
            store_ca: self.store_ca.clone(),
            trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
            public_scheme,
            directory_index,
            directory_report,
            cas_prefix: self.cas_prefix.clone(),
            control_prefix,
            answer: self.answer.unwrap_or_default(),
            strict_correlation: self.strict_correlation.unwrap_or(false),
            pin,
            limits,
            secrets,
            brand,
            raw: self,
        })
    }

    /// The ENT's name, way back, colour and logo, defaults filled in.
    fn brand(&self) -> Result<Brand, ConfigError> {
        let mut brand = Brand::default();
        if let Some(name) = &self.ent_name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 60 || name.contains(char::is_control) {
                return Err(ConfigError::invalid(
                    "ent-name",
                    "must be 1 to 60 printable characters",
                ));
            }
            name.clone_into(&mut brand.ent_name);
        }
        if let Some(url) = &self.ent_url {
            if crate::pages::local_href(url).is_none() {
                return Err(ConfigError::invalid(
                    "ent-url",
                    format!("{url:?} must be a path on this host (/…) or an http(s) URL"),
                ));
            }
            url.clone_into(&mut brand.ent_url);
        }
        if let Some(color) = &self.brand_color {
            brand.color = Color::parse(color).ok_or_else(|| {
                ConfigError::invalid("brand-color", format!("{color:?} is not #rrggbb"))
            })?;
        }
        if let Some(path) = &self.brand_logo {
            let bytes = std::fs::read(path).map_err(|e| {
                ConfigError::invalid("brand-logo", format!("{}: {e}", path.display()))
            })?;
            let logo = Logo::from_bytes(&bytes).map_err(|e| {
                ConfigError::invalid("brand-logo", format!("{}: {e}", path.display()))
            })?;
            brand.logo = Some(logo);
        }
        Ok(brand)
    }
}

// === impl Config ===

impl Config {
    /// Flags over an optional file, validated.
    pub fn load(flags: RawConfig, file: Option<&Path>) -> Result<Config, ConfigError> {
        let base = match file {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        flags.over(base).validate()
    }

    /// The settings this configuration resolved to, in the file's own shape: every
    /// default filled in, every key named as in the file and the flags. Secrets are
    /// masked: key files are named, never read out, and a password in the store URL
    /// reads `masked`. Exhaustive on purpose, so a new setting cannot be left out.
    pub fn resolved(&self) -> RawConfig {
        let text = |d: Duration| Some(humantime::format_duration(d).to_string());
        let (pin, limits) = (&self.pin, &self.limits);
        RawConfig {
            listen: Some(self.listen),
            upstream: Some(self.upstream.clone()),
            tls_cert: self.tls.as_ref().map(|(cert, _)| cert.clone()),
            tls_key: self.tls.as_ref().map(|(_, key)| key.clone()),
            upstream_ca: self.upstream_ca.clone(),
            pin: Some(pin.mode),
            establishment_pattern: Some(
                self.raw
                    .establishment_pattern
                    .clone()
                    .unwrap_or_else(|| EstablishmentPattern::DEFAULT.to_owned()),
            ),
            service_origin: Some(self.raw.service_origin.clone().unwrap_or_default()),
            trace_log: self.trace_log.clone(),
            admin: self.admin,
            store: Some(mask_url_password(&self.store)),
            store_key_file: self.raw.store_key_file.clone(),
            store_ca: self.store_ca.clone(),
            pseudonym_key_file: self.raw.pseudonym_key_file.clone(),
            cookie_key_file: self.raw.cookie_key_file.clone(),
            trusted_proxies: Some(self.trusted_proxies.clone()),
            public_scheme: Some(self.public_scheme),
            directory: self.raw.directory.clone(),
            cas_prefix: self.cas_prefix.clone(),
            control_prefix: Some(self.control_prefix.clone()),
            answer: Some(self.answer),
            strict_correlation: Some(self.strict_correlation),
            retry_max: Some(pin.retry_max),
            retry_budget: text(pin.retry_budget),
            rewrite_max_age: text(pin.rewrite_max_age),
            rewrite_allow: Some(pin.rewrite_allow.clone()),
            same_establishment: Some(pin.same_establishment),
            flip_window: text(pin.flip_window),
            session_ttl: text(limits.session_ttl),
            max_sessions: Some(limits.max_sessions),
            max_connections: Some(limits.max_connections),
            header_read_timeout: text(limits.header_read_timeout),
            idle_timeout: text(limits.idle_timeout),
            upstream_connect_timeout: text(limits.upstream_connect_timeout),
            upstream_timeout: text(limits.upstream_timeout),
            max_validation_body: Some(limits.max_validation_body),
            max_request_body: Some(limits.max_request_body),
            shutdown_grace: text(limits.shutdown_grace),
            ent_name: Some(self.brand.ent_name.clone()),
            ent_url: Some(self.brand.ent_url.clone()),
            brand_color: Some(self.brand.color.to_string()),
            brand_logo: self.raw.brand_logo.clone(),
        }
    }

    /// [`Config::resolved`] as a TOML file `serve --config` accepts, after a comment
    /// naming the key files that are absent (their keys are random for this run).
    pub fn effective_toml(&self) -> Result<String, toml::ser::Error> {
        let mut out =
            String::from("# Resolved configuration: defaults filled in, secrets masked.\n");
        for (key, file) in [
            ("store-key-file", &self.raw.store_key_file),
            ("pseudonym-key-file", &self.raw.pseudonym_key_file),
            ("cookie-key-file", &self.raw.cookie_key_file),
        ] {
            if file.is_none() {
                out.push_str(&format!("# {key}: none, a random key for this run only.\n"));
            }
        }
        out.push_str(&toml::to_string(&self.resolved())?);
        Ok(out)
    }
}

/// `directory = "path"` or `directory = ["a", "b"]`: one value is the common case.
fn one_or_many<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(
        Option::<OneOrMany<T>>::deserialize(deserializer)?.map(|values| match values {
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        }),
    )
}

fn readable(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| ConfigError::invalid(key, format!("{}: {e}", path.display())))
}

fn path_prefix(key: &'static str, prefix: &str) -> Result<(), ConfigError> {
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        return Err(ConfigError::invalid(
            key,
            format!("{prefix:?} must start with '/' and not end with one (e.g. /bonenfant)"),
        ));
    }
    Ok(())
}

fn duration(
    key: &'static str,
    value: &Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = value.as_deref().unwrap_or(default);
    let parsed = humantime::parse_duration(text).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("{text:?} is not a duration like 10s or 5m: {e}"),
        )
    })?;
    if parsed.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(parsed)
}

fn positive(key: &'static str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::invalid(key, "must be at least 1")),
        n => Ok(n),
    }
}

/// The store URL with its password, if any, replaced by `masked` (the user name stays:
/// it tells which account, not how to use it).
fn mask_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("masked"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Loads the pseudonym and cookie keys, or generates random ones for this run.
fn load_secrets(pseudonym: Option<&Path>, cookie: Option<&Path>) -> Result<Secrets, ConfigError> {
    let pseudonym_key = match pseudonym {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                ConfigError::invalid("pseudonym-key-file", format!("{}: {e}", path.display()))
            })?;
            let trimmed = bytes.trim_ascii().to_vec();
            if trimmed.len() < 32 {
                return Err(ConfigError::invalid(
                    "pseudonym-key-file",
                    format!("{}: key must be at least 32 bytes", path.display()),
                ));
            }
            trimmed
        }
        None => rand::random::<[u8; 32]>().to_vec(),
    };
    let cookie_keys = match cookie {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid("cookie-key-file", format!("{}: {e}", path.display()))
            })?;
            let mut keys = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                keys.push(decode_key(line).ok_or_else(|| {
                    ConfigError::invalid(
                        "cookie-key-file",
                        format!(
                            "{} line {}: expected 64 bytes as 128 hex digits or base64",
                            path.display(),
                            n + 1
                        ),
                    )
                })?);
            }
            if keys.is_empty() {
                return Err(ConfigError::invalid(
                    "cookie-key-file",
                    format!("{}: no key in file", path.display()),
                ));
            }
            keys
        }
        None => vec![random_key()],
    };
    Ok(Secrets {
        store_keys: None,
        pseudonym_key,
        cookie_keys,
        from_files: pseudonym.is_some() && cookie.is_some(),
    })
}

/// Reads `--store-key-file`: one key a line (hex or base64, at least 32 bytes), blank
/// lines and `#` comments skipped, the first key current.
fn load_store_keys(path: &Path) -> Result<StoreKeys, ConfigError> {
    const KEY: &str = "store-key-file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(KEY, format!("{}: {e}", path.display())))?;
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let secret = decode_bytes(line)
            .filter(|bytes| bytes.len() >= crate::session::MIN_KEY_BYTES)
            .ok_or_else(|| {
                ConfigError::invalid(
                    KEY,
                    format!(
                        "{} line {}: expected a key of at least {} bytes, in hex or base64 \
                         (e.g. `openssl rand -hex 32`)",
                        path.display(),
                        n + 1,
                        crate::session::MIN_KEY_BYTES
                    ),
                )
            })?;
        secrets.push(secret);
    }
    StoreKeys::new(secrets)
        .map_err(|e| ConfigError::invalid(KEY, format!("{}: {e}", path.display())))
}

/// Key bytes written as hex or base64.
fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
}

fn decode_key(text: &str) -> Option<[u8; 64]> {
    decode_bytes(text)?.try_into().ok()
}

fn random_key() -> [u8; 64] {
    let mut key = [0u8; 64];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> RawConfig {
        RawConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            upstream: Some(Url::parse("http://127.0.0.1:9/cas").unwrap()),
            ..RawConfig::default()
        }
    }

    #[test]
    fn flags_win_over_file() {
        let file: RawConfig = toml::from_str("retry-max = 3\npin = \"rewrite\"").unwrap();
        let flags = RawConfig {
            pin: Some(PinMode::Retry),
            ..minimal()
        };
        let merged = flags.over(file);
        assert_eq!(merged.pin, Some(PinMode::Retry));
        assert_eq!(merged.retry_max, Some(3));
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(toml::from_str::<RawConfig>("retry_maxx = 3").is_err());
    }

    #[test]
    fn error_names_the_key() {
        let raw = RawConfig {
            retry_budget: Some("soon".into()),
            ..minimal()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with("retry-budget:"), "{err}");
        let err = RawConfig::default().validate().unwrap_err().to_string();
        assert!(err.starts_with("listen:"), "{err}");
    }

    #[test]
    fn rewrite_allow_refuses_authentication_metadata() {
        let raw = RawConfig {
            rewrite_allow: Some(vec!["isFromNewLogin".into()]),
            ..minimal()
        };
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("rewrite-allow:"));
    }

    #[test]
    fn store_must_be_memory_or_redis() {
        let raw = RawConfig {
            store: Some("postgres://x".into()),
            ..minimal()
        };
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("store:"));
    }

    /// A store key file holding `lines`, in a directory that lives as long as the guard.
    fn key_file(lines: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.keys");
        std::fs::write(&path, lines).unwrap();
        (dir, path)
    }

    #[test]
    fn a_redis_store_requires_the_store_key_file() {
        for store in ["redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6379/0"] {
            let raw = RawConfig {
                store: Some(store.into()),
                ..minimal()
            };
            let err = raw.validate().unwrap_err().to_string();
            assert!(err.starts_with("store-key-file: required"), "{err}");
        }
        let memory = minimal().validate().unwrap();
        assert!(memory.secrets.store_keys.is_none());
    }

    #[test]
    fn store_key_file_lists_keys_current_first() {
        let (old, new) = ("11".repeat(32), "22".repeat(40));
        let (_dir, path) = key_file(&format!("# current\n{new}\n\n# still accepted\n{old}\n"));
        let raw = RawConfig {
            store: Some("redis://127.0.0.1:6379/0".into()),
            store_key_file: Some(path),
            ..minimal()
        };
        let keys = raw.validate().unwrap().secrets.store_keys.unwrap();
        let expected = StoreKeys::new([vec![0x22; 40], vec![0x11; 32]]).unwrap();
        assert_eq!(keys, expected);
        for bad in ["00".repeat(31), "not a key".to_owned(), String::new()] {
            let (_dir, path) = key_file(&bad);
            let raw = RawConfig {
                store_key_file: Some(path),
                ..minimal()
            };
            let err = raw.validate().unwrap_err().to_string();
            assert!(err.starts_with("store-key-file:"), "{err}");
        }
    }

    #[test]
    fn store_ca_is_only_for_a_rediss_store() {
        let (_dir, keys) = key_file(&"33".repeat(32));
        let raw = RawConfig {
            store: Some("redis://127.0.0.1:6379/0".into()),
            store_key_file: Some(keys.clone()),
            store_ca: Some(keys.clone()),
            ..minimal()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with("store-ca:"), "{err}");
        let raw = RawConfig {
            store: Some("rediss://127.0.0.1:6379/0".into()),
            store_key_file: Some(keys.clone()),
            store_ca: Some(keys),
            ..minimal()
        };
        assert!(raw.validate().is_ok());
    }

    #[test]
    fn effective_toml_masks_redis_password_and_parses_back() {
        let (_dir, keys) = key_file(&"44".repeat(32));
        let raw = RawConfig {
            store: Some("redis://user:hunter2@127.0.0.1:6379/0".into()),
            store_key_file: Some(keys),
            ..minimal()
        };
        let text = raw.validate().unwrap().effective_toml().unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let reparsed: RawConfig = toml::from_str(&text).unwrap();
        assert_eq!(
            reparsed.store.as_deref(),
            Some("redis://user:masked@127.0.0.1:6379/0")
        );
    }

    #[test]
    fn brand_settings_are_checked_and_named() {
        let brand = |raw: RawConfig| raw.validate().map(|c| c.brand);
        let defaults = brand(minimal()).unwrap();
        assert_eq!(defaults, Brand::default());
        let set = brand(RawConfig {
            ent_name: Some(" ENT Nouvelle-Aquitaine ".into()),
            ent_url: Some("https://ent.example/portail".into()),
            brand_color: Some("#C0FFEE".into()),
            ..minimal()
        })
        .unwrap();
        assert_eq!(set.ent_name, "ENT Nouvelle-Aquitaine");
        assert_eq!(set.color.to_string(), "#c0ffee");
        for (raw, key) in [
            (
                RawConfig {
                    ent_name: Some(" ".into()),
                    ..minimal()
                },
                "ent-name:",
            ),
            (
                RawConfig {
                    ent_url: Some("javascript:alert(1)".into()),
                    ..minimal()
                },
                "ent-url:",
            ),
            (
                RawConfig {
                    ent_url: Some("//evil.example/".into()),
                    ..minimal()
                },
                "ent-url:",
            ),
            (
                RawConfig {
                    brand_color: Some("red".into()),
                    ..minimal()
                },
                "brand-color:",
            ),
            (
                RawConfig {
                    brand_logo: Some("/nonexistent/logo.png".into()),
                    ..minimal()
                },
                "brand-logo:",
            ),
        ] {
            let err = raw.validate().unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"not an image").unwrap();
        let raw = RawConfig {
            brand_logo: Some(file.path().to_owned()),
            ..minimal()
        };
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a PNG"));
    }

    #[test]
    fn resolved_settings_validate_to_themselves() {
        let raw = RawConfig {
            pin: Some(PinMode::Rewrite),
            retry_budget: Some("90s".into()),
            trusted_proxies: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            cas_prefix: Some("/cas".into()),
            ..minimal()
        };
        let resolved = raw.validate().unwrap().resolved();
        assert_eq!(resolved.retry_budget.as_deref(), Some("1m 30s"));
        assert_eq!(resolved.max_sessions, Some(1_000_000));
        assert_eq!(resolved.clone().validate().unwrap().resolved(), resolved);
    }
}
