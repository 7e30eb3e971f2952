//! SAML 1.1 answers of `/samlValidate` (CAS spec §4.2.5): the schema walk and the
//! canonical writer.
//!
//! Checks beyond the XML layer (`docs/security.md`, T30): exactly one assertion
//! with one authentication statement; the subject present in both statements and
//! byte-equal; `StatusCode/@Value` resolved as a QName, not string-compared;
//! `Conditions` checked against the caller's clock and `Audience` against the service
//! when those are given.

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::build::{
    checked_identity, AssertionBuilder, AUTHENTICATION_DATE, FROM_NEW_LOGIN, LONG_TERM,
};
use super::cas_xml::bool_str;
use super::xml::{is_ncname, push_escaped, Element, Ns, XmlReader, SAML1P_NS, SAML1_NS, SOAP_NS};
use super::{AnswerContext, Assertion, Failure, Outcome, ParseError, ParseOptions};

/// Clock skew tolerated on `Conditions` (java-cas-client allows 1 s; ENT and proxy
/// clocks are NTP-synchronised, a minute covers slow answers).
const CLOCK_SKEW_SECS: i64 = 60;
/// Validity window written around `now` in serialised answers.
const VALIDITY_SECS: i64 = 300;
/// `AuthenticationMethod` written when the model has none.
pub(crate) const UNSPECIFIED_METHOD: &str = "urn:oasis:names:tc:SAML:1.0:am:unspecified";
const CONFIRMATION_METHOD: &str = "urn:oasis:names:tc:SAML:1.0:cm:artifact";
const CAS_ATTRIBUTE_NS: &str = "http://www.ja-sig.org/products/cas/";
const SUCCESS: &str = "Success";
/// Failure code written when the model's code cannot be a QName local part.
const RESPONDER: &str = "Responder";

/// `Conditions` as read.
#[derive(Default)]
struct Conditions {
    not_before: Option<i64>,
    not_on_or_after: Option<i64>,
    audiences: Vec<String>,
}

/// What one `Assertion` element held.
struct AssertionParts {
    conditions: Option<Conditions>,
    attribute_subject: Option<String>,
    authentication_subject: Option<String>,
    authentication_statements: usize,
}

pub(crate) fn parse(body: &[u8], options: &ParseOptions<'_>) -> Result<Outcome, ParseError> {
    let mut reader = XmlReader::new(body, &options.limits)?;
    let envelope = reader.root()?;
    expect(&envelope, Ns::Soap, "Envelope")?;
    let mut outcome = None;
    let mut seen_body = false;
    while let Some(child) = reader.next_child(&envelope)? {
        if child.is(Ns::Soap, "Header") && !seen_body {
            reader.skip(child)?;
        } else if child.is(Ns::Soap, "Body") && !seen_body {
            seen_body = true;
            while let Some(response) = reader.next_child(&child)? {
                if outcome.is_some() {
                    return Err(ParseError::NotOneOutcome);
                }
                expect(&response, Ns::Saml1Protocol, "Response")?;
                outcome = Some(parse_response(&mut reader, &response, options)?);
            }
        } else {
            return Err(ParseError::UnexpectedElement("Envelope"));
        }
    }
    let outcome = outcome.ok_or(ParseError::NotOneOutcome)?;
    reader.finish()?;
    Ok(outcome)
}

fn expect(element: &Element<'_>, ns: Ns, local: &'static str) -> Result<(), ParseError> {
    if element.local() != local.as_bytes() {
        return Err(ParseError::WrongRoot(local));
    }
    if element.ns != ns {
        return Err(ParseError::WrongNamespace(local));
    }
    Ok(())
}

