//! The one error type at the TAXII edge and its rendering as a TAXII error resource
//! (`title`, `description`, `http_status` as a string) with the TAXII media type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::media::taxii_response;
use crate::publish::auth::AuthError;

/// Everything a TAXII request can fail with; each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Internal(String),
}

impl TaxiiError {
    pub fn status(&self) -> StatusCode {
        match self {
            TaxiiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TaxiiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            TaxiiError::Forbidden(_) => StatusCode::FORBIDDEN,
            TaxiiError::NotFound(_) => StatusCode::NOT_FOUND,
            TaxiiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            TaxiiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            TaxiiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            TaxiiError::BadRequest(_) => "Bad request",
            TaxiiError::Unauthorized(_) => "Authentication required",
            TaxiiError::Forbidden(_) => "Forbidden",
            TaxiiError::NotFound(_) => "Not found",
            TaxiiError::MethodNotAllowed(_) => "Method not allowed",
            TaxiiError::NotAcceptable(_) => "Not acceptable",
            TaxiiError::Internal(_) => "Internal error",
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "TAXII request failed");
        }
        let body = json!({
            "title": self.title(),
            "description": self.to_string(),
            "http_status": status.as_u16().to_string(),
        });
        taxii_response(status, body.to_string().into())
    }
}

/// The 401 body for [`crate::publish::auth::require`] on TAXII routes.
pub fn render_auth(err: AuthError) -> Response {
    TaxiiError::Unauthorized(format!(
        "{err}; send an API key (Authorization: Bearer, Token, X-API-Key or HTTP Basic)"
    ))
    .into_response()
}
