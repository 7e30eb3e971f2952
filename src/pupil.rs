//! Pupil keys, the expected establishment and the intent: who an assertion designates,
//! where the parent was going, and whom the parent meant. Pure.

use crate::cas::Assertion;

/// An establishment's UAI (`0330012A`): seven digits and a letter, upper case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uai(String);

impl Uai {
    /// Accepts `0330012a` or `0330012A`; stores upper case.
    pub fn parse(value: &str) -> Option<Self> {
        let _ = value;
        todo!()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The child an assertion designates: `(UAI, ELEVE_ID)`.
///
/// A minor's identifier: never logged in clear (events carry an HMAC pseudonym).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PupilKey {
    pub uai: Uai,
    /// SIECLE pupil id (`ENTEleveStructRattachId`).
    pub eleve_id: String,
}

/// Which extraction rule found a pupil key, so a verdict can say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PupilRule {
    /// A `profil|nom|prénom|ELEVE_ID|UAI` value.
    FrEduVecteur,
    /// `ENTEleveStructRattachId` with a UAI attribute.
    StructRattachId,
    /// A jointure looked up in the directory index.
    Jointure,
}

impl PupilRule {
    pub fn as_str(self) -> &'static str {
        match self {
            PupilRule::FrEduVecteur => "freduvecteur",
            PupilRule::StructRattachId => "struct_rattach_id",
            PupilRule::Jointure => "jointure",
        }
    }
}

/// One pupil found in an assertion, with the rule that found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Designation {
    pub key: PupilKey,
    pub rule: PupilRule,
    /// First name, when the source carries it (parent FrEduVecteur values do); shown on
    /// the chooser page, never logged.
    pub first_name: Option<String>,
}

/// Every pupil an assertion names, in assertion order. The first is the one the
/// assertion *designates* (what Pronote and SACoche pick); the rest are known siblings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Designations(pub Vec<Designation>);

impl Designations {
    pub fn designated(&self) -> Option<&Designation> {
        self.0.first()
    }
}

/// Who the principal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    Parent,
    Pupil,
    Staff,
    Unknown,
}

/// The expected establishment: a regex with a named group `uai`, applied to the service URL.
#[derive(Clone, Debug)]
pub struct EstablishmentPattern(regex::Regex);

impl EstablishmentPattern {
    /// DESIGN §3 default, case-insensitive.
    pub const DEFAULT: &'static str = r"(?i)^https?://(?P<uai>\d{7}[a-z])\.index-education\.net/";

    pub fn new(pattern: &str) -> Result<Self, String> {
        let _ = pattern;
        todo!()
    }

    /// The UAI the service URL names, if any.
    pub fn expected(&self, service: &str) -> Option<Uai> {
        let _ = service;
        todo!()
    }
}

/// Optional directory index: jointure → pupil, for ENTs that assert only a jointure.
#[derive(Clone, Debug, Default)]
pub struct DirectoryIndex {
    pub jointures: std::collections::HashMap<String, PupilKey>,
}

/// Extraction rules, in order. Configurable; defaults per DESIGN §3.
#[derive(Clone, Debug)]
pub struct ExtractionRules {
    /// Attribute names tried for rule 2's UAI.
    pub uai_attributes: Vec<String>,
    /// Prefixes stripped from jointures before the index lookup.
    pub jointure_prefixes: Vec<String>,
}

impl Default for ExtractionRules {
    fn default() -> Self {
        Self {
            uai_attributes: ["ENTPersonStructRattachRNE", "uai", "rne", "ESCOUAICourant"]
                .map(String::from)
                .to_vec(),
            jointure_prefixes: ["AC-BORDEAUX$", "BORDEAUX-"].map(String::from).to_vec(),
        }
    }
}

/// Every pupil the assertion names, rules tried in order (the first rule that finds
/// something wins).
pub fn designations(
    assertion: &Assertion,
    rules: &ExtractionRules,
    index: Option<&DirectoryIndex>,
) -> Designations {
    let _ = (assertion, rules, index);
    todo!()
}

/// Parent, pupil or staff: from `categories` (`National_1`…), the FrEduVecteur profil,
/// else the service page (`parent.html`, `eleve.html`).
pub fn principal_kind(assertion: &Assertion, service: &str) -> PrincipalKind {
    let _ = (assertion, service);
    todo!()
}

/// Where the intent came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentSource {
    /// The parent pinned this pupil on the chooser page.
    Pin,
    /// The only known child in the service's establishment.
    OnlyInEstablishment,
    /// The pupil this browser session already landed on for this establishment.
    Sticky,
}

/// The pupil the parent meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub pupil: PupilKey,
    pub source: IntentSource,
}

/// An explicit pin, else the only known child in the expected establishment, else the
/// pupil this session already landed on (sticky).
pub fn intent(
    pin: Option<&PupilKey>,
    known: &[PupilKey],
    expected: Option<&Uai>,
    sticky: Option<&PupilKey>,
) -> Option<Intent> {
    let _ = (pin, known, expected, sticky);
    todo!()
}