fn parse_response<'a>(
    reader: &mut XmlReader<'a>,
    response: &Element<'a>,
    options: &ParseOptions<'_>,
) -> Result<Outcome, ParseError> {
    let mut status: Option<(bool, String, String)> = None;
    let mut builder = AssertionBuilder::new(&options.limits);
    let mut parts: Option<AssertionParts> = None;
    while let Some(child) = reader.next_child(response)? {
        if child.is(Ns::Saml1Protocol, "Status") && status.is_none() {
            status = Some(parse_status(reader, &child)?);
        } else if child.is(Ns::Saml1Assertion, "Assertion") {
            if parts.is_some() {
                return Err(ParseError::SamlAssertionCount);
            }
            parts = Some(parse_assertion(reader, &child, &mut builder)?);
        } else {
            return Err(ParseError::UnexpectedElement("Response"));
        }
    }
    let (success, code, message) = status.ok_or(ParseError::MissingAttribute("Status"))?;
    if !success {
        if parts.is_some() {
            return Err(ParseError::SamlAssertionCount);
        }
        return Ok(Outcome::Failure(Failure { code, message }));
    }
    let parts = parts.ok_or(ParseError::SamlAssertionCount)?;
    if parts.authentication_statements != 1 {
        return Err(ParseError::SamlAssertionCount);
    }
    match (parts.attribute_subject, parts.authentication_subject) {
        (Some(a), Some(b)) if a == b => builder.principal(a)?,
        _ => return Err(ParseError::SamlSubject),
    }
    check_conditions(parts.conditions, options)?;
    builder.finish().map(Outcome::Success)
}

/// `(is success, status local name, message)`. The message is `StatusMessage`, else
/// the `StatusCode` text some servers put there (django-cas-server).
fn parse_status<'a>(
    reader: &mut XmlReader<'a>,
    status: &Element<'a>,
) -> Result<(bool, String, String), ParseError> {
    let mut code: Option<(bool, String, String)> = None;
    let mut message: Option<String> = None;
    while let Some(child) = reader.next_child(status)? {
        if child.is(Ns::Saml1Protocol, "StatusCode") && code.is_none() {
            let value = reader
                .attribute(&child, "Value")?
                .ok_or(ParseError::MissingAttribute("StatusCode"))?;
            let (ns, local) = reader
                .resolve_qname(&value)
                .map_err(|_| ParseError::SamlStatus)?;
            if ns != Ns::Saml1Protocol {
                return Err(ParseError::SamlStatus);
            }
            let local = local.to_owned();
            let text = reader.text_skipping_children(&child, "StatusCode")?;
            code = Some((local == SUCCESS, local, text));
        } else if child.is(Ns::Saml1Protocol, "StatusMessage") && message.is_none() {
            message = Some(reader.text(&child, "StatusMessage")?);
        } else if child.is(Ns::Saml1Protocol, "StatusDetail") {
            reader.skip(child)?;
        } else {
            return Err(ParseError::UnexpectedElement("Status"));
        }
    }
    let (success, local, text) = code.ok_or(ParseError::MissingAttribute("Status"))?;
    Ok((success, local, message.unwrap_or(text)))
}

fn parse_assertion<'a>(
    reader: &mut XmlReader<'a>,
    assertion: &Element<'a>,
    builder: &mut AssertionBuilder<'_>,
) -> Result<AssertionParts, ParseError> {
    let mut parts = AssertionParts {
        conditions: None,
        attribute_subject: None,
        authentication_subject: None,
        authentication_statements: 0,
    };
    while let Some(child) = reader.next_child(assertion)? {
        if child.ns != Ns::Saml1Assertion {
            return Err(ParseError::WrongNamespace("Assertion"));
        }
        match child.local() {
            b"Conditions" if parts.conditions.is_none() => {
                parts.conditions = Some(parse_conditions(reader, &child)?);
            }
            b"AttributeStatement" if parts.attribute_subject.is_none() => {
                parts.attribute_subject = Some(parse_attribute_statement(reader, &child, builder)?);
            }
            b"AuthenticationStatement" => {
                parts.authentication_statements += 1;
                let auth = builder.auth_mut();
                auth.authentication_date = reader.attribute(&child, "AuthenticationInstant")?;
                auth.method = reader.attribute(&child, "AuthenticationMethod")?;
                let mut subject = None;
                while let Some(inner) = reader.next_child(&child)? {
                    if inner.is(Ns::Saml1Assertion, "Subject") && subject.is_none() {
                        subject = Some(parse_subject(reader, &inner, builder)?);
                    } else {
                        return Err(ParseError::UnexpectedElement("AuthenticationStatement"));
                    }
                }
                parts.authentication_subject = subject;
            }
            _ => return Err(ParseError::UnexpectedElement("Assertion")),
        }
    }
    Ok(parts)
}

