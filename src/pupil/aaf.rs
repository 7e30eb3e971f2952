//! The académie's AAF exports, read as they come: `ficAlimMENESR` XML files of
//! `addRequest` entries for pupils (`Eleve`), parent records (`PersRelEleve`) and
//! establishments (`EtabEducNat`), streamed with quick-xml into the
//! [`DirectoryIndex`] (or, for the simulators, a whole [`DirectoryData`]).
//!
//! What real files carry, and how each is handled (`docs/domain.md`, "The directory"):
//!
//! * **Files are recognised by content**: any file under the paths given whose root
//!   element is `ficAlimMENESR`, whatever its name; every entry by its
//!   `categoriePersonne` / `categorieStructure` (or, without one, by its attributes).
//!   Other files (the DTD, a README, an archive) are listed as ignored.
//! * **Encodings**: UTF-8, or the single-byte encodings the exports declare
//!   (`ISO-8859-15`, `ISO-8859-1`, `windows-1252`), transcoded on the fly. The five XML
//!   entities and character references are decoded; the DOCTYPE is never loaded, so no
//!   other entity exists.
//! * **Value formats**: `ENTElevePersRelEleve` is `<record jointure>$<lien>$<financier>$
//!   <légal>$<contact>$<paiement>`; `ENTEleveClasses` is `<structure jointure>$<classe>`;
//!   `ENTAuxPersRelEleveEleve` is a jointure (or an LDAP DN whose first value is one).
//! * **Unknown attributes are ignored** without being kept; INE, names and birth dates
//!   are kept only for the simulators ([`Keep::Everything`]), never in the index.
//! * **Problems never stop a load**: a malformed entry, a duplicate, a pupil naming a
//!   parent record that is not there… is skipped and counted in the [`LoadReport`],
//!   located by file and entry number (never by an identifier: they are minors').
//!
//! Links come from both sides (a record's `ENTAuxPersRelEleveEleve`, a pupil's
//! `ENTElevePersRelEleve`). Records of one parent are grouped by `ENTPersonLogin` when
//! the export carries it (the ENT login, the CAS principal); otherwise each record stands
//! alone, as the AAF leaves it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::directory::{
    DirectoryData, Establishment, EstablishmentKind, Parent, Pupil, RelationRecord,
};
use super::{DirectoryIndex, PupilKey, PupilLabel, Uai};

/// What to keep of each entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// What the proxy's rules need: jointures, ELEVE_ID, UAI, first name, class, login,
    /// establishment names.
    Index,
    /// Everything the simulators show (last names, birth dates, INE too).
    Everything,
}

/// A kind of problem found while loading. Each says what was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    /// A file could not be read.
    UnreadableFile,
    /// A file declares an encoding this reader does not know (or is UTF-16).
    UnsupportedEncoding,
    /// The XML of a file breaks (bad markup, text that is not in its encoding): the
    /// reader resumes at the next entry it can find.
    BrokenXml,
    /// An entry without the `addRequest` structure (`identifier`, `attributes`, `attr
    /// name`, `value`), with an unknown entity, or over the size bounds.
    MalformedEntry,
    /// A `modifyRequest` or `deleteRequest`: a delta export; load a complete one.
    DeltaEntry,
    /// An entry lacks an attribute it cannot do without (named).
    MissingAttribute(&'static str),
    /// An attribute's value is not in its format (named).
    BadValue(&'static str),
    /// A jointure seen before (pupil or parent record): the later entry is skipped.
    DuplicateJointure,
    /// A second pupil with the same (UAI, ELEVE_ID): skipped.
    DuplicatePupil,
    /// A second establishment with the same UAI or structure jointure: skipped.
    DuplicateEstablishment,
    /// A pupil whose `ENTPersonStructRattach` names no `EtabEducNat` entry: skipped.
    UnknownEstablishment,
    /// A pupil names a parent record (`ENTElevePersRelEleve`) that no `PersRelEleve`
    /// entry has: that link is skipped, the pupil kept.
    MissingParentRecord,
    /// A parent record names a child (`ENTAuxPersRelEleveEleve`) that no `Eleve` entry
    /// has: that link is skipped, the record kept.
    UnknownChild,
}

impl Problem {
    /// A short stable name, for `directory check` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::UnreadableFile => "unreadable_file",
            Problem::UnsupportedEncoding => "unsupported_encoding",
            Problem::BrokenXml => "broken_xml",
            Problem::MalformedEntry => "malformed_entry",
            Problem::DeltaEntry => "delta_entry",
            Problem::MissingAttribute(_) => "missing_attribute",
            Problem::BadValue(_) => "bad_value",
            Problem::DuplicateJointure => "duplicate_jointure",
            Problem::DuplicatePupil => "duplicate_pupil",
            Problem::DuplicateEstablishment => "duplicate_establishment",
            Problem::UnknownEstablishment => "unknown_establishment",
            Problem::MissingParentRecord => "missing_parent_record",
            Problem::UnknownChild => "unknown_child",
        }
    }

    /// What happened, in a sentence.
    pub fn describe(self) -> String {
        match self {
            Problem::UnreadableFile => "file could not be read: skipped".into(),
            Problem::UnsupportedEncoding => {
                "file in an unknown encoding (UTF-8, ISO-8859-15, ISO-8859-1, windows-1252 are read): skipped".into()
            }
            Problem::BrokenXml => {
                "XML breaks: the entry is skipped and reading resumes at the next one".into()
            }
            Problem::MalformedEntry => {
                "entry not shaped as an addRequest (or an unknown entity, or too large): skipped"
                    .into()
            }
            Problem::DeltaEntry => {
                "modifyRequest/deleteRequest (a delta export): skipped; give a complete export"
                    .into()
            }
            Problem::MissingAttribute(name) => format!("entry without {name}: skipped"),
            Problem::BadValue(name) => format!("{name} not in its format: skipped"),
            Problem::DuplicateJointure => "jointure already seen: the later entry is skipped".into(),
            Problem::DuplicatePupil => {
                "(UAI, ELEVE_ID) already seen: the later pupil is skipped".into()
            }
            Problem::DuplicateEstablishment => {
                "UAI or structure jointure already seen: the later establishment is skipped".into()
            }
            Problem::UnknownEstablishment => {
                "pupil's ENTPersonStructRattach names no EtabEducNat entry: pupil skipped".into()
            }
            Problem::MissingParentRecord => {
                "pupil names a parent record no PersRelEleve entry has: that link is skipped"
                    .into()
            }
            Problem::UnknownChild => {
                "parent record names a child no Eleve entry has: that link is skipped".into()
            }
        }
    }
}

/// Where a problem was found: a file and the entry's number in it (1-based, counting
/// every request), e.g. for `xmllint --xpath '/ficAlimMENESR/*[12]'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    /// 0 when the problem is the file's own.
    pub entry: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.entry == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{} entry {}", self.file, self.entry)
        }
    }
}

