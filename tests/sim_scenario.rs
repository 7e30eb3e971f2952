//! Many parent logins against the simulators: the bug shows at the rate the family mix
//! predicts, and a correct ENT never shows it.

use std::sync::Arc;

use bonenfant::sim::{
    expected_wrong_share_under_random_pick, run_visits, Directory, DirectoryParams, EntOptions,
    Pick, PronoteOptions, Synthetic as _, TestEnt, TestPronote,
};

fn directory() -> Arc<Directory> {
    let params = DirectoryParams {
        families: 80,
        establishments: 4,
        ..DirectoryParams::default()
    };
    Arc::new(Directory::generate(&params, 2026))
}

#[tokio::test]
async fn random_ent_sends_parents_to_the_wrong_child_at_the_predicted_rate() {
    let directory = directory();
    let ent = TestEnt::spawn_local(Arc::clone(&directory), EntOptions::ose_random(1))
        .await
        .unwrap();
    let pronote =
        TestPronote::spawn_local(Arc::clone(&directory), PronoteOptions::new(ent.cas_base()))
            .await
            .unwrap();
    let visits = directory.visits(pronote.base_url());
    let mut progress = 0;
    let results = run_visits(&visits, 8, |done| progress = done).await;
    assert_eq!((results.len(), progress), (visits.len(), visits.len()));
    assert!(results.iter().all(|r| r.error.is_none()));
    let wrong = results.iter().filter(|r| !r.is_intended()).count() as f64 / results.len() as f64;
    let expected = expected_wrong_share_under_random_pick(&visits);
    assert!(
        expected > 0.2,
        "the family mix predicts a visible bug: {expected:.2}"
    );
    assert!(
        (wrong - expected).abs() < 0.1,
        "observed {wrong:.2}, expected ≈ {expected:.2}"
    );
    assert_eq!(pronote.landings().len(), visits.len());
}

#[tokio::test]
async fn correct_ent_lands_every_parent_on_a_child_of_the_right_establishment() {
    let directory = directory();
    let options = EntOptions {
        pick: Pick::Correct,
        ..EntOptions::default()
    };
    let ent = TestEnt::spawn_local(Arc::clone(&directory), options)
        .await
        .unwrap();
    let pronote =
        TestPronote::spawn_local(Arc::clone(&directory), PronoteOptions::new(ent.cas_base()))
            .await
            .unwrap();
    let visits = directory.visits(pronote.base_url());
    let results = run_visits(&visits, 8, |_| {}).await;
    for result in &results {
        let landed = result.landed.as_ref().expect("landed");
        assert_eq!(landed.uai, result.visit.intended.uai);
        let parent = directory.parent(&result.visit.login).unwrap();
        let siblings_here = directory
            .children_of(parent)
            .filter(|c| c.uai == landed.uai)
            .count();
        if siblings_here == 1 {
            assert!(result.is_intended());
        }
    }
}
