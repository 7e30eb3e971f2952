//! CAS 2.0/3.0 XML answers (`cas:serviceResponse`): the schema walk over the strict
//! reader, and the canonical writer.
//!
//! Attribute shapes read (`docs/domain.md`, "Answers and attribute shapes"): A children
//! of `cas:attributes`; B RubyCAS children of `cas:authenticationSuccess`; C
//! `cas:attribute name= value=` under `authenticationSuccess`; D the same inside
//! `cas:attributes`; E entcore's `cas:userAttributes` with unqualified children.
//! Written: A only (D for names that cannot be element names).

use super::build::{is_metadata, AssertionBuilder, AUTHENTICATION_DATE, FROM_NEW_LOGIN, LONG_TERM};
use super::xml::{has_non_xml_char, is_ncname, push_escaped, Element, Ns, XmlReader};
use super::{Assertion, Failure, Outcome, ParseError, ParseOptions};

const SERVICE_RESPONSE: &str = "serviceResponse";
const SUCCESS: &str = "authenticationSuccess";
const FAILURE: &str = "authenticationFailure";
const PROXY_FAILURE: &str = "proxyFailure";
const ATTRIBUTES: &str = "attributes";
const USER_ATTRIBUTES: &str = "userAttributes";
const NAME_VALUE: &str = "attribute";

pub(crate) fn parse(body: &[u8], options: &ParseOptions<'_>) -> Result<Outcome, ParseError> {
    let mut reader = XmlReader::new(body, &options.limits)?;
    let root = reader.root()?;
    if root.local() != SERVICE_RESPONSE.as_bytes() {
        return Err(ParseError::WrongRoot(SERVICE_RESPONSE));
    }
    if root.ns != Ns::Cas {
        return Err(ParseError::WrongNamespace(SERVICE_RESPONSE));
    }
    let mut outcome = None;
    while let Some(child) = reader.next_child(&root)? {
        if outcome.is_some() {
            return Err(ParseError::NotOneOutcome);
        }
        if child.ns != Ns::Cas {
            return Err(ParseError::WrongNamespace(SERVICE_RESPONSE));
        }
        outcome = Some(match child.local() {
            b"authenticationSuccess" => Outcome::Success(success(&mut reader, &child, options)?),
            b"authenticationFailure" => Outcome::Failure(failure(&mut reader, &child, FAILURE)?),
            b"proxyFailure" => Outcome::Failure(failure(&mut reader, &child, PROXY_FAILURE)?),
            // `proxySuccess` answers `/proxy`, never a validation (T20).
            _ => return Err(ParseError::UnexpectedElement(SERVICE_RESPONSE)),
        });
    }
    let outcome = outcome.ok_or(ParseError::NotOneOutcome)?;
    reader.finish()?;
    Ok(outcome)
}

fn failure<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    context: &'static str,
) -> Result<Failure, ParseError> {
    let code = reader
        .attribute(element, "code")?
        .ok_or(ParseError::MissingAttribute(context))?;
    let message = reader.text(element, context)?;
    Ok(Failure { code, message })
}

fn success<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    options: &ParseOptions<'_>,
) -> Result<Assertion, ParseError> {
    let mut builder = AssertionBuilder::new(&options.limits);
    let (mut seen_attributes, mut seen_pgt, mut seen_proxies) = (false, false, false);
    while let Some(child) = reader.next_child(element)? {
        if child.ns != Ns::Cas {
            return Err(ParseError::WrongNamespace(SUCCESS));
        }
        match child.local() {
            b"user" => builder.principal(reader.text(&child, "user")?)?,
            b"attributes" => {
                once(&mut seen_attributes, ATTRIBUTES)?;
                attributes(reader, &child, &mut builder)?;
            }
            b"proxyGrantingTicket" => {
                once(&mut seen_pgt, "proxyGrantingTicket")?;
                builder.pgt_iou(reader.text(&child, "proxyGrantingTicket")?)?;
            }
            b"proxies" => {
                once(&mut seen_proxies, "proxies")?;
                while let Some(proxy) = reader.next_child(&child)? {
                    if !proxy.is(Ns::Cas, "proxy") {
                        return Err(ParseError::UnexpectedElement("proxies"));
                    }
                    builder.proxy(reader.text(&proxy, "proxy")?)?;
                }
            }
            b"attribute" => {
                builder.set_outside(true);
                name_value(reader, &child, &mut builder)?;
                builder.set_outside(false);
            }
            // Shape B (RubyCAS): any other CAS element is one attribute value.
            _ => {
                builder.set_outside(true);
                leaf_attribute(reader, &child, &mut builder, SUCCESS)?;
                builder.set_outside(false);
            }
        }
    }
    builder.finish()
}

fn once(seen: &mut bool, what: &'static str) -> Result<(), ParseError> {
    if std::mem::replace(seen, true) {
        return Err(ParseError::DuplicateElement(what));
    }
    Ok(())
}