/// How often a problem occurred, and where first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProblemCount {
    pub count: u64,
    /// The first few places (at most [`EXAMPLES`]).
    pub examples: Vec<Location>,
}

/// Places kept per problem kind.
pub const EXAMPLES: usize = 3;

/// What a load found: figures and problems, as data. The caller logs it once.
/// Holds no identifier of a person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Files read as AAF exports.
    pub files: usize,
    /// Files passed over, and why (not XML, not an AAF export, an archive…).
    pub ignored_files: Vec<(PathBuf, &'static str)>,
    pub establishments: usize,
    pub pupils: usize,
    pub parent_records: usize,
    /// Distinct ENT logins (`ENTPersonLogin`) grouping parent records.
    pub logins: usize,
    /// Parent records without a login: each stands alone.
    pub records_without_login: usize,
    /// Parents (logins) whose children attend several establishments.
    pub parents_in_several_establishments: usize,
    /// Entries of other categories (`PersEducNat`, `MefEducNat`…), by category.
    pub ignored_entries: BTreeMap<String, u64>,
    pub problems: BTreeMap<Problem, ProblemCount>,
}

impl LoadReport {
    /// Every problem, all kinds together.
    pub fn problem_count(&self) -> u64 {
        self.problems.values().map(|p| p.count).sum()
    }

    /// How often `problem` occurred.
    pub fn count(&self, problem: Problem) -> u64 {
        self.problems.get(&problem).map_or(0, |p| p.count)
    }

    fn add(&mut self, problem: Problem, at: Location) {
        let entry = self.problems.entry(problem).or_default();
        entry.count += 1;
        if entry.examples.len() < EXAMPLES {
            entry.examples.push(at);
        }
    }

    /// One line for a log: the figures and the number of problems.
    pub fn summary(&self) -> String {
        format!(
            "{} establishments, {} pupils, {} parent records from {} files; {} problems",
            self.establishments,
            self.pupils,
            self.parent_records,
            self.files,
            self.problem_count()
        )
    }
}

impl std::fmt::Display for LoadReport {
    /// What `bonenfant directory check` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "files read: {}", self.files)?;
        for (path, why) in &self.ignored_files {
            writeln!(f, "  ignored: {} ({why})", path.display())?;
        }
        writeln!(f, "establishments: {}", self.establishments)?;
        writeln!(f, "pupils: {}", self.pupils)?;
        writeln!(
            f,
            "parent records: {} ({} ENT logins, {} records without a login)",
            self.parent_records, self.logins, self.records_without_login
        )?;
        writeln!(
            f,
            "parents with children in several establishments: {}",
            self.parents_in_several_establishments
        )?;
        for (category, count) in &self.ignored_entries {
            writeln!(f, "entries not used ({category}): {count}")?;
        }
        if self.problems.is_empty() {
            return writeln!(f, "problems: none");
        }
        writeln!(f, "problems: {}", self.problem_count())?;
        for (problem, found) in &self.problems {
            let places: Vec<String> = found.examples.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "  {} × {}: {} (first: {})",
                found.count,
                problem.as_str(),
                problem.describe(),
                places.join("; ")
            )?;
        }
        Ok(())
    }
}

// --- bounds (invariant I5) -------------------------------------------------------------

/// Longest value kept; a longer one makes its entry malformed.
const MAX_VALUE: usize = 1024;
/// Most values kept for one attribute of one entry (relatives, classes, children).
const MAX_VALUES: usize = 64;
/// Most XML errors one file may have before the rest of it is given up.
const MAX_ERRORS_PER_FILE: u64 = 1000;
/// Deepest folder walked under a path given.
const MAX_DEPTH: usize = 8;
/// Category names counted separately in `ignored_entries` (the rest are "other").
const MAX_CATEGORIES: usize = 32;

/// The attributes this reader keeps; every other is skipped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Jointure,
    Login,
    GivenName,
    LastName,
    BirthDate,
    Ine,
    EleveId,
    StructRattach,
    Classes,
    Relatives,
    Children,
    StructJointure,
    StructUai,
    StructName,
    StructType,
}

impl Field {
    fn of(name: &[u8], keep: Keep) -> Option<Field> {
        let field = match name {
            b"ENTPersonJointure" => Field::Jointure,
            b"ENTPersonLogin" => Field::Login,
            b"givenName" => Field::GivenName,
            b"ENTEleveStructRattachId" => Field::EleveId,
            b"ENTPersonStructRattach" => Field::StructRattach,
            b"ENTEleveClasses" => Field::Classes,
            b"ENTElevePersRelEleve" => Field::Relatives,
            b"ENTAuxPersRelEleveEleve" => Field::Children,
            b"ENTStructureJointure" => Field::StructJointure,
            b"ENTStructureUAI" => Field::StructUai,
            b"ENTStructureNomCourant" => Field::StructName,
            b"ENTStructureTypeStruct" => Field::StructType,
            b"sn" if keep == Keep::Everything => Field::LastName,
            b"ENTPersonDateNaissance" if keep == Keep::Everything => Field::BirthDate,
            b"ENTEleveINE" if keep == Keep::Everything => Field::Ine,
            _ => return None,
        };
        Some(field)
    }
}

/// One entry being read.
#[derive(Debug, Default)]
struct Entry {
    category: Option<String>,
    id: Option<String>,
    values: Vec<(Field, String)>,
    /// Why it cannot be used, once known.
    broken: Option<Problem>,
}

impl Entry {
    fn clear(&mut self) {
        self.category = None;
        self.id = None;
        self.values.clear();
        self.broken = None;
    }

    fn first(&self, field: Field) -> Option<&str> {
        self.all(field).next()
    }

