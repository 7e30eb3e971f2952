//! How the test Pronote reads a validation answer and which child it then shows: its
//! own small reading, as a real Pronote's CAS client does, sharing nothing with
//! bonenfant's strict parser (`cas`) or its pupil-extraction rules (`pupil`).
//!
//! That independence is the point: the demo's "wrong child" figures and the end-to-end
//! tests compare what bonenfant believes with what this reading finds, so a bug in
//! bonenfant's extraction shows as a disagreement instead of being copied here.
//!
//! It reads CAS 2/3 XML (attributes matched by local name wherever the dialect puts
//! them), CAS JSON and SAML 1.1; then takes the first FrEduVecteur value
//! `profil|nom|prénom|ELEVE_ID|UAI`, else `ENTEleveStructRattachId` with a UAI attribute,
//! else a jointure the directory knows.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pupil::directory::Directory;

/// What a validation answer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Success(Success),
    /// The CAS failure code (`INVALID_TICKET`, …).
    Failure(String),
}

/// A successful validation: who, and every attribute in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Success {
    pub principal: String,
    /// (local name, value) pairs; a multi-valued attribute gives one pair per value.
    pub attributes: Vec<(String, String)>,
}

/// The child a Pronote page shows: the establishment's UAI (upper case) and the pupil's
/// `ELEVE_ID` in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Child {
    pub uai: String,
    pub eleve_id: String,
}

/// Why an answer could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the answer is not well-formed XML")]
    Xml,
    #[error("the answer is not CAS JSON")]
    Json,
    #[error("the answer is neither a success nor a failure")]
    NoOutcome,
    #[error("the success names no user")]
    NoUser,
    #[error("the SAML assertion is for another service")]
    Audience,
    #[error("the SAML assertion is outside its validity window")]
    Expired,
}

/// How far a SAML validity window may be off, for clocks that disagree a little (Java CAS
/// clients allow about as much).
const CLOCK_SKEW_SECS: i64 = 60;

/// Reads `body`, a validation answer for `service` received at `now`: JSON when it
/// starts with `{` (servers may ignore `format=JSON`, so the body decides), else XML.
pub fn read(body: &[u8], service: &str, now: OffsetDateTime) -> Result<Answer, Unreadable> {
    if body.trim_ascii_start().starts_with(b"{") {
        return read_json(body);
    }
    let root = Element::parse(body)?;
    match root.name.as_str() {
        "serviceResponse" => read_cas(&root),
        "Envelope" | "Response" => read_saml(&root, service, now),
        _ => Err(Unreadable::NoOutcome),
    }
}

/// The child a Pronote shows for `success`: the first FrEduVecteur value, else
/// `ENTEleveStructRattachId` with a UAI attribute, else a pupil or parent-record jointure
/// the directory knows (a record names its first child).
pub fn landed_child(
    success: &Success,
    directory: &Directory,
    records: &HashMap<String, String>,
) -> Option<Child> {
    by_vector(success)
        .or_else(|| by_struct_id(success))
        .or_else(|| by_jointure(success, directory, records))
}

/// Values of the attributes named `name` (case aside: the académie chain upper-cases
/// names), each split on `;` (entcore packs several values into one).
fn values<'a>(success: &'a Success, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    success
        .attributes
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(';'))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn by_vector(success: &Success) -> Option<Child> {
    values(success, "FrEduVecteur").find_map(|value| {
        let fields: Vec<&str> = value.split('|').collect();
        let [profil, _last_name, _first_name, eleve_id, uai] = fields[..] else {
            return None;
        };
        if !matches!(profil, "1" | "2" | "3" | "4") || !is_id(eleve_id) {
            return None;
        }
        Some(Child {
            uai: uai_of(uai)?,
            eleve_id: eleve_id.to_owned(),
        })
    })
}

