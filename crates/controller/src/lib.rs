//! The Kubernetes controller for `AWSDynamoDBSource`.
//!
//! Each source becomes an adapter Deployment (see [`resources`]) whose sink
//! is resolved by [`sink`]. Decisions are pure functions, so that they are
//! tested without a cluster; the binary wires them to the API server.

pub mod leader;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod resources;
pub mod sink;
