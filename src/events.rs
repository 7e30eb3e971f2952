//! (events: being written.)