    fn all(&self, field: Field) -> impl Iterator<Item = &str> + '_ {
        self.values
            .iter()
            .filter(move |(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// What the element being read is, inside an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Root,
    Entry,
    Operational,
    OperationalAttr,
    Identifier,
    Id,
    Attributes,
    Attr(Option<Field>),
    Value(Option<Field>),
    CategoryValue,
    /// Inside something this reader does not use (kept balanced, not read).
    Other,
}

#[derive(Debug)]
struct RawEstablishment {
    struct_jointure: String,
    uai: Uai,
    name: Option<String>,
    kind: EstablishmentKind,
    at: Location,
}

#[derive(Debug)]
struct RawPupil {
    jointure: String,
    eleve_id: String,
    struct_jointure: String,
    first_name: Option<String>,
    /// The class in the pupil's own establishment.
    class: Option<String>,
    relatives: Vec<String>,
    last_name: String,
    birth_date: String,
    ine: String,
    at: Location,
}

#[derive(Debug)]
struct RawRecord {
    jointure: String,
    login: Option<String>,
    children: Vec<String>,
    last_name: String,
    first_name: String,
    at: Location,
}

/// Reads AAF files one after the other, then links what they hold.
#[derive(Debug)]
pub struct AafReader {
    keep: Keep,
    report: LoadReport,
    establishments: Vec<RawEstablishment>,
    pupils: Vec<RawPupil>,
    records: Vec<RawRecord>,
}

impl AafReader {
    pub fn new(keep: Keep) -> Self {
        Self {
            keep,
            report: LoadReport::default(),
            establishments: Vec::new(),
            pupils: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Reads `path`: a file, or every file under a folder (sorted, hidden ones and
    /// symbolic links to folders passed over).
    pub fn read_path(&mut self, path: &Path) {
        let mut files = Vec::new();
        collect_files(path, 0, &mut files, &mut self.report);
        for file in files {
            self.read_file_at(&file);
        }
    }

    fn read_file_at(&mut self, path: &Path) {
        let name: Arc<str> = path.display().to_string().into();
        match std::fs::File::open(path) {
            Ok(file) => {
                if let Some(why) = self.read(&name, file) {
                    self.report.ignored_files.push((path.to_owned(), why));
                }
            }
            Err(_) => self.report.add(
                Problem::UnreadableFile,
                Location {
                    file: name,
                    entry: 0,
                },
            ),
        }
    }

    /// Reads one file's bytes, named `name` in the report. Returns why the file was
    /// passed over, when it is not an AAF export.
    pub fn read(&mut self, name: &Arc<str>, input: impl Read) -> Option<&'static str> {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let at = |entry| Location {
            file: Arc::clone(name),
            entry,
        };
        let charset = match sniff(&mut input) {
            Ok(Sniffed::Xml(charset)) => charset,
            Ok(Sniffed::Ignored(why)) => return Some(why),
            Ok(Sniffed::UnsupportedEncoding) => {
                self.report.add(Problem::UnsupportedEncoding, at(0));
                return None;
            }
            Err(_) => {
                self.report.add(Problem::UnreadableFile, at(0));
                return None;
            }
        };
        match charset {
            Charset::Utf8 => self.read_xml(name, input),
            single => self.read_xml(name, ToUtf8::new(input, single)),
        }
    }

    fn read_xml(&mut self, name: &Arc<str>, input: impl BufRead) -> Option<&'static str> {
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = true;
        let at = |entry| Location {
            file: Arc::clone(name),
            entry,
        };
        let mut buf = Vec::new();
        let mut stack: Vec<Place> = Vec::new();
        let mut entry = Entry::default();
        let mut entries = 0u64;
        let mut errors = 0u64;
        // After an XML error: events are passed over until the next entry starts.
        let mut resync = false;
        let mut seen_root = false;
        let mut text = String::new();
        loop {
            buf.clear();
            let before = reader.buffer_position();
            let event = match reader.read_event_into(&mut buf) {
                Ok(event) => event,
                // A DTD or another text with a `<` first: not an export, not a problem.
                Err(_) if !seen_root => {
                    return Some("not an AAF export (not well-formed XML before any element)")
                }
                Err(_) => {
                    errors += 1;
                    if !resync {
                        self.report.add(Problem::BrokenXml, at(entries));
                        resync = true;
                    }
                    if errors >= MAX_ERRORS_PER_FILE || reader.buffer_position() == before {
                        break;
                    }
                    continue;
                }
            };
            if resync {
                // The entry being read is lost; resume at the next one.
                match &event {
                    Event::Start(start) if is_request(start) => {
                        resync = false;
                        stack.clear();
                        stack.push(Place::Root);
                        entry.clear();
                    }
                    Event::Eof => break,
                    _ => continue,
                }
            }
            match event {
                Event::Start(start) => {
                    let parent = stack.last().copied();
                    let place = match parent {
                        None if seen_root => Place::Other,
                        None => {
                            if start.local_name().as_ref() != b"ficAlimMENESR" {
                                return Some(
                                    "XML, but not an AAF export (root is not ficAlimMENESR)",
                                );
                            }
                            seen_root = true;
                            Place::Root
                        }
                        Some(parent) => {
                            let place = self.child(parent, &start, &mut entry);
                            if place == Place::Entry {
                                entries += 1;
                                entry.clear();
                                match start.local_name().as_ref() {
                                    b"addRequest" => {}
                                    _ => entry.broken = Some(Problem::DeltaEntry),
                                }
                            }
                            place
                        }
                    };
                    text.clear();
                    stack.push(place);
                }
                Event::End(_) => {
                    let Some(place) = stack.pop() else { continue };
                    match place {
                        Place::Entry => {
                            let done = std::mem::take(&mut entry);
                            self.finish(done, at(entries));
                        }
                        Place::Value(Some(field)) if entry.broken.is_none() => {
                            let count = entry.values.iter().filter(|(f, _)| *f == field).count();
                            if count >= MAX_VALUES {
                                entry.broken = Some(Problem::MalformedEntry);
                            } else {
                                entry.values.push((field, text.trim().to_owned()));
                            }
                        }
                        Place::Id => entry.id = Some(text.trim().to_owned()),
                        Place::CategoryValue => entry.category = Some(text.trim().to_owned()),
                        _ => {}
                    }
                    text.clear();
                }
                // Text is read only inside the values this reader keeps.
                Event::Text(content) if reads_text(stack.last()) => match content.decode() {
                    Ok(decoded) => push_bounded(&mut text, &decoded, &mut entry),
                    Err(_) => entry.broken = Some(Problem::MalformedEntry),
                },
                Event::CData(content) if reads_text(stack.last()) => {
                    match std::str::from_utf8(&content) {
                        Ok(decoded) => push_bounded(&mut text, decoded, &mut entry),
                        Err(_) => entry.broken = Some(Problem::MalformedEntry),
                    }
                }
                Event::GeneralRef(reference) if reads_text(stack.last()) => {
                    match resolve_reference(&reference) {
                        Some(c) => {
                            let mut utf8 = [0; 4];
                            push_bounded(&mut text, c.encode_utf8(&mut utf8), &mut entry);
                        }
                        None => entry.broken = Some(Problem::MalformedEntry),
                    }
                }
                Event::Eof => break,
                // The DOCTYPE names an external DTD that defines no entity: never loaded.
                _ => {}
            }
        }
        if !seen_root && errors == 0 {
            return Some("XML, but not an AAF export (no root element)");
        }
        self.report.files += 1;
        None
    }

    /// Where a start tag under `parent` puts the reader.
    fn child(&self, parent: Place, start: &BytesStart<'_>, entry: &mut Entry) -> Place {
        let name = start.local_name();
        match (parent, name.as_ref()) {
            (Place::Root, _) if is_request(start) => Place::Entry,
            (Place::Entry, b"operationalAttributes") => Place::Operational,
            (Place::Entry, b"identifier") => Place::Identifier,
            (Place::Entry, b"attributes") => Place::Attributes,
            (Place::Identifier, b"id") => Place::Id,
            (Place::Operational, b"attr") => Place::OperationalAttr,
            (Place::OperationalAttr, b"value") => Place::CategoryValue,
            (Place::Attributes, b"attr") => match start.try_get_attribute("name") {
                Ok(Some(name)) if !name.value.contains(&b'&') => {
                    Place::Attr(Field::of(name.value.trim_ascii(), self.keep))
                }
                Ok(Some(name)) => match name.unescape_value() {
                    Ok(name) => Place::Attr(Field::of(name.trim().as_bytes(), self.keep)),
                    Err(_) => {
                        entry.broken = Some(Problem::MalformedEntry);
                        Place::Other
                    }
                },
                _ => {
                    entry.broken = Some(Problem::MalformedEntry);
                    Place::Other
                }
            },
            (Place::Attr(field), b"value") => Place::Value(field),
            (Place::Root, _) | (Place::Other, _) => Place::Other,
            // Anything else inside an entry: not the addRequest shape.
            _ => {
                entry.broken = Some(Problem::MalformedEntry);
                Place::Other
            }
        }
    }

    /// Files a complete entry.
    fn finish(&mut self, entry: Entry, at: Location) {
        if let Some(problem) = entry.broken {
            self.report.add(problem, at);
            return;
        }
        match kind_of(&entry) {
            Kind::Pupil => match self.pupil(&entry, at.clone()) {
                Ok(pupil) => self.pupils.push(pupil),
                Err(problem) => self.report.add(problem, at),
            },
            Kind::Record => match self.record(&entry, at.clone()) {
                Ok(record) => self.records.push(record),
                Err(problem) => self.report.add(problem, at),
            },
            Kind::Establishment => match establishment(&entry, at.clone()) {
                Ok(establishment) => self.establishments.push(establishment),
                Err(problem) => self.report.add(problem, at),
            },
            Kind::Other(category) => {
                let known = self.report.ignored_entries.len() < MAX_CATEGORIES
                    || self.report.ignored_entries.contains_key(&category);
                let key = if known { category } else { "other".to_owned() };
                *self.report.ignored_entries.entry(key).or_insert(0) += 1;
            }
            Kind::Unknown => self.report.add(Problem::MalformedEntry, at),
        }
    }

    fn pupil(&self, entry: &Entry, at: Location) -> Result<RawPupil, Problem> {
        let jointure = jointure_of(entry)?;
        let eleve_id = entry
            .first(Field::EleveId)
            .ok_or(Problem::MissingAttribute("ENTEleveStructRattachId"))?;
        if !eleve_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::BadValue("ENTEleveStructRattachId"));
        }
        let struct_jointure = entry
            .first(Field::StructRattach)
            .ok_or(Problem::MissingAttribute("ENTPersonStructRattach"))?;
        // `<structure>$<classe>`, a bare code taken as the class. A class of another
        // structure is a group elsewhere: the pupil's own comes first, else the first.
        let split = |value: &'_ str| match value.split_once('$') {
            Some((structure, rest)) => (
                structure.to_owned(),
                rest.split('$').next().unwrap_or(rest).to_owned(),
            ),
            None => (String::new(), value.to_owned()),
        };
        let class = entry
            .all(Field::Classes)
            .map(split)
            .find(|(structure, _)| structure == struct_jointure)
            .or_else(|| entry.first(Field::Classes).map(split))
            .map(|(_, class)| class)
            .filter(|class| !class.is_empty());
        let relatives = entry
            .all(Field::Relatives)
            .filter_map(|value| {
                let record = value.split('$').next().unwrap_or_default().trim();
                (!record.is_empty()).then(|| record.to_owned())
            })
            .collect();
        let text = |field| entry.first(field).unwrap_or_default().to_owned();
        Ok(RawPupil {
            jointure: jointure.to_owned(),
            eleve_id: eleve_id.to_owned(),
            struct_jointure: struct_jointure.to_owned(),
            first_name: entry.first(Field::GivenName).map(str::to_owned),
            class,
            relatives,
            last_name: text(Field::LastName),
            birth_date: text(Field::BirthDate),
            ine: text(Field::Ine),
            at,
        })
    }

    fn record(&self, entry: &Entry, at: Location) -> Result<RawRecord, Problem> {
        let jointure = jointure_of(entry)?;
        let children = entry.all(Field::Children).map(child_jointure).collect();
        // A parent's names only ever serve the simulators.
        let text = |field| match self.keep {
            Keep::Everything => entry.first(field).unwrap_or_default().to_owned(),
            Keep::Index => String::new(),
        };
        Ok(RawRecord {
            jointure: jointure.to_owned(),
            login: entry.first(Field::Login).map(str::to_owned),
            children,
            last_name: text(Field::LastName),
            first_name: text(Field::GivenName),
            at,
        })
    }

    /// Links what the files held: drops duplicates and dangling links, counting them.
    /// Borrows every name from the entries read, so linking a département costs a few
    /// tables of positions, not a second copy of its strings.
    fn link(&self) -> Linked<'_> {
        let mut report = self.report.clone();
        let mut establishments: Vec<&RawEstablishment> = Vec::new();
        let mut by_struct: HashMap<&str, usize> = HashMap::new();
        let mut uais: HashSet<Uai> = HashSet::new();
        for e in &self.establishments {
            if by_struct.contains_key(e.struct_jointure.as_str()) || !uais.insert(e.uai.clone()) {
                report.add(Problem::DuplicateEstablishment, e.at.clone());
                continue;
            }
            by_struct.insert(&e.struct_jointure, establishments.len());
            establishments.push(e);
        }
        let mut pupils: Vec<(&RawPupil, usize)> = Vec::new();
        let mut pupil_by_jointure: HashMap<&str, usize> = HashMap::new();
        let mut keys: HashSet<(Uai, &str)> = HashSet::new();
        for p in &self.pupils {
            if pupil_by_jointure.contains_key(p.jointure.as_str()) {
                report.add(Problem::DuplicateJointure, p.at.clone());
                continue;
            }
            let Some(&school) = by_struct.get(p.struct_jointure.as_str()) else {
                report.add(Problem::UnknownEstablishment, p.at.clone());
                continue;
            };
            if !keys.insert((establishments[school].uai.clone(), &p.eleve_id)) {
                report.add(Problem::DuplicatePupil, p.at.clone());
                continue;
            }
            pupil_by_jointure.insert(&p.jointure, pupils.len());
            pupils.push((p, school));
        }
        drop(keys);
        let mut records: Vec<(&RawRecord, Vec<usize>)> = Vec::new();
        let mut record_by_jointure: HashMap<&str, usize> = HashMap::new();
        for r in &self.records {
            let jointure = r.jointure.as_str();
            if record_by_jointure.contains_key(jointure) || pupil_by_jointure.contains_key(jointure)
            {
                report.add(Problem::DuplicateJointure, r.at.clone());
                continue;
            }
            let mut children = Vec::new();
            for child in &r.children {
                match pupil_by_jointure.get(child.as_str()) {
                    Some(&p) if !children.contains(&p) => children.push(p),
                    Some(_) => {}
                    None => report.add(Problem::UnknownChild, r.at.clone()),
                }
            }
            record_by_jointure.insert(jointure, records.len());
            records.push((r, children));
        }
        drop(pupil_by_jointure);
        // The pupil side of the links: ENTElevePersRelEleve.
        for (p, (pupil, _)) in pupils.iter().enumerate() {
            for relative in &pupil.relatives {
                match record_by_jointure.get(relative.as_str()) {
                    Some(&r) => {
                        let children = &mut records[r].1;
                        if !children.contains(&p) {
                            children.push(p);
                        }
                    }
                    None => report.add(Problem::MissingParentRecord, pupil.at.clone()),
                }
            }
        }
        drop(record_by_jointure);
        // Parents: the records of one login, in the order they were read.
        let mut parents: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
        let mut by_login: HashMap<&str, usize> = HashMap::new();
        for (r, (record, _)) in records.iter().enumerate() {
            match record.login.as_deref() {
                Some(login) => match by_login.get(login) {
                    Some(&at) => parents[at].1.push(r),
                    None => {
                        by_login.insert(login, parents.len());
                        parents.push((Some(login), vec![r]));
                    }
                },
                None => parents.push((None, vec![r])),
            }
        }
        report.establishments = establishments.len();
        report.pupils = pupils.len();
        report.parent_records = records.len();
        report.logins = by_login.len();
        report.records_without_login = records.iter().filter(|(r, _)| r.login.is_none()).count();
        report.parents_in_several_establishments = parents
            .iter()
            .filter(|(login, _)| login.is_some())
            .filter(|(_, rs)| {
                let schools: HashSet<usize> = rs
                    .iter()
                    .flat_map(|&r| &records[r].1)
                    .map(|&p| pupils[p].1)
                    .collect();
                schools.len() > 1
            })
            .count();
        Linked {
            report,
            establishments,
            pupils,
            records,
            parents,
        }
    }

    /// The directory index, and what the load found.
    pub fn into_index(self) -> (DirectoryIndex, LoadReport) {
        let linked = self.link();
        let mut index = DirectoryIndex::default();
        for e in &linked.establishments {
            index.add_establishment(e.uai.clone(), e.name.as_deref().unwrap_or(e.uai.as_str()));
        }
        // Each linked pupil's position in the index.
        let mut positions: Vec<u32> = Vec::with_capacity(linked.pupils.len());
        for (pupil, school) in &linked.pupils {
            let key = PupilKey {
                uai: linked.establishments[*school].uai.clone(),
                eleve_id: pupil.eleve_id.clone(),
            };
            let label = pupil.first_name.as_ref().map(|first_name| PupilLabel {
                first_name: first_name.clone(),
                class: pupil.class.clone(),
            });
            let at = index.add_pupil(key, label);
            index.add_jointure_at(&pupil.jointure, at);
            positions.push(at);
        }
        for (record, children) in &linked.records {
            // A record's jointure stands for its first child (rule 3 of the pupil keys).
            if let Some(&first) = children.first() {
                index.add_jointure_at(&record.jointure, positions[first]);
            }
        }
        for (login, rs) in &linked.parents {
            let mut children: Vec<u32> = Vec::new();
            for &r in rs {
                for &p in &linked.records[r].1 {
                    if !children.contains(&positions[p]) {
                        children.push(positions[p]);
                    }
                }
            }
            if children.is_empty() {
                continue;
            }
            let names = login
                .iter()
                .copied()
                .chain(rs.iter().map(|&r| linked.records[r].0.jointure.as_str()));
            index.add_principal_at(names, children.into_boxed_slice(), login.is_some());
        }
        index.shrink_to_fit();
        (index, linked.report)
    }

    /// A whole directory for the simulators: parents grouped by login (a record without
    /// one is a parent of its own, logging in with its jointure), their test password
    /// their login.
    pub fn into_data(self) -> (DirectoryData, LoadReport) {
        let linked = self.link();
        let mut data = DirectoryData::default();
        for e in &linked.establishments {
            data.establishments.push(Establishment {
                uai: e.uai.as_str().to_owned(),
                struct_jointure: e.struct_jointure.clone(),
                name: e.name.clone().unwrap_or_else(|| e.uai.as_str().to_owned()),
                kind: e.kind,
            });
        }
        for (pupil, school) in &linked.pupils {
            let establishment = &linked.establishments[*school];
            data.pupils.push(Pupil {
                jointure: pupil.jointure.clone(),
                eleve_id: pupil.eleve_id.clone(),
                ine: pupil.ine.clone(),
                last_name: pupil.last_name.clone(),
                first_name: pupil.first_name.clone().unwrap_or_default(),
                birth_date: pupil.birth_date.clone(),
                uai: establishment.uai.as_str().to_owned(),
                class: pupil.class.clone().unwrap_or_default(),
            });
        }
        for (login, rs) in &linked.parents {
            let Some(&first) = rs.first() else { continue };
            let head = &linked.records[first].0;
            let login = login.map_or_else(|| head.jointure.clone(), str::to_owned);
            let mut parent = Parent {
                password: login.clone(),
                login,
                last_name: head.last_name.clone(),
                first_name: head.first_name.clone(),
                children: Vec::new(),
                records: Vec::new(),
            };
            for &r in rs {
                let (record, children) = &linked.records[r];
                let Some(&eldest) = children.first() else {
                    continue;
                };
                let uai = &linked.establishments[linked.pupils[eldest].1].uai;
                let jointures: Vec<String> = children
                    .iter()
                    .map(|&p| linked.pupils[p].0.jointure.clone())
                    .collect();
                for jointure in &jointures {
                    if !parent.children.contains(jointure) {
                        parent.children.push(jointure.clone());
                    }
                }
                parent.records.push(RelationRecord {
                    jointure: record.jointure.clone(),
                    uai: uai.as_str().to_owned(),
                    children: jointures,
                });
            }
            if !parent.children.is_empty() {
                data.parents.push(parent);
            }
        }
        (data, linked.report)
    }
}