fn by_struct_id(success: &Success) -> Option<Child> {
    let uai = ["ENTPersonStructRattachRNE", "ENTStructureUAI", "UAI", "RNE"]
        .iter()
        .find_map(|name| values(success, name).find_map(uai_of))?;
    let eleve_id = values(success, "ENTEleveStructRattachId").find(|v| is_id(v))?;
    Some(Child {
        uai,
        eleve_id: eleve_id.to_owned(),
    })
}

fn by_jointure(
    success: &Success,
    directory: &Directory,
    records: &HashMap<String, String>,
) -> Option<Child> {
    values(success, "ENTPersonJointure").find_map(|jointure| {
        let pupil = directory.pupil_by_jointure(jointure).or_else(|| {
            records
                .get(jointure)
                .and_then(|first| directory.pupil_by_jointure(first))
        })?;
        Some(Child {
            uai: uai_of(&pupil.uai)?,
            eleve_id: pupil.eleve_id.clone(),
        })
    })
}

fn is_id(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// Seven digits and a letter, upper-cased.
fn uai_of(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let ok = bytes.len() == 8
        && bytes[..7].iter().all(u8::is_ascii_digit)
        && bytes[7].is_ascii_alphabetic();
    ok.then(|| value.to_ascii_uppercase())
}

/// The ticket a single-logout POST names (`LogoutRequest/SessionIndex`): form field
/// `logoutRequest`, or the XML as the whole body (entcore).
pub fn logout_session_index(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_form = content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }) || body.starts_with(b"logoutRequest=");
    let xml = if is_form {
        form_urlencoded::parse(body)
            .find(|(name, _)| name == "logoutRequest")
            .map(|(_, value)| value.into_owned())?
            .into_bytes()
    } else {
        body.to_vec()
    };
    let root = Element::parse(&xml).ok()?;
    if root.name != "LogoutRequest" {
        return None;
    }
    let index = root.child("SessionIndex")?.text.trim();
    (!index.is_empty()).then(|| index.to_owned())
}

// === CAS XML ===

/// `<serviceResponse>`: a failure's code, or the user and every leaf element under
/// `authenticationSuccess` (inside `attributes`, nested `userAttributes`, or directly
/// under the success as old clients expect).
fn read_cas(root: &Element) -> Result<Answer, Unreadable> {
    if let Some(failure) = root.child("authenticationFailure") {
        return Ok(Answer::Failure(
            failure
                .attribute("code")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ));
    }
    let success = root
        .child("authenticationSuccess")
        .ok_or(Unreadable::NoOutcome)?;
    let principal = success
        .child("user")
        .map(|user| user.text.trim().to_owned())
        .filter(|user| !user.is_empty())
        .ok_or(Unreadable::NoUser)?;
    let mut attributes = Vec::new();
    for child in &success.children {
        if !matches!(
            child.name.as_str(),
            "user" | "proxyGrantingTicket" | "proxies"
        ) {
            child.leaves(&mut attributes);
        }
    }
    Ok(Answer::Success(Success {
        principal,
        attributes,
    }))
}

// === SAML 1.1 ===

