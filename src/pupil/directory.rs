//! The directory file: establishments, pupils and parents with one `PersRelEleve` record
//! per establishment where they have a child, in the TOML or JSON shape
//! `bonenfant sim directory` writes, and the [`DirectoryIndex`] `--directory` builds
//! from it or from the académie's AAF exports ([`super::aaf`]): [`load_index`],
//! [`reload`].
//!
//! The simulators run on the same type (they generate one from a seed, or read AAF
//! files with [`load_directory`]), but nothing here depends on them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::aaf::{AafReader, Keep, LoadReport};
use super::{DirectoryIndex, PupilKey, PupilLabel, SharedIndex, Uai};

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
    #[error("no directory path given")]
    NoPath,
    #[error(
        "a TOML or JSON directory file must be the only path given (AAF exports may be several)"
    )]
    MixedFormats,
    /// Nothing under the paths gave a pupil: the report says what was found instead.
    #[error("no pupil could be loaded from the directory: {}", .0.summary())]
    NothingUsable(Box<LoadReport>),
    /// A reload that would lose more than half the pupils: most likely an export still
    /// being copied. The previous index stays.
    #[error("the new directory has {after} pupils against {before} now: refused as truncated (an export still being copied?)")]
    Shrunk { before: usize, after: usize },
}

impl DirectoryError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::Io(_) => "directory.io",
            DirectoryError::Json { .. } => "directory.json",
            DirectoryError::Toml { .. } => "directory.toml",
            DirectoryError::Write(_) => "directory.write",
            DirectoryError::UnknownFormat => "directory.format",
            DirectoryError::Inconsistent(_) => "directory.inconsistent",
            DirectoryError::NoPath => "directory.no_path",
            DirectoryError::MixedFormats => "directory.mixed_formats",
            DirectoryError::NothingUsable(_) => "directory.nothing_usable",
            DirectoryError::Shrunk { .. } => "directory.shrunk",
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

/// A parent: one ENT account and the AAF records that name their children.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// ENT login (`prenom.nom`, `2`, `3`… for homonyms): the CAS principal.
    pub login: String,
    /// Test password, in clear, for the test ENT's throw-away accounts; the proxy never
    /// reads it.
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

// === impl Directory ===

impl Default for Directory {
    /// No establishment, pupil or parent.
    fn default() -> Self {
        Self {
            data: DirectoryData::default(),
            parents_by_login: HashMap::new(),
            pupils_by_jointure: HashMap::new(),
            pupils_by_key: HashMap::new(),
            establishments_by_uai: HashMap::new(),
        }
    }
}

impl Directory {
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

    /// The directory index the proxy can load: each pupil's jointure, each parent
    /// record's jointure → its first child, each parent login (and record jointure) →
    /// its children, each pupil's first name and class (the chooser page), each
    /// establishment's name.
    pub fn index(&self) -> DirectoryIndex {
        let mut index = DirectoryIndex::default();
        for establishment in &self.data.establishments {
            if let Some(uai) = Uai::parse(&establishment.uai) {
                index.add_establishment(uai, &establishment.name);
            }
        }
        for pupil in &self.data.pupils {
            if let Some(key) = key_of(pupil) {
                let label = PupilLabel {
                    first_name: pupil.first_name.clone(),
                    class: Some(pupil.class.clone()),
                };
                index.add_pupil(key.clone(), Some(label));
                index.add_jointure(&pupil.jointure, key);
            }
        }
        for parent in &self.data.parents {
            for record in &parent.records {
                let first = record
                    .children
                    .first()
                    .and_then(|j| self.pupil_by_jointure(j));
                if let Some(key) = first.and_then(key_of) {
                    index.add_jointure(&record.jointure, key);
                }
            }
            // A parent's records are grouped here: the list is complete.
            let names = std::iter::once(parent.login.as_str())
                .chain(parent.records.iter().map(|r| r.jointure.as_str()));
            let children: Vec<PupilKey> = self.children_of(parent).filter_map(key_of).collect();
            index.add_principal(names, children, true);
        }
        index.shrink_to_fit();
        index
    }

