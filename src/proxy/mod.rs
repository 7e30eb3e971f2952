//! (proxy: being written.)
