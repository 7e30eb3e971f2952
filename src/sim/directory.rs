//! An AAF-shaped directory for the simulators: establishments, pupils and parents with
//! one `PersRelEleve` record per establishment where they have a child.
//!
//! Generated from a seed (same seed, same directory, byte for byte) or loaded from a
//! TOML/JSON file, so a DSI can describe its own test accounts. Every name comes from a
//! built-in list of common French names and every identifier is synthetic: nothing here
//! is anyone's data.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::pupil::{DirectoryIndex, PupilKey, PupilLabel, Uai};

/// Why a directory could not be loaded, saved or used.
///
/// Parse errors carry a position only: the parsers' own messages quote the offending
/// value, which may be a name or a password.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read or write the directory file: {0}")]
    Io(#[from] std::io::Error),
    #[error("directory file is not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("directory file is not valid TOML (byte {offset})")]
    Toml { offset: usize },
    #[error("directory cannot be written: {0}")]
    Write(String),
    #[error("directory file name must end in .toml or .json")]
    UnknownFormat,
    /// The file parsed but describes an impossible directory; the message names the entry
    /// by its position, never by a person's name.
    #[error("inconsistent directory: {0}")]
    Inconsistent(String),
}

impl DirectoryError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::Io(_) => "sim.directory.io",
            DirectoryError::Json { .. } => "sim.directory.json",
            DirectoryError::Toml { .. } => "sim.directory.toml",
            DirectoryError::Write(_) => "sim.directory.write",
            DirectoryError::UnknownFormat => "sim.directory.format",
            DirectoryError::Inconsistent(_) => "sim.directory.inconsistent",
        }
    }
}

/// School level, which decides the FrEduVecteur profil of a pupil's parents
/// (1 = parent of a 1st-degree pupil, 2 = of a 2nd-degree pupil).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstablishmentKind {
    Ecole,
    College,
    Lycee,
}

/// One establishment (AAF `EtabEducNat`), with its own Pronote instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Establishment {
    /// `ENTStructureUAI`, upper case (`0330012A`).
    pub uai: String,
    /// `ENTStructureJointure`: the structure id pupils' `ENTPersonStructRattach` names.
    pub struct_jointure: String,
    /// `ENTStructureNomCourant`, shown on the Pronote page.
    pub name: String,
    pub kind: EstablishmentKind,
}

/// One pupil (AAF `Eleve`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pupil {
    /// `ENTPersonJointure`: the AAF id parents' records list in `ENTAuxPersRelEleveEleve`.
    pub jointure: String,
    /// `ENTEleveStructRattachId`: the SIECLE id that FrEduVecteur carries.
    pub eleve_id: String,
    /// `ENTEleveINE`, in a deliberately fake format (`SIM` + 7 digits + a letter).
    pub ine: String,
    pub last_name: String,
    pub first_name: String,
    /// `ENTPersonDateNaissance`, `dd/mm/yyyy`.
    pub birth_date: String,
    /// UAI of the establishment the pupil attends.
    pub uai: String,
    /// Class code (`ENTEleveClasses` without the structure prefix), e.g. `4B`.
    pub class: String,
}

/// One AAF `PersRelEleve` record: a parent as one establishment knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationRecord {
    /// This record's own `ENTPersonJointure`.
    pub jointure: String,
    /// The establishment of this record's children.
    pub uai: String,
    /// `ENTAuxPersRelEleveEleve`: the pupils' jointures.
    pub children: Vec<String>,
}

/// A parent with an account on the test ENT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// ENT login (`prenom.nom`, `2`, `3`… for homonyms): the CAS principal.
    pub login: String,
    /// Test password, in clear: these are throw-away accounts of a test ENT.
    pub password: String,
    pub last_name: String,
    pub first_name: String,
    /// The children's jointures, in the order the directory chain lists them (FrEduVecteur
    /// order; the `first` pick takes the first).
    pub children: Vec<String>,
    /// One record per establishment where the parent has a child.
    pub records: Vec<RelationRecord>,
}

