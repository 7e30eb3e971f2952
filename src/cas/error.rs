//! Why an answer was refused. Every variant has a stable code (`cas.parse.…`).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl ParseError {
    /// Stable code, logged and documented in `docs/events.md`.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::TooLarge { .. } => "cas.parse.too_large",
        }
    }
}
