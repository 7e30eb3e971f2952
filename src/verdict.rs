//! One verdict per validation: did the assertion hand Pronote the child the parent meant?
//!
//! Pure: [`judge`] looks only at its [`VerdictInput`] (who the principal is, where the
//! service is, whom the assertion designates, whom the parent meant, what the directory
//! says of the principal's children and whom this principal landed on last time). The rules are tried in the order `docs/events.md`
//! lists them ("Verdicts") and the first that applies wins; [`Judgement::rule`] names
//! it so the DSI can see *why*.

use crate::pupil::{
    Designations, Intent, IntentSource, PrincipalChildren, PrincipalKind, PupilKey, Uai,
};

/// What a validation handed Pronote, compared with what the parent meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The designated pupil is the intended one (or nothing better can be said and
    /// nothing looks wrong).
    Ok,
    /// The designated pupil is not in the establishment whose Pronote asked.
    WrongEstablishment,
    /// The designated pupil is in the right establishment but is not the intent.
    WrongChild,
    /// Another pupil than this principal's previous one for the same service.
    Flip,
    /// Several children could be meant and nothing tells which.
    Ambiguous,
    /// Not enough data to judge (no pupil key, no expected establishment).
    Unresolved,
}

impl Verdict {
    /// Every verdict, in the order reports and metrics list them.
    pub const ALL: [Verdict; 6] = [
        Verdict::Ok,
        Verdict::WrongEstablishment,
        Verdict::WrongChild,
        Verdict::Flip,
        Verdict::Ambiguous,
        Verdict::Unresolved,
    ];

    /// Stable name used in trace events and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::WrongEstablishment => "wrong_establishment",
            Verdict::WrongChild => "wrong_child",
            Verdict::Flip => "flip",
            Verdict::Ambiguous => "ambiguous",
            Verdict::Unresolved => "unresolved",
        }
    }

    /// The inverse of [`Verdict::as_str`], for tools reading a trace log.
    pub fn parse(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// Whether Pronote was handed a child the parent did not mean.
    pub fn is_wrong_landing(self) -> bool {
        matches!(self, Verdict::WrongEstablishment | Verdict::WrongChild)
    }
}

impl serde::Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The names of the rules [`judge`] can fire, as they appear in the `rule` field of
/// `validate` events. Stable: the report and the DSI's own queries rely on them.
pub mod rule {
    /// Staff (or any non-parent, non-pupil account): no child to check.
    pub const NOT_A_PARENT: &str = "not_a_parent";
    /// The designated pupil's UAI differs from the service's.
    pub const UAI_MISMATCH: &str = "uai_mismatch";
    /// The directory index knows the principal's children and the designated pupil is
    /// not one of them. Reported, never "fixed" by rewrite ([`super::Judgement::may_rewrite`]).
    pub const NOT_A_CHILD_OF_PRINCIPAL: &str = "not_a_child_of_principal";
    /// Intent from an explicit pin on the chooser page.
    pub const INTENT_PIN: &str = "intent.pin";
    /// Intent from the only known child in the expected establishment.
    pub const INTENT_ONLY_IN_ESTABLISHMENT: &str = "intent.only_in_establishment";
    /// Intent from the pupil this browser session already landed on.
    pub const INTENT_STICKY: &str = "intent.sticky";
    /// No usable intent and several known children in the expected establishment.
    pub const SEVERAL_CHILDREN: &str = "intent.unknown_several_children";
    /// The assertion designates no pupil the extraction rules could find.
    pub const NO_PUPIL_KEY: &str = "no_pupil_key";
    /// The service URL names no establishment (the pattern did not match).
    pub const NO_EXPECTED_ESTABLISHMENT: &str = "no_expected_establishment";
    /// Another pupil than the previous one for this principal and service.
    pub const PREVIOUS_PUPIL: &str = "previous_pupil";
    /// A pupil logged in as themself, in the right establishment.
    pub const PUPIL_SELF: &str = "pupil_self";
    /// A parent with no intent and no reason to doubt the designated pupil.
    pub const NO_INTENT: &str = "no_intent";
    /// The validation did not succeed (ENT failure, refused answer, upstream error):
    /// there is no assertion to judge.
    pub const NO_ASSERTION: &str = "no_assertion";

