//! Simulators for the demo, the end-to-end tests and the benchmarks: an AAF-shaped
//! [`directory`], a test ENT ([`ent`]: an OSE-like CAS facade that can reproduce the
//! random-child bug) and a test Pronote ([`pronote`]: one instance per establishment),
//! plus a scripted [`browser`] that logs parents in.
//!
//! Everything is deterministic given a seed, binds wherever it is told (tests use
//! `127.0.0.1:0`) and stops when its shutdown future completes.

pub mod directory;
pub mod http;

pub use directory::{
    pronote_url, Directory, DirectoryData, DirectoryError, DirectoryParams, Establishment,
    EstablishmentKind, Parent, ParentVisit, Pupil, PupilRef, RelationRecord,
};
pub mod ent;

pub use ent::{
    serve_ent, sim_service_pattern, Dialect, EntCounters, EntHandle, EntOptions, Pick, TestEnt,
    TicketInfo, SIM_SERVICE_PATTERN,
};
pub mod pronote;

pub use pronote::{
    serve_pronote, Landing, LandingOutcome, PronoteHandle, PronoteOptions, TestPronote,
    ValidationMode,
};
pub mod browser;

pub use browser::{parent_login, Browser, BrowserError, LoginResult, Page};
