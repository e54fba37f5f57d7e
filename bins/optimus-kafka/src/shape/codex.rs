//! Codex's topics. The seed names the topics, not the fields, so the message is
//! Optimus's own `POST /jobs` body with one correlation field beside it,
//! `submissionId` or `tempId` (a string or a number), echoed in the answer. The
//! topic a job comes from sets its mode: `SUBMISSION_JOBS` submit (stop at the
//! first failing test), `RUN_JOBS` run (every test), `CUSTOM_JOBS` custom (run,
//! judge nothing). Its result goes to `SUBMISSION_RESULTS`, `RUN_RESULTS` or
//! `CUSTOM_RESULTS`: the job as `GET /jobs/{id}` shows it, with the correlation
//! field and `mode`. A job that ends `failed` after its retries, and a message
//! that cannot become a job, go to `DLQ_QUEUE` with the reason.

use optimus_api::validate::request::{draft, JobRequest};
use optimus_api::validate::{accept, Rules};
use optimus_common::{JobRecord, JobStatus, Mode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Envelope, Intake, Outgoing, Parsed, Rejection};

/// The topics consumed, and the mode of the jobs each carries.
pub const INPUTS: [(&str, Mode); 3] =
    [("SUBMISSION_JOBS", Mode::Submit), ("RUN_JOBS", Mode::Run), ("CUSTOM_JOBS", Mode::Custom)];
pub const DLQ: &str = "DLQ_QUEUE";
/// The correlation fields, in the order they are looked for.
pub const CORRELATION: [&str; 2] = ["submissionId", "tempId"];
/// A dead letter keeps this much of the message that could not be read.
pub const DLQ_PAYLOAD_BYTES: usize = 64 * 1024;

fn results_topic(mode: Mode) -> &'static str {
    match mode {
        Mode::Submit => "SUBMISSION_RESULTS",
        Mode::Run => "RUN_RESULTS",
        Mode::Custom => "CUSTOM_RESULTS",
    }
}

/// What a Codex answer echoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    pub mode: Mode,
    /// The correlation field's name and value, as sent.
    pub correlation: Option<(String, Value)>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A correlation value as a message key.
fn key_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn parse<'r>(rules: Rules<'r>, message: &Envelope<'_>) -> Parsed<'r> {
    let Some(mode) = INPUTS.iter().find(|(topic, _)| *topic == message.topic).map(|(_, mode)| *mode) else {
        return Parsed::Rejected(Rejection::new(format!("topic {} carries no Codex jobs", message.topic)));
    };
    let mut body: Map<String, Value> = match serde_json::from_slice(message.payload) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return Parsed::Rejected(Rejection::new("the message must be a JSON object (a POST /jobs body)")),
        Err(e) => return Parsed::Rejected(Rejection::new(format!("the message is not JSON: {e}"))),
    };
    let correlation = CORRELATION.iter().find_map(|name| body.remove(*name).map(|value| (name.to_string(), value)));
    let reject = |reason: String| Parsed::Rejected(Rejection { reason, correlation: correlation.clone().map(|c| c.1) });
    if let Some((name, value)) = &correlation {
        if !(value.is_string() || value.is_number()) {
            return reject(format!("{name} must be a string or a number"));
        }
    }
    if let Some(other) = CORRELATION.iter().find(|name| body.contains_key(**name)) {
        return reject(format!("send one correlation field, not {} and {other}", CORRELATION[0]));
    }
    match body.remove("mode") {
        None => {}
        Some(Value::String(m)) if m == mode.as_str() => {}
        Some(other) => {
            return reject(format!(
                "mode is {other}, but {} carries {} jobs: the topic sets the mode; leave mode out",
                message.topic,
                mode.as_str()
            ))
        }
    }
    let request: JobRequest = match serde_json::from_value(Value::Object(body)) {
        Ok(request) => request,
        Err(e) => return reject(format!("not a POST /jobs body: {e}")),
    };
    let mut job = match draft(request, rules.registry) {
        Ok(job) => job,
        Err(refused) => return reject(refused.message),
    };
    job.mode = mode;
    if let Err(refused) = accept(job.clone(), &rules.settings.limits) {
        return reject(refused.message);
    }
    let echo = Echo {
        mode,
        correlation,
        topic: message.topic.to_string(),
        partition: message.partition,
        offset: message.offset,
    };
    // A Codex job is the message: its place names it (a producer that sends the
    // same submission twice gets two jobs, as it would from POST /jobs).
    Parsed::Job(Box::new(Intake {
        identity: format!("message:{}", message.place()),
        draft: job,
        echo: super::Echo::Codex(echo),
    }))
}