/// The linked contents of the files.
struct Linked<'a> {
    report: LoadReport,
    establishments: Vec<&'a RawEstablishment>,
    /// Each pupil with its establishment's position.
    pupils: Vec<(&'a RawPupil, usize)>,
    /// Each record with its children's positions.
    records: Vec<(&'a RawRecord, Vec<usize>)>,
    /// Each parent: its login, if any, and its records' positions.
    parents: Vec<(Option<&'a str>, Vec<usize>)>,
}

enum Kind {
    Pupil,
    Record,
    Establishment,
    Other(String),
    Unknown,
}

/// The entry's kind from its category; without one, from the attributes only that kind
/// has (files are recognised by content).
fn kind_of(entry: &Entry) -> Kind {
    match entry.category.as_deref() {
        Some("Eleve") => Kind::Pupil,
        Some("PersRelEleve") => Kind::Record,
        Some("EtabEducNat") => Kind::Establishment,
        Some(other) if !other.is_empty() => Kind::Other(other.chars().take(40).collect()),
        _ => {
            let has = |field| entry.values.iter().any(|(f, _)| *f == field);
            if has(Field::EleveId) {
                Kind::Pupil
            } else if has(Field::StructUai) {
                Kind::Establishment
            } else if has(Field::Children) {
                Kind::Record
            } else {
                Kind::Unknown
            }
        }
    }
}

/// `ENTPersonJointure`, else the entry's `identifier`.
fn jointure_of(entry: &Entry) -> Result<&str, Problem> {
    let jointure = entry
        .first(Field::Jointure)
        .or(entry.id.as_deref())
        .filter(|j| !j.is_empty())
        .ok_or(Problem::MissingAttribute("ENTPersonJointure"))?;
    if jointure.chars().any(char::is_whitespace) {
        return Err(Problem::BadValue("ENTPersonJointure"));
    }
    Ok(jointure)
}

fn establishment(entry: &Entry, at: Location) -> Result<RawEstablishment, Problem> {
    let struct_jointure = entry
        .first(Field::StructJointure)
        .or(entry.id.as_deref())
        .ok_or(Problem::MissingAttribute("ENTStructureJointure"))?;
    let uai = entry
        .first(Field::StructUai)
        .ok_or(Problem::MissingAttribute("ENTStructureUAI"))?;
    let uai = Uai::parse(uai).ok_or(Problem::BadValue("ENTStructureUAI"))?;
    let kind = match entry.first(Field::StructType).unwrap_or_default() {
        t if t.contains("LYC") => EstablishmentKind::Lycee,
        t if t.contains("ECOLE") || t.contains("ECOL") => EstablishmentKind::Ecole,
        _ => EstablishmentKind::College,
    };
    Ok(RawEstablishment {
        struct_jointure: struct_jointure.to_owned(),
        uai,
        name: entry.first(Field::StructName).map(str::to_owned),
        kind,
        at,
    })
}

/// A child in `ENTAuxPersRelEleveEleve`: a jointure, or an LDAP DN
/// (`uid=2605692,ou=people,…`) whose first value is one.
fn child_jointure(value: &str) -> String {
    let first = value.split(',').next().unwrap_or(value);
    match first.split_once('=') {
        Some((_, jointure)) if value.contains(',') || first.contains('=') => jointure,
        _ => first,
    }
    .trim()
    .to_owned()
}

fn is_request(start: &BytesStart<'_>) -> bool {
    matches!(
        start.local_name().as_ref(),
        b"addRequest" | b"modifyRequest" | b"deleteRequest"
    )
}

fn reads_text(place: Option<&Place>) -> bool {
    matches!(
        place,
        Some(Place::Value(Some(_)) | Place::Id | Place::CategoryValue)
    )
}

fn push_bounded(text: &mut String, more: &str, entry: &mut Entry) {
    if text.len() + more.len() > MAX_VALUE {
        entry.broken = Some(Problem::MalformedEntry);
    } else {
        text.push_str(more);
    }
}

/// The five XML entities and character references; anything else is unknown (the
/// exports' DTD defines none).
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .filter(|c| *c != '\u{0}');
    }
    match &**reference {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => None,
    }
}

