//! One module per resource.

pub mod events;
pub mod health;
pub mod jobs;
pub mod languages;
pub mod page;

use axum::http::Uri;

use crate::error::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_string())
}