/// What a directory file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryData {
    pub establishments: Vec<Establishment>,
    pub pupils: Vec<Pupil>,
    pub parents: Vec<Parent>,
}

/// How to generate a directory.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryParams {
    /// Number of establishments (at least 2 when families span two).
    pub establishments: usize,
    /// Number of families, one parent account each.
    pub families: usize,
    /// Relative weights of families with 1, 2, 3, … children (the last entry is "that
    /// many or more"; here exactly that many, at most 5: one per collège birth year).
    /// Default 42/38/14/6.
    pub children_weights: Vec<f64>,
    /// Share of multi-child families whose children attend two establishments.
    pub two_establishments: f64,
}

impl Default for DirectoryParams {
    fn default() -> Self {
        Self {
            establishments: 6,
            families: 200,
            children_weights: vec![42.0, 38.0, 14.0, 6.0],
            two_establishments: 0.40,
        }
    }
}

/// A validated directory with lookup indexes.
#[derive(Clone, Debug)]
pub struct Directory {
    data: DirectoryData,
    /// login → parent position.
    parents_by_login: HashMap<String, usize>,
    /// pupil jointure → pupil position.
    pupils_by_jointure: HashMap<String, usize>,
    /// (UAI, ELEVE_ID) → pupil position.
    pupils_by_key: HashMap<(String, String), usize>,
    /// UAI → establishment position.
    establishments_by_uai: HashMap<String, usize>,
}

/// One test login the demo can run: a parent going to the Pronote of one child's
/// establishment, meaning that child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentVisit {
    pub login: String,
    pub password: String,
    /// The child the parent means (the intent).
    pub intended: PupilRef,
    /// The Pronote parent page of the intended child's establishment.
    pub pronote_url: Url,
    /// How many children the parent has in all.
    pub children: usize,
    /// How many establishments those children attend.
    pub establishments: usize,
}

/// A pupil as the demo and tests name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PupilRef {
    pub uai: String,
    pub eleve_id: String,
}

// === impl PupilRef ===

impl PupilRef {
    /// The crate's pupil key, when the UAI is well formed (always, for a validated directory).
    pub fn key(&self) -> Option<PupilKey> {
        Some(PupilKey {
            uai: Uai::parse(&self.uai)?,
            eleve_id: self.eleve_id.clone(),
        })
    }
}

// === impl Pupil ===

impl Pupil {
    pub fn reference(&self) -> PupilRef {
        PupilRef {
            uai: self.uai.clone(),
            eleve_id: self.eleve_id.clone(),
        }
    }
}

// === impl Directory ===

impl Directory {
    /// Generates a directory; the same `params` and `seed` always give the same result.
    pub fn generate(params: &DirectoryParams, seed: u64) -> Self {
        let data = Generator::new(seed).run(params);
        match Self::from_data(data) {
            Ok(directory) => directory,
            // The generator only builds consistent data; an empty directory is the
            // harmless answer should that ever break.
            Err(_) => Self::empty(),
        }
    }

    fn empty() -> Self {
        Self {
            data: DirectoryData::default(),
            parents_by_login: HashMap::new(),
            pupils_by_jointure: HashMap::new(),
            pupils_by_key: HashMap::new(),
            establishments_by_uai: HashMap::new(),
        }
    }

