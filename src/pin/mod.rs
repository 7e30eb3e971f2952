//! (pin: being written.)
