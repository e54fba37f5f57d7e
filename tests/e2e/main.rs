//! The whole path, for real: Redis, the API, a worker per language, Docker and the
//! language images (`optimus-cli build-image --all` first). Tests read like the
//! README: submit, poll, assert the verdict.

mod cancel;
mod compat;
mod compile_cache;
mod engine;
mod events;
mod helpers;
mod hostile;
mod judging;
mod languages;
mod lifecycle;
mod page;
mod readme;
mod sandbox;
mod timings;