    /// Checks `data` and builds the indexes.
    pub fn from_data(data: DirectoryData) -> Result<Self, DirectoryError> {
        let bad = |what: String| Err(DirectoryError::Inconsistent(what));
        let mut establishments_by_uai = HashMap::new();
        for (i, establishment) in data.establishments.iter().enumerate() {
            if !is_uai(&establishment.uai) {
                return bad(format!(
                    "establishments[{i}].uai is not 7 digits and an upper-case letter"
                ));
            }
            if establishments_by_uai
                .insert(establishment.uai.clone(), i)
                .is_some()
            {
                return bad(format!("establishments[{i}].uai is a duplicate"));
            }
        }
        let mut pupils_by_jointure = HashMap::new();
        let mut pupils_by_key = HashMap::new();
        for (i, pupil) in data.pupils.iter().enumerate() {
            if !establishments_by_uai.contains_key(&pupil.uai) {
                return bad(format!("pupils[{i}].uai names no establishment"));
            }
            if pupil.eleve_id.is_empty() || !pupil.eleve_id.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!("pupils[{i}].eleve_id must be digits"));
            }
            if pupils_by_jointure
                .insert(pupil.jointure.clone(), i)
                .is_some()
            {
                return bad(format!("pupils[{i}].jointure is a duplicate"));
            }
            if pupils_by_key
                .insert((pupil.uai.clone(), pupil.eleve_id.clone()), i)
                .is_some()
            {
                return bad(format!(
                    "pupils[{i}].eleve_id is a duplicate in its establishment"
                ));
            }
        }
        let mut parents_by_login = HashMap::new();
        for (i, parent) in data.parents.iter().enumerate() {
            if parents_by_login.insert(parent.login.clone(), i).is_some() {
                return bad(format!("parents[{i}].login is a duplicate"));
            }
            if parent.children.is_empty() {
                return bad(format!("parents[{i}] has no child"));
            }
            for child in &parent.children {
                let Some(&p) = pupils_by_jointure.get(child) else {
                    return bad(format!("parents[{i}].children names an unknown pupil"));
                };
                let in_records = parent
                    .records
                    .iter()
                    .filter(|r| r.uai == data.pupils[p].uai && r.children.contains(child))
                    .count();
                if in_records != 1 {
                    return bad(format!(
                        "parents[{i}]: each child must be in exactly one record of its establishment"
                    ));
                }
            }
            if parent
                .records
                .iter()
                .flat_map(|r| &r.children)
                .any(|c| !parent.children.contains(c))
            {
                return bad(format!(
                    "parents[{i}].records name a child missing from children"
                ));
            }
        }
        Ok(Self {
            data,
            parents_by_login,
            pupils_by_jointure,
            pupils_by_key,
            establishments_by_uai,
        })
    }

    /// Reads a `.toml` or `.json` directory file.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path)?;
        let data: DirectoryData = match extension(path) {
            Some("toml") => toml::from_str(&text).map_err(|e| DirectoryError::Toml {
                offset: e.span().map_or(0, |span| span.start),
            })?,
            Some("json") => serde_json::from_str(&text).map_err(|e| DirectoryError::Json {
                line: e.line(),
                column: e.column(),
            })?,
            _ => return Err(DirectoryError::UnknownFormat),
        };
        Self::from_data(data)
    }

    /// Writes a `.toml` or `.json` directory file.
    pub fn save(&self, path: &Path) -> Result<(), DirectoryError> {
        let text = match extension(path) {
            Some("toml") => toml::to_string_pretty(&self.data)
                .map_err(|e| DirectoryError::Write(e.to_string()))?,
            Some("json") => serde_json::to_string_pretty(&self.data)
                .map_err(|e| DirectoryError::Write(e.to_string()))?,
            _ => return Err(DirectoryError::UnknownFormat),
        };
        std::fs::write(path, text)?;
        Ok(())
    }

    pub fn data(&self) -> &DirectoryData {
        &self.data
    }

    pub fn establishments(&self) -> &[Establishment] {
        &self.data.establishments
    }

    pub fn parents(&self) -> &[Parent] {
        &self.data.parents
    }

    pub fn pupils(&self) -> &[Pupil] {
        &self.data.pupils
    }

    pub fn parent(&self, login: &str) -> Option<&Parent> {
        self.parents_by_login
            .get(login)
            .and_then(|&i| self.data.parents.get(i))
    }

    pub fn pupil_by_jointure(&self, jointure: &str) -> Option<&Pupil> {
        self.pupils_by_jointure
            .get(jointure)
            .and_then(|&i| self.data.pupils.get(i))
    }

    /// The pupil `eleve_id` of establishment `uai` (`uai` in any case).
    pub fn pupil(&self, uai: &str, eleve_id: &str) -> Option<&Pupil> {
        self.pupils_by_key
            .get(&(uai.to_ascii_uppercase(), eleve_id.to_owned()))
            .and_then(|&i| self.data.pupils.get(i))
    }

    /// The establishment `uai` (any case).
    pub fn establishment(&self, uai: &str) -> Option<&Establishment> {
        self.establishments_by_uai
            .get(&uai.to_ascii_uppercase())
            .and_then(|&i| self.data.establishments.get(i))
    }

    /// A parent's children, in order.
    pub fn children_of<'a>(&'a self, parent: &'a Parent) -> impl Iterator<Item = &'a Pupil> + 'a {
        parent
            .children
            .iter()
            .filter_map(|jointure| self.pupil_by_jointure(jointure))
    }

    /// The parent's record for `uai`.
    pub fn record_for<'a>(&self, parent: &'a Parent, uai: &str) -> Option<&'a RelationRecord> {
        parent.records.iter().find(|r| r.uai == uai)
    }

    /// The FrEduVecteur value the directory chain gives `parent` for `child`:
    /// `profil|nom|prénom|ELEVE_ID|UAI`, names the parent's own, id and UAI the child's.
    pub fn vector(&self, parent: &Parent, child: &Pupil) -> String {
        let profil = match self.establishment(&child.uai).map(|e| e.kind) {
            Some(EstablishmentKind::Ecole) => 1,
            _ => 2,
        };
        format!(
            "{profil}|{}|{}|{}|{}",
            parent.last_name, parent.first_name, child.eleve_id, child.uai
        )
    }

    /// The directory index the proxy can load: each pupil's jointure, each parent
    /// record's jointure → its first child, each parent login → its children, and each
    /// pupil's first name and class and each establishment's name (the chooser page).
    pub fn index(&self) -> DirectoryIndex {
        let mut index = DirectoryIndex::default();
        for establishment in &self.data.establishments {
            if let Some(uai) = Uai::parse(&establishment.uai) {
                index.establishments.insert(uai, establishment.name.clone());
            }
        }
        for pupil in &self.data.pupils {
            if let Some(key) = pupil.reference().key() {
                index.jointures.insert(pupil.jointure.clone(), key.clone());
                index.labels.insert(
                    key,
                    PupilLabel {
                        first_name: pupil.first_name.clone(),
                        class: Some(pupil.class.clone()),
                    },
                );
            }
        }
        for parent in &self.data.parents {
            for record in &parent.records {
                let first = record
                    .children
                    .first()
                    .and_then(|j| self.pupil_by_jointure(j));
                if let Some(key) = first.and_then(|p| p.reference().key()) {
                    index.jointures.insert(record.jointure.clone(), key);
                }
            }
            let children = self
                .children_of(parent)
                .filter_map(|p| p.reference().key())
                .collect();
            index.children.insert(parent.login.clone(), children);
        }
        index
    }

    /// Every (parent, child) login the demo can run, parents in directory order and
    /// children in FrEduVecteur order; each aims at the Pronote of the child's
    /// establishment under `pronote_base` (see [`pronote_url`]).
    pub fn visits(&self, pronote_base: &Url) -> Vec<ParentVisit> {
        let mut visits = Vec::new();
        for parent in &self.data.parents {
            let children: Vec<&Pupil> = self.children_of(parent).collect();
            let establishments = children
                .iter()
                .map(|c| c.uai.as_str())
                .collect::<HashSet<_>>()
                .len();
            for child in &children {
                let Some(pronote_url) = pronote_url(pronote_base, &child.uai) else {
                    continue;
                };
                visits.push(ParentVisit {
                    login: parent.login.clone(),
                    password: parent.password.clone(),
                    intended: child.reference(),
                    pronote_url,
                    children: children.len(),
                    establishments,
                });
            }
        }
        visits
    }
}

