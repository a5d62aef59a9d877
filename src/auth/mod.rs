//! Authentication and authorization: credentials (pure), required accesses (pure), challenges
//! (pure), and the authorizer with its decision cache (talks to the API through `openshift`).

pub mod access;
pub mod authorizer;
pub mod challenge;
pub mod credentials;
