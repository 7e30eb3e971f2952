//! The simulators' directory written as the académie writes it every night: AAF
//! `ficAlimMENESR` XML files, one set per establishment (`EtabEducNat`, `Eleve`,
//! `PersRelEleve`), ISO-8859-15 like the real ones, with the attributes real exports
//! carry besides the few bonenfant reads.
//!
//! Written by hand, independently of the reader in [`crate::pupil::aaf`]: a test that
//! loads these files checks the reader against the generator's own truth.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::pupil::directory::{Directory, Establishment, Parent, Pupil, RelationRecord};

/// How to write the files.
#[derive(Clone, Debug)]
pub struct AafOptions {
    /// The export's date in the file names (`yyyymmdd`).
    pub date: String,
    /// Whether parent records carry the ENT login (`ENTPersonLogin`), which groups a
    /// parent's records across establishments. Without it each record stands alone.
    pub logins: bool,
}

impl Default for AafOptions {
    fn default() -> Self {
        Self {
            date: "20260901".to_owned(),
            logins: true,
        }
    }
}

/// Writes `directory` under `folder` (created if needed) as AAF exports; the files
/// written, in order.
pub fn write_aaf(
    directory: &Directory,
    folder: &Path,
    options: &AafOptions,
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)?;
    // Each pupil's records (and the parents owning them), for ENTElevePersRelEleve.
    let mut records_of: HashMap<&str, Vec<(&Parent, &RelationRecord)>> = HashMap::new();
    for parent in directory.parents() {
        for record in &parent.records {
            for child in &record.children {
                records_of
                    .entry(child.as_str())
                    .or_default()
                    .push((parent, record));
            }
        }
    }
    let mut written = Vec::new();
    for establishment in directory.establishments() {
        let name = |kind: &str| {
            folder.join(format!(
                "ENT_{}_Complet_{}_{kind}_0000.xml",
                establishment.uai, options.date
            ))
        };
        let path = name("EtabEducNat");
        std::fs::write(&path, file(&structure(establishment, directory)))?;
        written.push(path);

        let mut pupils = String::new();
        for pupil in directory
            .pupils()
            .iter()
            .filter(|p| p.uai == establishment.uai)
        {
            let records = records_of.get(pupil.jointure.as_str());
            pupils.push_str(&eleve(
                pupil,
                establishment,
                records.map_or(&[], Vec::as_slice),
            ));
        }
        let path = name("Eleve");
        std::fs::write(&path, file(&pupils))?;
        written.push(path);

        let mut relatives = String::new();
        for parent in directory.parents() {
            for (n, record) in parent.records.iter().enumerate() {
                if record.uai == establishment.uai {
                    relatives.push_str(&pers_rel_eleve(parent, record, n, options));
                }
            }
        }
        let path = name("PersRelEleve");
        std::fs::write(&path, file(&relatives))?;
        written.push(path);
    }
    Ok(written)
}

/// A whole file, encoded ISO-8859-15.
fn file(entries: &str) -> Vec<u8> {
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n\
         <!DOCTYPE ficAlimMENESR SYSTEM \"ficAlimMENESR.dtd\">\n\
         <!-- versionAF=\"AAF-VE1803\" -->\n\
         <ficAlimMENESR>\n{entries}</ficAlimMENESR>\n"
    );
    latin9(&text)
}

/// ISO-8859-15 bytes; a character it cannot hold becomes a character reference.
fn latin9(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let byte = match c {
            '€' => Some(0xA4),
            'Š' => Some(0xA6),
            'š' => Some(0xA8),
            'Ž' => Some(0xB4),
            'ž' => Some(0xB8),
            'Œ' => Some(0xBC),
            'œ' => Some(0xBD),
            'Ÿ' => Some(0xBE),
            '\u{A4}' | '\u{A6}' | '\u{A8}' | '\u{B4}' | '\u{B8}' | '\u{BC}' | '\u{BD}'
            | '\u{BE}' => None,
            c => u8::try_from(u32::from(c)).ok(),
        };
        match byte {
            Some(b) => out.push(b),
            None => out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes()),
        }
    }
    out
}

