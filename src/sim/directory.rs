//! The simulators' side of the directory: a seeded generator of AAF-shaped families
//! (every name from a built-in list of common French names, every identifier synthetic:
//! nothing here is anyone's data), the FrEduVecteur values the test ENT writes, and the
//! logins the demo and the tests run.
//!
//! The directory itself, its file format and its index are the core's
//! ([`crate::pupil::directory`]): the simulators and `--directory` read the same files.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use url::Url;

use crate::pupil::directory::{
    Directory, DirectoryData, Establishment, EstablishmentKind, Parent, Pupil, RelationRecord,
};
use crate::pupil::{PupilKey, Uai};

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
    /// Share of families with a second legal representative: a parent account of their
    /// own, with their own records (SIECLE allows two). 0 by default, so the demo's
    /// families stay one login each.
    pub second_parent: f64,
}

impl Default for DirectoryParams {
    fn default() -> Self {
        Self {
            establishments: 6,
            families: 200,
            children_weights: vec![42.0, 38.0, 14.0, 6.0],
            two_establishments: 0.40,
            second_parent: 0.0,
        }
    }
}

impl DirectoryParams {
    /// A whole département's collèges, Gironde-sized: 113 collèges, about 65,000
    /// pupils and 120,000 parent records. Most collégiens have no sibling in collège
    /// (a brother or sister in primary school or lycée is in other exports), nearly every
    /// family has two legal representatives, and siblings often attend two collèges.
    pub fn departement() -> Self {
        Self {
            establishments: 113,
            families: 54_000,
            children_weights: vec![82.0, 16.0, 2.0],
            two_establishments: 0.6,
            second_parent: 0.95,
        }
    }
}

/// One test login the demo can run: a parent going to the Pronote of one child's
/// establishment, meaning that child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentVisit {
    pub login: String,
    pub password: String,
    /// The child the parent means (the intent).
    pub intended: PupilRef,
    /// What the parent knows the child by, and looks for on bonenfant's chooser page:
    /// the first name and the class.
    pub first_name: String,
    pub class: String,
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

/// What the simulators add to a [`Directory`]. A trait rather than inherent methods, so
/// the core type owes nothing to the simulators.
pub trait Synthetic: Sized {
    /// Generates a directory; the same `params` and `seed` always give the same result.
    fn generate(params: &DirectoryParams, seed: u64) -> Self;

    /// The FrEduVecteur value the directory chain gives `parent` for `child`:
    /// `profil|nom|prénom|ELEVE_ID|UAI`, names the parent's own, id and UAI the child's.
    fn vector(&self, parent: &Parent, child: &Pupil) -> String;

    /// Every (parent, child) login the demo can run, parents in directory order and
    /// children in FrEduVecteur order; each aims at the Pronote of the child's
    /// establishment under `pronote_base` (see [`pronote_url`]).
    fn visits(&self, pronote_base: &Url) -> Vec<ParentVisit>;
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

impl From<&Pupil> for PupilRef {
    fn from(pupil: &Pupil) -> Self {
        Self {
            uai: pupil.uai.clone(),
            eleve_id: pupil.eleve_id.clone(),
        }
    }
}

// === impl Synthetic ===

impl Synthetic for Directory {
    fn generate(params: &DirectoryParams, seed: u64) -> Self {
        let data = Generator::new(seed).run(params);
        // The generator only builds consistent data; an empty directory is the harmless
        // answer should that ever break.
        Directory::from_data(data).unwrap_or_default()
    }

    fn vector(&self, parent: &Parent, child: &Pupil) -> String {
        let profil = match self.establishment(&child.uai).map(|e| e.kind) {
            Some(EstablishmentKind::Ecole) => 1,
            _ => 2,
        };
        format!(
            "{profil}|{}|{}|{}|{}",
            parent.last_name, parent.first_name, child.eleve_id, child.uai
        )
    }

    fn visits(&self, pronote_base: &Url) -> Vec<ParentVisit> {
        let mut visits = Vec::new();
        for parent in self.parents() {
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
                    intended: PupilRef::from(*child),
                    first_name: child.first_name.clone(),
                    class: child.class.clone(),
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
        // Drawn only when asked for, so the default directories stay what they were.
        let second =
            params.second_parent > 0.0 && self.rng.gen_bool(params.second_parent.clamp(0.0, 1.0));
        if second {
            let first_name = self.pick(PARENT_FIRST_NAMES).to_owned();
            let records = parent
                .records
                .iter()
                .map(|r| RelationRecord {
                    jointure: self.jointure(),
                    uai: r.uai.clone(),
                    children: r.children.clone(),
                })
                .collect();
            let other = Parent {
                login: self.login(&first_name, &last_name),
                password: self.alphanumeric(10),
                last_name: last_name.clone(),
                first_name,
                children: parent.children.clone(),
                records,
            };
            data.parents.push(parent);
            data.parents.push(other);
        } else {
            data.parents.push(parent);
        }
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
}
