//! `mock-space`: a Space-like team directory with its SCIM connector.
//!
//! Not built yet: this crate is a placeholder for issue 3 and exports nothing.