    /// Rules whose validations are not a parent choosing a child: left out of the
    /// wrong-child rate's denominator.
    pub const NOT_PARENT_RULES: [&str; 2] = [NOT_A_PARENT, PUPIL_SELF];
}

/// Everything [`judge`] looks at. Borrowed: judging allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct VerdictInput<'a> {
    /// Parent, pupil or staff. `Unknown` is judged like a parent: when in doubt, look.
    pub kind: PrincipalKind,
    /// The establishment the service URL names.
    pub expected: Option<&'a Uai>,
    /// The pupils the current assertion names; the first is the designated one.
    pub designations: &'a Designations,
    /// Whom the parent meant, if anything tells.
    pub intent: Option<&'a Intent>,
    /// Every child known for this principal (earlier assertions, directory index),
    /// besides those of the current assertion; used to tell whether a missing intent
    /// leaves a real choice.
    pub known: &'a [PupilKey],
    /// The pupil this principal landed on last time for the same service, within the
    /// flip window.
    pub previous: Option<&'a PupilKey>,
    /// What the directory index says of this principal's children, when it knows the
    /// principal (`DirectoryIndex::principal`).
    pub directory: Option<&'a PrincipalChildren>,
}

/// A verdict and the rule that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One of the [`rule`] names.
    pub rule: &'static str,
}

impl Judgement {
    /// The judgement of a validation that yielded no assertion: `unresolved`
    /// (`no_assertion`); the `validate` event's `error` says why.
    pub fn no_assertion() -> Self {
        Self::new(Verdict::Unresolved, rule::NO_ASSERTION)
    }

    fn new(verdict: Verdict, rule: &'static str) -> Self {
        Self { verdict, rule }
    }

    /// Whether a rewrite (or reorder) may stand in for the ENT's assertion. Not when the
    /// ENT handed over a child the directory says is not the parent's: that is the
    /// ENT's incident to answer for, and a rewritten answer would hide it from the trace.
    pub fn may_rewrite(&self) -> bool {
        self.rule != rule::NOT_A_CHILD_OF_PRINCIPAL
    }
}

