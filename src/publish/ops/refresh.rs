//! `POST /api/v1/refresh`: starts a refresh cycle in the background. 202 with its start
//! time, or 409 naming the start time of the cycle already running.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::traffic::Client;
use crate::app::App;
use crate::pipeline::CycleError;
use crate::publish::api_error::ApiError;
use crate::timefmt::stix_timestamp;

pub async fn handler(State(app): State<Arc<App>>, Client(client): Client) -> Response {
    match app.pipeline.start("api") {
        Ok(started) => {
            tracing::info!(target: "audit", client = %client, started = %started, "refresh requested");
            let body = json!({"started_at": stix_timestamp(started)});
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(CycleError::AlreadyRunning { since }) => {
            tracing::info!(target: "audit", client = %client, running_since = %since, "refresh refused: a cycle is running");
            ApiError::conflict(format!(
                "a refresh cycle is already running (started {})",
                stix_timestamp(since)
            ))
            .into_response()
        }
        Err(err) => ApiError::internal(err).into_response(),
    }
}
