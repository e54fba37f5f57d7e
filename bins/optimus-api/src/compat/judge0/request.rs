//! A Judge0 submission as Judge0 1.13.1 validates it: every field's errors in its
//! own words, its limits in seconds and KB checked against Optimus's, and what
//! Judge0 keeps of it ([`Submission`]); the job request it becomes.

use std::collections::BTreeMap;

use optimus_common::limits::wall_cap_secs;
use optimus_common::settings::{MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::{Compare, LanguageConfig};
use serde_json::Value;

use super::most;
use super::view::{self, Submission};
use crate::validate::{Draft, Rules, TestDraft};

/// Judge0's bounds on what Optimus accepts but does not enforce separately.
pub(super) const MAX_CPU_EXTRA_TIME: f64 = 5.0;
pub(super) const STACK_LIMIT_KB: u64 = 64_000;
pub(super) const MAX_STACK_LIMIT_KB: u64 = 128_000;
const MAX_ARGUMENTS_LENGTH: usize = 512;

/// Judge0's defaults for a language: what a submission gets for what it leaves out.
pub(super) fn default_submission(rules: Rules<'_>, lang: Option<&LanguageConfig>) -> Submission {
    let cpu = lang.map_or(5.0, |l| l.time_limit_ms as f64 / 1000.0);
    Submission {
        language_id: lang.and_then(|l| l.judge0_ids.first().copied()).unwrap_or(0),
        number_of_runs: 1,
        cpu_time_limit: cpu,
        cpu_extra_time: 0.0,
        wall_time_limit: wall_cap_secs(cpu),
        memory_limit: lang.map_or(0, |l| u64::from(l.memory_limit_mb) * 1024),
        stack_limit: STACK_LIMIT_KB,
        max_processes_and_or_threads: lang.map_or(0, |l| l.pids_limit.max(0) as u64),
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: (rules.settings.limits.output_limit_bytes / 1024) as u64,
        compiler_options: None,
        command_line_arguments: None,
        redirect_stderr_to_stdout: false,
        callback_url: None,
        enable_network: false,
    }
}

/// Collects Judge0's validation messages, field by field.
#[derive(Default)]
struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_string()).or_default().push(message.into());
    }

    /// A number, given as a JSON number or a numeric string (Rails takes both).
    fn number(&mut self, body: &Value, field: &str) -> Option<f64> {
        match body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).or_else(|| {
                self.add(field, "is not a number");
                None
            }),
            Some(_) => {
                self.add(field, "is not a number");
                None
            }
        }
    }

    /// A number within `[min, max]` (`min_exclusive`: above `min`), or the default.
    fn bounded(&mut self, body: &Value, field: &str, min: f64, min_exclusive: bool, max: f64, default: f64) -> f64 {
        let Some(x) = self.number(body, field) else { return default };
        if min_exclusive && x <= min {
            self.add(field, format!("must be greater than {}", trim_number(min)));
        } else if !min_exclusive && x < min {
            self.add(field, format!("must be greater than or equal to {}", trim_number(min)));
        } else if x > max {
            self.add(field, format!("must be less than or equal to {}", trim_number(max)));
        }
        x
    }

    fn flag(&mut self, body: &Value, field: &str) -> bool {
        match body.get(field) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    fn text(&mut self, body: &Value, field: &str, base64: bool) -> Option<String> {
        match body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if base64 => {
                let decoded = view::decode(s);
                if decoded.is_none() {
                    self.add(field, "is not valid base64 (base64_encoded=true)");
                }
                decoded
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.add(field, "must be a string");
                None
            }
        }
    }
}

