//! (admin: being written.)
