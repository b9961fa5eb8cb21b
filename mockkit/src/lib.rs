//! `mockkit`: what scimlab's mocks and their SCIM connectors are built from, on top of the
//! `scim` engine. `sim`: a mock's records and hash-chained audit log in sled, and the `/_sim`
//! control plane every mock serves (faults, quirks, metrics, events); `quirks`: the named
//! misbehaviours a connector's SCIM server can be switched into; `connector`: native calls
//! with roll-back, role-mapping policies and the connector's SCIM router; `cli`: the flags
//! every mock binary takes.

#[cfg(feature = "cli")]
pub mod cli;
pub mod connector;
pub mod quirks;
pub mod sim;