/// The path-style Pronote parent page of `uai` under `base`:
/// `http://127.0.0.1:PORT/0330012a/pronote/parent.html`.
pub fn pronote_url(base: &Url, uai: &str) -> Option<Url> {
    base.join(&format!(
        "/{}/pronote/parent.html",
        uai.to_ascii_lowercase()
    ))
    .ok()
}

fn extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

/// `^\d{7}[A-Z]$`
fn is_uai(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 8 && bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7].is_ascii_uppercase()
}

// === impl Generator ===

/// The seeded generator: one RNG, consumed in a fixed order.
struct Generator {
    rng: StdRng,
    /// Identifiers already handed out (jointures, ELEVE_IDs, UAIs, INE), so all are unique.
    used: HashSet<String>,
    logins: HashMap<String, usize>,
}

const FIRST_NAMES: &[&str] = &[
    "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Louis", "Emma", "Gabriel", "Camille", "Jules",
    "Inès", "Arthur", "Jade", "Nathan", "Louise", "Raphaël", "Zoé", "Tom", "Alice", "Théo", "Lina",
    "Paul", "Sarah", "Noah", "Anna", "Maël", "Juliette", "Adam", "Rose", "Sacha", "Clara",
    "Victor", "Lou", "Ethan", "Agathe", "Mathis", "Romane", "Nolan", "Eva", "Timéo",
];