/// Every file under `path`, sorted; ignored entries noted in `report`.
fn collect_files(path: &Path, depth: usize, files: &mut Vec<PathBuf>, report: &mut LoadReport) {
    let unreadable = |report: &mut LoadReport| {
        let file = path.display().to_string().into();
        report.add(Problem::UnreadableFile, Location { file, entry: 0 });
    };
    let Ok(meta) = std::fs::metadata(path) else {
        unreadable(report);
        return;
    };
    if meta.is_file() {
        files.push(path.to_owned());
        return;
    }
    if !meta.is_dir() || depth > MAX_DEPTH {
        report.ignored_files.push((path.to_owned(), "not a file"));
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        unreadable(report);
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        // A link to a folder could loop: only real folders are walked.
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_file() || t.is_dir() || t.is_symlink())
        })
        .filter(|e| !(e.file_type().is_ok_and(|t| t.is_symlink()) && e.path().is_dir()))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        collect_files(&child, depth + 1, files, report);
    }
}

// --- encodings ------------------------------------------------------------------------

/// The encodings AAF exports are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charset {
    Utf8,
    /// ISO-8859-1.
    Latin1,
    /// ISO-8859-15: Latin-1 with €, Š, š, Ž, ž, Œ, œ, Ÿ.
    Latin9,
    Windows1252,
}

