//! bonenfant: a diagnostic reverse proxy for the CAS exchanges between a school ENT and
//! Pronote. It detects and logs wrong-child sessions (a parent with several children
//! landing on the wrong one) and can pin the intended pupil.
//!
//! # Layout
//!
//! Modules in the order a request's data flows through them:
//!
//! * [`code`]: the closed list of stable error codes, each with the side that failed,
//!   its HTTP status and its CAS failure code.
//! * [`config`]: TOML file + command-line flags → one validated [`config::Config`].
//! * [`cas`]: the CAS protocol, pure: endpoints, the ticket gate, a strict parse of every
//!   answer format and a canonical serialisation.
//! * [`pupil`]: who an assertion designates (pupil keys), the expected establishment of
//!   a service URL, and the parent's intent; [`pupil::directory`] reads the directory
//!   file `--directory` names.
//! * [`session`]: the session map (ticket → browser session, sessions, one-shot stash),
//!   in memory or in Redis.
//! * [`verdict`]: assertion + intent → one verdict per validation. Pure.
//! * [`pin`]: the identity decision: observe, retry or rewrite, and the chooser page.
//!   The only module that builds a success answer for Pronote.
//! * [`proxy`]: the hyper server and upstream client, TLS, limits, header hygiene; runs
//!   the phases of a request and decides nothing about identity.
//! * [`events`]: the closed list of trace events, pseudonyms, the JSON-lines writer.
//! * [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/status`.
//! * [`pages`]: the HTML bonenfant writes (chooser, error and control pages, the report's
//!   shell), through one template crate that escapes every value by default.
//! * [`report`]: trace log → figures per establishment and per day.
//! * [`sim`]: a test ENT and a test Pronote, for the demo, tests and benchmarks only
//!   (the proxy never imports it); they witness the proxy with their own readings.
//! * [`demo`]: the simulators and the proxy wired on loopback, with scripted parents.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cas;
pub mod code;
pub mod config;
pub mod demo;
pub mod events;
pub mod pages;
pub mod pin;
pub mod proxy;
pub mod pupil;
pub mod report;
pub mod session;
pub mod sim;
pub mod verdict;
