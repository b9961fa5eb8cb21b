//! The scimlab harness as a library: the conformance suite, the scenario runner (and, as their
//! issues land, the permission oracle and the load generator).

pub mod conformance;
pub mod scenario;
pub mod targets;
