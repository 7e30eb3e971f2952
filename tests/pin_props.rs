//! Property test of invariant I1 over random sequences of logins, early validations,
//! pins (chooser checks bypassed: any pupil, another family's included), logouts,
//! cookies copied between browsers and clock jumps, across several principals, services
//! and browser sessions, in every pinning mode (T02).
//!
//! It drives the real identity code in-process — `pin::front::plan_front` (the plan the
//! exchange carries out at each ticket redirect: [`Inspector::inspect`],
//! `pin::decide_front`, `rewrite::rewrite` and `rewrite::reorder`, what the session
//! learns) and [`pin::remember`] for Pronote's validation — over a [`MemoryStore`],
//! sequenced the way the exchange sequences them (session rotation at each ticket
//! redirect, early validation, stash, Pronote's validation), against a reference model of what the ENT asserted. The oracle: no
//! success returned to Pronote ever carries a principal other than the one the ENT
//! asserted for that ticket, nor pupil attributes the ENT did not assert for that
//! principal, service and session; authentication metadata and every attribute outside
//! the rewrite allow-list are the ticket's own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bonenfant::cas::{Assertion, Attributes, Outcome};
use bonenfant::config::{AnswerMode, PinMode, PinSettings};
use bonenfant::events::PinOutcome;
use bonenfant::pin::front::{self, EarlyValidation, FrontTicket};
use bonenfant::pin::{self, Inspector};
use bonenfant::pupil::{
    self, DirectoryIndex, EstablishmentPattern, ExtractionRules, PupilKey, Uai,
};
use bonenfant::session::memory::MemoryStore;
use bonenfant::session::{RetryProgress, SessionId, SessionStore, StashedValidation, StoreConfig};
use proptest::prelude::*;

const PRINCIPALS: [&str; 3] = ["anne.martin", "marc.martin", "julien.durand"];
const SERVICES: [&str; 3] = [
    "https://0330101a.index-education.net/pronote/parent.html",
    "https://0330101a.index-education.net/pronote/mobile.parent.html",
    "https://0330202b.index-education.net/pronote/parent.html",
];
/// (UAI, ELEVE_ID, first name); the last is nobody's child here.
const PUPILS: [(&str, &str, &str); 5] = [
    ("0330101A", "1001", "Léa"),
    ("0330202B", "1002", "Hugo"),
    ("0330101A", "1003", "Chloé"),
    ("0330101A", "1004", "Lucas"),
    ("0330101A", "1999", "Intrus"),
];
const BROWSERS: usize = 3;
const ALLOW: [&str; 3] = [
    "FrEduVecteur",
    "ENTEleveStructRattachId",
    "ENTPersonJointure",
];

/// Children of each principal (indexes into `PUPILS`): Anne and Marc are co-parents of
/// Léa and Hugo (two schools), Julien has Chloé and Lucas (one school).
fn children(principal: usize) -> &'static [usize] {
    match principal {
        0 | 1 => &[0, 1],
        _ => &[2, 3],
    }
}

fn key(pupil: usize) -> PupilKey {
    let (uai, id, _) = PUPILS[pupil];
    PupilKey {
        uai: Uai::parse(uai).expect("UAI"),
        eleve_id: id.to_owned(),
    }
}

/// What the ENT asserts for one ticket.
#[derive(Clone, Copy, Debug)]
struct Ticket {
    principal: usize,
    /// Every child (else only the designated one), rotated by `order`.
    all: bool,
    order: usize,
    /// The ENT writes the attribute name in upper case (académie chains do).
    shout: bool,
    /// The ENT puts the other children's values under another attribute name.
    stray: bool,
    /// The ENT names the designated child's record jointure too (OSE does).
    jointure: bool,
    new_login: bool,
    dialect: Dialect,
}

/// How the ENT names the children (each pupil-key rule of `docs/domain.md`, "Pupil keys").
#[derive(Clone, Copy, Debug)]
enum Dialect {
    /// FrEduVecteur values.
    Vectors,
    /// `ENTEleveStructRattachId` values and the designated child's UAI.
    StructId,
    /// Only the children's jointures, resolved in the directory index.
    Jointures,
}

