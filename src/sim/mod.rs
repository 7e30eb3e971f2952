//! Simulators for the demo, the end-to-end tests and the benchmarks: a generator of
//! AAF-shaped families ([`directory`]), a test ENT ([`ent`]: an OSE-like CAS facade that can reproduce the
//! random-child bug), a test Pronote ([`pronote`]: one instance per establishment), a
//! scripted [`browser`] that logs parents in, and [`scenario`]: many logins at once.
//!
//! Deterministic given a seed: the directory, and each parent's sequence of picks per
//! service (however logins of different parents interleave). Servers bind wherever they
//! are told (tests use `127.0.0.1:0`) and stop when their shutdown future completes or
//! their handle is dropped.
//!
//! Only the demo, the tests, the benchmarks and `bonenfant sim …` use this module; the
//! proxy never does. The simulators are independent witnesses of it: the test Pronote
//! reads validation answers its own way ([`pronote`]) and the scripted parent answers
//! bonenfant's chooser by reading the page ([`browser`]), so neither agrees with the
//! proxy by sharing its code.
//!
//! # Layout
//!
//! * [`http`]: the accept loop, body limits, response and cookie helpers, the client.
//! * [`directory`]: seeded families over the core's [`crate::pupil::directory`], and the
//!   logins to run.
//! * [`aaf`]: that directory written as the académie's AAF XML exports.
//! * [`ent`]: `/cas/login`, validation endpoints, `/cas/logout` with single logout.
//! * [`pronote`]: the CAS client side and the "Espace Parents" page.
//! * [`browser`]: cookie jar, redirects, forms; [`browser::parent_login`].
//! * [`scenario`]: concurrent visits and the wrong-child share a random ENT should give.

pub mod aaf;
pub mod browser;
pub mod directory;
pub mod ent;
pub mod http;
pub mod pronote;
pub mod scenario;

pub use aaf::{write_aaf, AafOptions};
pub use browser::{parent_login, Browser, BrowserError, LoginResult, Page};
// The directory the simulators run on is the core's; re-exported so a test sets up
// every simulator from one place.
pub use crate::pupil::directory::{
    Directory, DirectoryData, DirectoryError, Establishment, EstablishmentKind, Parent, Pupil,
    RelationRecord,
};
pub use directory::{pronote_url, DirectoryParams, ParentVisit, PupilRef, Synthetic};
pub use ent::{
    serve_ent, service_uai, Dialect, EntCounters, EntHandle, EntOptions, Pick, TestEnt, TicketInfo,
    SIM_SERVICE_PATTERN,
};
pub use pronote::{
    serve_pronote, Landing, LandingOutcome, PronoteHandle, PronoteOptions, TestPronote,
    ValidationMode,
};
pub use scenario::{expected_wrong_share_under_random_pick, run_visits, VisitResult};
