//! Snapshot tests of rendered screens.
