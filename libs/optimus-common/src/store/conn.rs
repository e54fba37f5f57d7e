//! The connection every [`super::Store`] operation shares.

use std::time::Duration;

use redis::aio::ConnectionManager;

/// A connection that survives a Redis restart: the connection manager notices a
/// dropped connection only when a command fails on it, so such a failure is
/// retried once on the fresh connection. Every operation of the store tolerates a repeat.
#[derive(Clone)]
pub(super) struct Reconnecting(ConnectionManager);

impl Reconnecting {
    pub(super) fn new(manager: ConnectionManager) -> Self {
        Reconnecting(manager)
    }
}

/// How long to give the connection manager to reconnect before the one retry.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

fn is_transient(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal()
}

impl redis::aio::ConnectionLike for Reconnecting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            match self.0.req_packed_command(cmd).await {
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    self.0.req_packed_command(cmd).await
                }
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            match self.0.req_packed_commands(cmd, offset, count).await {
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    self.0.req_packed_commands(cmd, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
