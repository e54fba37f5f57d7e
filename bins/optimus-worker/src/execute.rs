//! One job, end to end: which containers it needs, what runs in each and in what
//! order, and how each test's verdict is reached in the job's mode.
//!
//! The program under test gets a container of its own. A reference solution and a
//! checker each get another (of their own language), so that the program never
//! shares a filesystem with what judges it. All of them compile at once; then the
//! solution runs every test, and then the program's tests run one after another,
//! each judged as its report arrives (in `submit` mode, before the next one starts).

use std::time::Duration;

use optimus_common::{Harness, JobResult, JobSpec, LanguageRegistry, Mode, Program, TestResult, Verdict};
use tokio::time::Instant;
use uuid::Uuid;

use crate::compare::compare;
use crate::harness;
use crate::judge::{self, Observed, RunBounds};
use crate::sandbox::{Compiled, Container, Role, RunLimits, Sandbox, SandboxError, Session, STALL_GRACE};

/// Where the time of one job went, for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    pub create_ms: u64,
    pub prepare_ms: u64,
    pub compile_ms: u64,
    /// The reference solution's runs of every test.
    pub solution_ms: u64,
    pub run_ms: u64,
}

/// What a job needs from its worker beyond the job itself.
pub struct Context<'a> {
    /// The job's own language.
    pub sandbox: &'a Sandbox,
    /// Where the checker's and the solution's languages are found.
    pub registry: &'a LanguageRegistry,
    pub output_limit: usize,
}

/// A job that could not be judged for a reason retrying will not fix.
fn internal(spec: &JobSpec, compile_output: Option<String>, message: String) -> JobResult {
    JobResult::without_tests(spec.mode, Verdict::InternalError, &spec.weights(), compile_output, Some(message))
}

/// Runs and judges a whole job. `Err` means the sandbox failed (the job may be
/// retried); anything the job itself got wrong is in the result.
pub async fn execute(ctx: &Context<'_>, job_id: Uuid, spec: &JobSpec) -> Result<(JobResult, Phases), SandboxError> {
    let mut phases = Phases::default();
    let limits = RunLimits { time_ms: spec.timeout_ms, memory_mb: spec.memory_limit_mb };
    let bounds = RunBounds {
        time_limit_ms: spec.timeout_ms,
        memory_limit_mb: spec.memory_limit_mb,
        output_limit: ctx.output_limit,
    };
    let inputs: Vec<&str> = spec.test_cases.iter().map(|t| t.input.as_str()).collect();
    let input_bytes: usize = inputs.iter().map(|i| i.len()).sum();
    let total = inputs.len();

    let program = async {
        let t = Instant::now();
        let container = ctx.sandbox.start(job_id, Role::Program, limits, total, input_bytes).await?;
        let create_ms = t.elapsed().as_millis() as u64;
        let source_file = ctx.sandbox.language().source_file.as_str();
        let compiled = container.prepare(&sources(spec.harness, source_file, &spec.source_code), &inputs).await?;
        Ok::<_, SandboxError>((container, compiled, create_ms, t.elapsed().as_millis() as u64 - create_ms))
    };
    let solution = async {
        let Some(solution) = &spec.solution else { return Ok(None) };
        // The solution runs under the job's limits, as the program does.
        compiled_beside(ctx, job_id, Role::Solution, solution, Some(limits), spec.harness, &inputs).await.map(Some)
    };
    let checker = async {
        let Some(checker) = &spec.checker else { return Ok(None) };
        compiled_beside(ctx, job_id, Role::Checker, checker, None, None, &inputs).await.map(Some)
    };

    // Everything compiles at once; everything runs one thing at a time, so that no
    // run's time is measured against another's load.
    let (program, solution, checker) = tokio::try_join!(program, solution, checker)?;
    let (container, compiled, create_ms, prepare_ms) = program;
    phases.create_ms = create_ms;
    phases.prepare_ms = prepare_ms;
    let compile_output = match compiled {
        Compiled::Failed { output } => {
            let result =
                JobResult::without_tests(spec.mode, Verdict::CompilationError, &spec.weights(), Some(output), None);
            return Ok((result, phases));
        }
        Compiled::Ok { output, time_ms } => {
            phases.compile_ms = time_ms;
            output
        }
    };
    let checker = match checker {
        Some(Err(why)) => return Ok((internal(spec, compile_output, why), phases)),
        Some(Ok(checker)) => Some(checker),
        None => None,
    };
    let reference = match solution {
        Some(Err(why)) => return Ok((internal(spec, compile_output, why), phases)),
        Some(Ok(solution)) => {
            let t = Instant::now();
            let mut runs = solution.runs(total, false, Instant::now() + test_phase(spec, None, total));
            let mut observed = Vec::with_capacity(total);
            while let Some(run) = runs.next().await? {
                observed.push(judge::observe(run, &bounds));
            }
            phases.solution_ms = t.elapsed().as_millis() as u64;
            Some(observed)
        }
        None => None,
    };

    let t = Instant::now();
    let deadline = Instant::now() + test_phase(spec, checker.as_ref().map(|c| c.limits().time_ms), total);
    let mut check_session = match &checker {
        Some(container) => Some(container.check(deadline).await?),
        None => None,
    };
    let judging = Judging { spec, bounds, reference: reference.as_deref() };
    let mut runs = container.runs(total, spec.mode == Mode::Submit, deadline);
    let mut results = Vec::with_capacity(total);
    while let Some(run) = runs.next().await? {
        let index = run.index;
        let result = judging.judge(index, judge::observe(run, &bounds), check_session.as_mut()).await?;
        let go_on = spec.mode != Mode::Submit || result.is_passed();
        results.push(result);
        runs.step(go_on).await?;
    }
    results.extend(spec.test_cases[results.len()..].iter().map(|t| TestResult::not_run(t.id)));
    phases.run_ms = t.elapsed().as_millis() as u64;
    Ok((JobResult::from_tests(spec.mode, results, &spec.weights(), compile_output), phases))
}

