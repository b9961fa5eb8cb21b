//! The scimlab harness as a library: the conformance suite, the scenario runner with its
//! permission oracle, and the load generator with its reports.

pub mod client;
pub mod conformance;
pub mod load;
pub mod mock_target;
pub mod scenario;
pub mod scim_target;
pub mod targets;
pub mod wiretap;

/// Text made safe for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Percent-encodes a path segment or a query value (a space becomes %20).
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
