//! OpenTelemetry: the API and a worker export over OTLP (HTTP and gRPC, as
//! `OTEL_EXPORTER_OTLP_PROTOCOL` says) to a receiver in this test, and one trace holds the job's whole life: the API's `submit` span,
//! the worker's `job` span under it, and the job's steps under that, with the
//! job's attributes; the worker's JSON log lines carry the trace id.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use prost::Message;
use serde_json::Value;

use crate::sum_job;

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    attributes: Vec<(String, String)>,
    /// Start and end, in ns since the epoch.
    start: u64,
    end: u64,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn spans(bodies: &[Vec<u8>]) -> Vec<Span> {
    let mut all = Vec::new();
    for body in bodies {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP trace export");
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(text)
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    all.push(Span {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace: span.trace_id.clone(),
                        id: span.span_id.clone(),
                        parent: span.parent_span_id.clone(),
                        attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(kv))).collect(),
                        start: span.start_time_unix_nano,
                        end: span.end_time_unix_nano,
                    });
                }
            }
        }
    }
    all
}

/// What the receivers got: each export request, as protobuf bytes.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// An OTLP/HTTP receiver; returns its endpoint.
async fn http_receiver(received: Received) -> String {
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let received = received.clone();
        async move {
            received.lock().unwrap().push(body.to_vec());
            ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    endpoint
}

struct GrpcReceiver(Received);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner().encode_to_vec());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver; returns its endpoint.
async fn grpc_receiver(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(GrpcReceiver(received)))
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    endpoint
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_a_job_from_the_api_through_its_worker_over_http() {
    let received = Received::default();
    let endpoint = http_receiver(received.clone()).await;
    one_trace_per_job("http/protobuf", &endpoint, received).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_a_job_from_the_api_through_its_worker_over_grpc() {
    let received = Received::default();
    let endpoint = grpc_receiver(received.clone()).await;
    one_trace_per_job("grpc", &endpoint, received).await;
}

async fn one_trace_per_job(protocol: &str, endpoint: &str, received: Received) {
    let mut system = System::start(
        RedisServer::start(),
        &["python"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OPTIMUS_LOG_FORMAT", "json"),
        ],
    );
    let res = system.http.post(system.url("/jobs")).json(&sum_job(2)).send().await.unwrap();
    let id = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(system.wait(&id, None).await["status"], "completed");
    // Stopping flushes what each process still buffers.
    system.stop();

    let spans = spans(&received.lock().unwrap());
    let submit =
        spans.iter().find(|s| s.name == "submit" && s.attr("job_id") == Some(id.as_str())).unwrap_or_else(|| {
            panic!("no submit span for {id} among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
        });
    assert_eq!(submit.service, "optimus-api");
    assert_eq!(submit.attr("language"), Some("python"));
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace == submit.trace).collect();
    let job = trace.iter().find(|s| s.name == "job").expect("the worker's job span is in the API's trace");
    assert_eq!(job.service, "optimus-worker");
    assert_eq!(job.parent, submit.id, "the job span's parent is the submit span");
    assert_eq!(
        (job.attr("job_id"), job.attr("mode"), job.attr("verdict")),
        (Some(id.as_str()), Some("run"), Some("accepted"))
    );
    let children = |parent: &Span, name: &str| -> Vec<Span> {
        trace.iter().filter(|s| s.parent == parent.id && s.name == name).map(|s| (*s).clone()).collect()
    };
    for step in ["claim", "acquire container", "compile", "store"] {
        assert_eq!(children(job, step).len(), 1, "one {step} span under the job");
    }
    // The claim reads the job's trace context, so its span is recorded after it
    // ran: with its own times, inside the job's.
    let claim = &children(job, "claim")[0];
    assert!(job.start <= claim.start && claim.start < claim.end && claim.end <= job.end, "{claim:?} in {job:?}");
    let tests = children(job, "test");
    let mut indexes: Vec<&str> = tests.iter().filter_map(|t| t.attr("test.index")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["0", "1"]);
    for test in &tests {
        assert_eq!(test.attr("verdict"), Some("accepted"));
        assert_eq!(children(test, "judge").len(), 1, "a judge span under each test");
    }

    // The worker's log lines about the job carry its trace id.
    let trace_id: String = submit.trace.iter().map(|b| format!("{b:02x}")).collect();
    let judged = system.workers[0]
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "job judged" && l["job_id"] == id.as_str())
        .expect("the job judged line");
    assert_eq!(judged["trace_id"], trace_id.as_str(), "{judged}");
}