#[derive(Clone, Debug)]
enum Op {
    /// A browser opens Pronote; the ENT issues a ticket naming `picked` (children of the
    /// principal, designated first; all of them when `all`); bonenfant runs its
    /// front-channel decision with `retries` already spent.
    Login {
        browser: usize,
        service: usize,
        ticket: Ticket,
        retries: u32,
    },
    /// A pin set in a browser's session, bypassing the chooser's checks.
    Pin { browser: usize, pupil: usize },
    /// The browser leaves (bonenfant's state for its session is dropped).
    Logout { browser: usize },
    /// Browser `to` now carries browser `from`'s cookie (T05).
    CopyCookie { from: usize, to: usize },
    /// Time passes.
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..BROWSERS, 0..SERVICES.len(), ticket(), 0u32..5).prop_map(
            |(browser, service, ticket, retries)| Op::Login {
                browser,
                service,
                ticket,
                retries,
            }
        ),
        2 => (0..BROWSERS, 0..PUPILS.len()).prop_map(|(browser, pupil)| Op::Pin { browser, pupil }),
        1 => (0..BROWSERS).prop_map(|browser| Op::Logout { browser }),
        1 => (0..BROWSERS, 0..BROWSERS).prop_map(|(from, to)| Op::CopyCookie { from, to }),
        1 => prop_oneof![1u64..2_000, 60_000u64..900_000].prop_map(|ms| Op::Advance { ms }),
    ]
}

fn ticket() -> impl Strategy<Value = Ticket> {
    (
        0..PRINCIPALS.len(),
        any::<bool>(),
        0usize..6,
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.15),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            3 => Just(Dialect::Vectors),
            1 => Just(Dialect::StructId),
            1 => Just(Dialect::Jointures)
        ],
    )
        .prop_map(
            |(principal, all, order, shout, stray, jointure, new_login, dialect)| Ticket {
                principal,
                all,
                order,
                shout,
                stray,
                jointure,
                new_login,
                dialect,
            },
        )
}

fn mode() -> impl Strategy<Value = PinMode> {
    prop_oneof![
        Just(PinMode::Observe),
        Just(PinMode::Retry),
        Just(PinMode::Rewrite)
    ]
}

/// What the ENT asserted, per browser session (as it moves with rotations) and
/// (principal, service): every attribute pair and every pupil its assertions named.
#[derive(Default, Clone)]
struct Asserted {
    pairs: HashSet<(String, String)>,
    pupils: HashSet<PupilKey>,
}

type Lineage = HashMap<(String, String), Asserted>;

struct World {
    store: MemoryStore,
    inspector: Inspector,
    settings: PinSettings,
    /// The session id each browser's cookie names.
    cookies: [Option<SessionId>; BROWSERS],
    /// Reference model: what the ENT asserted in each live session.
    model: HashMap<[u8; 16], Lineage>,
    now_ms: u64,
    /// Successes handed to Pronote, for the test's own sanity.
    delivered: usize,
    /// What each front-channel delivery did.
    actions: Vec<PinOutcome>,
}

