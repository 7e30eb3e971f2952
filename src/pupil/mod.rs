//! Pupil keys, the expected establishment and the intent: who an assertion designates,
//! where the parent was going, and whom the parent meant. Pure, but for
//! [`directory`] and [`aaf`], which read the files `--directory` names, and the
//! [`SharedIndex`] a reload swaps.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cas::Assertion;

pub mod aaf;
pub mod directory;

/// An establishment's UAI (`0330012A`): seven digits and a letter, upper case.
///
/// Eight bytes inline rather than a `String`: a département's index holds one per pupil.
/// Not `Copy`, so that call sites written for the `String` it was keep their `clone()`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uai([u8; 8]);

impl Uai {
    /// Accepts `0330012a` or `0330012A`; stores upper case.
    pub fn parse(value: &str) -> Option<Self> {
        let bytes: [u8; 8] = value.as_bytes().try_into().ok()?;
        let well_formed =
            bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7].is_ascii_alphabetic();
        let mut upper = bytes;
        upper[7] = upper[7].to_ascii_uppercase();
        well_formed.then_some(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and a letter ever get in (`parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Uai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uai({:?})", self.as_str())
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
///
/// Each answer is remembered per service URL: an académie has a few hundred services,
/// asked about all day, and the capture runs on the regex's backtracker, the costliest
/// step of judging a validation after the parse (`docs/performance.md`, "Proxy"). The
/// memory is bounded (I5): at most [`CACHED_SERVICES`] URLs of at most
/// [`CACHED_URL_BYTES`], forgotten all at once when full; clones share it.
#[derive(Clone)]
pub struct EstablishmentPattern {
    regex: regex::Regex,
    cache: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, Option<Uai>>>>,
}

/// Most service URLs [`EstablishmentPattern`] remembers.
const CACHED_SERVICES: usize = 1024;

/// Longest service URL [`EstablishmentPattern`] remembers (longer ones are matched each
/// time): with [`CACHED_SERVICES`], at most 512 KiB of keys.
const CACHED_URL_BYTES: usize = 512;

impl std::fmt::Debug for EstablishmentPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EstablishmentPattern")
            .field(&self.regex.as_str())
            .finish()
    }
}

impl EstablishmentPattern {
    /// The default (`docs/domain.md`, "Words"), case-insensitive.
    pub const DEFAULT: &'static str = r"(?i)^https?://(?P<uai>\d{7}[a-z])\.index-education\.net/";

    /// Compiles `pattern`; the error says what is wrong with it (bad syntax, or no
    /// named group `uai`), for `check-config`.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let regex = regex::Regex::new(pattern)
            .map_err(|e| format!("establishment pattern is not a valid regex: {e}"))?;
        if !regex.capture_names().any(|name| name == Some("uai")) {
            return Err(
                "establishment pattern has no named group `uai` (write `(?P<uai>…)`)".into(),
            );
        }
        Ok(Self::compiled(regex))
    }

    fn compiled(regex: regex::Regex) -> Self {
        Self {
            regex,
            cache: Default::default(),
        }
    }

    /// The UAI the service URL names, if any.
    pub fn expected(&self, service: &str) -> Option<Uai> {
        // A poisoned lock only loses the memory: the regex still answers.
        if let Some(known) = self.cache.lock().ok().and_then(|c| c.get(service).cloned()) {
            return known;
        }
        let expected = self.matched(service);
        if service.len() <= CACHED_URL_BYTES {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CACHED_SERVICES {
                    cache.clear();
                }
                cache.insert(service.into(), expected.clone());
            }
        }
        expected
    }

    fn matched(&self, service: &str) -> Option<Uai> {
        let captures = self.regex.captures(service)?;
        Uai::parse(captures.name("uai")?.as_str())
    }

    /// Where the pattern's match ends when it starts at the very beginning of `service`.
    pub fn match_from_start(&self, service: &str) -> Option<usize> {
        self.regex
            .find(service)
            .filter(|m| m.start() == 0)
            .map(|m| m.end())
    }

    /// The pattern as written, for logs and `check-config`.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

/// The directory index (`--directory`): what the rules need of the académie's directory
/// and nothing more (no INE, no last name, no birth date).
///
/// * jointure → pupil, for ENTs that assert only a jointure (a pupil's own, or a parent
///   record's, which names that record's first child);
/// * principal → children, so a parent's siblings are known before the ENT happens to
///   assert them, and an asserted child that is not theirs shows
///   ([`PrincipalChildren::rules_out`]);
/// * what the chooser page may show of a pupil (first name, class) and an
///   establishment's name.
///
/// Pupils are stored once and referred to by position, which keeps a département
/// (65,000 pupils, 120,000 parent records) in a few tens of MiB (`docs/performance.md`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirectoryIndex {
    pupils: Vec<IndexedPupil>,
    by_key: HashMap<PupilKey, u32>,
    jointures: NameMap,
    principals: NameMap,
    children: Vec<ChildList>,
    establishments: HashMap<Uai, Box<str>>,
}

/// Name (a jointure, a login) → position. AAF jointures are digits: kept as numbers,
/// they cost no string of their own (a département has some 300,000 of them).
#[derive(Clone, Debug, Default, PartialEq)]
struct NameMap {
    numbers: HashMap<u64, u32>,
    texts: HashMap<Box<str>, u32>,
}

impl NameMap {
    /// The number a name is, when writing it back gives the same text (no sign, no
    /// leading zero, no overflow).
    fn number(name: &str) -> Option<u64> {
        let canonical = !name.is_empty()
            && name.len() <= 19
            && !name.starts_with('0')
            && name.bytes().all(|b| b.is_ascii_digit());
        canonical.then(|| name.parse().ok()).flatten()
    }

    fn get(&self, name: &str) -> Option<u32> {
        match Self::number(name) {
            Some(n) => self.numbers.get(&n).copied(),
            None => self.texts.get(name).copied(),
        }
    }

    /// Keeps an earlier position for `name`.
    fn insert_first(&mut self, name: &str, at: u32) {
        match Self::number(name) {
            Some(n) => {
                self.numbers.entry(n).or_insert(at);
            }
            None => {
                if !self.texts.contains_key(name) {
                    self.texts.insert(name.into(), at);
                }
            }
        }
    }

    fn insert(&mut self, name: &str, at: u32) {
        match Self::number(name) {
            Some(n) => {
                self.numbers.insert(n, at);
            }
            None => {
                self.texts.insert(name.into(), at);
            }
        }
    }

    fn len(&self) -> usize {
        self.numbers.len() + self.texts.len()
    }

    fn shrink_to_fit(&mut self) {
        self.numbers.shrink_to_fit();
        self.texts.shrink_to_fit();
    }
}

#[derive(Clone, Debug, PartialEq)]
struct IndexedPupil {
    key: PupilKey,
    label: Option<PupilLabel>,
}

/// One principal's children, as positions in `pupils`.
#[derive(Clone, Debug, PartialEq)]
struct ChildList {
    pupils: Box<[u32]>,
    complete: bool,
}

/// What the chooser page shows of a pupil: first name and class, nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PupilLabel {
    pub first_name: String,
    pub class: Option<String>,
}

/// What the directory says of one principal's children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrincipalChildren {
    pub children: Vec<PupilKey>,
    /// Whether the list covers every establishment: true when the principal is a parent
    /// account whose records were all grouped (an ENT login). A bare parent-record
    /// jointure speaks only for that record's establishment, since AAF records of one
    /// person are not linked across establishments.
    pub complete: bool,
}

impl PrincipalChildren {
    /// Whether the directory says `pupil` is not this principal's child: it is not
    /// listed, and the list speaks for the pupil's establishment (complete, or naming
    /// another child there). Never on partial knowledge: an unlinked record elsewhere
    /// must not make a sibling look like a stranger.
    pub fn rules_out(&self, pupil: &PupilKey) -> bool {
        !self.children.contains(pupil)
            && (self.complete || self.children.iter().any(|c| c.uai == pupil.uai))
    }
}

impl DirectoryIndex {
    /// Adds (or finds) a pupil; its position.
    pub fn add_pupil(&mut self, key: PupilKey, label: Option<PupilLabel>) -> u32 {
        if let Some(&at) = self.by_key.get(&key) {
            return at;
        }
        let at = u32::try_from(self.pupils.len()).unwrap_or(u32::MAX);
        self.by_key.insert(key.clone(), at);
        self.pupils.push(IndexedPupil { key, label });
        at
    }

    /// `jointure` (bare, no academy prefix) names `pupil`. The first wins.
    pub fn add_jointure(&mut self, jointure: &str, pupil: PupilKey) {
        let at = self.add_pupil(pupil, None);
        self.jointures.insert_first(jointure, at);
    }

    /// As [`Self::add_jointure`], for a pupil already added at `at`.
    pub(crate) fn add_jointure_at(&mut self, jointure: &str, at: u32) {
        self.jointures.insert_first(jointure, at);
    }

    /// Gives each of `principals` (a login, a bare record jointure) the list
    /// `children`; `complete` as in [`PrincipalChildren::complete`].
    pub fn add_principal<'a>(
        &mut self,
        principals: impl IntoIterator<Item = &'a str>,
        children: impl IntoIterator<Item = PupilKey>,
        complete: bool,
    ) {
        let pupils: Box<[u32]> = children
            .into_iter()
            .map(|key| self.add_pupil(key, None))
            .collect();
        self.add_principal_at(principals, pupils, complete);
    }

    /// As [`Self::add_principal`], for pupils already added at `pupils`.
    pub(crate) fn add_principal_at<'a>(
        &mut self,
        principals: impl IntoIterator<Item = &'a str>,
        pupils: Box<[u32]>,
        complete: bool,
    ) {
        let at = u32::try_from(self.children.len()).unwrap_or(u32::MAX);
        self.children.push(ChildList { pupils, complete });
        for principal in principals {
            self.principals.insert(principal, at);
        }
    }

    /// Names the establishment `uai`.
    pub fn add_establishment(&mut self, uai: Uai, name: &str) {
        self.establishments.insert(uai, name.into());
    }

    /// Sets a pupil's label (the pupil is added if new).
    pub fn set_label(&mut self, pupil: PupilKey, label: PupilLabel) {
        let at = self.add_pupil(pupil, None) as usize;
        if let Some(entry) = self.pupils.get_mut(at) {
            entry.label = Some(label);
        }
    }

    /// The pupil a bare jointure names.
    pub fn jointure(&self, jointure: &str) -> Option<&PupilKey> {
        self.jointures
            .get(jointure)
            .and_then(|at| self.pupils.get(at as usize))
            .map(|p| &p.key)
    }

    /// What the directory says of `principal`'s children: the `cas:user` byte-exact
    /// (an ENT login), else with the jointure prefixes stripped (an ENT that asserts a
    /// parent record's jointure as the user). `None` when it does not know them.
    pub fn principal(&self, principal: &str) -> Option<PrincipalChildren> {
        let list = self.list_of(principal)?;
        Some(PrincipalChildren {
            children: self.keys(list).cloned().collect(),
            complete: list.complete,
        })
    }

    /// The children the directory gives `principal`; none when it does not know them.
    pub fn children_of<'a>(&'a self, principal: &str) -> impl Iterator<Item = &'a PupilKey> + 'a {
        self.list_of(principal)
            .into_iter()
            .flat_map(move |list| self.keys(list))
    }

    pub fn label(&self, pupil: &PupilKey) -> Option<&PupilLabel> {
        self.by_key
            .get(pupil)
            .and_then(|&at| self.pupils.get(at as usize))
            .and_then(|p| p.label.as_ref())
    }

    /// The establishment's name (`ENTStructureNomCourant`), for the chooser, the report
    /// and the demo.
    pub fn establishment_name(&self, uai: &Uai) -> Option<&str> {
        self.establishments.get(uai).map(|name| &**name)
    }

    /// Pupils known (with or without a label).
    pub fn pupil_count(&self) -> usize {
        self.pupils.len()
    }

    /// Principals known (logins and record jointures).
    pub fn principal_count(&self) -> usize {
        self.principals.len()
    }

    pub fn establishment_count(&self) -> usize {
        self.establishments.len()
    }

    /// An estimate of the heap the index holds, in bytes: capacities times entry sizes,
    /// plus every string, plus the allocator's usual 16 bytes per allocation. A figure
    /// for `directory check` and `docs/performance.md`, not an exact count.
    pub fn heap_bytes(&self) -> usize {
        fn alloc(bytes: usize) -> usize {
            if bytes == 0 {
                0
            } else {
                bytes.div_ceil(16) * 16 + 16
            }
        }
        // hashbrown: one control byte per bucket besides the entry.
        fn table<K, V>(map: &HashMap<K, V>) -> usize {
            // `capacity` is 7/8 of the buckets.
            alloc(map.capacity() * 8 / 7 * (std::mem::size_of::<(K, V)>() + 1))
        }
        let key_heap = |key: &PupilKey| alloc(key.eleve_id.capacity());
        let label_heap = |label: &PupilLabel| {
            alloc(label.first_name.capacity())
                + label.class.as_ref().map_or(0, |c| alloc(c.capacity()))
        };
        let pupils = alloc(self.pupils.capacity() * std::mem::size_of::<IndexedPupil>())
            + self
                .pupils
                .iter()
                .map(|p| key_heap(&p.key) + p.label.as_ref().map_or(0, label_heap))
                .sum::<usize>();
        let by_key = table(&self.by_key) + self.by_key.keys().map(key_heap).sum::<usize>();
        let strings = |map: &NameMap| {
            table(&map.numbers)
                + table(&map.texts)
                + map.texts.keys().map(|k| alloc(k.len())).sum::<usize>()
        };
        let children = alloc(self.children.capacity() * std::mem::size_of::<ChildList>())
            + self
                .children
                .iter()
                .map(|c| alloc(c.pupils.len() * 4))
                .sum::<usize>();
        let establishments = table(&self.establishments)
            + self
                .establishments
                .values()
                .map(|n| alloc(n.len()))
                .sum::<usize>();
        pupils
            + by_key
            + strings(&self.jointures)
            + strings(&self.principals)
            + children
            + establishments
    }

    /// Drops spare capacity once loading is done.
    pub fn shrink_to_fit(&mut self) {
        self.pupils.shrink_to_fit();
        self.by_key.shrink_to_fit();
        self.jointures.shrink_to_fit();
        self.principals.shrink_to_fit();
        self.children.shrink_to_fit();
        self.establishments.shrink_to_fit();
    }

    fn list_of(&self, principal: &str) -> Option<&ChildList> {
        let at = match self.principals.get(principal) {
            Some(at) => at,
            None => self
                .principals
                .get(strip_jointure(principal, &ExtractionRules::default()))?,
        };
        self.children.get(at as usize)
    }

    fn keys<'a>(&'a self, list: &'a ChildList) -> impl Iterator<Item = &'a PupilKey> + 'a {
        list.pupils
            .iter()
            .filter_map(|&at| self.pupils.get(at as usize))
            .map(|p| &p.key)
    }
}

/// The directory index the proxy reads, shared by every worker and swapped whole by a
/// reload (SIGHUP) without a lock: a request keeps the index it started with, the next
/// one gets the new one, and none waits or is dropped.
#[derive(Clone, Default)]
pub struct SharedIndex(Arc<arc_swap::ArcSwapOption<DirectoryIndex>>);

impl SharedIndex {
    pub fn new(index: Option<DirectoryIndex>) -> Self {
        Self(Arc::new(arc_swap::ArcSwapOption::new(index.map(Arc::new))))
    }

    /// The current index, kept alive for as long as the caller holds it.
    pub fn load(&self) -> Option<Arc<DirectoryIndex>> {
        self.0.load_full()
    }

    /// Replaces the index for every holder of this handle.
    pub fn store(&self, index: DirectoryIndex) {
        self.0.store(Some(Arc::new(index)));
    }
}

impl From<DirectoryIndex> for SharedIndex {
    fn from(index: DirectoryIndex) -> Self {
        Self::new(Some(index))
    }
}

impl From<Option<DirectoryIndex>> for SharedIndex {
    fn from(index: Option<DirectoryIndex>) -> Self {
        Self::new(index)
    }
}

impl std::fmt::Debug for SharedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.load() {
            Some(index) => write!(
                f,
                "SharedIndex({} pupils, {} principals)",
                index.pupil_count(),
                index.principal_count()
            ),
            None => f.write_str("SharedIndex(none)"),
        }
    }
}

/// Extraction rules, in order. Configurable; defaults in `docs/domain.md`, "Pupil keys".
#[derive(Clone, Debug)]
pub struct ExtractionRules {
    /// Attribute names tried for rule 2's UAI.
    pub uai_attributes: Vec<String>,
    /// Prefixes stripped from jointures before the index lookup.
    pub jointure_prefixes: Vec<String>,
}

impl Default for EstablishmentPattern {
    fn default() -> Self {
        // The constant is covered by a unit test; failing here would be a build defect.
        Self::compiled(
            regex::Regex::new(Self::DEFAULT).unwrap_or_else(|e| panic!("DEFAULT pattern: {e}")),
        )
    }
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
    let mut found = Designations::default();
    by_freduvecteur(assertion, &mut found);
    if found.0.is_empty() {
        by_struct_rattach_id(assertion, rules, &mut found);
    }
    if found.0.is_empty() {
        if let Some(index) = index {
            by_jointure(assertion, rules, index, &mut found);
        }
    }
    found
}

/// Attribute name of the pupil id used by rule 2 and the jointure used by rule 3.
const STRUCT_RATTACH_ID: &str = "ENTEleveStructRattachId";
const JOINTURE: &str = "ENTPersonJointure";
/// Separator some ENTs use to pack several values into one attribute (entcore `;`).
const VALUE_SEPARATOR: char = ';';

/// Values of `name`, matched case-insensitively (the académie chain upper-cases names:
/// `ENTELEVESTRUCTRATTACHID`), each split on the `;` separator, in assertion order.
fn values_named<'a>(assertion: &'a Assertion, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    values_where(assertion, move |n| n.eq_ignore_ascii_case(name))
}

/// Values of the attributes whose name `named` accepts, split as [`values_named`]'s.
fn values_where<'a>(
    assertion: &'a Assertion,
    named: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    assertion
        .attributes
        .iter()
        .filter(move |(n, _)| named(n))
        .flat_map(|(_, v)| v.split(VALUE_SEPARATOR))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

// === impl Designations ===

impl Designations {
    /// Adds a pupil unless already named (ENTs repeat attributes inside and outside
    /// `cas:attributes`), keeping the first occurrence's position.
    fn add(&mut self, key: PupilKey, rule: PupilRule, first_name: Option<String>) {
        if !self.0.iter().any(|d| d.key == key) {
            self.0.push(Designation {
                key,
                rule,
                first_name,
            });
        }
    }
}

/// One FrEduVecteur value `profil|nom|prénom|ELEVE_ID|UAI`, split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrEduVecteur<'a> {
    /// 1–2 parent (ids are the child's), 3–4 pupil.
    pub profil: u8,
    pub first_name: &'a str,
    pub eleve_id: &'a str,
    pub uai: &'a str,
}

impl<'a> FrEduVecteur<'a> {
    /// Matches rule 1's `^[1-4]\|[^|]*\|[^|]*\|(\d+)\|(\d{7}[A-Z])$` by hand: it runs on
    /// every attribute value of every validation, and most values fail on the first two
    /// bytes (a test checks equivalence with the regex).
    pub fn parse(value: &'a str) -> Option<Self> {
        let bytes = value.as_bytes();
        let profil = match bytes.first() {
            Some(b @ b'1'..=b'4') => b - b'0',
            _ => return None,
        };
        if bytes.get(1) != Some(&b'|') {
            return None;
        }
        let mut fields = value.get(2..)?.split('|');
        let _last_name = fields.next()?;
        let first_name = fields.next()?;
        let eleve_id = fields.next()?;
        let uai = fields.next()?;
        if fields.next().is_some() {
            return None;
        }
        let id_ok = !eleve_id.is_empty() && eleve_id.bytes().all(|b| b.is_ascii_digit());
        let uai_bytes = uai.as_bytes();
        let uai_ok = uai_bytes.len() == 8
            && uai_bytes[..7].iter().all(u8::is_ascii_digit)
            && uai_bytes[7].is_ascii_uppercase();
        (id_ok && uai_ok).then_some(Self {
            profil,
            first_name,
            eleve_id,
            uai,
        })
    }

    pub fn is_parent(&self) -> bool {
        self.profil <= 2
    }
}

/// Rule 1: every FrEduVecteur-shaped value of any attribute.
fn by_freduvecteur(assertion: &Assertion, found: &mut Designations) {
    // Most values hold no `|`: not even split.
    let vectors: Vec<FrEduVecteur<'_>> = assertion
        .attributes
        .with_value_holding(b'|')
        .flat_map(|(_, value)| value.split(VALUE_SEPARATOR))
        .filter_map(|part| FrEduVecteur::parse(part.trim()))
        .collect();
    let names_are_the_childrens = children_named_in_vectors(assertion, &vectors);
    for v in vectors {
        let Some(uai) = Uai::parse(v.uai) else {
            continue;
        };
        let key = PupilKey {
            uai,
            eleve_id: v.eleve_id.to_owned(),
        };
        let first_name = (names_are_the_childrens && v.is_parent())
            .then(|| shown_first_name(v.first_name))
            .flatten();
        found.add(key, PupilRule::FrEduVecteur, first_name);
    }
}

/// Attributes naming the person who logged in (`prenom` in OSE and entcore, LDAP's
/// `givenName`).
const HOLDER_FIRST_NAMES: [&str; 3] = ["prenom", "givenName", "firstName"];

/// Longest first name kept for the chooser (a session holds ≤ 1 KiB).
const MAX_FIRST_NAME: usize = 40;

/// Whether the name fields of a parent's FrEduVecteur values are the children's. The
/// national chain and entcore write the *holder's* names there (`2|MARTIN|Claire|…` for
/// each of Claire's children), and naming every child "Claire" on the chooser would be
/// worse than naming none; some ENTs write each child's. The names are taken as the
/// children's only when the assertion shows it: two values with different first names
/// (one person has one first name), or first names that all differ from the holder's
/// own (`prenom`, `givenName`).
fn children_named_in_vectors(assertion: &Assertion, vectors: &[FrEduVecteur<'_>]) -> bool {
    let names = || {
        vectors
            .iter()
            .filter(|v| v.is_parent())
            .map(|v| v.first_name.trim())
    };
    let Some(first) = names().next() else {
        return false;
    };
    if names().any(str::is_empty) {
        return false;
    }
    if names().any(|n| !same_first_name(n, first)) {
        return true;
    }
    // Every parent value names `first`: the children's names unless it is the holder's.
    // In any order, so one walk over the attributes finds every holder name.
    let mut holder = values_where(assertion, |name| {
        HOLDER_FIRST_NAMES
            .iter()
            .any(|holder| name.eq_ignore_ascii_case(holder))
    })
    .peekable();
    holder.peek().is_some() && holder.all(|h| !same_first_name(h, first))
}

/// Whether two first names are the same but for case (Unicode lower case); without
/// lower-cased copies for ASCII names, which most are.
fn same_first_name(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Longest class name kept (a session stays small).
const MAX_CLASS: usize = 20;

/// The class an assertion names for the pupil it designates (`ENTEleveClasses`,
/// `<structure jointure>$<class>`, `docs/domain.md`): the class after the last `$`,
/// only when the assertion names exactly one, so that it cannot be another child's.
pub fn asserted_class(assertion: &Assertion) -> Option<String> {
    let mut classes = values_named(assertion, "ENTEleveClasses").map(|value| {
        let class = value.rsplit('$').next().unwrap_or(value).trim();
        class
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_CLASS)
            .collect::<String>()
    });
    let class = classes.next().filter(|c| !c.is_empty())?;
    classes.all(|other| other == class).then_some(class)
}

/// A first name as the chooser may show it: trimmed, at most [`MAX_FIRST_NAME`]
/// characters, none when blank.
fn shown_first_name(raw: &str) -> Option<String> {
    let name: String = raw.trim().chars().take(MAX_FIRST_NAME).collect();
    (!name.is_empty()).then_some(name)
}

/// Rule 2: `ENTEleveStructRattachId` values, with the first UAI attribute that holds a UAI.
fn by_struct_rattach_id(assertion: &Assertion, rules: &ExtractionRules, found: &mut Designations) {
    let Some(uai) = rules
        .uai_attributes
        .iter()
        .find_map(|name| values_named(assertion, name).find_map(Uai::parse))
    else {
        return;
    };
    for id in values_named(assertion, STRUCT_RATTACH_ID) {
        if id.bytes().all(|b| b.is_ascii_digit()) {
            let key = PupilKey {
                uai: uai.clone(),
                eleve_id: id.to_owned(),
            };
            found.add(key, PupilRule::StructRattachId, None);
        }
    }
}

/// Rule 3: jointures (`ENTPersonJointure`, else the principal), prefixes stripped,
/// looked up in the directory index.
fn by_jointure(
    assertion: &Assertion,
    rules: &ExtractionRules,
    index: &DirectoryIndex,
    found: &mut Designations,
) {
    let candidates =
        values_named(assertion, JOINTURE).chain(std::iter::once(assertion.principal.as_str()));
    for raw in candidates {
        if let Some(key) = index.jointure(strip_jointure(raw, rules)) {
            found.add(key.clone(), PupilRule::Jointure, None);
        }
    }
}

/// Strips `{AAF}04|…|` (EduConnect `FrEduCtRefId`: the jointure is the last field) and
/// then the first configured prefix that matches (`AC-BORDEAUX$`, `BORDEAUX-`).
pub fn strip_jointure<'a>(raw: &'a str, rules: &ExtractionRules) -> &'a str {
    let value = match raw.strip_prefix('{') {
        Some(rest) if rest.contains('}') => raw.rsplit('|').next().unwrap_or(raw),
        _ => raw,
    };
    rules
        .jointure_prefixes
        .iter()
        .find_map(|p| value.strip_prefix(p.as_str()))
        .unwrap_or(value)
}

/// Parent, pupil or staff: from `categories` (`National_1`…), the FrEduVecteur profil,
/// else the service page (`parent.html`, `eleve.html`).
pub fn principal_kind(assertion: &Assertion, service: &str) -> PrincipalKind {
    let page = page_kind(service);
    let mut from_categories = values_named(assertion, "categories").filter_map(category_kind);
    if let Some(first) = from_categories.next() {
        // Several profiles (`National_1;National_2`): the service page breaks the tie.
        let page_listed = first == page || from_categories.any(|kind| kind == page);
        return if page_listed { page } else { first };
    }
    let from_vector = assertion
        .attributes
        .iter()
        .flat_map(|(_, v)| v.split(VALUE_SEPARATOR))
        .find_map(|v| FrEduVecteur::parse(v.trim()));
    match from_vector {
        Some(v) if v.is_parent() => PrincipalKind::Parent,
        Some(_) => PrincipalKind::Pupil,
        None => page,
    }
}

/// `National_1` pupil, `National_2` parent, `National_3`… staff (entcore, Laclasse).
fn category_kind(category: &str) -> Option<PrincipalKind> {
    match category.strip_prefix("National_")? {
        "1" => Some(PrincipalKind::Pupil),
        "2" => Some(PrincipalKind::Parent),
        n if n.parse::<u8>().is_ok_and(|n| (3..=7).contains(&n)) => Some(PrincipalKind::Staff),
        _ => None,
    }
}

/// The Pronote espace a service URL names: `…/pronote/parent.html`, `mobile.eleve.html`.
fn page_kind(service: &str) -> PrincipalKind {
    // A byte scan: the two marks are ASCII (a `char` pattern set decodes every char).
    let path = service
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .and_then(|end| service.get(..end))
        .unwrap_or(service);
    let page = path.rsplit('/').next().unwrap_or(path);
    let page = page.strip_prefix("mobile.").unwrap_or(page);
    match page {
        "parent.html" => PrincipalKind::Parent,
        "eleve.html" => PrincipalKind::Pupil,
        "professeur.html" | "viescolaire.html" | "direction.html" | "accompagnant.html" => {
            PrincipalKind::Staff
        }
        _ => PrincipalKind::Unknown,
    }
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
    let make = |pupil: &PupilKey, source| Intent {
        pupil: pupil.clone(),
        source,
    };
    if let Some(pin) = pin {
        return Some(make(pin, IntentSource::Pin));
    }
    if let Some(expected) = expected {
        let mut in_establishment = known.iter().filter(|k| &k.uai == expected);
        if let (Some(only), None) = (in_establishment.next(), in_establishment.next()) {
            return Some(make(only, IntentSource::OnlyInEstablishment));
        }
    }
    // A sticky pupil from another establishment says nothing about this one.
    sticky
        .filter(|s| expected.map_or(true, |e| &s.uai == e))
        .map(|s| make(s, IntentSource::Sticky))
}

#[cfg(test)]
mod tests {
    #[test]
    fn asserted_class_is_the_one_class_after_the_dollar() {
        let with = |values: &[&str]| {
            let mut a = Assertion::default();
            for v in values {
                a.attributes.push("ENTEleveClasses", *v);
            }
            asserted_class(&a)
        };
        assert_eq!(with(&["0330001A$4EME B"]).as_deref(), Some("4EME B"));
        assert_eq!(with(&["4B"]).as_deref(), Some("4B"));
        assert_eq!(with(&["52006$4B", "52006$4B"]).as_deref(), Some("4B"));
        assert_eq!(with(&["52006$4B", "52006$3C"]), None, "whose would it be?");
        assert_eq!(with(&["52006$"]), None);
        assert_eq!(with(&[]), None);
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uai_is_seven_digits_and_a_letter_upper_cased() {
        assert_eq!(Uai::parse("0330012a").unwrap().as_str(), "0330012A");
        assert_eq!(Uai::parse("0330012A").unwrap().as_str(), "0330012A");
        for bad in [
            "",
            "033001A",
            "03300120",
            "0330012AB",
            "a330012A",
            "0330012é",
            "٠٣٣٠٠١٢A",
        ] {
            assert!(Uai::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn default_establishment_pattern_reads_the_pronote_host() {
        let p = EstablishmentPattern::default();
        let uai = p.expected("https://0330012a.index-education.net/pronote/parent.html");
        assert_eq!(uai.unwrap().as_str(), "0330012A");
        assert_eq!(
            p.expected("HTTPS://0330012A.INDEX-EDUCATION.NET/pronote/")
                .unwrap()
                .as_str(),
            "0330012A"
        );
        assert!(p
            .expected("https://evil.example/0330012a.index-education.net/")
            .is_none());
        assert!(p
            .expected("https://0330012a.index-education.net.evil/")
            .is_none());
        assert_eq!(
            EstablishmentPattern::new(EstablishmentPattern::DEFAULT)
                .unwrap()
                .as_str(),
            EstablishmentPattern::DEFAULT
        );
    }

    #[test]
    fn a_remembered_service_answers_as_the_regex_did() {
        let p = EstablishmentPattern::default();
        for service in [
            "https://0330012a.index-education.net/pronote/",
            "https://evil.example/0330012a.index-education.net/",
        ] {
            let first = p.expected(service);
            assert_eq!(p.cache.lock().unwrap().get(service), Some(&first));
            assert_eq!(p.expected(service), first);
            assert_eq!(p.clone().expected(service), p.matched(service));
        }
    }

    #[test]
    fn a_flood_of_distinct_service_urls_keeps_the_establishment_memory_bounded() {
        let p = EstablishmentPattern::default();
        for n in 0..3 * CACHED_SERVICES {
            let service = format!("https://{n:07}a.index-education.net/pronote/");
            assert_eq!(p.expected(&service).unwrap().as_str(), format!("{n:07}A"));
            assert!(p.cache.lock().unwrap().len() <= CACHED_SERVICES);
        }
        let long = format!("https://0330012a.index-education.net/{}", "a".repeat(600));
        assert!(p.expected(&long).is_some());
        assert!(!p.cache.lock().unwrap().contains_key(long.as_str()));
    }

    #[test]
    fn establishment_pattern_errors_name_what_is_wrong() {
        assert!(EstablishmentPattern::new("(")
            .unwrap_err()
            .contains("not a valid regex"));
        assert!(EstablishmentPattern::new(r"(\d{7}[a-z])")
            .unwrap_err()
            .contains("named group `uai`"));
        let custom =
            EstablishmentPattern::new(r"^https://pronote\.example/(?P<uai>\d{7}[A-Z])/").unwrap();
        assert_eq!(
            custom
                .expected("https://pronote.example/0330012A/eleve.html")
                .unwrap()
                .as_str(),
            "0330012A"
        );
    }

    proptest! {
        /// The hand-written matcher agrees with rule 1's regex on arbitrary values
        /// and on values shaped like FrEduVecteur.
        #[test]
        fn freduvecteur_matcher_agrees_with_the_regex(
            value in prop_oneof![
                any::<String>(),
                "[0-5]\\|[A-Z|é]{0,4}\\|[a-z|]{0,4}\\|[0-9a|]{0,8}\\|[0-9]{6,8}[A-Za-z]{0,2}",
            ]
        ) {
            let regex = regex::Regex::new(r"^[1-4]\|[^|]*\|[^|]*\|(\d+)\|(\d{7}[A-Z])$").unwrap();
            let ours = FrEduVecteur::parse(&value).map(|v| (v.eleve_id.to_owned(), v.uai.to_owned()));
            let theirs = regex.captures(&value).map(|c| (c[1].to_owned(), c[2].to_owned()));
            // `\d` is Unicode in the regex crate; the UAI and ELEVE_ID are ASCII digits.
            let ascii = value.is_ascii();
            if ascii {
                prop_assert_eq!(ours, theirs);
            } else if ours.is_some() {
                prop_assert!(theirs.is_some());
            }
        }
    }
}