fn parse_conditions<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
) -> Result<Conditions, ParseError> {
    let instant = |value: Option<String>| value.map(|v| parse_instant(&v)).transpose();
    let mut conditions = Conditions {
        not_before: instant(reader.attribute(element, "NotBefore")?)?,
        not_on_or_after: instant(reader.attribute(element, "NotOnOrAfter")?)?,
        audiences: Vec::new(),
    };
    while let Some(child) = reader.next_child(element)? {
        if !child.is(Ns::Saml1Assertion, "AudienceRestrictionCondition") {
            return Err(ParseError::UnexpectedElement("Conditions"));
        }
        while let Some(audience) = reader.next_child(&child)? {
            if !audience.is(Ns::Saml1Assertion, "Audience") {
                return Err(ParseError::UnexpectedElement(
                    "AudienceRestrictionCondition",
                ));
            }
            conditions
                .audiences
                .push(reader.text(&audience, "Audience")?);
        }
    }
    Ok(conditions)
}

/// The statement's subject; attributes go to the builder (repeated `AttributeValue`
/// and repeated `Attribute` both make multi-values, in document order).
fn parse_attribute_statement<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    builder: &mut AssertionBuilder<'_>,
) -> Result<String, ParseError> {
    let mut subject = None;
    while let Some(child) = reader.next_child(element)? {
        if child.is(Ns::Saml1Assertion, "Subject") && subject.is_none() {
            subject = Some(parse_subject(reader, &child, builder)?);
        } else if child.is(Ns::Saml1Assertion, "Attribute") {
            let name = reader
                .attribute(&child, "AttributeName")?
                .ok_or(ParseError::MissingAttribute("Attribute"))?;
            while let Some(value) = reader.next_child(&child)? {
                if !value.is(Ns::Saml1Assertion, "AttributeValue") {
                    return Err(ParseError::UnexpectedElement("Attribute"));
                }
                let value = reader.text(&value, "AttributeValue")?;
                // The instant comes from `AuthenticationStatement`; django-cas-server's
                // extra `authenticationDate` attribute is a second, coarser copy.
                if name != AUTHENTICATION_DATE {
                    builder.attribute(&name, value)?;
                }
            }
        } else {
            return Err(ParseError::UnexpectedElement("AttributeStatement"));
        }
    }
    subject.ok_or(ParseError::SamlSubject)
}

/// `Subject/NameIdentifier`, read with the principal's rules (T22, T27).
fn parse_subject<'a>(
    reader: &mut XmlReader<'a>,
    subject: &Element<'a>,
    builder: &AssertionBuilder<'_>,
) -> Result<String, ParseError> {
    let mut name = None;
    while let Some(child) = reader.next_child(subject)? {
        if child.is(Ns::Saml1Assertion, "NameIdentifier") {
            if name.is_some() {
                return Err(ParseError::SamlSubject);
            }
            name = Some(checked_identity(
                reader.text(&child, "NameIdentifier")?,
                builder.limits(),
            )?);
        } else if child.is(Ns::Saml1Assertion, "SubjectConfirmation") {
            reader.skip(child)?;
        } else {
            return Err(ParseError::UnexpectedElement("Subject"));
        }
    }
    name.ok_or(ParseError::SamlSubject)
}