/// Judges one validation. The first rule that applies wins, in this order:
///
/// 1. staff → `ok` (`not_a_parent`);
/// 2. `wrong_establishment` (`uai_mismatch`): the designated pupil's UAI is not the
///    expected one;
/// 3. `wrong_child` (`not_a_child_of_principal`): a parent whose children the
///    directory knows, and the designated pupil is not one of them
///    ([`PrincipalChildren::rules_out`]); before the intent, because a stranger's child
///    is a worse incident than a sibling mix-up and must not hide behind one;
/// 4. `wrong_child` (`intent.*`): a parent's intent for the expected establishment
///    names another pupil;
/// 5. `ambiguous` (`intent.unknown_several_children`): a parent with no usable intent
///    and at least two distinct children known in the expected establishment (this
///    assertion's designations and `known` together);
/// 6. `unresolved`: no pupil key (`no_pupil_key`), or no expected establishment
///    (`no_expected_establishment`);
/// 7. `flip` (`previous_pupil`): another pupil than `previous`;
/// 8. `ok`: the intent's rule when there is one, `pupil_self` for a pupil, else
///    `no_intent`.
///
/// An intent whose pupil is in another establishment than the expected one is not
/// usable here (a pin made for a sibling's school says nothing about this one).
pub fn judge(input: &VerdictInput<'_>) -> Judgement {
    if input.kind == PrincipalKind::Staff {
        return Judgement::new(Verdict::Ok, rule::NOT_A_PARENT);
    }
    let designated = input.designations.designated().map(|d| &d.key);
    if let (Some(pupil), Some(expected)) = (designated, input.expected) {
        if &pupil.uai != expected {
            return Judgement::new(Verdict::WrongEstablishment, rule::UAI_MISMATCH);
        }
    }
    let is_pupil = input.kind == PrincipalKind::Pupil;
    if let (Some(pupil), Some(directory), false) = (designated, input.directory, is_pupil) {
        if directory.rules_out(pupil) {
            return Judgement::new(Verdict::WrongChild, rule::NOT_A_CHILD_OF_PRINCIPAL);
        }
    }
    let intent = input
        .intent
        .filter(|_| !is_pupil)
        .filter(|i| input.expected.map_or(true, |uai| &i.pupil.uai == uai));
    if let (Some(pupil), Some(intent)) = (designated, intent) {
        if pupil != &intent.pupil {
            return Judgement::new(Verdict::WrongChild, intent_rule(intent.source));
        }
    }
    if !is_pupil && intent.is_none() {
        if let Some(expected) = input.expected {
            if children_in(input, expected) >= 2 {
                return Judgement::new(Verdict::Ambiguous, rule::SEVERAL_CHILDREN);
            }
        }
    }
    let Some(pupil) = designated else {
        return Judgement::new(Verdict::Unresolved, rule::NO_PUPIL_KEY);
    };
    if input.expected.is_none() {
        return Judgement::new(Verdict::Unresolved, rule::NO_EXPECTED_ESTABLISHMENT);
    }
    if input.previous.is_some_and(|previous| previous != pupil) {
        return Judgement::new(Verdict::Flip, rule::PREVIOUS_PUPIL);
    }
    let ok_rule = match intent {
        Some(intent) => intent_rule(intent.source),
        None if is_pupil => rule::PUPIL_SELF,
        None => rule::NO_INTENT,
    };
    Judgement::new(Verdict::Ok, ok_rule)
}

fn intent_rule(source: IntentSource) -> &'static str {
    match source {
        IntentSource::Pin => rule::INTENT_PIN,
        IntentSource::OnlyInEstablishment => rule::INTENT_ONLY_IN_ESTABLISHMENT,
        IntentSource::Sticky => rule::INTENT_STICKY,
    }
}

