//! Errors shaped like Okta's: `{errorCode, errorSummary, errorLink, errorId, errorCauses}`.
//! The codes used are the ones Okta documents for the same situation; where the exact code is
//! not documented, docs/idp.md says so.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {summary}")]
pub struct OktaError {
    pub status: u16,
    pub code: &'static str,
    pub summary: String,
    pub causes: Vec<String>,
}

pub type Result<T, E = OktaError> = std::result::Result<T, E>;

impl OktaError {
    pub fn new(status: u16, code: &'static str, summary: impl Into<String>) -> OktaError {
        OktaError {
            status,
            code,
            summary: summary.into(),
            causes: Vec::new(),
        }
    }

    /// `E0000001`: the body failed validation; `cause` names the field and the problem.
    pub fn validation(cause: impl Into<String>) -> OktaError {
        let cause = cause.into();
        let field = cause.split(':').next().unwrap_or_default().to_owned();
        OktaError {
            causes: vec![cause],
            ..Self::new(400, "E0000001", format!("Api validation failed: {field}"))
        }
    }

    /// `E0000003`: the body is not JSON of the expected shape.
    pub fn bad_body(detail: impl Into<String>) -> OktaError {
        OktaError {
            causes: vec![detail.into()],
            ..Self::new(400, "E0000003", "The request body was not well-formed.")
        }
    }

    /// `E0000007`, with Okta's summary text.
    pub fn not_found(id: &str, kind: &str) -> OktaError {
        Self::new(
            404,
            "E0000007",
            format!("Not found: Resource not found: {id} ({kind})"),
        )
    }

    pub fn invalid_token() -> OktaError {
        Self::new(401, "E0000011", "Invalid token provided")
    }

    /// `E0000038`: the lifecycle operation is not allowed from the user's status.
    pub fn wrong_status(summary: impl Into<String>) -> OktaError {
        Self::new(403, "E0000038", summary)
    }

    pub fn internal(detail: impl Into<String>) -> OktaError {
        Self::new(500, "E0000009", detail)
    }
}

impl From<scim::ScimError> for OktaError {
    fn from(e: scim::ScimError) -> Self {
        OktaError::internal(e.detail)
    }
}

impl IntoResponse for OktaError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let causes: Vec<_> = self
            .causes
            .iter()
            .map(|c| json!({"errorSummary": c}))
            .collect();
        let body = json!({
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": format!("oae{:022x}", rand::random::<u128>() >> 40),
            "errorCauses": causes,
        });
        (status, Json(body)).into_response()
    }
}