impl Charset {
    fn of(label: &str) -> Option<Charset> {
        let label = label.trim().to_ascii_lowercase();
        match label.as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" => {
                Some(Charset::Latin1)
            }
            "iso-8859-15" | "iso8859-15" | "iso_8859-15" | "latin9" | "latin-9" => {
                Some(Charset::Latin9)
            }
            "windows-1252" | "cp1252" => Some(Charset::Windows1252),
            _ => None,
        }
    }

    fn char_of(self, byte: u8) -> char {
        if byte < 0x80 {
            return char::from(byte);
        }
        let special = match self {
            Charset::Latin9 => match byte {
                0xA4 => Some('€'),
                0xA6 => Some('Š'),
                0xA8 => Some('š'),
                0xB4 => Some('Ž'),
                0xB8 => Some('ž'),
                0xBC => Some('Œ'),
                0xBD => Some('œ'),
                0xBE => Some('Ÿ'),
                _ => None,
            },
            Charset::Windows1252 => WINDOWS_1252
                .get(usize::from(byte).wrapping_sub(0x80))
                .copied()
                .flatten(),
            Charset::Latin1 | Charset::Utf8 => None,
        };
        special.unwrap_or(char::from(byte))
    }
}

/// windows-1252's 0x80–0x9F (the rest is Latin-1).
const WINDOWS_1252: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

