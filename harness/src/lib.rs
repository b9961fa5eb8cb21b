//! The scimlab harness as a library: the conformance suite, the scenario runner with its
//! permission oracle, and the load generator with its reports.

pub mod conformance;
pub mod load;
pub mod scenario;
pub mod targets;
