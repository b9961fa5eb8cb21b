//! `scim`: the SCIM 2.0 engine shared by every scimlab server.
pub mod error;
pub mod filter;
pub mod patch;
pub mod path;
pub mod query;
pub mod resource;
pub mod schema;
pub mod store;
