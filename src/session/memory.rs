//! The in-memory session store (embedded default).
