//! How the API and the workers log: human-readable lines by default, or with
//! `OPTIMUS_LOG_FORMAT=json` one JSON object per line for a log pipeline:
//!
//! ```json
//! {"timestamp":"2026-11-23T15:04:05.123Z","level":"INFO","target":"optimus_worker::worker",
//!  "message":"job judged","job_id":"3f2b...","trace_id":"4bf9...","fields":{"verdict":"Some(Accepted)"},
//!  "spans":{"slot":"0"}}
//! ```
//!
//! `job_id` is the job the line is about, from the event's own `job_id` (or `job`)
//! field or from an enclosing span's; `trace_id` is the trace the line belongs to,
//! when tracing is exported ([`TraceIds`] reads it). `RUST_LOG` filters, as always.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The log format `OPTIMUS_LOG_FORMAT` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `OPTIMUS_LOG_FORMAT`: `text` (the default) or `json`.
    pub fn from_env() -> Result<Self, crate::settings::SettingsError> {
        match std::env::var("OPTIMUS_LOG_FORMAT").unwrap_or_default().trim() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(crate::settings::SettingsError {
                name: "OPTIMUS_LOG_FORMAT",
                value: other.to_string(),
                expected: "text or json",
            }),
        }
    }
}

/// Reads the trace id of the current span, when traces are exported.
pub type TraceIds = fn() -> Option<String>;

/// A span's fields as JSON, kept in the span's extensions for the formatter.
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

/// Records every span's fields as JSON (only installed for the JSON format).
pub struct SpanFieldsLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFieldsLayer {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut visitor = JsonVisitor::default();
        attrs.record(&mut visitor);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(visitor.0));
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut visitor = JsonVisitor::default();
            values.record(&mut visitor);
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                fields.0.extend(visitor.0);
            }
        }
    }
}

/// Formats each event as one JSON object.
pub struct JsonLines {
    pub trace_ids: Option<TraceIds>,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        let mut fields = visitor.0;
        let message = fields.remove("message").unwrap_or(Value::String(String::new()));
        let mut job_id = fields.get("job_id").or_else(|| fields.get("job")).cloned();
        let mut spans = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    if job_id.is_none() {
                        job_id = span_fields.get("job_id").cloned();
                    }
                    for (k, v) in span_fields {
                        spans.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        line.insert("message".into(), message);
        if let Some(job_id) = job_id {
            line.insert("job_id".into(), job_id);
        }
        if let Some(trace_id) = self.trace_ids.and_then(|read| read()) {
            line.insert("trace_id".into(), Value::String(trace_id));
        }
        line.insert("fields".into(), Value::Object(fields));
        if !spans.is_empty() {
            line.insert("spans".into(), Value::Object(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The subscriber every layer sits on: the registry behind the `RUST_LOG` filter.
pub type Base = tracing_subscriber::layer::Layered<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// A layer over [`Base`], such as the OpenTelemetry one.
pub type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the process's logging: `RUST_LOG` (default `info`), the format, and
/// `extra` layers (traces). Call once, first thing in `main`.
pub fn init(format: LogFormat, extra: Vec<BoxedLayer>, trace_ids: Option<TraceIds>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let mut layers = extra;
    match format {
        LogFormat::Text => layers.push(Box::new(tracing_subscriber::fmt::layer())),
        LogFormat::Json => {
            layers.push(Box::new(SpanFieldsLayer));
            layers.push(Box::new(tracing_subscriber::fmt::layer().event_format(JsonLines { trace_ids })));
        }
    }
    tracing_subscriber::registry().with(filter).with(layers).init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_job_of_their_span_and_their_fields() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(SpanFieldsLayer).with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines { trace_ids: Some(|| Some("4bf92f3577b34da6a3ce929d0e0e4736".into())) })
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job_id = "3f2b8c1e", slot = 1);
            let _in = span.enter();
            tracing::info!(verdict = "accepted", tests = 3, "job judged");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "job judged");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["job_id"], "3f2b8c1e");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["fields"]["tests"], 3);
        assert_eq!(line["fields"]["verdict"], "accepted");
        assert_eq!(line["spans"]["slot"], 1);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(line["target"].as_str().unwrap().contains("logging"));
    }
}
