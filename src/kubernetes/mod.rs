//! Kubernetes value formats shared by the gateway and the embedded API: resource quantities
//! and timestamps. Pure logic, no I/O.

pub mod quantity;
pub mod time;

pub use quantity::{parse_quantity, Quantity};
pub use time::rfc3339;