impl World {
    fn new(mode: PinMode, max_age_ms: u64, with_index: bool) -> Self {
        let mut index = DirectoryIndex::default();
        for (pupil, (_, id, _)) in PUPILS.iter().enumerate() {
            index.add_jointure(&format!("J{id}"), key(pupil));
        }
        for (principal, login) in PRINCIPALS.iter().enumerate() {
            index.add_principal([*login], children(principal).iter().map(|&c| key(c)), true);
        }
        Self {
            store: MemoryStore::new(&StoreConfig::default()),
            inspector: Inspector {
                establishment: EstablishmentPattern::default(),
                rules: ExtractionRules::default(),
                index: with_index.then_some(index).into(),
            },
            settings: PinSettings {
                mode,
                retry_max: 3,
                retry_budget: Duration::from_secs(15),
                rewrite_max_age: Duration::from_millis(max_age_ms),
                rewrite_allow: ALLOW.map(String::from).to_vec(),
                same_establishment: bonenfant::config::SameEstablishment::Ask,
                flip_window: Duration::from_secs(3600),
            },
            cookies: [None; BROWSERS],
            model: HashMap::new(),
            now_ms: 1_800_000_000_000,
            delivered: 0,
            actions: Vec::new(),
        }
    }

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Login {
                browser,
                service,
                ticket,
                retries,
            } => self.login(browser, ticket, service, retries).await?,
            Op::Pin { browser, pupil } => {
                if let Some(id) = self.cookies[browser] {
                    if let Ok(Some(mut state)) = self.store.session(&id).await {
                        state.pin = Some(key(pupil));
                        let _ = self.store.put_session(&id, state).await;
                    }
                }
            }
            Op::Logout { browser } => {
                if let Some(id) = self.cookies[browser].take() {
                    let _ = self.store.drop_session(&id).await;
                    self.model.remove(&id.0);
                }
            }
            Op::CopyCookie { from, to } => self.cookies[to] = self.cookies[from],
            Op::Advance { ms } => self.now_ms += ms,
        }
        Ok(())
    }

    /// The ENT's assertion for one ticket.
    fn ent_assertion(ticket: Ticket) -> Assertion {
        let Ticket {
            principal,
            all,
            order,
            shout,
            stray,
            jointure,
            new_login,
            dialect,
        } = ticket;
        let mut picked: Vec<usize> = children(principal).to_vec();
        let turn = order % picked.len();
        picked.rotate_left(turn);
        if !all {
            picked.truncate(1);
        }
        let mut attributes = Attributes::new();
        if let (Some(&first), true) = (picked.first(), jointure) {
            attributes.push(
                "ENTPersonJointure",
                format!("REC-{principal}-{}", PUPILS[first].0),
            );
        }
        attributes.push("categories", "National_2");
        attributes.push("nom", "MARTIN");
        let vector_name = if shout {
            "FREDUVECTEUR"
        } else {
            "FrEduVecteur"
        };
        match dialect {
            Dialect::Vectors => {
                for (n, &child) in picked.iter().enumerate() {
                    let (uai, id, first_name) = PUPILS[child];
                    let name = if stray && n > 0 {
                        "ENTAutreVecteur"
                    } else {
                        vector_name
                    };
                    attributes.push(name, format!("2|MARTIN|{first_name}|{id}|{uai}"));
                }
            }
            Dialect::StructId => {
                if let Some(&first) = picked.first() {
                    attributes.push("ENTPersonStructRattachRNE", PUPILS[first].0);
                }
                for &child in &picked {
                    attributes.push("ENTEleveStructRattachId", PUPILS[child].1);
                }
            }
            Dialect::Jointures => {
                for &child in &picked {
                    attributes.push("ENTPersonJointure", format!("J{}", PUPILS[child].1));
                }
            }
        }
        let mut assertion = Assertion {
            principal: PRINCIPALS[principal].to_owned(),
            attributes,
            ..Assertion::default()
        };
        assertion.auth.from_new_login = Some(new_login);
        assertion.auth.authentication_date = Some(format!("2026-11-30T0{order}:00:00Z"));
        assertion
    }

    async fn login(
        &mut self,
        browser: usize,
        ticket: Ticket,
        service_index: usize,
        retries: u32,
    ) -> Result<(), TestCaseError> {
        let service = SERVICES[service_index];
        let now = self.now_ms;
        // The ticket redirect rotates the session; its state (and what the ENT asserted
        // in it) moves to the new id.
        let session = SessionId::random();
        let mut lineage = Lineage::new();
        let mut state = None;
        if let Some(old) = self.cookies[browser] {
            if let Ok(Some(found)) = self.store.session(&old).await {
                let _ = self.store.put_session(&session, found.clone()).await;
                let _ = self.store.drop_session(&old).await;
                lineage = self.model.remove(&old.0).unwrap_or_default();
                state = Some(found);
            } else {
                self.model.remove(&old.0);
            }
        }
        self.cookies[browser] = Some(session);

        let ticket = Self::ent_assertion(ticket);
        let asserted = lineage
            .entry((ticket.principal.clone(), service.to_owned()))
            .or_default();
        for (name, value) in ticket.attributes.iter() {
            asserted.pairs.insert((name.to_owned(), value.to_owned()));
        }
        let named = pupil::designations(
            &ticket,
            &self.inspector.rules,
            self.inspector.index.load().as_deref(),
        );
        asserted
            .pupils
            .extend(named.0.iter().map(|d| d.key.clone()));
        self.model.insert(session.0, lineage);

        let mut state = state.unwrap_or_default();
        let mut action = PinOutcome::None;
        let delivered = if self.settings.mode == PinMode::Observe {
            Some(ticket.clone())
        } else {
            if retries > 0 {
                state.retry = Some(RetryProgress {
                    service: service.to_owned(),
                    retries,
                    started_ms: now,
                });
            }
            // The exchange's own plan: what the front channel does with this ticket.
            let plan = front::plan_front(
                &self.settings,
                AnswerMode::Verbatim,
                &self.inspector,
                FrontTicket {
                    service,
                    session,
                    posted: false,
                    now_ms: now,
                },
                EarlyValidation {
                    outcome: Outcome::Success(ticket.clone()),
                    ent_answer: None,
                },
                state,
            );
            state = plan.session;
            match plan.stash {
                Some(StashedValidation {
                    outcome: Outcome::Success(assertion),
                    pin,
                    ..
                }) => {
                    self.actions.push(pin);
                    action = pin;
                    Some(assertion)
                }
                _ => None,
            }
        };
        let _ = self.store.put_session(&session, state).await;
        let Some(delivered) = delivered else {
            return Ok(());
        };
        self.check(&ticket, &delivered, service, &session)?;
        // Pronote's validation: answered with `delivered`; bonenfant remembers it.
        let mut state = self
            .store
            .session(&session)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let inspection = self
            .inspector
            .inspect(&delivered, service, Some(&state), None);
        pin::remember(
            &mut state,
            &delivered,
            service,
            &inspection,
            pin::rewrite_sources(&self.settings, action),
            now,
        );
        let _ = self.store.put_session(&session, state).await;
        self.delivered += 1;
        Ok(())
    }

    /// I1 for one success handed to Pronote.
    fn check(
        &self,
        ticket: &Assertion,
        delivered: &Assertion,
        service: &str,
        session: &SessionId,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            &delivered.principal,
            &ticket.principal,
            "I1a: the ticket's principal"
        );
        prop_assert_eq!(
            &delivered.auth,
            &ticket.auth,
            "metadata is the ticket's own"
        );
        prop_assert_eq!(&delivered.proxies, &ticket.proxies);
        prop_assert_eq!(&delivered.pgt_iou, &ticket.pgt_iou);
        let allowed = |name: &str| ALLOW.iter().any(|a| a.eq_ignore_ascii_case(name));
        let mut names: Vec<&str> = delivered
            .attributes
            .iter()
            .chain(ticket.attributes.iter())
            .map(|(n, _)| n)
            .filter(|n| !allowed(n))
            .collect();
        names.dedup();
        for name in names {
            prop_assert_eq!(
                delivered.attributes.values(name).collect::<Vec<_>>(),
                ticket.attributes.values(name).collect::<Vec<_>>(),
                "attribute {} outside the allow-list is the ticket's own",
                name
            );
        }
        let lineage = self.model.get(&session.0);
        let asserted = lineage.and_then(|l| l.get(&(ticket.principal.clone(), service.to_owned())));
        for (name, value) in delivered.attributes.iter() {
            let own = ticket
                .attributes
                .iter()
                .any(|(n, v)| n == name && v == value);
            let earlier =
                asserted.is_some_and(|a| a.pairs.contains(&(name.to_owned(), value.to_owned())));
            prop_assert!(
                own || (allowed(name) && earlier),
                "I1b: {}={} was not asserted for this principal, service and session",
                name,
                value
            );
        }
        let designated = pupil::designations(
            delivered,
            &self.inspector.rules,
            self.inspector.index.load().as_deref(),
        );
        for d in &designated.0 {
            prop_assert!(
                asserted.is_some_and(|a| a.pupils.contains(&d.key)),
                "I1b: pupil {:?} was not asserted for this principal, service and session",
                d.key
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_success_carries_an_identity_the_ent_did_not_assert(
        mode in mode(),
        max_age_ms in prop_oneof![Just(1_000u64), Just(600_000u64)],
        with_index in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut world = World::new(mode, max_age_ms, with_index);
            for op in &ops {
                world.apply(op).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// The property is not vacuous: a plain sequence exercises rewrite and reorder, and
/// every login of a correct run is delivered.
#[test]
fn the_model_sees_rewrites_and_reorders_deliveries() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut world = World::new(PinMode::Rewrite, 600_000, true);
        let login = |order: usize, all: bool| Op::Login {
            browser: 0,
            service: 0,
            ticket: Ticket {
                principal: 0,
                all,
                order,
                shout: false,
                stray: false,
                jointure: false,
                new_login: false,
                dialect: Dialect::Vectors,
            },
            retries: 0,
        };
        // Léa asserted (order 0), then Hugo (order 1): rewritten from the first; then
        // both children, Hugo first: reordered.
        for op in [login(0, false), login(1, false), login(1, true)] {
            world.apply(&op).await.expect("I1 holds");
        }
        assert_eq!(world.delivered, 3, "each login delivered, none refused");
        assert_eq!(
            world.actions,
            [PinOutcome::None, PinOutcome::Rewrite, PinOutcome::Reorder]
        );
        let id = world.cookies[0].expect("a session");
        let state = world
            .store
            .session(&id)
            .await
            .expect("store")
            .expect("state");
        assert_eq!(state.landed, vec![key(0)], "landed on Léa every time");
    });
}