const PARENT_FIRST_NAMES: &[&str] = &[
    "Claire",
    "Nicolas",
    "Sophie",
    "Julien",
    "Isabelle",
    "Stéphane",
    "Nathalie",
    "Sébastien",
    "Céline",
    "Olivier",
    "Aurélie",
    "Thomas",
    "Sandrine",
    "Christophe",
    "Émilie",
    "David",
    "Virginie",
    "Frédéric",
    "Caroline",
    "Laurent",
    "Élodie",
    "Guillaume",
    "Valérie",
    "Mathieu",
];

const LAST_NAMES: &[&str] = &[
    "MARTIN",
    "BERNARD",
    "DUBOIS",
    "THOMAS",
    "ROBERT",
    "RICHARD",
    "PETIT",
    "DURAND",
    "LEROY",
    "MOREAU",
    "SIMON",
    "LAURENT",
    "LEFÈVRE",
    "MICHEL",
    "GARCIA",
    "DAVID",
    "BERTRAND",
    "ROUX",
    "VINCENT",
    "FOURNIER",
    "MOREL",
    "GIRARD",
    "ANDRÉ",
    "MERCIER",
    "DUPONT",
    "LAMBERT",
    "BONNET",
    "FRANÇOIS",
    "MARTINEZ",
    "LEGRAND",
    "GARNIER",
    "FAURE",
    "ROUSSEAU",
    "BLANC",
    "GUÉRIN",
    "MULLER",
    "HENRY",
    "ROUSSEL",
    "NICOLAS",
    "PERRIN",
    "MORIN",
    "MATHIEU",
    "CLÉMENT",
    "GAUTHIER",
];

const PATRONS: &[&str] = &[
    "Jean Moulin",
    "Victor Hugo",
    "Jules Ferry",
    "Montesquieu",
    "Michel de Montaigne",
    "François Mauriac",
    "Jean Jaurès",
    "Marie Curie",
    "Albert Camus",
    "Léonard de Vinci",
    "George Sand",
    "Jacques Prévert",
    "Rosa Bonheur",
    "Aliénor d'Aquitaine",
    "Olympe de Gouges",
    "Jules Verne",
];