/// A SOAP-wrapped `samlp:Response`: the status code, then the assertion's subject and
/// attributes, checked against the service (audience) and the clock.
fn read_saml(root: &Element, service: &str, now: OffsetDateTime) -> Result<Answer, Unreadable> {
    let status = root
        .find("StatusCode")
        .and_then(|code| code.attribute("Value"))
        .ok_or(Unreadable::NoOutcome)?;
    let status = status.rsplit(':').next().unwrap_or(status);
    if status != "Success" {
        return Ok(Answer::Failure(status.to_owned()));
    }
    let assertion = root.find("Assertion").ok_or(Unreadable::NoOutcome)?;
    if let Some(conditions) = assertion.find("Conditions") {
        let audiences = conditions.find_all("Audience");
        if !audiences.is_empty() && !audiences.iter().any(|a| a.text.trim() == service) {
            return Err(Unreadable::Audience);
        }
        let instant = |name| {
            conditions
                .attribute(name)
                .and_then(|v| OffsetDateTime::parse(v, &Rfc3339).ok())
        };
        let skew = time::Duration::seconds(CLOCK_SKEW_SECS);
        let early = instant("NotBefore").is_some_and(|t| now + skew < t);
        let late = instant("NotOnOrAfter").is_some_and(|t| now - skew >= t);
        if early || late {
            return Err(Unreadable::Expired);
        }
    }
    let principal = assertion
        .find("NameIdentifier")
        .map(|n| n.text.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or(Unreadable::NoUser)?;
    let mut attributes = Vec::new();
    for attribute in assertion.find_all("Attribute") {
        let Some(name) = attribute.attribute("AttributeName") else {
            continue;
        };
        for value in attribute.find_all("AttributeValue") {
            attributes.push((name.to_owned(), value.text.trim().to_owned()));
        }
    }
    Ok(Answer::Success(Success {
        principal,
        attributes,
    }))
}

// === CAS JSON ===

/// `{"serviceResponse": {"authenticationSuccess": {"user": …, "attributes": {…}}}}` or
/// `{"serviceResponse": {"authenticationFailure": {"code": …}}}`.
fn read_json(body: &[u8]) -> Result<Answer, Unreadable> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Unreadable::Json)?;
    let response = value.get("serviceResponse").ok_or(Unreadable::Json)?;
    if let Some(failure) = response.get("authenticationFailure") {
        let code = failure.get("code").and_then(|c| c.as_str()).unwrap_or("");
        return Ok(Answer::Failure(code.trim().to_owned()));
    }
    let success = response
        .get("authenticationSuccess")
        .ok_or(Unreadable::NoOutcome)?;
    let principal = success
        .get("user")
        .and_then(|u| u.as_str())
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .ok_or(Unreadable::NoUser)?;
    let mut attributes = Vec::new();
    if let Some(found) = success.get("attributes") {
        json_leaves("", found, &mut attributes);
    }
    Ok(Answer::Success(Success {
        principal,
        attributes,
    }))
}

/// Strings and booleans under `value`, named by their nearest key; arrays give one pair
/// per element, objects are walked.
fn json_leaves(name: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::String(s) => out.push((name.to_owned(), s.trim().to_owned())),
        Value::Bool(b) => out.push((name.to_owned(), b.to_string())),
        Value::Array(items) => items.iter().for_each(|v| json_leaves(name, v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| json_leaves(k, v, out)),
        Value::Null | Value::Number(_) => {}
    }
}

// === a small XML tree ===

/// An element, by local name (namespace prefixes dropped: the dialects disagree on
/// them, and a CAS client matches names, not namespaces).
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    /// The element's own text (its children's excluded), entities resolved.
    text: String,
    children: Vec<Element>,
}

// === impl Element ===

