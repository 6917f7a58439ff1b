//! See the crate's documentation; filled by issue 15's work.
