//! The bounds a draft must keep (sizes, counts, limits, names) and the options
//! that cannot go together, each refused with what to change.

use std::collections::HashSet;

use optimus_common::settings::Limits;
use optimus_common::{Compare, Harness, JobSpec, Mode, SourceFile};

use super::{Part, Refused};

/// The most arguments a program gets, and the longest one (bytes).
pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_BYTES: usize = 4096;
/// The most extra files a job carries beside its main source.
pub const MAX_FILES: usize = 16;
/// The longest extra file name.
const MAX_FILE_NAME: usize = 100;

fn incompatible(message: impl Into<String>) -> Refused {
    Refused::incompatible(message)
}

/// The judging options that cannot go together, refused with what to change.
pub(super) fn check_options(spec: &JobSpec, job_compare: bool) -> Result<(), Refused> {
    let test_compare = spec.test_cases.iter().find(|t| t.compare.is_some()).map(|t| t.id);
    let any_compare = job_compare || test_compare.is_some();
    if spec.mode == Mode::Custom {
        let judging = [
            (any_compare, "compare"),
            (spec.checker.is_some(), "checker"),
            (spec.solution.is_some(), "solution_code"),
            (spec.harness.is_some(), "harness"),
            (spec.test_cases.iter().any(|t| t.expected_output.is_some()), "expected_output"),
        ];
        if let Some((_, field)) = judging.iter().find(|(set, _)| *set) {
            return Err(incompatible(format!(
                "mode 'custom' runs the program without judging it, so {field} has no use; \
                 leave it out, or use mode 'run' or 'submit'"
            )));
        }
    }
    if spec.checker.is_some() && any_compare {
        return Err(incompatible(
            "a checker decides every test, so compare has no use beside it; send one or the other",
        ));
    }
    if let Some(Harness::PythonCall) = spec.harness {
        if spec.language != "python" {
            return Err(incompatible(format!(
                "harness 'python_call' calls Python functions; the job's language is '{}'; use language 'python'",
                spec.language
            )));
        }
        match &spec.solution {
            None => {
                return Err(incompatible(
                    "harness 'python_call' compares each call's value with the reference solution's; \
                     send solution_code",
                ))
            }
            Some(s) if s.language != "python" => {
                return Err(incompatible(format!(
                    "harness 'python_call' needs a Python reference solution; solution_language is '{}'",
                    s.language
                )))
            }
            Some(_) => {}
        }
        if spec.checker.is_some() {
            return Err(incompatible("harness 'python_call' compares values itself; leave out checker"));
        }
        if let Some(t) = spec.test_cases.iter().find(|t| t.expected_output.is_some()) {
            return Err(incompatible(format!(
                "test {}: with harness 'python_call' the expected value comes from solution_code; \
                 leave out expected_output",
                t.id
            )));
        }
        if let Some(t) = spec.test_cases.iter().find(|t| t.input.trim().is_empty()) {
            return Err(incompatible(format!(
                "test {}: with harness 'python_call' each input is a call such as \"add(1, 2)\"; this one is empty",
                t.id
            )));
        }
        let rules = std::iter::once(spec.compare).chain(spec.test_cases.iter().filter_map(|t| t.compare));
        if rules.into_iter().any(|c| !matches!(c, Compare::Trim | Compare::Float { .. })) {
            return Err(incompatible(
                "harness 'python_call' compares values structurally; the only compare it takes is 'float' \
                 (number tolerances)",
            ));
        }
    }
    Ok(())
}

pub(super) fn check_args(args: &[String]) -> Result<(), Refused> {
    let bad = |message: String| Err(Refused::new(Part::Args, "invalid_args", message));
    if args.len() > MAX_ARGS {
        return bad(format!("args has {} arguments; the most accepted is {MAX_ARGS}", args.len()));
    }
    for (i, arg) in args.iter().enumerate() {
        if arg.len() > MAX_ARG_BYTES {
            return bad(format!("args[{i}] is {} bytes; the most accepted is {MAX_ARG_BYTES}", arg.len()));
        }
        if arg.contains('\0') {
            return bad(format!("args[{i}] holds a NUL byte, which no argument can carry"));
        }
    }
    Ok(())
}

/// Extra files: plain names (letters, digits, `.`, `_`, `-`; not starting with a
/// dot), none named like the job's own files (`taken`) or like another, each
/// within the source cap.
pub(super) fn check_files(files: &[SourceFile], taken: &[&str], limits: &Limits) -> Result<(), Refused> {
    let bad = |message: String| Err(Refused::new(Part::Files, "invalid_files", message));
    if files.len() > MAX_FILES {
        return bad(format!("files has {} files; the most accepted is {MAX_FILES}", files.len()));
    }
    let mut seen = HashSet::new();
    for (i, file) in files.iter().enumerate() {
        let name = &file.name;
        let plain = !name.is_empty()
            && name.len() <= MAX_FILE_NAME
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return bad(format!(
                "files[{i}].name {name:?} is not a plain file name: use 1 to {MAX_FILE_NAME} letters, digits, \
                 '.', '_' or '-', not starting with '.'"
            ));
        }
        if taken.contains(&name.as_str()) {
            return bad(format!(
                "files[{i}].name {name:?} is the name of the job's own source ({}); the main source is source_code",
                taken.join(", ")
            ));
        }
        if !seen.insert(name.as_str()) {
            return bad(format!("files[{i}].name {name:?} is given twice"));
        }
        if file.content.len() > limits.max_source_bytes {
            return bad(format!(
                "files[{i}] ({name}) is {} bytes; the most accepted is {} bytes",
                file.content.len(),
                limits.max_source_bytes
            ));
        }
    }
    Ok(())
}

pub(super) fn check_source(source: &str, field: &str, limits: &Limits) -> Result<(), Refused> {
    if source.trim().is_empty() {
        return Err(Refused::new(
            Part::Source,
            "empty_source",
            format!("{field} is empty; send the program's source text"),
        ));
    }
    if source.len() > limits.max_source_bytes {
        return Err(Refused::new(
            Part::Source,
            "source_too_large",
            format!("{field} is {} bytes; the most accepted is {} bytes", source.len(), limits.max_source_bytes),
        ));
    }
    Ok(())
}
