//! `mock-teamcity`: a TeamCity-like REST API with its SCIM bridge.
//!
//! Not built yet: this crate is a placeholder for issue 4 and exports nothing.