    /// The figures `directory check` prints, for a file in this format.
    pub fn report(&self) -> LoadReport {
        LoadReport {
            files: 1,
            establishments: self.data.establishments.len(),
            pupils: self.data.pupils.len(),
            parent_records: self.data.parents.iter().map(|p| p.records.len()).sum(),
            logins: self.data.parents.len(),
            parents_in_several_establishments: self
                .data
                .parents
                .iter()
                .filter(|p| p.records.len() > 1)
                .count(),
            ..LoadReport::default()
        }
    }
}

/// The one TOML/JSON file among `paths`, if they name the simulator's format.
fn simulator_file(paths: &[PathBuf]) -> Result<Option<&Path>, DirectoryError> {
    let is_sim = |p: &PathBuf| matches!(extension(p), Some("toml" | "json"));
    match paths {
        [] => Err(DirectoryError::NoPath),
        [one] if is_sim(one) => Ok(Some(one)),
        many if many.iter().any(is_sim) => Err(DirectoryError::MixedFormats),
        _ => Ok(None),
    }
}

/// Loads what `--directory` names: one TOML or JSON file in the simulator's format, or
/// AAF exports (folders and files, [`super::aaf`]). Problems in AAF files are counted in
/// the report, which the caller logs once; only "nothing usable" is an error.
pub fn load_index(paths: &[PathBuf]) -> Result<(DirectoryIndex, LoadReport), DirectoryError> {
    if let Some(file) = simulator_file(paths)? {
        let directory = Directory::load(file)?;
        return Ok((directory.index(), directory.report()));
    }
    usable(read_aaf(paths, Keep::Index).into_index())
}

fn read_aaf(paths: &[PathBuf], keep: Keep) -> AafReader {
    let mut reader = AafReader::new(keep);
    for path in paths {
        reader.read_path(path);
    }
    reader
}

/// Only "no pupil at all" fails a load.
fn usable<T>((loaded, report): (T, LoadReport)) -> Result<(T, LoadReport), DirectoryError> {
    if report.pupils == 0 {
        return Err(DirectoryError::NothingUsable(Box::new(report)));
    }
    Ok((loaded, report))
}

/// A whole directory (names, logins, test passwords) for the simulators and the demo,
/// from either format.
pub fn load_directory(paths: &[PathBuf]) -> Result<(Directory, LoadReport), DirectoryError> {
    if let Some(file) = simulator_file(paths)? {
        let directory = Directory::load(file)?;
        let report = directory.report();
        return Ok((directory, report));
    }
    let (data, report) = usable(read_aaf(paths, Keep::Everything).into_data())?;
    Ok((Directory::from_data(data)?, report))
}

/// Loads `paths` again (the nightly exports arrived, SIGHUP) and swaps the new index in.
/// On any failure the previous index stays and the error says why; a load that would
/// lose more than half the pupils is refused as truncated.
pub fn reload(shared: &SharedIndex, paths: &[PathBuf]) -> Result<LoadReport, DirectoryError> {
    let (index, report) = load_index(paths)?;
    if let Some(current) = shared.load() {
        let (before, after) = (current.pupil_count(), index.pupil_count());
        if after.saturating_mul(2) < before {
            return Err(DirectoryError::Shrunk { before, after });
        }
    }
    shared.store(index);
    Ok(report)
}

/// The crate's pupil key of `pupil` (always there for a validated directory: its UAI
/// was checked on load).
fn key_of(pupil: &Pupil) -> Option<PupilKey> {
    Some(PupilKey {
        uai: Uai::parse(&pupil.uai)?,
        eleve_id: pupil.eleve_id.clone(),
    })
}

fn extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

