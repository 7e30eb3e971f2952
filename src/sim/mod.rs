//! (sim: being written.)
