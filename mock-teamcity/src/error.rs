//! TeamCity's error answers: `text/plain`, a first line naming the status, then the details
//! (shape from the REST plugin's exception mappers; the exact wording is ours).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct RestError {
    pub status: u16,
    /// The exception TeamCity names in its details line.
    pub kind: &'static str,
    pub message: String,
}

pub type Result<T, E = RestError> = std::result::Result<T, E>;

impl RestError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> RestError {
        RestError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(m: impl Into<String>) -> RestError {
        Self::new(400, "BadRequestException", m)
    }

    pub fn not_found(m: impl Into<String>) -> RestError {
        Self::new(404, "NotFoundException", m)
    }

    pub fn forbidden(m: impl Into<String>) -> RestError {
        Self::new(403, "AccessDeniedException", m)
    }

    pub fn unauthorized(m: impl Into<String>) -> RestError {
        Self::new(401, "AuthenticationFailedException", m)
    }
}

impl From<scim::ScimError> for RestError {
    fn from(e: scim::ScimError) -> Self {
        RestError::new(500, "OperationException", e.detail)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = format!(
            "Responding with error, status code: {} ({}).\nDetails: jetbrains.buildServer.server.rest.errors.{}: {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.kind,
            self.message
        );
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            body,
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"TeamCity\""),
            );
        }
        resp
    }
}