fn parse_instant(value: &str) -> Result<i64, ParseError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| ParseError::SamlTime)
}

fn check_conditions(
    conditions: Option<Conditions>,
    options: &ParseOptions<'_>,
) -> Result<(), ParseError> {
    if options.now_unix.is_none() && options.service.is_none() {
        return Ok(());
    }
    let conditions = conditions.ok_or(ParseError::SamlExpired)?;
    if let Some(now) = options.now_unix {
        let now = i64::try_from(now).map_err(|_| ParseError::SamlExpired)?;
        let not_before = conditions.not_before.ok_or(ParseError::SamlExpired)?;
        let not_after = conditions.not_on_or_after.ok_or(ParseError::SamlExpired)?;
        if now.saturating_add(CLOCK_SKEW_SECS) < not_before
            || now >= not_after.saturating_add(CLOCK_SKEW_SECS)
        {
            return Err(ParseError::SamlExpired);
        }
    }
    if let Some(service) = options.service {
        if !conditions.audiences.iter().any(|a| a == service) {
            return Err(ParseError::SamlAudience);
        }
    }
    Ok(())
}

// === writer ===

/// Canonical SAML 1.1 answer (CAS spec §4.2.5 shape, fixed prefixes `samlp`/`saml`).
/// Consecutive values of one name share an `Attribute` (repeated `AttributeValue`),
/// so the value order survives exactly.
pub(crate) fn serialize(outcome: &Outcome, context: &AnswerContext<'_>) -> Vec<u8> {
    let now = i64::try_from(context.now_unix).unwrap_or(i64::MAX);
    let issue_instant = format_instant(now);
    let subject = match outcome {
        Outcome::Success(assertion) => assertion.principal.as_str(),
        Outcome::Failure(failure) => written_code(failure),
    };
    let id = response_id(subject, context);
    let mut out = String::with_capacity(2048);
    out.push_str("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"");
    out.push_str(SOAP_NS);
    out.push_str("\"><SOAP-ENV:Header/><SOAP-ENV:Body>");
    out.push_str("<samlp:Response xmlns:samlp=\"");
    out.push_str(SAML1P_NS);
    out.push_str("\" xmlns:saml=\"");
    out.push_str(SAML1_NS);
    out.push_str("\" IssueInstant=\"");
    out.push_str(&issue_instant);
    out.push_str("\" MajorVersion=\"1\" MinorVersion=\"1\" Recipient=\"");
    push_escaped(&mut out, context.service, true);
    out.push_str("\" ResponseID=\"_");
    out.push_str(&id);
    out.push_str("\">");
    match outcome {
        Outcome::Failure(failure) => {
            out.push_str("<samlp:Status><samlp:StatusCode Value=\"samlp:");
            out.push_str(written_code(failure));
            out.push_str("\"/>");
            if !failure.message.is_empty() {
                out.push_str("<samlp:StatusMessage>");
                push_escaped(&mut out, &failure.message, false);
                out.push_str("</samlp:StatusMessage>");
            }
            out.push_str("</samlp:Status>");
        }
        Outcome::Success(assertion) => {
            out.push_str(
                "<samlp:Status><samlp:StatusCode Value=\"samlp:Success\"/></samlp:Status>",
            );
            write_assertion(&mut out, assertion, context, now, &issue_instant, &id);
        }
    }
    out.push_str("</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>\n");
    out.into_bytes()
}

fn write_assertion(
    out: &mut String,
    assertion: &Assertion,
    context: &AnswerContext<'_>,
    now: i64,
    issue_instant: &str,
    id: &str,
) {
    out.push_str("<saml:Assertion AssertionID=\"_a");
    out.push_str(id);
    out.push_str("\" IssueInstant=\"");
    out.push_str(issue_instant);
    out.push_str("\" Issuer=\"bonenfant\" MajorVersion=\"1\" MinorVersion=\"1\">");
    out.push_str("<saml:Conditions NotBefore=\"");
    out.push_str(&format_instant(now.saturating_sub(VALIDITY_SECS)));
    out.push_str("\" NotOnOrAfter=\"");
    out.push_str(&format_instant(now.saturating_add(VALIDITY_SECS)));
    out.push_str("\"><saml:AudienceRestrictionCondition><saml:Audience>");
    push_escaped(out, context.service, false);
    out.push_str("</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>");
    out.push_str("<saml:AttributeStatement>");
    write_subject(out, &assertion.principal);
    let auth = &assertion.auth;
    if let Some(flag) = auth.long_term {
        write_attribute(out, LONG_TERM, &[bool_str(flag)]);
    }
    if let Some(flag) = auth.from_new_login {
        write_attribute(out, FROM_NEW_LOGIN, &[bool_str(flag)]);
    }
    // The authentication instant also as an attribute, as Apereo CAS and
    // django-cas-server write it: SAML clients (python-cas) read it there. The parser
    // takes the statement's instant instead, so both always say the same.
    let instant = auth.authentication_date.as_deref().unwrap_or(issue_instant);
    write_attribute(out, AUTHENTICATION_DATE, &[instant]);
    let mut run: Vec<&str> = Vec::new();
    let mut run_name: Option<&str> = None;
    for (name, value) in assertion.attributes.iter() {
        if run_name.is_some_and(|n| n != name) {
            write_attribute(out, run_name.unwrap_or_default(), &run);
            run.clear();
        }
        run_name = Some(name);
        run.push(value);
    }
    if let Some(name) = run_name {
        write_attribute(out, name, &run);
    }
    out.push_str("</saml:AttributeStatement>");
    out.push_str("<saml:AuthenticationStatement AuthenticationInstant=\"");
    push_escaped(out, instant, true);
    out.push_str("\" AuthenticationMethod=\"");
    push_escaped(
        out,
        auth.method.as_deref().unwrap_or(UNSPECIFIED_METHOD),
        true,
    );
    out.push_str("\">");
    write_subject(out, &assertion.principal);
    out.push_str("</saml:AuthenticationStatement></saml:Assertion>");
}

fn write_subject(out: &mut String, principal: &str) {
    out.push_str("<saml:Subject><saml:NameIdentifier>");
    push_escaped(out, principal, false);
    out.push_str("</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>");
    out.push_str(CONFIRMATION_METHOD);
    out.push_str("</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>");
}

fn write_attribute(out: &mut String, name: &str, values: &[&str]) {
    out.push_str("<saml:Attribute AttributeName=\"");
    push_escaped(out, name, true);
    out.push_str("\" AttributeNamespace=\"");
    out.push_str(CAS_ATTRIBUTE_NS);
    out.push_str("\">");
    for value in values {
        out.push_str("<saml:AttributeValue>");
        push_escaped(out, value, false);
        out.push_str("</saml:AttributeValue>");
    }
    out.push_str("</saml:Attribute>");
}

/// `2026-11-30T02:30:00Z`.
pub(crate) fn format_instant(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The status code written for a failure: its own when it is a QName local part
/// other than `Success`, else `Responder` (the answer must stay a failure).
fn written_code(failure: &Failure) -> &str {
    if is_ncname(&failure.code) && failure.code != SUCCESS {
        &failure.code
    } else {
        RESPONDER
    }
}

/// A response id that is unique per answer yet a pure function of what is written
/// (no clock or RNG in `cas`): a digest of the service, the instant and the subject
/// (principal, or failure code as written).
fn response_id(subject: &str, context: &AnswerContext<'_>) -> String {
    let mut digest = Sha256::new();
    digest.update(context.service.as_bytes());
    digest.update(context.now_unix.to_be_bytes());
    digest.update(subject.as_bytes());
    hex::encode(digest.finalize().get(..16).unwrap_or_default())
}
