//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the API and the workers export
//! their spans over OTLP (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the
//! default, or `grpc`), batched on the process's runtime. Without it no exporter
//! or OpenTelemetry layer is installed: nothing is recorded for export and
//! nothing slows down.
//!
//! One trace per job across processes: the API's `submit` span's context travels
//! in the job record as a W3C `traceparent` ([`traceparent`]), and the worker's
//! `job` span continues it ([`continue_trace`]). Log lines carry the trace id
//! ([`current_trace_id`]).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::logging::{self, BoxedLayer, LogFormat};

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The exporting tracer, for the spans [`record_child`] makes after the fact.
static TRACER: std::sync::OnceLock<SdkTracer> = std::sync::OnceLock::new();

/// Whether this process exports traces (so a job's trace context is worth reading).
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What [`init`] set up; [`Telemetry::shutdown`] exports the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Setting(#[from] crate::settings::SettingsError),
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL is '{0}'; accepted: http/protobuf, grpc")]
    Protocol(String),
    #[error("cannot make the OTLP exporter: {0}")]
    Exporter(String),
}

/// Installs logging (see [`crate::logging`]) and, when an OTLP endpoint is set,
/// the span exporter. Call once, first thing in `main`, inside the runtime.
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    let format = LogFormat::from_env()?;
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if endpoint.trim().is_empty() {
        logging::init(format, Vec::new(), None);
        return Ok(Telemetry { provider: None });
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|_| "http/protobuf".into());
    use opentelemetry_otlp::WithExportConfig;
    let exporter = match protocol.trim() {
        "http/protobuf" | "" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
        "grpc" => opentelemetry_otlp::SpanExporter::builder().with_tonic().build(),
        other => return Err(TelemetryError::Protocol(other.to_string())),
    }
    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer(service);
    let _ = TRACER.set(tracer.clone());
    let layer: BoxedLayer = Box::new(tracing_opentelemetry::layer().with_tracer(tracer));
    logging::init(format, vec![layer], Some(current_trace_id));
    ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(%endpoint, protocol = %protocol, "exporting traces over OTLP");
    Ok(Telemetry { provider: Some(provider) })
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("traces: the exporter did not shut down cleanly: {e}");
            }
        }
    }
}

/// The trace id of the current span, when it belongs to an exported trace.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// `span`'s context as a W3C `traceparent` header value (`None` when it is not
/// exported).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a `traceparent` names (from another process).
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = std::collections::HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// Records a step of `parent` that ran before `parent`'s trace was known (the
/// worker's claim, which is what reads the job's `traceparent`): a child span with
/// the step's own start and end. Call it after [`continue_trace`] on `parent`.
pub fn record_child(
    parent: &tracing::Span,
    name: &'static str,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
) {
    let Some(tracer) = TRACER.get() else { return };
    let context = parent.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    let mut span = tracer.span_builder(name).with_start_time(start).start_with_context(tracer, &context);
    span.end_with_timestamp(end);
}