const TOWNS: &[&str] = &[
    "Bordeaux",
    "Mérignac",
    "Pessac",
    "Talence",
    "Libourne",
    "Arcachon",
    "Blaye",
    "Langon",
    "Bègles",
    "Lormont",
    "Cenon",
    "Gradignan",
    "Villenave-d'Ornon",
    "Le Bouscat",
];

impl Generator {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            used: HashSet::new(),
            logins: HashMap::new(),
        }
    }

    fn run(mut self, params: &DirectoryParams) -> DirectoryData {
        let mut data = DirectoryData::default();
        for _ in 0..params.establishments.max(1) {
            let establishment = self.establishment();
            data.establishments.push(establishment);
        }
        for _ in 0..params.families {
            self.family(params, &mut data);
        }
        data
    }

    fn establishment(&mut self) -> Establishment {
        let uai = self.unique(|g| format!("033{:04}{}", g.rng.gen_range(0..10_000), g.letter()));
        let struct_jointure = self.unique(|g| g.rng.gen_range(10_000..1_000_000).to_string());
        let patron = self.pick(PATRONS);
        let town = self.pick(TOWNS);
        Establishment {
            uai,
            struct_jointure,
            name: format!("Collège {patron} ({town})"),
            kind: EstablishmentKind::College,
        }
    }

    fn family(&mut self, params: &DirectoryParams, data: &mut DirectoryData) {
        let count = self.children_count(&params.children_weights);
        let home = self.rng.gen_range(0..data.establishments.len());
        let second = if count >= 2
            && data.establishments.len() >= 2
            && self.rng.gen_bool(params.two_establishments.clamp(0.0, 1.0))
        {
            // Any other establishment: `home + 1 + k` modulo the count never equals `home`.
            let k = self.rng.gen_range(0..data.establishments.len() - 1);
            Some((home + 1 + k) % data.establishments.len())
        } else {
            None
        };
        let last_name = self.pick(LAST_NAMES).to_owned();
        let parent_first = self.pick(PARENT_FIRST_NAMES).to_owned();
        let mut parent = Parent {
            login: self.login(&parent_first, &last_name),
            password: self.alphanumeric(10),
            last_name: last_name.clone(),
            first_name: parent_first,
            children: Vec::new(),
            records: Vec::new(),
        };
        // Siblings are born in distinct years, eldest first, all of collège age.
        let mut years: Vec<u32> = (2011..=2015).collect();
        years.shuffle(&mut self.rng);
        let mut years: Vec<u32> = years.into_iter().take(count).collect();
        years.sort_unstable();
        for (n, year) in years.into_iter().enumerate() {
            // With two establishments, the first two children are split between them and
            // later ones join either.
            let place = match (second, n) {
                (Some(other), 1) => other,
                (Some(other), n) if n >= 2 && self.rng.gen_bool(0.5) => other,
                _ => home,
            };
            let Some(uai) = data.establishments.get(place).map(|e| e.uai.clone()) else {
                continue;
            };
            let pupil = self.pupil(&last_name, year, uai.clone());
            parent.children.push(pupil.jointure.clone());
            match parent.records.iter_mut().find(|r| r.uai == uai) {
                Some(record) => record.children.push(pupil.jointure.clone()),
                None => {
                    let jointure = self.jointure();
                    parent.records.push(RelationRecord {
                        jointure,
                        uai,
                        children: vec![pupil.jointure.clone()],
                    });
                }
            }
            data.pupils.push(pupil);
        }
        data.parents.push(parent);
    }

    fn pupil(&mut self, last_name: &str, year: u32, uai: String) -> Pupil {
        let level = match year {
            2015 => "6",
            2014 => "5",
            2013 => "4",
            _ => "3",
        };
        let section = char::from(b'A' + self.rng.gen_range(0..4u8));
        let month = self.rng.gen_range(1..=12);
        let day = self.rng.gen_range(1..=28);
        Pupil {
            jointure: self.jointure(),
            eleve_id: self.unique(|g| g.rng.gen_range(100_000..10_000_000).to_string()),
            ine: self.unique(|g| format!("SIM{:07}{}", g.rng.gen_range(0..10_000_000), g.letter())),
            last_name: last_name.to_owned(),
            first_name: self.pick(FIRST_NAMES).to_owned(),
            birth_date: format!("{day:02}/{month:02}/{year}"),
            uai,
            class: format!("{level}{section}"),
        }
    }

    /// 1 + an index drawn by weight.
    fn children_count(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
        if total <= 0.0 {
            return 1;
        }
        let mut draw = self.rng.gen_range(0.0..total);
        for (i, weight) in weights.iter().enumerate() {
            if *weight <= 0.0 {
                continue;
            }
            if draw < *weight {
                return i + 1;
            }
            draw -= weight;
        }
        weights.len().max(1)
    }

    fn jointure(&mut self) -> String {
        self.unique(|g| g.rng.gen_range(1_000_000..10_000_000).to_string())
    }

    fn login(&mut self, first: &str, last: &str) -> String {
        let base = format!("{}.{}", ascii_lower(first), ascii_lower(last));
        let n = self.logins.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            base
        } else {
            format!("{base}{n}")
        }
    }

    fn unique(&mut self, mut make: impl FnMut(&mut Self) -> String) -> String {
        loop {
            let candidate = make(self);
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list.choose(&mut self.rng).copied().unwrap_or("X")
    }

    fn letter(&mut self) -> char {
        char::from(b'A' + self.rng.gen_range(0..26u8))
    }

    fn alphanumeric(&mut self, len: usize) -> String {
        (&mut self.rng)
            .sample_iter(rand::distributions::Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }
}

/// Lower case, accents dropped, anything else but letters removed (ENT login style).
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let base = match c {
                'à' | 'â' | 'ä' | 'À' | 'Â' => 'a',
                'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => 'e',
                'î' | 'ï' | 'Î' => 'i',
                'ô' | 'ö' | 'Ô' => 'o',
                'ù' | 'û' | 'ü' | 'Û' => 'u',
                'ç' | 'Ç' => 'c',
                other => other,
            };
            base.is_ascii_alphabetic()
                .then(|| base.to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_directory() {
        let params = DirectoryParams::default();
        let a = Directory::generate(&params, 7);
        let b = Directory::generate(&params, 7);
        assert_eq!(a.data(), b.data());
        assert_ne!(a.data(), Directory::generate(&params, 8).data());
    }

    #[test]
    fn generated_directories_pass_validation_whatever_the_parameters() {
        let shapes = [
            DirectoryParams::default(),
            DirectoryParams {
                establishments: 1,
                two_establishments: 1.0,
                ..DirectoryParams::default()
            },
            DirectoryParams {
                establishments: 2,
                children_weights: vec![0.0, 0.0, 0.0, 0.0, 1.0],
                two_establishments: 1.0,
                ..DirectoryParams::default()
            },
            DirectoryParams {
                children_weights: vec![],
                ..DirectoryParams::default()
            },
        ];
        for params in &shapes {
            for seed in 0..5 {
                let data = Generator::new(seed).run(params);
                assert_eq!(data.parents.len(), params.families);
                assert!(Directory::from_data(data).is_ok(), "{params:?} seed {seed}");
            }
        }
    }

    #[test]
    fn logins_drop_accents() {
        assert_eq!(ascii_lower("Émilie"), "emilie");
        assert_eq!(ascii_lower("LEFÈVRE"), "lefevre");
    }

    #[test]
    fn rejects_a_child_outside_every_record() {
        let mut data = Directory::generate(&DirectoryParams::default(), 3)
            .data()
            .clone();
        if let Some(parent) = data.parents.first_mut() {
            parent.records.clear();
        }
        let error = Directory::from_data(data).err();
        assert_eq!(error.map(|e| e.code()), Some("sim.directory.inconsistent"));
    }
}
