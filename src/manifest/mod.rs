//! Manifests: parse and validate (pure), content negotiation (pure), and building the OpenShift
//! `Image` object for a pushed manifest (pure).

pub mod image;
pub mod negotiate;
pub mod parse;

pub use parse::{parse, Descriptor, Kind, Manifest};
