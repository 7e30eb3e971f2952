//! (verdict: being written.)
