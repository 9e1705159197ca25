//! The Admin API against the real gateway: endpoints, errors, modes, persistence, concurrency.

mod at_rest;
mod concurrency;
mod credentials;
mod declarative;
mod endpoints;
mod errors;
mod walkthroughs;
mod web_pages;

pub use crate::support::admin::{call, call_json, embedded, id};