impl Element {
    /// The document element of `body`. Answers are small (the simulators read at most
    /// 64 KiB), so a tree is cheap.
    fn parse(body: &[u8]) -> Result<Self, Unreadable> {
        let mut reader = Reader::from_reader(body);
        let mut open: Vec<Element> = Vec::new();
        let mut root = None;
        loop {
            let event = reader.read_event().map_err(|_| Unreadable::Xml)?;
            match event {
                Event::Start(start) => open.push(Self::start(&start)?),
                Event::Empty(start) => {
                    let element = Self::start(&start)?;
                    Self::close(element, &mut open, &mut root)?;
                }
                Event::End(_) => {
                    let element = open.pop().ok_or(Unreadable::Xml)?;
                    Self::close(element, &mut open, &mut root)?;
                }
                Event::Text(text) => {
                    let text = text.decode().map_err(|_| Unreadable::Xml)?;
                    Self::append(&mut open, &text);
                }
                Event::CData(data) => {
                    let text = data.decode().map_err(|_| Unreadable::Xml)?;
                    Self::append(&mut open, &text);
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = reference.decode().map_err(|_| Unreadable::Xml)?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or(Unreadable::Xml)?
                                .to_owned()
                        }
                        Err(_) => return Err(Unreadable::Xml),
                    };
                    Self::append(&mut open, &resolved);
                }
                Event::Eof => break,
                // Declarations, comments, processing instructions, DOCTYPE: nothing a
                // CAS client reads (and no entity is ever expanded from a DTD).
                _ => {}
            }
        }
        if !open.is_empty() {
            return Err(Unreadable::Xml);
        }
        root.ok_or(Unreadable::Xml)
    }

    fn start(start: &quick_xml::events::BytesStart<'_>) -> Result<Self, Unreadable> {
        let name = local(start.local_name().as_ref())?;
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|_| Unreadable::Xml)?;
            let key = local(attribute.key.local_name().as_ref())?;
            let value = attribute.unescape_value().map_err(|_| Unreadable::Xml)?;
            attributes.push((key, value.into_owned()));
        }
        Ok(Self {
            name,
            attributes,
            ..Self::default()
        })
    }

    /// Attaches a finished element to its parent, or makes it the root (a second root
    /// is not XML).
    fn close(element: Self, open: &mut [Self], root: &mut Option<Self>) -> Result<(), Unreadable> {
        match open.last_mut() {
            Some(parent) => parent.children.push(element),
            None if root.is_none() => *root = Some(element),
            None => return Err(Unreadable::Xml),
        }
        Ok(())
    }

    fn append(open: &mut [Self], text: &str) {
        if let Some(current) = open.last_mut() {
            current.text.push_str(text);
        }
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first direct child named `name`.
    fn child(&self, name: &str) -> Option<&Self> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element named `name` below this one, depth first.
    fn find(&self, name: &str) -> Option<&Self> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }

    /// Every element named `name` below this one, in document order.
    fn find_all(&self, name: &str) -> Vec<&Self> {
        let mut found = Vec::new();
        for child in &self.children {
            if child.name == name {
                found.push(child);
            } else {
                found.extend(child.find_all(name));
            }
        }
        found
    }

    /// (name, text) of every element below and including this one that has no child
    /// element, in document order.
    fn leaves(&self, out: &mut Vec<(String, String)>) {
        if self.children.is_empty() {
            out.push((self.name.clone(), self.text.trim().to_owned()));
        } else {
            self.children.iter().for_each(|c| c.leaves(out));
        }
    }
}

