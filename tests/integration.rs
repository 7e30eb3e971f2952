//! Every integration test, in one binary (as ripgrep does): one link instead of thirty
//! keeps `cargo test` fast and its target directory small on a 2-core CI machine.
//! Each module is one area, named after what it tests; the `*_support` modules hold the
//! shared set-up (simulators, scripted upstreams, a test PKI, a throwaway redis-server,
//! a headless Chromium).
//!
//! Filter by area as usual: `cargo test --test integration proxy_tls::`.
// In tests a panic is the assertion: `unwrap` in helpers and set-up is fine here.
#![allow(clippy::unwrap_used)]

mod browser_support;
mod pin_support;
mod session_support;
mod sim_support;
mod support;

mod admin_health;
mod admin_server;
mod browser_pages;
mod browser_status;
mod cas_adversarial;
mod cas_formats;
mod cas_requests;
mod cas_roundtrip;
mod cli;
mod demo;
mod deploy_smoke;
mod events_trace;
mod exchange_cas;
mod exchange_summary;
mod fuzz_seeds;
mod pin_budget;
mod pin_chooser;
mod pin_correlation;
mod pin_http2;
mod pin_minimisation;
mod pin_other_host;
mod pin_props;
mod pin_renew;
mod pin_retry;
mod pin_rewrite;
mod pin_siblings;
mod pin_targets;
mod proxy_hygiene;
mod proxy_limits;
mod proxy_shutdown;
mod proxy_smuggling;
mod proxy_tls;
mod proxy_transparency;
mod proxy_workers;
mod pupil_aaf;
mod pupil_rules;
mod redis_two_instances;
mod report_fixture;
mod report_lookup;
mod session_cookie;
mod session_props;
mod session_redis;
mod sim_browser;
mod sim_directory;
mod sim_ent;
mod sim_pronote;
mod sim_scenario;
mod test_prerequisites;
mod verdict_e2e;
