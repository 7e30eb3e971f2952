//! The ticket gate: only well-formed service and proxy tickets go anywhere.

use crate::code::Code;

/// A service (`ST-`) or proxy (`PT-`) ticket that passed the gate.
///
/// Tickets are bearer credentials: `Debug` and `Display` never print the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServiceTicket(String);

/// Why a ticket was refused. Messages never contain the ticket itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket is empty")]
    Empty,
    #[error("ticket does not start with ST- or PT-")]
    Prefix,
    #[error("ticket has nothing after its prefix")]
    EmptyBody,
    #[error("ticket is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("ticket contains a character outside [A-Za-z0-9.-]")]
    Charset,
}

impl TicketError {
    pub fn code(&self) -> Code {
        match self {
            TicketError::Empty => Code::CasTicketEmpty,
            TicketError::Prefix => Code::CasTicketPrefix,
            TicketError::EmptyBody => Code::CasTicketEmptyBody,
            TicketError::TooLong { .. } => Code::CasTicketTooLong,
            TicketError::Charset => Code::CasTicketCharset,
        }
    }
}

impl ServiceTicket {
    /// Max length accepted (CAS spec §3.7 recommends clients accept 256).
    pub const MAX_LEN: usize = 256;

    /// The gate. `.` is tolerated beside the spec's `[A-Za-z0-9-]` because the spec's
    /// own example (`ST-1-u4hrm3td92cLxpCvrjylcas.example.com`) carries one.
    pub fn parse(value: &str) -> Result<Self, TicketError> {
        if value.is_empty() {
            return Err(TicketError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(TicketError::TooLong { max: Self::MAX_LEN });
        }
        let body = value
            .strip_prefix("ST-")
            .or_else(|| value.strip_prefix("PT-"))
            .ok_or(TicketError::Prefix)?;
        if body.is_empty() {
            return Err(TicketError::EmptyBody);
        }
        if !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(TicketError::Charset);
        }
        Ok(Self(value.to_owned()))
    }

    /// The raw value, for the upstream request and store keys only — never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `PT-` tickets.
    pub fn is_proxy_ticket(&self) -> bool {
        self.0.starts_with("PT-")
    }
}

impl std::fmt::Debug for ServiceTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTicket(<redacted>)")
    }
}

impl std::fmt::Display for ServiceTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted ticket>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_service_and_proxy_tickets() {
        for t in [
            "ST-1",
            "PT-abc-DEF-123",
            "ST-1-u4hrm3td92cLxpCvrjylcas.example.com",
            "ST-6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        ] {
            assert_eq!(ServiceTicket::parse(t).unwrap().expose(), t);
        }
        assert!(ServiceTicket::parse("PT-x").unwrap().is_proxy_ticket());
        assert!(!ServiceTicket::parse("ST-x").unwrap().is_proxy_ticket());
    }

    #[test]
    fn rejects_each_malformation_with_its_code() {
        let long = format!("ST-{}", "a".repeat(ServiceTicket::MAX_LEN));
        for (t, code) in [
            ("", "cas.ticket.empty"),
            ("ST-", "cas.ticket.empty_body"),
            ("PGT-abc", "cas.ticket.prefix"),
            ("st-abc", "cas.ticket.prefix"),
            ("TGT-abc", "cas.ticket.prefix"),
            ("ST-a b", "cas.ticket.charset"),
            ("ST-a%20", "cas.ticket.charset"),
            ("ST-é", "cas.ticket.charset"),
            ("ST-a\n", "cas.ticket.charset"),
            (long.as_str(), "cas.ticket.too_long"),
        ] {
            assert_eq!(
                ServiceTicket::parse(t).unwrap_err().code().as_str(),
                code,
                "{t:?}"
            );
        }
    }

    #[test]
    fn accepts_exactly_max_len() {
        let t = format!("ST-{}", "a".repeat(ServiceTicket::MAX_LEN - 3));
        assert!(ServiceTicket::parse(&t).is_ok());
    }

    #[test]
    fn never_prints_the_value() {
        let t = ServiceTicket::parse("ST-secret").unwrap();
        assert!(!format!("{t:?}{t}").contains("secret"));
    }
}
