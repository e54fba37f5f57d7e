//! The store against a real `redis-server` started per test: a job's life, the
//! reliable pop and its recovery, retries and dead letters, and the scripts' keys.
//! One binary, one helper.

mod fair;
mod helpers;
mod jobs;
mod owed;
mod quotas;
mod recovery;
mod scripts;