enum Sniffed {
    Xml(Charset),
    Ignored(&'static str),
    UnsupportedEncoding,
}

/// Looks at a file's first bytes: a BOM, an archive, XML at all, and the encoding its
/// declaration names. Consumes a UTF-8 BOM.
fn sniff(input: &mut impl BufRead) -> std::io::Result<Sniffed> {
    let head = input.fill_buf()?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        input.consume(3);
        return Ok(sniff_declaration(input.fill_buf()?, true));
    }
    if head.starts_with(&[0xFE, 0xFF]) || head.starts_with(&[0xFF, 0xFE]) {
        return Ok(Sniffed::UnsupportedEncoding);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&[0x1F, 0x8B]) {
        return Ok(Sniffed::Ignored("a compressed archive: unpack it first"));
    }
    Ok(sniff_declaration(head, false))
}

fn sniff_declaration(head: &[u8], bom: bool) -> Sniffed {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if head.is_empty() {
        return Sniffed::Ignored("empty");
    }
    if head[0] != b'<' {
        return Sniffed::Ignored("not XML");
    }
    if !head.starts_with(b"<?xml") {
        return Sniffed::Xml(Charset::Utf8);
    }
    let end = head
        .windows(2)
        .take(512)
        .position(|w| w == b"?>")
        .unwrap_or(0);
    let declaration = String::from_utf8_lossy(&head[..end]);
    let Some(at) = declaration.find("encoding") else {
        return Sniffed::Xml(Charset::Utf8);
    };
    let rest = declaration[at + "encoding".len()..].trim_start();
    let Some(rest) = rest.strip_prefix('=') else {
        return Sniffed::Xml(Charset::Utf8);
    };
    let rest = rest.trim_start();
    let quote = rest.chars().next().unwrap_or('"');
    let label = rest
        .trim_start_matches(quote)
        .split(quote)
        .next()
        .unwrap_or_default();
    match Charset::of(label) {
        // A BOM wins over a declaration that disagrees with it.
        Some(_) if bom => Sniffed::Xml(Charset::Utf8),
        Some(charset) => Sniffed::Xml(charset),
        None => Sniffed::UnsupportedEncoding,
    }
}

/// A single-byte encoded input read as UTF-8, chunk by chunk.
struct ToUtf8<R> {
    inner: R,
    charset: Charset,
    out: Vec<u8>,
    at: usize,
}

impl<R: BufRead> ToUtf8<R> {
    fn new(inner: R, charset: Charset) -> Self {
        Self {
            inner,
            charset,
            out: Vec::with_capacity(128 * 1024),
            at: 0,
        }
    }
}

