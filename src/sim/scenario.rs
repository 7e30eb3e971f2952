//! Many scripted parent logins at once, for the demo, the end-to-end tests and the
//! benchmarks: each visit in a fresh browser (its own cookie jar, like a new device),
//! all sharing one connection pool.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::browser::{parent_login, Browser};
use super::directory::{ParentVisit, PupilRef};
use super::http;
use super::pronote::LandingOutcome;

/// What one visit gave.
#[derive(Clone, Debug)]
pub struct VisitResult {
    pub visit: ParentVisit,
    /// The Pronote page's outcome; `None` when the visit did not end on a Pronote page.
    pub outcome: Option<LandingOutcome>,
    /// The child Pronote showed.
    pub landed: Option<PupilRef>,
    /// Redirects followed.
    pub hops: usize,
    /// HTTP requests sent.
    pub requests: usize,
    /// The browser error's stable code, when the visit broke off.
    pub error: Option<&'static str>,
}

// === impl VisitResult ===

impl VisitResult {
    /// Landed on the child the parent meant.
    pub fn is_intended(&self) -> bool {
        self.outcome == Some(LandingOutcome::Landed)
            && self.landed.as_ref() == Some(&self.visit.intended)
    }
}

/// Runs every visit, at most `concurrency` at a time; results in the order of `visits`.
/// `progress` is called with the number of visits finished so far.
pub async fn run_visits(
    visits: &[ParentVisit],
    concurrency: usize,
    mut progress: impl FnMut(usize),
) -> Vec<VisitResult> {
    let client = http::client();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (position, visit) in visits.iter().cloned().enumerate() {
        let client = client.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            let mut browser = Browser::with_client(client);
            let result = parent_login(
                &mut browser,
                &visit.pronote_url,
                &visit.login,
                &visit.password,
            )
            .await;
            let result = match result {
                Ok(login) => VisitResult {
                    visit,
                    outcome: login.outcome,
                    landed: login.pupil,
                    hops: login.hops,
                    requests: login.requests,
                    error: None,
                },
                Err(error) => VisitResult {
                    visit,
                    outcome: None,
                    landed: None,
                    hops: 0,
                    requests: 0,
                    error: Some(error.code()),
                },
            };
            (position, result)
        });
    }
    let mut results: Vec<Option<VisitResult>> = vec![None; visits.len()];
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((position, result)) = joined {
            if let Some(slot) = results.get_mut(position) {
                *slot = Some(result);
            }
        }
        done += 1;
        progress(done);
    }
    results.into_iter().flatten().collect()
}

/// The share of visits a `random` ENT sends to another child than the intended one:
/// each visit lands right with probability 1 / (the parent's number of children).
pub fn expected_wrong_share_under_random_pick(visits: &[ParentVisit]) -> f64 {
    if visits.is_empty() {
        return 0.0;
    }
    let wrong: f64 = visits
        .iter()
        .map(|v| 1.0 - 1.0 / v.children.max(1) as f64)
        .sum();
    wrong / visits.len() as f64
}