/// The files a program unpacks: its source, or the harness and its source beside it.
fn sources<'a>(harness: Option<Harness>, source_file: &'a str, code: &'a str) -> Vec<(&'a str, &'a [u8])> {
    match harness {
        Some(Harness::PythonCall) => harness::sources(source_file, code).to_vec(),
        None => vec![(source_file, code.as_bytes())],
    }
}

/// The longest the tests may take before the sandbox is declared stuck: every
/// test at its limit, plus the checker's time on each, plus slack.
fn test_phase(spec: &JobSpec, checker_ms: Option<u64>, total: usize) -> Duration {
    let per_test = Duration::from_millis(spec.timeout_ms + 2000 + checker_ms.map_or(0, |ms| ms + 2000));
    per_test * total as u32 + STALL_GRACE
}

/// A checker's or reference solution's container, started from its own language's
/// image and compiled, under `limits` or else its language's defaults. `Ok(Err(why))`
/// when the job cannot use it (unknown language, missing image, compile error);
/// `Err` when the sandbox failed.
async fn compiled_beside(
    ctx: &Context<'_>,
    job_id: Uuid,
    role: Role,
    program: &Program,
    limits: Option<RunLimits>,
    harness: Option<Harness>,
    inputs: &[&str],
) -> Result<Result<Container, String>, SandboxError> {
    let sandbox = match other_sandbox(ctx, &program.language).await? {
        Ok(sandbox) => sandbox,
        Err(why) => return Ok(Err(why)),
    };
    let lang = sandbox.language();
    let limits = limits.unwrap_or(RunLimits { time_ms: lang.timeout_ms, memory_mb: lang.memory_limit_mb });
    let input_bytes = inputs.iter().map(|i| i.len()).sum();
    let container = sandbox.start(job_id, role, limits, inputs.len(), input_bytes).await?;
    match container.prepare(&sources(harness, &lang.source_file, &program.source_code), inputs).await? {
        Compiled::Failed { output } => {
            let what = if role == Role::Checker { "checker" } else { "reference solution" };
            Ok(Err(format!("the {what} did not compile:\n{output}")))
        }
        Compiled::Ok { .. } => Ok(Ok(container)),
    }
}

/// The sandbox of a checker's or solution's language, or why the job cannot use it.
async fn other_sandbox(ctx: &Context<'_>, language: &str) -> Result<Result<Sandbox, String>, SandboxError> {
    let Ok(lang) = ctx.registry.get(language) else {
        return Ok(Err(format!("language '{language}' is not in this worker's language registry")));
    };
    match ctx.sandbox.for_language(lang).await {
        Ok(sandbox) => Ok(Ok(sandbox)),
        Err(e @ SandboxError::ImageMissing { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Reaches each test's verdict.
struct Judging<'a> {
    spec: &'a JobSpec,
    bounds: RunBounds,
    reference: Option<&'a [Observed]>,
}

impl Judging<'_> {
    async fn judge(
        &self,
        index: usize,
        run: Observed,
        checker: Option<&mut Session>,
    ) -> Result<TestResult, SandboxError> {
        let spec = self.spec;
        let test = &spec.test_cases[index];
        if spec.mode == Mode::Custom {
            let message = run.failure.as_ref().map(|f| f.1.clone());
            return Ok(judge::test_result(test.id, run, None, message));
        }
        let reference = self.reference.map(|r| &r[index]);
        let solution_output = reference.map(|r| r.stdout.as_str());
        let (verdict, message, checker_message) = if let Some(why) = reference.and_then(solution_failure) {
            (Verdict::InternalError, Some(why), None)
        } else if let Some((verdict, why)) = &run.failure {
            (*verdict, Some(why.clone()), None)
        } else {
            let expected = test.expected_output.as_deref().or(solution_output);
            match (checker, spec.harness, expected) {
                (Some(session), _, expected) => {
                    let check = session.check(index, expected.unwrap_or("").as_bytes(), run.stdout.as_bytes()).await?;
                    let check = judge::observe(check, &self.bounds);
                    let (verdict, message) = judge::checker_verdict(&check);
                    (verdict, message, judge::checker_message(&check))
                }
                (None, Some(Harness::PythonCall), Some(expected)) => {
                    let (verdict, message) =
                        harness::judge(&test.input, &run.stdout, expected, spec.compare_for(index));
                    (verdict, message, None)
                }
                (None, _, None) => (Verdict::Accepted, None, None),
                (None, _, Some(expected)) => match compare(spec.compare_for(index), &run.stdout, expected) {
                    Ok(()) => (Verdict::Accepted, None, None),
                    Err(why) => (Verdict::WrongAnswer, Some(why), None),
                },
            }
        };
        let mut result = judge::test_result(test.id, run, Some(verdict), message);
        result.checker_message = checker_message;
        if let Some(r) = reference {
            result.solution_time_ms = Some(r.time_ms);
            result.solution_memory_kb = Some(r.memory_kb);
            if test.expected_output.is_none() && spec.harness.is_none() {
                result.expected_output = solution_output.map(str::to_string);
            }
        }
        Ok(result)
    }
}

/// Why the reference solution's run of a test cannot stand as the expected answer.
fn solution_failure(run: &Observed) -> Option<String> {
    let (_, why) = run.failure.as_ref()?;
    let said = run.stderr.trim().lines().last().unwrap_or("");
    Some(if said.is_empty() {
        format!("the reference solution failed on this test: {why}")
    } else {
        format!("the reference solution failed on this test: {why}: {said}")
    })
}
