//! The LogFlux server: stores and indexes sealed log records it cannot read, for many tenants.
#![forbid(unsafe_code)]

pub mod catalog;
mod segment;
pub mod store;