impl<R: BufRead> Read for ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for ToUtf8<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at >= self.out.len() {
            self.out.clear();
            self.at = 0;
            let raw = self.inner.fill_buf()?;
            let n = raw.len();
            for &byte in raw {
                if byte < 0x80 {
                    self.out.push(byte);
                } else {
                    let mut utf8 = [0; 4];
                    let c = self.charset.char_of(byte).encode_utf8(&mut utf8);
                    self.out.extend_from_slice(c.as_bytes());
                }
            }
            self.inner.consume(n);
        }
        Ok(&self.out[self.at..])
    }

    fn consume(&mut self, amount: usize) {
        self.at = (self.at + amount).min(self.out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(files: &[(&str, &[u8])], keep: Keep) -> AafReader {
        let mut reader = AafReader::new(keep);
        for (name, bytes) in files {
            assert_eq!(reader.read(&Arc::from(*name), *bytes), None, "{name}");
        }
        reader
    }

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE ficAlimMENESR SYSTEM \"ficAlimMENESR.dtd\">\n<ficAlimMENESR>\n";

    fn entry(category: &str, id: &str, attrs: &[(&str, &[&str])]) -> String {
        let kind = if category == "EtabEducNat" {
            "categorieStructure"
        } else {
            "categoriePersonne"
        };
        let mut out = format!(
            "<addRequest><operationalAttributes><attr name=\"{kind}\"><value>{category}</value></attr></operationalAttributes><identifier><id>{id}</id></identifier><attributes>"
        );
        for (name, values) in attrs {
            out.push_str(&format!("<attr name=\"{name}\">"));
            for v in *values {
                out.push_str(&format!("<value>{v}</value>"));
            }
            out.push_str("</attr>");
        }
        out.push_str("</attributes></addRequest>\n");
        out
    }

    fn file(entries: &[String]) -> Vec<u8> {
        let mut out = HEAD.to_owned();
        for e in entries {
            out.push_str(e);
        }
        out.push_str("</ficAlimMENESR>\n");
        out.into_bytes()
    }

    fn school() -> String {
        entry(
            "EtabEducNat",
            "52006",
            &[
                ("ENTStructureJointure", &["52006"]),
                ("ENTStructureUAI", &["0330101A"]),
                ("ENTStructureNomCourant", &["COLLEGE JEAN MOULIN"]),
            ],
        )
    }

    fn pupil(jointure: &str, id: &str, first: &str, relatives: &[&str]) -> String {
        let relatives: Vec<String> = relatives.iter().map(|r| format!("{r}$1$1$1$0$0")).collect();
        let relatives: Vec<&str> = relatives.iter().map(String::as_str).collect();
        entry(
            "Eleve",
            jointure,
            &[
                ("ENTPersonJointure", &[jointure]),
                ("ENTEleveStructRattachId", &[id]),
                ("ENTPersonStructRattach", &["52006"]),
                ("givenName", &[first]),
                ("ENTEleveClasses", &["52006$4B"]),
                ("ENTEleveINE", &["SIM0000001A"]),
                ("ENTElevePersRelEleve", &relatives),
            ],
        )
    }

    fn record(jointure: &str, login: Option<&str>, children: &[&str]) -> String {
        let login: Vec<&str> = login.into_iter().collect();
        entry(
            "PersRelEleve",
            jointure,
            &[
                ("ENTPersonJointure", &[jointure]),
                ("ENTPersonLogin", &login),
                ("ENTAuxPersRelEleveEleve", children),
            ],
        )
    }

    fn key(id: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse("0330101A").unwrap(),
            eleve_id: id.to_owned(),
        }
    }

    #[test]
    fn links_both_sides_and_groups_records_by_login() {
        let bytes = file(&[
            school(),
            pupil("2605001", "837001", "L&#233;a", &["3000001"]),
            pupil("2605002", "837002", "Hugo", &[]),
            record("3000001", Some("claire.martin"), &["2605002"]),
        ]);
        let (index, report) = read(&[("a.xml", &bytes)], Keep::Index).into_index();
        assert_eq!(report.problems, BTreeMap::new());
        assert_eq!((report.pupils, report.parent_records), (2, 1));
        let claire = index.principal("claire.martin").unwrap();
        assert_eq!(claire.children, [key("837002"), key("837001")]);
        assert!(claire.complete);
        assert_eq!(index.principal("3000001"), Some(claire));
        assert_eq!(index.jointure("2605001"), Some(&key("837001")));
        assert_eq!(index.label(&key("837001")).unwrap().first_name, "Léa");
        assert_eq!(
            index.label(&key("837001")).unwrap().class.as_deref(),
            Some("4B")
        );
        assert_eq!(
            index.establishment_name(&Uai::parse("0330101a").unwrap()),
            Some("COLLEGE JEAN MOULIN")
        );
    }

    #[test]
    fn reads_iso_8859_15_and_entities() {
        let text = String::from_utf8(file(&[
            school(),
            pupil("1", "11", "Zo\u{e9} &amp; \u{152}lise", &[]),
        ]))
        .unwrap()
        .replace("UTF-8", "ISO-8859-15");
        let latin9: Vec<u8> = text
            .chars()
            .map(|c| match c {
                'é' => 0xE9,
                'Œ' => 0xBC,
                c => u8::try_from(u32::from(c)).unwrap(),
            })
            .collect();
        let (index, report) = read(&[("latin9.xml", &latin9)], Keep::Index).into_index();
        assert_eq!(report.problem_count(), 0, "{report}");
        assert_eq!(index.label(&key("11")).unwrap().first_name, "Zoé & Œlise");
    }

    #[test]
    fn problems_are_counted_located_and_never_name_anyone() {
        let bytes = file(&[
            school(),
            pupil("2605001", "837001", "Secretname", &["9999999"]),
            pupil("2605001", "837009", "Léa", &[]),
            pupil("2605003", "837001", "Léa", &[]),
            entry("Eleve", "4", &[("givenName", &["Léa"])]),
            pupil("2605005", "83x", "Léa", &[]),
            record("3000001", None, &["2605001", "7777777"]),
            "<addRequest><identifier><id>5</id></identifier><bogus/></addRequest>".into(),
            entry("PersEducNat", "6", &[]),
            "<modifyRequest><operationalAttributes/></modifyRequest>".into(),
            pupil("2605006", "837006", "&unknown;", &[]),
        ]);
        let (index, report) = read(&[("bad.xml", &bytes)], Keep::Index).into_index();
        let count = |p| report.count(p);
        assert_eq!(count(Problem::MissingParentRecord), 1);
        assert_eq!(count(Problem::DuplicateJointure), 1);
        assert_eq!(count(Problem::DuplicatePupil), 1);
        assert_eq!(
            count(Problem::MissingAttribute("ENTEleveStructRattachId")),
            1
        );
        assert_eq!(count(Problem::BadValue("ENTEleveStructRattachId")), 1);
        assert_eq!(count(Problem::UnknownChild), 1);
        assert_eq!(count(Problem::MalformedEntry), 2);
        assert_eq!(count(Problem::DeltaEntry), 1);
        assert_eq!(report.ignored_entries.get("PersEducNat"), Some(&1));
        assert_eq!(index.pupil_count(), 1);
        assert_eq!(
            report.problems[&Problem::DuplicateJointure].examples[0].to_string(),
            "bad.xml entry 3"
        );
        let printed = report.to_string();
        for secret in ["Secretname", "2605001", "837001", "9999999", "3000001"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }

    #[test]
    fn broken_xml_resumes_at_the_next_entry() {
        let mut bytes = file(&[school(), pupil("1", "11", "A", &[])]);
        bytes.truncate(bytes.len() - "</ficAlimMENESR>\n".len());
        bytes.extend_from_slice(b"<addRequest><identifier><id>2</id></identifier><attributes><attr name=\"x\"><value>v</wrong></attr></attributes></addRequest>\n");
        bytes.extend_from_slice(pupil("3", "33", "C", &[]).as_bytes());
        bytes.extend_from_slice(b"</ficAlimMENESR>\n");
        let (index, report) = read(&[("broken.xml", &bytes)], Keep::Index).into_index();
        assert!(report.count(Problem::BrokenXml) >= 1, "{report}");
        assert!(index.jointure("1").is_some());
        assert!(index.jointure("3").is_some(), "{report}");
    }

    #[test]
    fn other_files_are_ignored_by_content() {
        let mut reader = AafReader::new(Keep::Index);
        let name = |n: &str| Arc::<str>::from(n);
        assert!(reader.read(&name("readme"), &b"hello"[..]).is_some());
        assert!(reader.read(&name("x.zip"), &b"PK\x03\x04..."[..]).is_some());
        assert!(reader
            .read(&name("other.xml"), &b"<?xml version=\"1.0\"?><html/>"[..])
            .is_some());
        assert_eq!(
            reader.read(&name("u16.xml"), &[0xFF, 0xFE, b'<', 0][..]),
            None
        );
        assert_eq!(reader.report.count(Problem::UnsupportedEncoding), 1);
        // Named like a pupil file, holding establishments: read for what it holds.
        assert_eq!(
            reader.read(
                &name("ENT_X_Complet_Eleve_0000.xml"),
                &file(&[school()])[..]
            ),
            None
        );
        let (index, _) = reader.into_index();
        assert_eq!(index.establishment_count(), 1);
    }

    #[test]
    fn a_record_without_login_speaks_for_its_establishment_only() {
        let bytes = file(&[
            school(),
            pupil("1", "11", "A", &["9"]),
            record("9", None, &[]),
        ]);
        let (index, report) = read(&[("a.xml", &bytes)], Keep::Index).into_index();
        assert_eq!(report.records_without_login, 1);
        let record = index.principal("AC-BORDEAUX$9").expect("prefix stripped");
        assert_eq!(record.children, [key("11")]);
        assert!(!record.complete);
    }

    #[test]
    fn keeps_no_ine_in_the_index_mode() {
        let bytes = file(&[school(), pupil("1", "11", "A", &[])]);
        let reader = read(&[("a.xml", &bytes)], Keep::Index);
        assert!(reader.pupils.iter().all(|p| p.ine.is_empty()));
        let reader = read(&[("a.xml", &bytes)], Keep::Everything);
        assert_eq!(reader.pupils[0].ine, "SIM0000001A");
    }

    #[test]
    fn ldap_dns_name_children_by_their_first_value() {
        assert_eq!(child_jointure("uid=2605692,ou=people,dc=x"), "2605692");
        assert_eq!(child_jointure("2605692"), "2605692");
        assert_eq!(child_jointure(" 2605692 "), "2605692");
    }

    #[test]
    fn windows_1252_and_latin1_differ_where_they_should() {
        assert_eq!(Charset::Windows1252.char_of(0x80), '€');
        assert_eq!(Charset::Latin1.char_of(0xE9), 'é');
        assert_eq!(Charset::Latin9.char_of(0xA4), '€');
        assert_eq!(Charset::Latin1.char_of(0xA4), '¤');
    }
}
