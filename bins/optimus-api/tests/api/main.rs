//! The API against a real `redis-server` started per test. One binary, one helper.

mod auth;
mod connections;
mod helpers;
mod jobs;
mod validation;
