//! Typed client for the subset of the OpenShift / Kubernetes API the gateway uses.
//! This is the only module that makes HTTP calls to the API.

pub mod client;
pub mod images;
pub mod kubeconfig;
pub mod types;

pub use client::{ApiClient, ApiError, ApiSettings};