fn source(message_topic: &str, partition: i32, offset: i64) -> Value {
    json!({ "topic": message_topic, "partition": partition, "offset": offset })
}

/// A message that became no job, as a dead letter: the reason, where it was, and
/// (the start of) what it held; keyed by its correlation id, else its own key,
/// else its place.
pub fn rejected(message: &Envelope<'_>, rejection: &Rejection) -> Outgoing {
    let text = String::from_utf8_lossy(message.payload);
    let cut = text.len() > DLQ_PAYLOAD_BYTES;
    let mut end = text.len().min(DLQ_PAYLOAD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut body = json!({
        "stage": "intake",
        "reason": rejection.reason,
        "source": source(message.topic, message.partition, message.offset),
        "key": message.key.map(|k| String::from_utf8_lossy(k).into_owned()),
        "payload": &text[..end],
        "payload_truncated": cut,
    });
    let key = match &rejection.correlation {
        Some(value) => {
            body["correlation"] = value.clone();
            key_of(value)
        }
        None => match message.key.filter(|k| !k.is_empty()) {
            Some(k) => String::from_utf8_lossy(k).into_owned(),
            None => message.place(),
        },
    };
    Outgoing { topic: DLQ.to_string(), key, payload: body.to_string() }
}

/// The answer an ended job owes: its result on its mode's topic, or, when it
/// `failed` after its retries, a dead letter saying why.
pub fn result(record: &JobRecord, echo: &Echo) -> Outgoing {
    let key = echo.correlation.as_ref().map_or_else(|| record.job_id.to_string(), |(_, v)| key_of(v));
    let mut body = if record.status == JobStatus::Failed {
        json!({
            "stage": "job",
            "reason": record.error.clone().unwrap_or_else(|| "the job failed".into()),
            "job_id": record.job_id,
            "attempts": record.attempts,
            "source": source(&echo.topic, echo.partition, echo.offset),
        })
    } else {
        let mut body = serde_json::to_value(record).expect("a record serializes");
        body["mode"] = json!(echo.mode);
        body
    };
    if let Some((name, value)) = &echo.correlation {
        body[name.as_str()] = value.clone();
    }
    let topic = if record.status == JobStatus::Failed { DLQ } else { results_topic(echo.mode) };
    Outgoing { topic: topic.to_string(), key, payload: body.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::tests::{record, rules_fixture, test_result};
    use optimus_common::verdict::Verdict;

    fn on<'m>(topic: &'m str, payload: &'m str) -> Envelope<'m> {
        Envelope { topic, partition: 0, offset: 4, key: None, payload: payload.as_bytes() }
    }

    #[test]
    fn the_topic_sets_the_mode_and_the_correlation_id_is_echoed() {
        let fx = rules_fixture();
        let body = r#"{"submissionId":"sub-1","language":"python","source_code":"print(1)",
            "test_cases":[{"input":"2\n"}]}"#;
        for (topic, mode) in INPUTS {
            let Parsed::Job(intake) = parse(fx.rules(), &on(topic, body)) else { panic!("a job from {topic}") };
            assert_eq!(intake.draft.mode, mode);
            assert_eq!(intake.identity, format!("message:{topic}:0:4"));
            let super::super::Echo::Codex(echo) = &intake.echo else { panic!("a Codex echo") };
            assert_eq!(echo.correlation, Some(("submissionId".into(), json!("sub-1"))));
        }
        let temp = r#"{"tempId":42,"language":"python","source_code":"print(1)","mode":"run"}"#;
        assert!(matches!(parse(fx.rules(), &on("RUN_JOBS", temp)), Parsed::Job(_)));
    }

    #[test]
    fn what_cannot_become_a_job_is_refused_with_the_reason() {
        let fx = rules_fixture();
        for (topic, body, says) in [
            ("RUN_JOBS", "{", "not JSON"),
            ("RUN_JOBS", "[1]", "JSON object"),
            ("RUN_JOBS", r#"{"tempId":1,"language":"klingon","source_code":"x"}"#, "klingon"),
            ("RUN_JOBS", r#"{"tempId":1,"language":"python"}"#, "source_code"),
            ("RUN_JOBS", r#"{"tempId":1,"language":"python","source_code":"x","colour":1}"#, "colour"),
            ("SUBMISSION_JOBS", r#"{"tempId":1,"language":"python","source_code":"x","mode":"run"}"#, "topic sets"),
            ("RUN_JOBS", r#"{"tempId":[1],"language":"python","source_code":"x"}"#, "string or a number"),
            (
                "CUSTOM_JOBS",
                r#"{"tempId":1,"language":"python","source_code":"x","test_cases":[{"expected_output":"1"}]}"#,
                "judging",
            ),
            ("RUN_JOBS", r#"{"tempId":1,"submissionId":2,"language":"python","source_code":"x"}"#, "one correlation"),
        ] {
            let Parsed::Rejected(r) = parse(fx.rules(), &on(topic, body)) else { panic!("{body} was accepted") };
            assert!(r.reason.contains(says), "{body}: {}", r.reason);
        }
        let Parsed::Rejected(r) = parse(fx.rules(), &on("RUN_JOBS", r#"{"tempId":"t7","language":"klingon"}"#)) else {
            panic!("refused")
        };
        let letter = rejected(&on("RUN_JOBS", r#"{"tempId":"t7","language":"klingon"}"#), &r);
        assert_eq!((letter.topic.as_str(), letter.key.as_str()), (DLQ, "t7"));
        let body: Value = serde_json::from_str(&letter.payload).unwrap();
        assert_eq!((body["stage"].as_str(), body["correlation"].as_str()), (Some("intake"), Some("t7")));
        assert_eq!(body["source"]["offset"], 4);
        let keyed = Envelope { key: Some(b"mine"), ..on("RUN_JOBS", "{") };
        assert_eq!(rejected(&keyed, &Rejection::new("not JSON")).key, "mine");
        assert_eq!(rejected(&on("RUN_JOBS", "{"), &Rejection::new("not JSON")).key, "RUN_JOBS:0:4");
        let huge = "x".repeat(DLQ_PAYLOAD_BYTES * 2);
        let letter = rejected(&on("RUN_JOBS", &huge), &Rejection::new("not JSON"));
        let body: Value = serde_json::from_str(&letter.payload).unwrap();
        assert_eq!(body["payload"].as_str().unwrap().len(), DLQ_PAYLOAD_BYTES);
        assert_eq!(body["payload_truncated"], true);
    }

    #[test]
    fn an_ended_job_answers_on_its_modes_topic_and_a_failed_one_is_a_dead_letter() {
        let echo = Echo {
            mode: Mode::Submit,
            correlation: Some(("submissionId".into(), json!("sub-1"))),
            topic: "SUBMISSION_JOBS".into(),
            partition: 1,
            offset: 9,
        };
        let done = record(Some(Verdict::WrongAnswer), vec![test_result(1, Verdict::WrongAnswer)]);
        let answer = result(&done, &echo);
        assert_eq!((answer.topic.as_str(), answer.key.as_str()), ("SUBMISSION_RESULTS", "sub-1"));
        let body: Value = serde_json::from_str(&answer.payload).unwrap();
        assert_eq!(body["submissionId"], "sub-1");
        assert_eq!(body["result"]["overall_status"], "wrong_answer");
        assert_eq!(body["job_id"], done.job_id.to_string());

        let mut failed = done.clone();
        failed.status = JobStatus::Failed;
        failed.error = Some("sandbox failed (gave up after 3 attempts)".into());
        let letter = result(&failed, &echo);
        assert_eq!(letter.topic, DLQ);
        let body: Value = serde_json::from_str(&letter.payload).unwrap();
        assert_eq!(body["stage"], "job");
        assert!(body["reason"].as_str().unwrap().contains("gave up"));
        assert_eq!(body["submissionId"], "sub-1");
    }
}
