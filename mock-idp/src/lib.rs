//! `mock-idp`: an Okta-like management API and provisioning engine.
//!
//! Not built yet: this crate is a placeholder for issue 5 and exports nothing.
