//! The re-roll budget by simulation: logins of one family shape against an ENT that
//! picks one of the parent's children uniformly per ticket, driven through the real
//! front-channel plan (`pin::front::plan_front`) until it delivers or gives up. Shared
//! by the seeded test (`pin_budget`) and the table of `benches/reroll_budget.rs`.
#![allow(dead_code)] // the bench and the test use different parts

use std::time::Duration;

use bonenfant::cas::{Assertion, Attributes, Outcome};
use bonenfant::config::{AnswerMode, PinMode, PinSettings};
use bonenfant::pin::front::{plan_front, EarlyValidation, FrontResponse, FrontTicket};
use bonenfant::pin::Inspector;
use bonenfant::pupil::{EstablishmentPattern, ExtractionRules, PupilKey, SharedIndex, Uai};
use bonenfant::session::{SessionId, SessionState};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// A family: `children` in all, `in_target` of them in the collège whose Pronote the
/// parent opens; the parent means (has pinned) the first of those.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub children: usize,
    pub in_target: usize,
}

/// What a run of logins of one shape gave.
#[derive(Clone, Debug)]
pub struct Figures {
    pub logins: usize,
    pub gave_up: usize,
    /// Tickets the ENT issued per login, sorted.
    pub tickets: Vec<u32>,
}

impl Figures {
    pub fn give_up_rate(&self) -> f64 {
        self.gave_up as f64 / self.logins as f64
    }

    pub fn mean_tickets(&self) -> f64 {
        self.tickets.iter().map(|&t| f64::from(t)).sum::<f64>() / self.logins as f64
    }

    pub fn tickets_p99(&self) -> u32 {
        let i = (self.tickets.len() * 99).div_ceil(100).saturating_sub(1);
        self.tickets[i]
    }
}

const SERVICE: &str = "https://0330001a.index-education.net/pronote/parent.html";
const UAIS: [&str; 6] = [
    "0330001A", "0330002B", "0330003C", "0330004D", "0330005E", "0330006F",
];

fn child(shape: Shape, i: usize) -> (PupilKey, String) {
    let uai = if i < shape.in_target {
        UAIS[0]
    } else {
        UAIS[1 + i]
    };
    let key = PupilKey {
        uai: Uai::parse(uai).expect("UAI"),
        eleve_id: format!("{}", 700_001 + i),
    };
    let vector = format!("2|MARTIN|Enfant{i}|{}|{uai}", key.eleve_id);
    (key, vector)
}

/// The exact give-up probability: every ticket of `retry_max + 1` misses the one
/// intended child among `children`.
pub fn exact_give_up_rate(children: usize, retry_max: u32) -> f64 {
    (1.0 - 1.0 / children as f64).powi(i32::try_from(retry_max).unwrap_or(i32::MAX) + 1)
}

/// Runs `logins` logins of `shape` with `retry_max`, seeded.
pub fn simulate(shape: Shape, retry_max: u32, logins: usize, seed: u64) -> Figures {
    let settings = PinSettings {
        mode: PinMode::Retry,
        retry_max,
        // Time is not what runs out here: the clock does not move.
        retry_budget: Duration::from_secs(3600),
        rewrite_max_age: Duration::from_secs(600),
        rewrite_allow: Vec::new(),
        same_establishment: bonenfant::config::SameEstablishment::Ask,
        flip_window: Duration::from_secs(600),
    };
    let inspector = Inspector {
        establishment: EstablishmentPattern::new(EstablishmentPattern::DEFAULT)
            .expect("default pattern"),
        rules: ExtractionRules::default(),
        index: SharedIndex::default(),
    };
    let children: Vec<(PupilKey, String)> = (0..shape.children).map(|i| child(shape, i)).collect();
    let fresh = SessionState {
        principal: Some("parent.martin".to_owned()),
        pin: Some(children[0].0.clone()),
        known: children
            .iter()
            .map(|(k, _)| bonenfant::session::KnownChild::new(k.clone()))
            .collect(),
        ..SessionState::default()
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut figures = Figures {
        logins,
        gave_up: 0,
        tickets: Vec::with_capacity(logins),
    };
    for _ in 0..logins {
        let mut state = fresh.clone();
        let mut tickets = 0;
        loop {
            tickets += 1;
            let (_, vector) = &children[rng.gen_range(0..children.len())];
            let mut attributes = Attributes::new();
            attributes.push("FrEduVecteur", vector.as_str());
            let assertion = Assertion {
                principal: "parent.martin".to_owned(),
                attributes,
                ..Assertion::default()
            };
            let plan = plan_front(
                &settings,
                AnswerMode::Canonical,
                &inspector,
                FrontTicket {
                    service: SERVICE,
                    session: SessionId([1; 16]),
                    posted: false,
                    now_ms: 1_000,
                },
                EarlyValidation {
                    outcome: Outcome::Success(assertion),
                    ent_answer: None,
                },
                state,
            );
            state = plan.session;
            match plan.response {
                FrontResponse::Relogin => continue,
                FrontResponse::GiveUp => {
                    figures.gave_up += 1;
                    break;
                }
                FrontResponse::Forward | FrontResponse::Ask => break,
            }
        }
        figures.tickets.push(tickets);
    }
    figures.tickets.sort_unstable();
    figures
}
