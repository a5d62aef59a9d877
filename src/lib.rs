//! portcullis — an authorization gateway that makes an unmodified CNCF Distribution registry
//! behave like the OpenShift integrated registry.
//!
//! The request path is a chain of small, separately tested pieces:
//!
//! * [`route`] turns a method + path + query into a typed [`route::Route`] (pure);
//! * [`auth::credentials`] decodes the `Authorization` header (pure);
//! * [`auth::access`] says which API permissions a route needs (pure);
//! * [`auth::authorizer`] asks the OpenShift API (through [`openshift`]) and caches decisions;
//! * [`gateway`] is the only module that knows pingora: it answers locally or streams to the
//!   upstream registry;
//! * [`cluster`] is the embedded OpenShift API subset, served over real HTTP;
//! * [`error`] is the registry JSON error envelope, in one place;
//! * [`kubernetes`] holds the Kubernetes value formats (quantities, timestamps) both sides use.

pub mod audit;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gateway;
pub mod images;
pub mod kubernetes;
pub mod log_writer;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod openshift;
pub mod quota;
pub mod route;
pub mod upstream;