fn local(name: &[u8]) -> Result<String, Unreadable> {
    std::str::from_utf8(name)
        .map(str::to_owned)
        .map_err(|_| Unreadable::Xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "http://127.0.0.1:9/0330101a/pronote/parent.html";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("a valid instant")
    }

    fn success(body: &str) -> Success {
        match read(body.as_bytes(), SERVICE, now()) {
            Ok(Answer::Success(success)) => success,
            other => panic!("expected a success, got {other:?}"),
        }
    }

    fn directory() -> Directory {
        let text = include_str!("../../../tests/fixtures/sim/directory.toml");
        Directory::from_data(toml::from_str(text).expect("the example parses"))
            .expect("the example is consistent")
    }

    fn child(uai: &str, eleve_id: &str) -> Child {
        Child {
            uai: uai.to_owned(),
            eleve_id: eleve_id.to_owned(),
        }
    }

    fn landed(success: &Success) -> Option<Child> {
        let directory = directory();
        let records = directory
            .parents()
            .iter()
            .flat_map(|p| &p.records)
            .filter_map(|r| Some((r.jointure.clone(), r.children.first()?.clone())))
            .collect();
        landed_child(success, &directory, &records)
    }

    #[test]
    fn reads_every_dialect_of_cas_xml_by_local_name() {
        let ose = success(
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess><cas:user>claire.martin</cas:user><cas:attributes>
    <cas:FrEduVecteur>2|MARTIN|Claire|837002|0330202B</cas:FrEduVecteur>
    <cas:FrEduVecteur>2|MARTIN|Claire|837001|0330101A</cas:FrEduVecteur>
  </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"#,
        );
        assert_eq!(ose.principal, "claire.martin");
        assert_eq!(
            landed(&ose),
            Some(child("0330202B", "837002")),
            "the first value"
        );

        let entng = success(
            r#"<serviceResponse xmlns="http://www.yale.edu/tp/cas"><authenticationSuccess>
  <user>claire.martin</user><attributes><userAttributes>
    <FrEduVecteur>2|MARTIN|Claire|837001|0330101A</FrEduVecteur>
  </userAttributes></attributes></authenticationSuccess></serviceResponse>"#,
        );
        assert_eq!(landed(&entng), Some(child("0330101A", "837001")));

        // Laclasse: Claire's record jointure at 0330202B only, inside and outside
        // `attributes`: the record's first child.
        let laclasse = success(
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
  <cas:user>claire.martin</cas:user>
  <cas:attributes><cas:user>claire.martin</cas:user><cas:ENTPersonJointure>2867002</cas:ENTPersonJointure></cas:attributes>
  <cas:ENTPersonJointure>2867002</cas:ENTPersonJointure>
</cas:authenticationSuccess></cas:serviceResponse>"#,
        );
        assert_eq!(laclasse.principal, "claire.martin");
        assert_eq!(landed(&laclasse), Some(child("0330202B", "837002")));
        // Julien's one record for two children names the first.
        let julien = Success {
            attributes: vec![("ENTPersonJointure".into(), "2867003".into())],
            ..laclasse
        };
        assert_eq!(landed(&julien), Some(child("0330101A", "837003")));
    }

    #[test]
    fn entities_and_cdata_are_read_as_text() {
        let answer = success(
            r#"<serviceResponse><authenticationSuccess><user>l&#233;a&amp;co</user>
<attributes><nom><![CDATA[D'<ARC>]]></nom></attributes></authenticationSuccess></serviceResponse>"#,
        );
        assert_eq!(answer.principal, "léa&co");
        assert_eq!(
            answer.attributes,
            [("nom".to_owned(), "D'<ARC>".to_owned())]
        );
    }

    #[test]
    fn failures_malformed_and_empty_answers() {
        let failure = read(
            br#"<cas:serviceResponse xmlns:cas="c"><cas:authenticationFailure code="INVALID_TICKET">no</cas:authenticationFailure></cas:serviceResponse>"#,
            SERVICE,
            now(),
        );
        assert_eq!(failure, Ok(Answer::Failure("INVALID_TICKET".into())));
        for (body, why) in [
            ("<serviceResponse><authenticationSuccess>", Unreadable::Xml),
            ("<a/><b/>", Unreadable::Xml),
            ("<serviceResponse>&nbsp;</serviceResponse>", Unreadable::Xml),
            ("<serviceResponse/>", Unreadable::NoOutcome),
            (
                "<serviceResponse><authenticationSuccess><user> </user></authenticationSuccess></serviceResponse>",
                Unreadable::NoUser,
            ),
            ("{\"serviceResponse\": 1", Unreadable::Json),
        ] {
            assert_eq!(read(body.as_bytes(), SERVICE, now()), Err(why), "{body}");
        }
    }

    #[test]
    fn reads_the_session_index_of_a_logout_request() {
        let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="LR-1" Version="2.0" IssueInstant="2026-05-28T20:20:00Z"><saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">@NOT_USED@</saml:NameID><samlp:SessionIndex>ST-abc</samlp:SessionIndex></samlp:LogoutRequest>"#;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("logoutRequest", xml)
            .finish();
        let ct = Some("application/x-www-form-urlencoded");
        assert_eq!(
            logout_session_index(ct, form.as_bytes()).as_deref(),
            Some("ST-abc")
        );
        assert_eq!(
            logout_session_index(Some("text/xml"), xml.as_bytes()).as_deref(),
            Some("ST-abc")
        );
        assert_eq!(logout_session_index(ct, b"other=1"), None);
        assert_eq!(
            logout_session_index(None, b"<a><SessionIndex>x</SessionIndex></a>"),
            None
        );
    }

    #[test]
    fn reads_cas_json() {
        let answer = success(
            r#"{"serviceResponse": {"authenticationSuccess": {"user": "claire.martin",
                "attributes": {"isFromNewLogin": true,
                "FrEduVecteur": ["2|MARTIN|Claire|837001|0330101A", "2|MARTIN|Claire|837002|0330202B"]}}}}"#,
        );
        assert_eq!(landed(&answer), Some(child("0330101A", "837001")));
        let failure = read(
            br#"{"serviceResponse": {"authenticationFailure": {"code": "INVALID_SERVICE", "description": "x"}}}"#,
            SERVICE,
            now(),
        );
        assert_eq!(failure, Ok(Answer::Failure("INVALID_SERVICE".into())));
    }

    fn saml(status: &str, audience: &str, not_before: &str, not_after: &str) -> String {
        format!(
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion">
<samlp:Status><samlp:StatusCode Value="samlp:{status}"/></samlp:Status>
<saml:Assertion><saml:Conditions NotBefore="{not_before}" NotOnOrAfter="{not_after}">
<saml:AudienceRestrictionCondition><saml:Audience>{audience}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>
<saml:AttributeStatement><saml:Subject><saml:NameIdentifier>claire.martin</saml:NameIdentifier></saml:Subject>
<saml:Attribute AttributeName="FrEduVecteur" AttributeNamespace="x">
<saml:AttributeValue>2|MARTIN|Claire|837002|0330202B</saml:AttributeValue>
<saml:AttributeValue>2|MARTIN|Claire|837001|0330101A</saml:AttributeValue></saml:Attribute>
</saml:AttributeStatement></saml:Assertion></samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        )
    }

    #[test]
    fn reads_saml_and_checks_its_audience_and_window() {
        let service = SERVICE.replace('&', "&amp;");
        let (before, after) = ("2026-05-28T20:20:00Z", "2026-05-28T20:30:00Z");
        let answer = success(&saml("Success", &service, before, after));
        assert_eq!(answer.principal, "claire.martin");
        assert_eq!(landed(&answer), Some(child("0330202B", "837002")));
        let read_saml = |body: String| read(body.as_bytes(), SERVICE, now());
        assert_eq!(
            read_saml(saml("INVALID_TICKET", &service, before, after)),
            Ok(Answer::Failure("INVALID_TICKET".into()))
        );
        assert_eq!(
            read_saml(saml("Success", "http://elsewhere/", before, after)),
            Err(Unreadable::Audience)
        );
        assert_eq!(
            read_saml(saml(
                "Success",
                &service,
                "2026-05-28T19:00:00Z",
                "2026-05-28T19:10:00Z"
            )),
            Err(Unreadable::Expired)
        );
    }

    #[test]
    fn child_rules_in_order_and_malformed_values_skipped() {
        let attributes = |pairs: &[(&str, &str)]| Success {
            principal: "p".into(),
            attributes: pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let vectors = attributes(&[
            ("FREDUVECTEUR", "2|MARTIN|Claire|83x001|0330101A"),
            ("FrEduVecteur", "5|MARTIN|Claire|837001|0330101A"),
            (
                "FrEduVecteur",
                "2|MARTIN|Claire|837001|0330101a;2|MARTIN|Claire|837002|0330202B",
            ),
            ("ENTEleveStructRattachId", "999"),
            ("uai", "0330202B"),
        ]);
        assert_eq!(landed(&vectors), Some(child("0330101A", "837001")));
        let struct_id = attributes(&[
            ("ENTEleveStructRattachId", "837002"),
            ("ENTPersonStructRattachRNE", "0330202b"),
            ("ENTPersonJointure", "2605001"),
        ]);
        assert_eq!(landed(&struct_id), Some(child("0330202B", "837002")));
        let pupil_jointure = attributes(&[("ENTPersonJointure", "2605001")]);
        assert_eq!(landed(&pupil_jointure), Some(child("0330101A", "837001")));
        let unknown = attributes(&[("ENTPersonJointure", "42"), ("nom", "MARTIN")]);
        assert_eq!(landed(&unknown), None);
    }
}
