//! The scimlab harness as a library: the conformance suite (and, as their issues land, the
//! scenario runner, the permission oracle and the load generator).

pub mod conformance;
pub mod targets;