/// One `addRequest`.
fn request(category: (&str, &str), id: &str, attributes: &[(&str, Vec<String>)]) -> String {
    let (kind, value) = category;
    let mut out = format!(
        "<addRequest>\n  <operationalAttributes><attr name=\"{kind}\"><value>{value}</value></attr></operationalAttributes>\n  <identifier><id>{}</id></identifier>\n  <attributes>\n",
        escape(id)
    );
    for (name, values) in attributes {
        let _ = write!(out, "    <attr name=\"{name}\">");
        if values.is_empty() {
            out.push_str("<value/>");
        }
        for value in values {
            let _ = write!(out, "<value>{}</value>", escape(value));
        }
        out.push_str("</attr>\n");
    }
    out.push_str("  </attributes>\n</addRequest>\n");
    out
}

fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn one(value: &str) -> Vec<String> {
    vec![value.to_owned()]
}

fn structure(establishment: &Establishment, directory: &Directory) -> String {
    let mut classes: Vec<String> = directory
        .pupils()
        .iter()
        .filter(|p| p.uai == establishment.uai)
        .map(|p| format!("{}${}", p.class, p.class))
        .collect();
    classes.sort();
    classes.dedup();
    request(
        ("categorieStructure", "EtabEducNat"),
        &establishment.struct_jointure,
        &[
            ("ENTStructureJointure", one(&establishment.struct_jointure)),
            ("ENTStructureUAI", one(&establishment.uai)),
            ("ENTStructureNomCourant", one(&establishment.name)),
            ("ENTStructureTypeStruct", one("CLG")),
            ("ENTEtablissementContrat", one("PU")),
            ("ENTServAcAcademie", one("BORDEAUX")),
            ("ENTStructureClasses", classes),
        ],
    )
}

fn eleve(
    pupil: &Pupil,
    establishment: &Establishment,
    records: &[(&Parent, &RelationRecord)],
) -> String {
    let level = pupil.class.chars().next().unwrap_or('6');
    let relatives = records
        .iter()
        .enumerate()
        // `<record>$<lien>$<financier>$<légal>$<contact>$<paiement>`: 1 père, 2 mère.
        .map(|(n, (_, record))| format!("{}${}$1$1$1$0", record.jointure, 1 + n % 2))
        .collect();
    request(
        ("categoriePersonne", "Eleve"),
        &pupil.jointure,
        &[
            ("ENTPersonJointure", one(&pupil.jointure)),
            ("ENTPersonDateNaissance", one(&pupil.birth_date)),
            ("ENTPersonNomPatro", one(&pupil.last_name)),
            ("sn", one(&pupil.last_name)),
            ("givenName", one(&pupil.first_name)),
            ("ENTPersonAutresPrenoms", Vec::new()),
            ("personalTitle", one("M.")),
            ("ENTEleveINE", one(&pupil.ine)),
            ("ENTEleveStructRattachId", one(&pupil.eleve_id)),
            (
                "ENTPersonStructRattach",
                one(&establishment.struct_jointure),
            ),
            (
                "ENTEleveClasses",
                one(&format!(
                    "{}${}",
                    establishment.struct_jointure, pupil.class
                )),
            ),
            ("ENTEleveMEF", one(&format!("1{level}110001110"))),
            ("ENTEleveLibelleMEF", one(&format!("{level}EME"))),
            ("ENTEleveRegime", one("DP DAN")),
            ("ENTEleveBoursier", one("N")),
            ("ENTEleveTransport", one("N")),
            ("ENTEleveStatutEleve", one("SCOLAIRE")),
            ("ENTElevePersRelEleve", relatives),
        ],
    )
}

fn pers_rel_eleve(
    parent: &Parent,
    record: &RelationRecord,
    n: usize,
    options: &AafOptions,
) -> String {
    let mut attributes = vec![("ENTPersonJointure", one(&record.jointure))];
    if options.logins {
        attributes.push(("ENTPersonLogin", one(&parent.login)));
    }
    let mail = format!("{}.{n}@example.invalid", parent.login);
    attributes.extend([
        ("ENTPersonDateNaissance", Vec::new()),
        ("ENTPersonNomPatro", one(&parent.last_name)),
        ("sn", one(&parent.last_name)),
        ("givenName", one(&parent.first_name)),
        ("personalTitle", one("Mme")),
        ("mail", one(&mail)),
        ("ENTPersonAdresse", one("1 rue de l'École$Bât. B")),
        ("ENTPersonCodePostal", one("33000")),
        ("ENTPersonVille", one("BORDEAUX")),
        ("ENTPersonPays", one("FRANCE")),
        ("ENTAuxPersRelEleveEleve", record.children.clone()),
    ]);
    request(
        ("categoriePersonne", "PersRelEleve"),
        &record.jointure,
        &attributes,
    )
}
