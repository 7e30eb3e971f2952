//! (report: being written.)
