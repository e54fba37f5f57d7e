//! `Json<T>` whose rejections are [`ApiError`]s, so a malformed body answers in the
//! same format as every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(body_error(rejection)),
        }
    }
}

fn body_error(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let (code, message) = match &rejection {
        JsonRejection::JsonDataError(e) => {
            ("invalid_field", format!("the JSON does not describe a job: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ("malformed_json", format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ("unsupported_media_type", "send the body as JSON with 'Content-Type: application/json'".to_string())
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            ("body_too_large", "the request body is larger than the cap (OPTIMUS_MAX_BODY_BYTES)".to_string())
        }
        other => ("unreadable_body", other.body_text()),
    };
    ApiError::BadBody { status, code, message }
}
