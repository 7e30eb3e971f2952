//! CAS 1.0 `/validate` answers: `yes\n<user>\n` or `no\n` (CAS spec §2.4.2; real
//! servers add the user, Apereo may append attribute values one per line).

use super::build::AssertionBuilder;
use super::{Failure, Outcome, ParseError, ParseOptions};

/// The failure CAS 1.0 can express: the ticket did not validate, no reason given.
pub(crate) const CAS1_FAILURE_CODE: &str = "INVALID_TICKET";

/// Lines after the user (Apereo `VALUES_PER_LINE`) are unnamed attribute values: they
/// cannot be attributed to a name, so they are checked for encoding and ignored.
pub(crate) fn parse(body: &[u8], options: &ParseOptions<'_>) -> Result<Outcome, ParseError> {
    if body.len() > options.limits.max_bytes {
        return Err(ParseError::TooLarge {
            limit: options.limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    match lines.next() {
        Some("yes") => {
            let user = lines.next().ok_or(ParseError::Cas1Format)?;
            let mut builder = AssertionBuilder::new(&options.limits);
            builder.principal(user.to_owned())?;
            builder.finish().map(Outcome::Success)
        }
        Some("no") => {
            if lines.any(|l| !l.is_empty()) {
                return Err(ParseError::Cas1Format);
            }
            Ok(Outcome::Failure(Failure::new(CAS1_FAILURE_CODE, "")))
        }
        _ => Err(ParseError::Cas1Format),
    }
}

/// `yes\n<user>\n` or `no\n`: only the principal survives in CAS 1.0.
pub(crate) fn serialize(outcome: &Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Success(assertion) => {
            // A line feed inside the principal would forge a second line; the parser
            // never yields one, and a control character cannot be a principal anyway.
            let user: String = assertion
                .principal
                .chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect();
            format!("yes\n{user}\n").into_bytes()
        }
        Outcome::Failure(_) => b"no\n".to_vec(),
    }
}