/// `cas:attributes`: shapes A, D and E.
fn attributes<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    builder: &mut AssertionBuilder<'_>,
) -> Result<(), ParseError> {
    while let Some(child) = reader.next_child(element)? {
        if child.ns != Ns::Cas && child.ns != Ns::None {
            return Err(ParseError::WrongNamespace(ATTRIBUTES));
        }
        match child.local() {
            b"attribute" => name_value(reader, &child, builder)?,
            b"userAttributes" => {
                while let Some(leaf) = reader.next_child(&child)? {
                    if leaf.ns != Ns::Cas && leaf.ns != Ns::None {
                        return Err(ParseError::WrongNamespace(USER_ATTRIBUTES));
                    }
                    leaf_attribute(reader, &leaf, builder, USER_ATTRIBUTES)?;
                }
            }
            _ => leaf_attribute(reader, &child, builder, ATTRIBUTES)?,
        }
    }
    Ok(())
}

/// `<NAME>VALUE</NAME>`, keyed by local name.
fn leaf_attribute<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    builder: &mut AssertionBuilder<'_>,
    context: &'static str,
) -> Result<(), ParseError> {
    let name = reader.as_str(element.local())?;
    if has_non_xml_char(name) {
        return Err(ParseError::ControlChar);
    }
    let value = reader.text_ref(element, context)?;
    builder.checked_attribute(name, value)
}

/// `<cas:attribute name="…" value="…"/>` (shapes C and D).
fn name_value<'a>(
    reader: &mut XmlReader<'a>,
    element: &Element<'a>,
    builder: &mut AssertionBuilder<'_>,
) -> Result<(), ParseError> {
    let name = reader
        .attribute(element, "name")?
        .ok_or(ParseError::MissingAttribute(NAME_VALUE))?;
    let value = reader
        .attribute(element, "value")?
        .ok_or(ParseError::MissingAttribute(NAME_VALUE))?;
    // Must be empty: text or children would be a second, competing value.
    if !reader.text_ref(element, NAME_VALUE)?.is_empty() {
        return Err(ParseError::UnexpectedText);
    }
    builder.checked_attribute(&name, &value)
}

// === writer ===

pub(crate) fn serialize(outcome: &Outcome) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    out.push_str("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n");
    match outcome {
        Outcome::Success(assertion) => write_success(&mut out, assertion),
        Outcome::Failure(failure) => {
            out.push_str("  <cas:authenticationFailure code=\"");
            push_escaped(&mut out, &failure.code, true);
            out.push_str("\">");
            push_escaped(&mut out, &failure.message, false);
            out.push_str("</cas:authenticationFailure>\n");
        }
    }
    out.push_str("</cas:serviceResponse>\n");
    out.into_bytes()
}

fn write_success(out: &mut String, assertion: &Assertion) {
    out.push_str("  <cas:authenticationSuccess>\n");
    element(out, "    ", "user", &assertion.principal);
    let auth = &assertion.auth;
    let has_meta = auth.authentication_date.is_some()
        || auth.long_term.is_some()
        || auth.from_new_login.is_some();
    if has_meta || !assertion.attributes.is_empty() {
        out.push_str("    <cas:attributes>\n");
        if let Some(date) = &auth.authentication_date {
            element(out, "      ", AUTHENTICATION_DATE, date);
        }
        if let Some(flag) = auth.long_term {
            element(out, "      ", LONG_TERM, bool_str(flag));
        }
        if let Some(flag) = auth.from_new_login {
            element(out, "      ", FROM_NEW_LOGIN, bool_str(flag));
        }
        for (name, value) in assertion.attributes.iter() {
            if is_ncname(name) && !is_reserved(name) {
                element(out, "      ", name, value);
            } else {
                out.push_str("      <cas:attribute name=\"");
                push_escaped(out, name, true);
                out.push_str("\" value=\"");
                push_escaped(out, value, true);
                out.push_str("\"/>\n");
            }
        }
        out.push_str("    </cas:attributes>\n");
    }
    if let Some(iou) = &assertion.pgt_iou {
        element(out, "    ", "proxyGrantingTicket", iou);
    }
    if !assertion.proxies.is_empty() {
        out.push_str("    <cas:proxies>\n");
        for proxy in &assertion.proxies {
            element(out, "      ", "proxy", proxy);
        }
        out.push_str("    </cas:proxies>\n");
    }
    out.push_str("  </cas:authenticationSuccess>\n");
}

/// Names with a meaning inside `cas:attributes`: written name/value so they read back
/// as plain attributes.
fn is_reserved(name: &str) -> bool {
    name == NAME_VALUE || name == USER_ATTRIBUTES || is_metadata(name)
}

fn element(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push_str("<cas:");
    out.push_str(name);
    out.push('>');
    push_escaped(out, value, false);
    out.push_str("</cas:");
    out.push_str(name);
    out.push_str(">\n");
}

pub(crate) fn bool_str(flag: bool) -> &'static str {
    if flag {
        "true"
    } else {
        "false"
    }
}
