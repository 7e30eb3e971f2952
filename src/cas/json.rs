//! CAS JSON answers (`format=JSON`, CAS spec §2.5.2): typed structs only, never
//! `serde_json::Value` (which keeps the last of two duplicate keys: `docs/security.md`,
//! T29). Duplicate keys, unknown fields, a non-string `user` are all refused.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::build::{trimmed, AssertionBuilder, AUTHENTICATION_DATE, FROM_NEW_LOGIN, LONG_TERM};
use super::cas_xml::bool_str;
use super::{Failure, Outcome, ParseError, ParseOptions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    #[serde(rename = "serviceResponse")]
    service_response: ServiceResponse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceResponse {
    #[serde(rename = "authenticationSuccess")]
    success: Option<Success>,
    #[serde(rename = "authenticationFailure")]
    failure: Option<JsonFailure>,
    #[serde(rename = "proxyFailure")]
    proxy_failure: Option<JsonFailure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Success {
    user: String,
    #[serde(rename = "proxyGrantingTicket")]
    pgt_iou: Option<String>,
    #[serde(default)]
    proxies: Vec<String>,
    #[serde(default)]
    attributes: AttributeList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFailure {
    code: String,
    #[serde(default)]
    description: String,
}

/// `attributes`, in document order, each value a string or an array of strings;
/// booleans are read as `true`/`false` (Apereo writes the CAS 3 metadata that way).
/// Numbers, objects and `null` are refused.
#[derive(Default)]
struct AttributeList(Vec<(String, Vec<String>)>);

/// One attribute's values.
struct Values(Vec<String>);

// === impl AttributeList ===

impl<'de> Deserialize<'de> for AttributeList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = AttributeList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeList, A::Error> {
                let mut list: Vec<(String, Vec<String>)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if list.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(DUPLICATE));
                    }
                    let Values(values) = map.next_value()?;
                    list.push((name, values));
                }
                Ok(AttributeList(list))
            }
        }
        deserializer.deserialize_map(ListVisitor)
    }
}

/// Marker in the serde error that names a duplicate key (serde's own derive says
/// "duplicate field").
const DUPLICATE: &str = "duplicate field";

// === impl Values ===

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;
        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a boolean or an array of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Values, E> {
                Ok(Values(vec![v.to_owned()]))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Values, E> {
                Ok(Values(vec![v]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Values, E> {
                Ok(Values(vec![bool_str(v).to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut values = Vec::new();
                while let Some(Scalar(v)) = seq.next_element()? {
                    values.push(v);
                }
                Ok(Values(values))
            }
        }
        deserializer.deserialize_any(ValuesVisitor)
    }
}

/// One array element: a string or a boolean.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(bool_str(v).to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

pub(crate) fn parse(body: &[u8], options: &ParseOptions<'_>) -> Result<Outcome, ParseError> {
    if body.len() > options.limits.max_bytes {
        return Err(ParseError::TooLarge {
            limit: options.limits.max_bytes,
        });
    }
    let root: Root = serde_json::from_slice(body).map_err(json_error)?;
    let response = root.service_response;
    match (response.success, response.failure, response.proxy_failure) {
        (Some(success), None, None) => {
            let mut builder = AssertionBuilder::new(&options.limits);
            builder.principal(success.user)?;
            if let Some(iou) = success.pgt_iou {
                builder.pgt_iou(iou)?;
            }
            for proxy in success.proxies {
                builder.proxy(proxy)?;
            }
            for (name, values) in success.attributes.0 {
                for value in values {
                    builder.attribute(&name, value)?;
                }
            }
            builder.finish().map(Outcome::Success)
        }
        (None, Some(f), None) | (None, None, Some(f)) => Ok(Outcome::Failure(Failure {
            code: trimmed(f.code, &options.limits)?,
            message: trimmed(f.description, &options.limits)?,
        })),
        _ => Err(ParseError::NotOneOutcome),
    }
}

/// serde's messages can quote the offending value (a principal): keep only the class.
fn json_error(error: serde_json::Error) -> ParseError {
    if error.to_string().contains(DUPLICATE) {
        return ParseError::JsonDuplicateKey;
    }
    match error.classify() {
        serde_json::error::Category::Syntax => ParseError::Json("syntax error"),
        serde_json::error::Category::Eof => ParseError::Json("truncated"),
        serde_json::error::Category::Data => ParseError::Json("does not match the CAS schema"),
        serde_json::error::Category::Io => ParseError::Json("unreadable"),
    }
}

// === writer ===

/// Canonical JSON: `attributes` grouped by name in order of first appearance (JSON
/// objects cannot interleave names), every value an array, metadata first. Written by
/// hand because `serde_json::Map` would sort the names.
pub(crate) fn serialize(outcome: &Outcome) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    out.push_str("{\"serviceResponse\":{");
    match outcome {
        Outcome::Success(assertion) => {
            out.push_str("\"authenticationSuccess\":{\"user\":");
            push_string(&mut out, &assertion.principal);
            if let Some(iou) = &assertion.pgt_iou {
                out.push_str(",\"proxyGrantingTicket\":");
                push_string(&mut out, iou);
            }
            if !assertion.proxies.is_empty() {
                out.push_str(",\"proxies\":");
                push_array(&mut out, assertion.proxies.iter().map(String::as_str));
            }
            let auth = &assertion.auth;
            let mut entries: Vec<(&str, Vec<&str>)> = Vec::new();
            if let Some(date) = &auth.authentication_date {
                entries.push((AUTHENTICATION_DATE, vec![date.as_str()]));
            }
            if let Some(flag) = auth.long_term {
                entries.push((LONG_TERM, vec![bool_str(flag)]));
            }
            if let Some(flag) = auth.from_new_login {
                entries.push((FROM_NEW_LOGIN, vec![bool_str(flag)]));
            }
            for name in assertion.attributes.names() {
                entries.push((name, assertion.attributes.values(name).collect()));
            }
            if !entries.is_empty() {
                out.push_str(",\"attributes\":{");
                for (i, (name, values)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_string(&mut out, name);
                    out.push(':');
                    push_array(&mut out, values.into_iter());
                }
                out.push('}');
            }
            out.push('}');
        }
        Outcome::Failure(failure) => {
            out.push_str("\"authenticationFailure\":{\"code\":");
            push_string(&mut out, &failure.code);
            out.push_str(",\"description\":");
            push_string(&mut out, &failure.message);
            out.push('}');
        }
    }
    out.push_str("}}\n");
    out.into_bytes()
}

fn push_string(out: &mut String, value: &str) {
    // A `&str` always serialises; the fallback keeps the output valid JSON regardless.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned()));
}

fn push_array<'v>(out: &mut String, values: impl Iterator<Item = &'v str>) {
    out.push('[');
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(out, value);
    }
    out.push(']');
}
