//! Errors of the Space API. Space's real error body is not documented (see docs/space.md);
//! this mock answers `{"error": code, "description": text}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {description}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn new(status: u16, code: &'static str, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn bad_request(d: impl Into<String>) -> ApiError {
        Self::new(400, "validation-error", d)
    }

    pub fn not_found(d: impl Into<String>) -> ApiError {
        Self::new(404, "not-found", d)
    }

    pub fn conflict(d: impl Into<String>) -> ApiError {
        Self::new(409, "duplicate", d)
    }

    pub fn forbidden(d: impl Into<String>) -> ApiError {
        Self::new(403, "permission-denied", d)
    }

    pub fn unauthorized(d: impl Into<String>) -> ApiError {
        Self::new(401, "authentication-required", d)
    }

    pub fn internal(d: impl Into<String>) -> ApiError {
        Self::new(500, "internal-error", d)
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> Self {
        ApiError::internal(format!("storage: {e}"))
    }
}

impl From<scim::ScimError> for ApiError {
    fn from(e: scim::ScimError) -> Self {
        ApiError::internal(e.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (
            status,
            Json(json!({"error": self.code, "description": self.description})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