/// `^\d{7}[A-Z]$`: stricter than [`Uai::parse`], so a file always holds the upper-case
/// form the lookups use.
fn is_uai(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 8 && bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7].is_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed example: Claire (Léa at 0330101A, Hugo at 0330202B), Julien and a
    /// third family.
    fn fixture() -> Directory {
        let text = include_str!("../../tests/fixtures/sim/directory.toml");
        let data: DirectoryData = toml::from_str(text).expect("the example parses");
        Directory::from_data(data).expect("the example is consistent")
    }

    fn key(uai: &str, eleve_id: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse(uai).expect("UAI"),
            eleve_id: eleve_id.to_owned(),
        }
    }

    #[test]
    fn saves_and_loads_toml_and_json_alike() {
        let directory = fixture();
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["d.toml", "d.json"] {
            let path = dir.path().join(name);
            directory.save(&path).expect("saves");
            assert_eq!(
                Directory::load(&path).expect("loads").data(),
                directory.data()
            );
        }
        let other = dir.path().join("d.yaml");
        let error = directory.save(&other).expect_err("unknown extension");
        assert_eq!(error.code(), "directory.format");
    }

    #[test]
    fn lookups_ignore_the_case_of_a_uai() {
        let directory = fixture();
        assert_eq!(
            directory
                .pupil("0330101a", "837001")
                .map(|p| p.first_name.as_str()),
            Some("Léa")
        );
        assert!(directory.establishment("0330202b").is_some());
        let claire = directory.parent("claire.martin").expect("Claire");
        let children: Vec<&str> = directory
            .children_of(claire)
            .map(|p| p.first_name.as_str())
            .collect();
        assert_eq!(children, ["Léa", "Hugo"]);
        let record = directory.record_for(claire, "0330202B").expect("record");
        assert_eq!(record.children, ["2605002"]);
    }

    #[test]
    fn index_knows_jointures_children_and_labels() {
        let directory = fixture();
        let index = directory.index();
        let lea = key("0330101A", "837001");
        let hugo = key("0330202B", "837002");
        assert_eq!(index.jointure("2605001"), Some(&lea));
        let children: Vec<&PupilKey> = index.children_of("claire.martin").collect();
        assert_eq!(children, [&lea, &hugo]);
        let claire = directory.parent("claire.martin").expect("Claire");
        let record = directory.record_for(claire, "0330101A").expect("record");
        assert_eq!(
            index.jointure(&record.jointure),
            Some(&lea),
            "a record's jointure names its first child"
        );
        assert_eq!(
            index.principal(&record.jointure).map(|p| p.children.len()),
            Some(2),
            "a record's jointure as the principal: the parent's children"
        );
        assert_eq!(
            index.establishment_name(&lea.uai),
            Some("Collège Jean Moulin (Pessac)")
        );
        assert_eq!(
            index.label(&lea),
            Some(&PupilLabel {
                first_name: "Léa".to_owned(),
                class: Some("4B".to_owned()),
            })
        );
    }

    #[test]
    fn rejects_an_inconsistent_file_without_naming_anyone() {
        let mut data = fixture().data().clone();
        data.parents[0].children.push("9999999".into());
        let error = Directory::from_data(data).expect_err("unknown pupil");
        assert_eq!(error.code(), "directory.inconsistent");
        assert!(!error.to_string().contains("claire"), "no names in errors");

        let mut data = fixture().data().clone();
        data.parents[0].records.clear();
        let error = Directory::from_data(data).expect_err("child outside every record");
        assert_eq!(error.code(), "directory.inconsistent");

        let mut data = fixture().data().clone();
        data.establishments[0].uai = "0330101a".into();
        let error = Directory::from_data(data).expect_err("lower-case UAI");
        assert_eq!(error.code(), "directory.inconsistent");
    }

    #[test]
    fn parse_errors_give_a_position_and_never_a_value() {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml_path = dir.path().join("bad.toml");
        std::fs::write(
            &toml_path,
            "[[parents]]\nlogin = \"secret.person\"\npassword = 5\n",
        )
        .expect("write");
        let error = Directory::load(&toml_path).expect_err("bad TOML");
        assert_eq!(error.code(), "directory.toml");
        assert!(!error.to_string().contains("secret"));
        let json_path = dir.path().join("bad.json");
        std::fs::write(
            &json_path,
            r#"{"parents": [{"login": "secret.person", "password": 5}]}"#,
        )
        .expect("write");
        let error = Directory::load(&json_path).expect_err("bad JSON");
        assert_eq!(error.code(), "directory.json");
        assert!(!error.to_string().contains("secret"));
    }
}