/// Distinct children in `expected` among the designations and the known children.
/// Inputs are a handful of pupils: a linear scan beats hashing.
fn children_in(input: &VerdictInput<'_>, expected: &Uai) -> usize {
    let mut seen: Vec<&PupilKey> = Vec::new();
    let candidates = input
        .designations
        .0
        .iter()
        .map(|d| &d.key)
        .chain(input.known.iter());
    for pupil in candidates.filter(|p| &p.uai == expected) {
        if !seen.contains(&pupil) {
            seen.push(pupil);
        }
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pupil::{Designation, PupilRule};

    fn uai(s: &str) -> Uai {
        Uai::parse(s).unwrap()
    }

    fn pupil(u: &str, id: &str) -> PupilKey {
        PupilKey {
            uai: uai(u),
            eleve_id: id.to_owned(),
        }
    }

    fn designations(pupils: &[PupilKey]) -> Designations {
        Designations(
            pupils
                .iter()
                .map(|key| Designation {
                    key: key.clone(),
                    rule: PupilRule::FrEduVecteur,
                    first_name: None,
                })
                .collect(),
        )
    }

    fn intent(pupil: &PupilKey, source: IntentSource) -> Intent {
        Intent {
            pupil: pupil.clone(),
            source,
        }
    }

    /// A validation to judge; [`Case::parent`] starts from a parent going to A's
    /// establishment.
    #[derive(Debug)]
    struct Case {
        kind: PrincipalKind,
        expected: Option<Uai>,
        designations: Designations,
        intent: Option<Intent>,
        known: Vec<PupilKey>,
        previous: Option<PupilKey>,
        directory: Option<PrincipalChildren>,
    }

    impl Case {
        fn parent(designated: &[PupilKey]) -> Self {
            Case {
                kind: PrincipalKind::Parent,
                expected: Some(uai("0330012A")),
                designations: designations(designated),
                intent: None,
                known: Vec::new(),
                previous: None,
                directory: None,
            }
        }

        fn judge(&self) -> Judgement {
            judge(&VerdictInput {
                kind: self.kind,
                expected: self.expected.as_ref(),
                designations: &self.designations,
                intent: self.intent.as_ref(),
                known: &self.known,
                previous: self.previous.as_ref(),
                directory: self.directory.as_ref(),
            })
        }
    }

    fn a() -> PupilKey {
        pupil("0330012A", "1001")
    }
    fn b() -> PupilKey {
        pupil("0330012A", "1002")
    }
    fn elsewhere() -> PupilKey {
        pupil("0330099Z", "2001")
    }

    fn expect(case: &Case, verdict: Verdict, rule: &str) {
        let judgement = case.judge();
        assert_eq!((judgement.verdict, judgement.rule), (verdict, rule));
    }

    #[test]
    fn verdict_names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("OK"), None);
        assert_eq!(Verdict::WrongChild.as_str(), "wrong_child");
        assert_eq!(
            serde_json::to_string(&Verdict::WrongEstablishment).unwrap(),
            "\"wrong_establishment\""
        );
    }

    #[test]
    fn staff_is_ok_whatever_the_assertion_says() {
        let mut case = Case::parent(&[elsewhere()]);
        case.kind = PrincipalKind::Staff;
        case.previous = Some(a());
        expect(&case, Verdict::Ok, "not_a_parent");
    }

    #[test]
    fn designated_pupil_in_another_establishment_is_wrong_establishment() {
        let mut case = Case::parent(&[elsewhere(), a()]);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::WrongEstablishment, "uai_mismatch");
    }

    #[test]
    fn wrong_establishment_wins_over_flip_and_ambiguity() {
        let mut case = Case::parent(&[elsewhere()]);
        case.known = vec![a(), b()];
        case.previous = Some(a());
        expect(&case, Verdict::WrongEstablishment, "uai_mismatch");
    }

    #[test]
    fn other_pupil_than_the_pin_is_wrong_child() {
        let mut case = Case::parent(&[b(), a()]);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::WrongChild, "intent.pin");
    }

    #[test]
    fn wrong_child_names_the_intent_source() {
        for (source, rule) in [
            (
                IntentSource::OnlyInEstablishment,
                "intent.only_in_establishment",
            ),
            (IntentSource::Sticky, "intent.sticky"),
        ] {
            let mut case = Case::parent(&[b()]);
            case.intent = Some(intent(&a(), source));
            expect(&case, Verdict::WrongChild, rule);
        }
    }

    #[test]
    fn wrong_child_wins_over_flip() {
        let mut case = Case::parent(&[b()]);
        case.intent = Some(intent(&a(), IntentSource::Sticky));
        case.previous = Some(a());
        expect(&case, Verdict::WrongChild, "intent.sticky");
    }

    #[test]
    fn pin_for_another_establishment_is_not_used() {
        let mut case = Case::parent(&[a()]);
        case.intent = Some(intent(&elsewhere(), IntentSource::Pin));
        expect(&case, Verdict::Ok, "no_intent");
    }

    #[test]
    fn two_children_in_establishment_without_intent_is_ambiguous() {
        let case = Case::parent(&[a(), b()]);
        expect(&case, Verdict::Ambiguous, "intent.unknown_several_children");
    }

    #[test]
    fn known_children_count_toward_ambiguity() {
        let mut case = Case::parent(&[a()]);
        case.known = vec![a(), b(), elsewhere()];
        expect(&case, Verdict::Ambiguous, "intent.unknown_several_children");
    }

    #[test]
    fn repeated_child_is_not_ambiguous() {
        let mut case = Case::parent(&[a(), a()]);
        case.known = vec![a(), elsewhere()];
        expect(&case, Verdict::Ok, "no_intent");
    }

    #[test]
    fn ambiguity_wins_over_missing_pupil_key() {
        let mut case = Case::parent(&[]);
        case.known = vec![a(), b()];
        expect(&case, Verdict::Ambiguous, "intent.unknown_several_children");
    }

    #[test]
    fn matching_intent_is_not_ambiguous() {
        let mut case = Case::parent(&[a(), b()]);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::Ok, "intent.pin");
    }

    #[test]
    fn no_pupil_key_is_unresolved() {
        let case = Case::parent(&[]);
        expect(&case, Verdict::Unresolved, "no_pupil_key");
    }

    #[test]
    fn no_pupil_key_is_unresolved_even_with_intent() {
        let mut case = Case::parent(&[]);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::Unresolved, "no_pupil_key");
    }

    #[test]
    fn no_expected_establishment_is_unresolved() {
        let mut case = Case::parent(&[a(), b()]);
        case.expected = None;
        expect(&case, Verdict::Unresolved, "no_expected_establishment");
    }

    #[test]
    fn no_expected_establishment_still_catches_wrong_child() {
        let mut case = Case::parent(&[b()]);
        case.expected = None;
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::WrongChild, "intent.pin");
    }

    #[test]
    fn another_pupil_than_last_time_is_a_flip() {
        let mut case = Case::parent(&[a()]);
        case.previous = Some(b());
        expect(&case, Verdict::Flip, "previous_pupil");
    }

    #[test]
    fn flip_wins_over_a_matching_intent() {
        let mut case = Case::parent(&[a()]);
        case.intent = Some(intent(&a(), IntentSource::OnlyInEstablishment));
        case.previous = Some(b());
        expect(&case, Verdict::Flip, "previous_pupil");
    }

    #[test]
    fn same_pupil_as_last_time_is_ok() {
        let mut case = Case::parent(&[a()]);
        case.intent = Some(intent(&a(), IntentSource::Sticky));
        case.previous = Some(a());
        expect(&case, Verdict::Ok, "intent.sticky");
    }

    #[test]
    fn single_child_without_intent_is_ok() {
        expect(&Case::parent(&[a()]), Verdict::Ok, "no_intent");
    }

    #[test]
    fn unknown_kind_is_judged_like_a_parent() {
        let mut case = Case::parent(&[a(), b()]);
        case.kind = PrincipalKind::Unknown;
        expect(&case, Verdict::Ambiguous, "intent.unknown_several_children");
    }

    #[test]
    fn pupil_on_own_key_is_ok() {
        let mut case = Case::parent(&[a()]);
        case.kind = PrincipalKind::Pupil;
        case.previous = Some(a());
        expect(&case, Verdict::Ok, "pupil_self");
    }

    #[test]
    fn pupil_ignores_intent_and_siblings() {
        let mut case = Case::parent(&[a()]);
        case.kind = PrincipalKind::Pupil;
        case.intent = Some(intent(&b(), IntentSource::Sticky));
        case.known = vec![b()];
        expect(&case, Verdict::Ok, "pupil_self");
    }

    #[test]
    fn pupil_in_another_establishment_is_wrong_establishment() {
        let mut case = Case::parent(&[elsewhere()]);
        case.kind = PrincipalKind::Pupil;
        expect(&case, Verdict::WrongEstablishment, "uai_mismatch");
    }

    #[test]
    fn pupil_without_key_is_unresolved() {
        let mut case = Case::parent(&[]);
        case.kind = PrincipalKind::Pupil;
        expect(&case, Verdict::Unresolved, "no_pupil_key");
    }

    #[test]
    fn pupil_key_change_is_a_flip() {
        let mut case = Case::parent(&[a()]);
        case.kind = PrincipalKind::Pupil;
        case.previous = Some(b());
        expect(&case, Verdict::Flip, "previous_pupil");
    }

    fn directory(children: &[PupilKey], complete: bool) -> Option<PrincipalChildren> {
        Some(PrincipalChildren {
            children: children.to_vec(),
            complete,
        })
    }

    #[test]
    fn a_child_the_directory_does_not_give_the_parent_is_not_theirs() {
        let mut case = Case::parent(&[b()]);
        case.directory = directory(&[a()], true);
        expect(&case, Verdict::WrongChild, "not_a_child_of_principal");
        // Partial knowledge (a record of this establishment) is enough here: it names
        // the parent's children in the pupil's establishment.
        case.directory = directory(&[a()], false);
        expect(&case, Verdict::WrongChild, "not_a_child_of_principal");
        assert!(!case.judge().may_rewrite(), "never fixed by rewrite");
    }

    #[test]
    fn a_record_of_another_establishment_says_nothing_about_this_one() {
        // The principal is a bare record jointure of another school: the parent's record
        // here may exist, unlinked.
        let mut case = Case::parent(&[a()]);
        case.directory = directory(&[elsewhere()], false);
        expect(&case, Verdict::Ok, "no_intent");
        // A complete list (an ENT login, every record grouped) does.
        case.directory = directory(&[elsewhere()], true);
        expect(&case, Verdict::WrongChild, "not_a_child_of_principal");
    }

    #[test]
    fn the_parents_own_child_passes_the_directory_rule() {
        let mut case = Case::parent(&[a()]);
        case.directory = directory(&[a(), b()], true);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        expect(&case, Verdict::Ok, "intent.pin");
        assert!(case.judge().may_rewrite());
    }

    #[test]
    fn not_a_child_of_principal_comes_after_uai_mismatch_and_before_the_intent() {
        let mut case = Case::parent(&[elsewhere()]);
        case.directory = directory(&[a()], true);
        expect(&case, Verdict::WrongEstablishment, "uai_mismatch");
        let mut case = Case::parent(&[b()]);
        case.directory = directory(&[a()], true);
        case.intent = Some(intent(&a(), IntentSource::Pin));
        case.previous = Some(a());
        expect(&case, Verdict::WrongChild, "not_a_child_of_principal");
    }

    #[test]
    fn staff_and_pupils_are_not_judged_by_the_directory_rule() {
        let mut case = Case::parent(&[b()]);
        case.directory = directory(&[a()], true);
        case.kind = PrincipalKind::Staff;
        expect(&case, Verdict::Ok, "not_a_parent");
        case.kind = PrincipalKind::Pupil;
        expect(&case, Verdict::Ok, "pupil_self");
        case.kind = PrincipalKind::Unknown;
        expect(&case, Verdict::WrongChild, "not_a_child_of_principal");
    }

    #[test]
    fn failed_validation_is_unresolved() {
        let judgement = Judgement::no_assertion();
        assert_eq!(
            (judgement.verdict, judgement.rule),
            (Verdict::Unresolved, "no_assertion")
        );
    }

    #[test]
    fn only_wrong_establishment_and_wrong_child_are_wrong_landings() {
        let wrong: Vec<_> = Verdict::ALL
            .into_iter()
            .filter(|v| v.is_wrong_landing())
            .collect();
        assert_eq!(wrong, [Verdict::WrongEstablishment, Verdict::WrongChild]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Pupils from a small pool (two establishments, three ids) so collisions,
        /// repeats and matches all happen often.
        fn pupil_strategy() -> impl Strategy<Value = PupilKey> {
            (prop::sample::select(vec!["0330012A", "0330099Z"]), 1..4u8)
                .prop_map(|(u, id)| pupil(u, &id.to_string()))
        }

        fn kind_strategy() -> impl Strategy<Value = PrincipalKind> {
            prop::sample::select(vec![
                PrincipalKind::Parent,
                PrincipalKind::Pupil,
                PrincipalKind::Staff,
                PrincipalKind::Unknown,
            ])
        }

        fn source_strategy() -> impl Strategy<Value = IntentSource> {
            prop::sample::select(vec![
                IntentSource::Pin,
                IntentSource::OnlyInEstablishment,
                IntentSource::Sticky,
            ])
        }

        prop_compose! {
            fn case_strategy()(
                kind in kind_strategy(),
                expected in prop::option::of(prop::sample::select(vec!["0330012A", "0330099Z"])),
                designated in prop::collection::vec(pupil_strategy(), 0..4),
                intent in prop::option::of((pupil_strategy(), source_strategy())),
                known in prop::collection::vec(pupil_strategy(), 0..4),
                previous in prop::option::of(pupil_strategy()),
                directory in prop::option::of((prop::collection::vec(pupil_strategy(), 0..3), any::<bool>())),
            ) -> Case {
                Case {
                    kind,
                    expected: expected.map(uai),
                    designations: designations(&designated),
                    intent: intent.map(|(p, s)| Intent { pupil: p, source: s }),
                    known,
                    previous,
                    directory: directory.map(|(children, complete)| PrincipalChildren { children, complete }),
                }
            }
        }

        proptest! {
            #[test]
            fn staff_is_always_ok(mut case in case_strategy()) {
                case.kind = PrincipalKind::Staff;
                prop_assert_eq!(case.judge().verdict, Verdict::Ok);
            }

            #[test]
            fn designated_pupil_elsewhere_is_always_wrong_establishment(case in case_strategy()) {
                let elsewhere = match (case.designations.designated(), &case.expected) {
                    (Some(d), Some(expected)) => &d.key.uai != expected,
                    _ => false,
                };
                prop_assume!(case.kind != PrincipalKind::Staff);
                prop_assert_eq!(case.judge().verdict == Verdict::WrongEstablishment, elsewhere);
            }

            #[test]
            fn ok_means_the_designated_pupil_is_in_the_establishment_and_not_a_flip(
                case in case_strategy()
            ) {
                let judgement = case.judge();
                if judgement.verdict == Verdict::Ok && judgement.rule != rule::NOT_A_PARENT {
                    let designated = case.designations.designated().map(|d| &d.key);
                    prop_assert!(designated.is_some());
                    prop_assert_eq!(designated.map(|p| &p.uai), case.expected.as_ref());
                    prop_assert!(case.previous.is_none() || case.previous.as_ref() == designated);
                }
            }

            #[test]
            fn a_listed_child_is_never_ruled_out_and_a_ruled_out_one_never_ok(case in case_strategy()) {
                let judgement = case.judge();
                let designated = case.designations.designated().map(|d| &d.key);
                if let (Some(pupil), Some(directory)) = (designated, &case.directory) {
                    if directory.children.contains(pupil) {
                        prop_assert_ne!(judgement.rule, rule::NOT_A_CHILD_OF_PRINCIPAL);
                    }
                    if directory.rules_out(pupil) && case.kind != PrincipalKind::Pupil {
                        prop_assert!(judgement.verdict != Verdict::Ok || judgement.rule == rule::NOT_A_PARENT);
                    }
                }
            }

            #[test]
            fn the_rule_belongs_to_its_verdict(case in case_strategy()) {
                let judgement = case.judge();
                let expected_verdicts: &[Verdict] = match judgement.rule {
                    rule::UAI_MISMATCH => &[Verdict::WrongEstablishment],
                    rule::NOT_A_CHILD_OF_PRINCIPAL => &[Verdict::WrongChild],
                    rule::INTENT_PIN | rule::INTENT_ONLY_IN_ESTABLISHMENT | rule::INTENT_STICKY => {
                        &[Verdict::WrongChild, Verdict::Ok]
                    }
                    rule::SEVERAL_CHILDREN => &[Verdict::Ambiguous],
                    rule::NO_PUPIL_KEY | rule::NO_EXPECTED_ESTABLISHMENT => &[Verdict::Unresolved],
                    rule::PREVIOUS_PUPIL => &[Verdict::Flip],
                    rule::NOT_A_PARENT | rule::PUPIL_SELF | rule::NO_INTENT => &[Verdict::Ok],
                    other => return Err(TestCaseError::fail(format!("unknown rule {other}"))),
                };
                prop_assert!(expected_verdicts.contains(&judgement.verdict));
            }
        }
    }
}
