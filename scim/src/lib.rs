//! `scim`: the SCIM 2.0 (RFC 7643 / RFC 7644) service-provider engine every scimlab server uses.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use scim::{app, AppState, Provider, ProviderConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = ProviderConfig { base_url: format!("http://{}", listener.local_addr()?), ..Default::default() };
//! let provider = Provider::open(std::path::Path::new("data/scim"), config)?;
//! axum::serve(listener, app(AppState { provider, tokens: vec!["secret".into()], oauth: None })).await?;
//! # Ok(()) }
//! ```
//!
//! Modules: `schema` (RFC 7643 schemas as data), `filter`, `path`, `patch`, `query`
//! (sort, paging, projection), `cursor` (RFC 9865 cursors), `resource` (validation), `store` (sled), `provider`
//! (operations, HTTP-free), `bulk`, `server` (axum).

pub mod auth;
pub mod bulk;
pub mod cursor;
pub mod error;
pub mod filter;
pub mod json;
mod message;
pub mod oauth;
pub mod patch;
pub mod path;
pub mod provider;
pub mod query;
pub mod rate;
pub mod resource;
pub mod schema;
pub mod serve;
pub mod server;
pub mod store;
pub mod tls;

pub use error::{ScimError, ScimType};
pub use provider::{Provider, ProviderConfig};
pub use server::{app, AppState};
pub use store::Durability;
