//! The ticket gate: only well-formed service and proxy tickets go anywhere.

/// A service (`ST-`) or proxy (`PT-`) ticket that passed the gate.
///
/// Tickets are bearer credentials: `Debug` and `Display` never print the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServiceTicket(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket is empty")]
    Empty,
}

impl TicketError {
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

impl ServiceTicket {
    /// Max length accepted (CAS spec §3.7 recommends clients accept 256).
    pub const MAX_LEN: usize = 256;

    pub fn parse(value: &str) -> Result<Self, TicketError> {
        let _ = value;
        todo!()
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
