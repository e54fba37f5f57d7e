//! JSON bodies, read within bounds, whose rejections are [`ApiError`]s (so a
//! malformed body answers in the same format as every other error).
//!
//! A body is first walked without building anything, counting its values (every
//! array item and object member, nested ones too); past
//! `OPTIMUS_MAX_JSON_VALUES` it is refused before a single one is built. Only
//! then is it deserialised. So what a request costs in memory is its body and a
//! bounded number of nodes: a 64 MiB body of `[{},{},…]` (22 million tests, each
//! a struct of strings and options many times its three bytes) is refused after a
//! pass over its bytes, instead of being built and then counted.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;
use crate::AppState;

pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || (v.starts_with("application/") && v.ends_with("+json")));
        if !is_json {
            return Err(bad(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with 'Content-Type: application/json'".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(state.settings.limits.max_body_bytes)
            } else {
                bad(rejection.status(), "unreadable_body", rejection.body_text())
            }
        })?;
        parse(&bytes, state.settings.limits.max_json_values).map(Json)
    }
}

fn bad(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError::BadBody { status, code, message }
}

/// Why a body could not become a `T`.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON at all.
    Syntax(String),
    /// More values than `max_values`.
    TooManyValues { max_values: usize },
    /// JSON, but not the shape of a `T`.
    Shape(String),
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Syntax(why) => {
                bad(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {why}"))
            }
            ParseError::TooManyValues { max_values } => bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_values",
                format!(
                    "the body holds more than {max_values} JSON values (array items and object members, nested \
                     ones included; OPTIMUS_MAX_JSON_VALUES): send fewer tests, files or arguments, or split \
                     the batch"
                ),
            ),
            ParseError::Shape(why) => bad(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("the JSON does not describe a job: {why}"),
            ),
        }
    }
}

/// `bytes` as a `T`, refused unbuilt when it holds more than `max_values` values.
pub fn parse_bounded<T: DeserializeOwned>(bytes: &[u8], max_values: usize) -> Result<T, ParseError> {
    count_values(bytes, max_values)?;
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ParseError::Shape(e.to_string()),
        _ => ParseError::Syntax(e.to_string()),
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8], max_values: usize) -> Result<T, ApiError> {
    parse_bounded(bytes, max_values).map_err(ApiError::from)
}

/// Walks `bytes` as JSON, building nothing, and fails once it has seen more than
/// `max` values. Strings are borrowed or skipped, never copied.
pub fn count_values(bytes: &[u8], max: usize) -> Result<usize, ParseError> {
    let mut seen = 0usize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let counted = Counter { seen: &mut seen, max }.deserialize(&mut de).and_then(|()| de.end());
    match counted {
        Ok(()) => Ok(seen),
        Err(_) if seen > max => Err(ParseError::TooManyValues { max_values: max }),
        Err(e) => Err(ParseError::Syntax(e.to_string())),
    }
}

/// Counts one value and everything inside it.
struct Counter<'a> {
    seen: &'a mut usize,
    max: usize,
}

impl Counter<'_> {
    fn tick<E: serde::de::Error>(&mut self) -> Result<(), E> {
        *self.seen += 1;
        if *self.seen > self.max {
            return Err(E::custom("too many values"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(mut self, deserializer: D) -> Result<(), D::Error> {
        self.tick::<D::Error>()?;
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Counter { seen: &mut *self.seen, max: self.max })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Counter { seen: &mut *self.seen, max: self.max })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_at_every_depth() {
        assert_eq!(count_values(b"1", 10), Ok(1));
        assert_eq!(count_values(br#"{"a": [1, 2, {"b": "x"}], "c": null}"#, 10), Ok(7));
        assert_eq!(count_values(b"[]", 10), Ok(1));
    }

    #[test]
    fn past_the_bound_the_walk_stops() {
        let many = format!("[{}{{}}]", "{},".repeat(1_000_000));
        assert_eq!(count_values(many.as_bytes(), 1000), Err(ParseError::TooManyValues { max_values: 1000 }));
        // And what is not JSON says so, bound or not.
        assert!(matches!(count_values(b"[1, 2", 1000), Err(ParseError::Syntax(_))));
        assert!(matches!(count_values(b"[1] 2", 1000), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn within_the_bound_a_body_parses_as_ever() {
        let v: serde_json::Value = parse_bounded(br#"{"a": [1, 2]}"#, 4).unwrap();
        assert_eq!(v["a"][1], 2);
        assert!(matches!(
            parse_bounded::<serde_json::Value>(br#"{"a": [1, 2]}"#, 3),
            Err(ParseError::TooManyValues { .. })
        ));
        assert!(matches!(parse_bounded::<Vec<u8>>(br#"{"a": 1}"#, 10), Err(ParseError::Shape(_))));
    }
}