fn trim_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A Judge0 submission as an Optimus job's draft (its language resolved, its
/// rule and limits parsed), with what Judge0 keeps of it; or every field's errors.
pub fn parse_submission<'s>(
    rules: Rules<'s>,
    body: &Value,
    base64: bool,
) -> std::result::Result<(Draft<'s>, Submission), BTreeMap<String, Vec<String>>> {
    let mut e = Errors::default();
    if !body.is_object() {
        e.add("base", "a submission is a JSON object");
        return Err(e.0);
    }
    let limits = &rules.settings.limits;
    let source_code = e.text(body, "source_code", base64).filter(|s| !s.trim().is_empty());
    if source_code.is_none() && !e.0.contains_key("source_code") {
        e.add("source_code", "can't be blank");
    }
    let (language_id, lang) = match e.number(body, "language_id") {
        None if !e.0.contains_key("language_id") => {
            e.add("language_id", "can't be blank");
            (0, None)
        }
        None => (0, None),
        Some(id) => {
            let id = (id.fract() == 0.0 && id > 0.0 && id <= f64::from(u32::MAX)).then_some(id as u32).ok_or(id);
            let found = id.ok().and_then(|id| rules.registry.find_judge0(id));
            if found.is_none() {
                let shown = id.map_or_else(trim_number, |id| id.to_string());
                e.add("language_id", format!("language with id {shown} doesn't exist"));
            }
            (id.unwrap_or(0), found)
        }
    };
    let d = default_submission(rules, lang);
    let stdin = e.text(body, "stdin", base64);
    let expected_output = e.text(body, "expected_output", base64);
    let max_cpu = limits.max_time_limit_ms as f64 / 1000.0;
    let number_of_runs = e.bounded(body, "number_of_runs", 0.0, true, 1.0, 1.0);
    let cpu_time_limit =
        e.bounded(body, "cpu_time_limit", MIN_TIMEOUT_MS as f64 / 1000.0, false, max_cpu, d.cpu_time_limit);
    let cpu_extra_time = e.bounded(body, "cpu_extra_time", 0.0, false, MAX_CPU_EXTRA_TIME, 0.0);
    let wall_time_limit =
        e.bounded(body, "wall_time_limit", 1.0, false, wall_cap_secs(max_cpu), wall_cap_secs(cpu_time_limit));
    let memory_limit = e.bounded(
        body,
        "memory_limit",
        f64::from(MIN_MEMORY_MB * 1024),
        false,
        f64::from(limits.max_memory_mb) * 1024.0,
        d.memory_limit as f64,
    );
    let stack_limit = e.bounded(body, "stack_limit", 0.0, false, MAX_STACK_LIMIT_KB as f64, STACK_LIMIT_KB as f64);
    let max_pids = most(rules.registry, |l| l.pids_limit) as f64;
    let max_processes =
        e.bounded(body, "max_processes_and_or_threads", 0.0, true, max_pids, d.max_processes_and_or_threads as f64);
    let max_file_size = e.bounded(body, "max_file_size", 0.0, false, d.max_file_size as f64, d.max_file_size as f64);
    for field in ["enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit"] {
        if e.flag(body, field) {
            e.add(field, "this option cannot be enabled");
        }
    }
    let compiler_options = e.text(body, "compiler_options", false).filter(|s| !s.trim().is_empty());
    if compiler_options.is_some() {
        e.add("compiler_options", "setting compiler options is not allowed");
    }
    if e.text(body, "additional_files", false).is_some_and(|s| !s.trim().is_empty()) {
        e.add("additional_files", "setting additional files is not allowed");
    }
    if e.flag(body, "enable_network") {
        e.add("enable_network", "enabling network is not allowed");
    }
    if e.flag(body, "redirect_stderr_to_stdout") {
        e.add("redirect_stderr_to_stdout", "is not supported here: stdout and stderr are always kept apart");
    }
    let arguments = e.text(body, "command_line_arguments", false).filter(|s| !s.trim().is_empty());
    if arguments.as_ref().is_some_and(|a| a.chars().count() > MAX_ARGUMENTS_LENGTH) {
        e.add("command_line_arguments", format!("is too long (maximum is {MAX_ARGUMENTS_LENGTH} characters)"));
    }
    let callback_url = e.text(body, "callback_url", false).filter(|s| !s.trim().is_empty());
    if let Some(url) = &callback_url {
        if !rules.api.callback_targets.enabled() {
            e.add("callback_url", "setting callback is not allowed");
        } else if let Err(why) = super::callbacks::check_url(url, &rules.api.callback_ports) {
            e.add("callback_url", why);
        }
    }
    let (Some(source_code), Some(lang), true) = (source_code, lang, e.0.is_empty()) else { return Err(e.0) };
    let args = arguments.as_deref().map(split_arguments).unwrap_or_default();
    let draft = Draft {
        lang,
        source_code,
        tests: Some(vec![TestDraft {
            id: 1,
            input: stdin.unwrap_or_default(),
            expected_output,
            weight: None,
            compare: None,
        }]),
        time_limit_ms: Some((cpu_time_limit * 1000.0).round() as u64),
        memory_limit_mb: Some((memory_limit / 1024.0).ceil() as u32),
        mode: Default::default(),
        // Judge0 compares each line trimmed, and the end.
        compare: Some(Compare::Trim),
        checker: None,
        solution: None,
        harness: None,
        args,
        files: Vec::new(),
    };
    let sub = Submission {
        language_id,
        number_of_runs: number_of_runs.ceil() as u32,
        cpu_time_limit,
        cpu_extra_time,
        wall_time_limit,
        memory_limit: memory_limit as u64,
        stack_limit: stack_limit as u64,
        max_processes_and_or_threads: max_processes as u64,
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: max_file_size as u64,
        compiler_options: None,
        command_line_arguments: arguments,
        redirect_stderr_to_stdout: false,
        callback_url,
        enable_network: false,
    };
    Ok((draft, sub))
}

/// `command_line_arguments` as the program's argv: Judge0 drops `$&;<>|` and
/// backquotes, then bash splits the rest into words (quotes group, a backslash
/// escapes); so does this, without a shell.
pub fn split_arguments(raw: &str) -> Vec<String> {
    let cleaned: String = raw.trim().chars().filter(|c| !"$&;<>|`".contains(*c)).collect();
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = cleaned.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\')) => current.push(n),
                            Some(n) => {
                                current.push('\\');
                                current.push(n);
                            }
                            None => current.push('\\'),
                        },
                        _ => current.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::split_arguments;

    #[test]
    fn arguments_split_like_bash_words_after_judge0s_filter() {
        assert_eq!(split_arguments("a b  c"), vec!["a", "b", "c"]);
        assert_eq!(split_arguments(r#"'two words' "and \"more\"" x\ y"#), vec!["two words", "and \"more\"", "x y"]);
        assert_eq!(split_arguments("a; rm -rf / | cat > f"), vec!["a", "rm", "-rf", "/", "cat", "f"]);
        assert_eq!(split_arguments("''"), vec![""]);
        assert!(split_arguments("   ").is_empty());
    }
}
