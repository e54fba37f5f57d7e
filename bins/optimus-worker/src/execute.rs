//! One job, end to end: which containers it needs, what runs in each and in what
//! order, and how each test's verdict is reached in the job's mode.
//!
//! The program under test gets a container of its own. A reference solution and a
//! checker each get another (of their own language), so that the program never
//! shares a filesystem with what judges it. All of them compile at once, and a
//! program that fails to compile ends the job without waiting for the others.
//! Then the program's tests run one after another, each judged as its report
//! arrives (in `submit` mode, before the next one starts); the solution runs the
//! same tests side by side in its own container, one test ahead at most of need.

use std::time::Duration;

use optimus_common::{
    Harness, JobResult, JobSpec, LanguageRegistry, Mode, Program, TestResult, TestTimings, Timings, Verdict,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info_span, Instrument};
use uuid::Uuid;

use crate::budget;
use crate::compare::compare;
use crate::harness;
use crate::judge::{self, Observed, RunLimits};
use crate::progress::Progress;
use crate::sandbox::{Compiled, Container, Role, Sandbox, SandboxError, Script, Session, STALL_GRACE};

/// What a job needs from its worker beyond the job itself.
pub struct Context<'a> {
    /// The job's own language.
    pub sandbox: &'a Sandbox,
    /// Where the checker's and the solution's languages are found.
    pub registry: &'a LanguageRegistry,
    pub output_limit: usize,
    /// Bytes all of a job's stored outputs may take together.
    pub output_budget: usize,
    /// Where the job's progress is told as it happens.
    pub progress: Option<&'a Progress>,
}

/// A job that could not be judged for a reason retrying will not fix.
fn internal(spec: &JobSpec, compile_output: Option<String>, message: String) -> JobResult {
    JobResult::without_tests(spec.mode, Verdict::InternalError, &spec.weights(), compile_output, Some(message))
}

/// A compiled role: its container and its open session.
struct Ready {
    container: Container,
    session: Session,
}

impl Ready {
    /// Gives the container back at the job's end (see [`Container::release`]).
    fn release(self, clean: bool) {
        self.container.release(self.session, clean);
    }
}

/// Gives back every role that is still held.
fn release_all(roles: impl IntoIterator<Item = Option<Ready>>, clean: bool) {
    roles.into_iter().flatten().for_each(|r| r.release(clean));
}

/// Runs and judges a whole job. `Err` means the sandbox failed (the job may be
/// retried); anything the job itself got wrong is in the result, whose texts are
/// cut to the job's output budget whichever way it ended (the verdicts were
/// reached before, on the whole outputs). The result carries its [`Timings`].
pub async fn execute(ctx: &Context<'_>, job_id: Uuid, spec: &JobSpec) -> Result<JobResult, SandboxError> {
    let mut timings = Timings::default();
    let mut result = judge_job(ctx, job_id, spec, &mut timings).await?;
    budget::fit(&mut result, ctx.output_budget);
    result.timings = Some(timings);
    Ok(result)
}

async fn judge_job(
    ctx: &Context<'_>,
    job_id: Uuid,
    spec: &JobSpec,
    phases: &mut Timings,
) -> Result<JobResult, SandboxError> {
    let limits = RunLimits {
        time_limit_ms: spec.time_limit_ms,
        memory_limit_mb: spec.memory_limit_mb,
        output_limit: ctx.output_limit,
    };
    let inputs: Vec<&str> = spec.test_cases.iter().map(|t| t.input.as_str()).collect();
    let mut roles = match prepare(ctx, job_id, spec, limits, &inputs, phases).await? {
        Prepared::Ready(roles) => roles,
        Prepared::Ended(result) => return Ok(*result),
    };
    let compile_output = roles.compile_output.take();
    let compile_cached = roles.compile_cached;
    let results = run_tests(ctx, spec, limits, roles, &mut phases.tests).await?;
    let mut result = JobResult::from_tests(spec.mode, results, &spec.weights(), compile_output);
    result.compile_cached = compile_cached;
    Ok(result)
}

/// A job's roles, compiled and ready to run its tests.
struct Roles {
    program: Ready,
    solution: Option<Ready>,
    checker: Option<Ready>,
    /// What the program's compiler printed.
    compile_output: Option<String>,
    /// The program's compile came from the compile cache.
    compile_cached: bool,
}

/// How preparing a job's roles ended.
enum Prepared {
    Ready(Box<Roles>),
    /// The job ended before its tests: its program did not compile, or its checker
    /// or solution could not be used.
    Ended(Box<JobResult>),
}

/// Takes and compiles the job's roles at once (the program, its reference
/// solution, its checker); a program that does not compile ends the job at once,
/// and its checker's and solution's containers go with it.
async fn prepare(
    ctx: &Context<'_>,
    job_id: Uuid,
    spec: &JobSpec,
    limits: RunLimits,
    inputs: &[&str],
    phases: &mut Timings,
) -> Result<Prepared, SandboxError> {
    let input_bytes: usize = inputs.iter().map(|i| i.len()).sum();
    let total = inputs.len();
    let program = async {
        let t = Instant::now();
        let mut container = ctx
            .sandbox
            .start(job_id, Role::Program, limits, total, input_bytes)
            .instrument(info_span!("acquire container"))
            .await?;
        let acquire_us = t.elapsed().as_micros() as u64;
        let source_file = ctx.sandbox.language().source_file.as_str();
        let script = Script::Job { step: spec.mode == Mode::Submit };
        // Sources unpacked and compiled once (a no-op for interpreted languages).
        let (session, compiled) = container
            .open(script, &program_files(spec, source_file), inputs, &spec.args)
            .instrument(info_span!("compile"))
            .await?;
        let opened_us = t.elapsed().as_micros() as u64 - acquire_us;
        phases.acquire_us = acquire_us;
        phases.exec_us = session.exec_us();
        phases.compile_us = opened_us.saturating_sub(session.exec_us());
        Ok::<_, SandboxError>((Ready { container, session }, compiled))
    };
    let others = async {
        let solution = async {
            let Some(solution) = &spec.solution else { return Ok(None) };
            // The solution runs under the job's limits, as the program does.
            let script = Script::Job { step: false };
            compiled_beside(
                ctx,
                job_id,
                Role::Solution,
                script,
                solution,
                Some(limits),
                spec.harness,
                inputs,
                &spec.args,
            )
            .await
            .map(Some)
        };
        let checker = async {
            let Some(checker) = &spec.checker else { return Ok(None) };
            compiled_beside(ctx, job_id, Role::Checker, Script::Checker, checker, None, None, inputs, &[])
                .await
                .map(Some)
        };
        tokio::try_join!(solution, checker)
    };
    tokio::pin!(program, others);
    // Everything compiles at once; a program that does not compile ends the job
    // at once, and its checker's and solution's containers go with it.
    let mut others_done = None;
    let (program, compiled) = loop {
        tokio::select! {
            p = &mut program => break p?,
            o = &mut others, if others_done.is_none() => others_done = Some(o?),
        }
    };
    let (compile_output, compile_cached) = match compiled {
        Compiled::Failed { output } => {
            if let Some(progress) = ctx.progress {
                progress.compiled(false, Some(&output)).await;
            }
            let result =
                JobResult::without_tests(spec.mode, Verdict::CompilationError, &spec.weights(), Some(output), None);
            program.release(true);
            if let Some((solution, checker)) = others_done {
                release_all([solution.and_then(Result::ok), checker.and_then(Result::ok)], true);
            }
            return Ok(Prepared::Ended(Box::new(result)));
        }
        Compiled::Ok { output, cached } => {
            if let Some(progress) = ctx.progress {
                progress.compiled(true, output.as_deref()).await;
            }
            (output, cached)
        }
    };
    let (solution, checker) = match others_done {
        Some(done) => done,
        None => others.await?,
    };
    let (solution, checker) = match (solution, checker) {
        (Some(Err(why)), other) | (other, Some(Err(why))) => {
            release_all([Some(program), other.and_then(Result::ok)], true);
            return Ok(Prepared::Ended(Box::new(internal(spec, compile_output, why))));
        }
        (solution, checker) => (solution.and_then(Result::ok), checker.and_then(Result::ok)),
    };
    Ok(Prepared::Ready(Box::new(Roles { program, solution, checker, compile_output, compile_cached })))
}

/// Runs every test (up to the first failure in `submit` mode) and judges each as
/// it arrives; the tests not run are reported so, and the roles are given back.
async fn run_tests(
    ctx: &Context<'_>,
    spec: &JobSpec,
    limits: RunLimits,
    roles: Box<Roles>,
    phases: &mut TestTimings,
) -> Result<Vec<TestResult>, SandboxError> {
    let total = spec.test_cases.len();
    let Roles { program, solution, mut checker, .. } = *roles;
    let checker_ms = checker.as_ref().map(|c| c.container.limits().time_limit_ms);
    let deadline = Instant::now() + test_phase(spec, checker_ms, total);
    let Ready { container, mut session } = program;
    session.begin_tests(deadline).await?;
    if let Some(checker) = checker.as_mut() {
        checker.session.set_deadline(deadline);
    }

    // The solution's runs arrive on a channel as they finish; the program's test
    // i waits for the solution's test i only when it is judged.
    let (reference_tx, mut reference_rx) = mpsc::unbounded_channel();
    let has_solution = solution.is_some();
    let feed = async {
        let Some(Ready { container, mut session }) = solution else { return Ok(None) };
        session.begin_tests(deadline).await?;
        let mut clean = true;
        while let Some(run) = session.next_test().await? {
            clean &= !run.oom_killed;
            if reference_tx.send(judge::observe(run, &limits)).is_err() {
                break;
            }
        }
        Ok::<_, SandboxError>(Some((Ready { container, session }, clean)))
    };
    let judging = Judging { spec, limits };
    // A container whose program met the OOM killer is not reused.
    let mut program_clean = true;
    // What judging and telling each test cost, beside what the session measured.
    let mut worker_side = TestTimings::default();
    let tests = async {
        let mut results = Vec::with_capacity(total);
        for index in 0..total {
            let test_span = info_span!("test", test.index = index, verdict = tracing::field::Empty);
            let run = match session.next_test().instrument(test_span.clone()).await? {
                Some(run) if run.index == index => run,
                Some(run) => return Err(SandboxError::Runner(format!("test {} reported out of order", run.index))),
                None => return Err(SandboxError::Runner("the runner stopped before every test had run".into())),
            };
            program_clean &= !run.oom_killed;
            let reference = if has_solution {
                let stopped = || SandboxError::Runner("the reference solution's runner stopped early".into());
                Some(reference_rx.recv().await.ok_or_else(stopped)?)
            } else {
                None
            };
            let check = checker.as_mut().map(|c| &mut c.session);
            let t = Instant::now();
            let result = judging
                .judge(index, judge::observe(run, &limits), reference.as_ref(), check)
                .instrument(info_span!(parent: &test_span, "judge"))
                .await?;
            worker_side.judge_us += t.elapsed().as_micros() as u64;
            test_span.record("verdict", crate::metrics::label(&result.verdict).as_str());
            let go_on = result.is_passed();
            let t = Instant::now();
            if let Some(progress) = ctx.progress {
                progress.test(index, &result).await;
            }
            worker_side.event_us += t.elapsed().as_micros() as u64;
            results.push(result);
            if spec.mode == Mode::Submit && index + 1 < total {
                session.step(go_on).await?;
                if !go_on {
                    break;
                }
            }
        }
        Ok::<_, SandboxError>(results)
    };
    let (mut results, solution) = {
        tokio::pin!(feed, tests);
        let mut fed = None;
        loop {
            tokio::select! {
                r = &mut tests => break (r?, fed.flatten()),
                f = &mut feed, if fed.is_none() => fed = Some(f?),
            }
        }
    };
    // A solution the program's end cut short is destroyed with its future; one
    // that ran every test is given back.
    if let Some((solution, clean)) = solution {
        solution.release(clean);
    }
    *phases = session.timings();
    *phases += worker_side;
    Ready { container, session }.release(program_clean);
    release_all([checker], true);
    let judged = results.len();
    results.extend(spec.test_cases[judged..].iter().map(|t| TestResult::not_run(t.id)));
    if let Some(progress) = ctx.progress {
        for (index, skipped) in results.iter().enumerate().skip(judged) {
            progress.test(index, skipped).await;
        }
    }
    Ok(results)
}

/// The files the judged program unpacks: its sources, and the job's extra files beside them.
fn program_files<'a>(spec: &'a JobSpec, source_file: &'a str) -> Vec<(&'a str, &'a [u8])> {
    let mut files = sources(spec.harness, source_file, &spec.source_code);
    files.extend(spec.files.iter().map(|f| (f.name.as_str(), f.content.as_bytes())));
    files
}

/// The files a program unpacks: its source, or the harness and its source beside it.
fn sources<'a>(harness: Option<Harness>, source_file: &'a str, code: &'a str) -> Vec<(&'a str, &'a [u8])> {
    match harness {
        Some(Harness::PythonCall) => harness::sources(source_file, code).to_vec(),
        None => vec![(source_file, code.as_bytes())],
    }
}

/// The longest the tests may take before the sandbox is declared stuck: every
/// test at its wall-clock cap, plus the checker's on each, plus slack.
fn test_phase(spec: &JobSpec, checker_ms: Option<u64>, total: usize) -> Duration {
    let wall = |ms: u64| Duration::from_millis(optimus_common::limits::wall_cap_ms(ms)) + Duration::from_secs(1);
    let per_test = wall(spec.time_limit_ms) + checker_ms.map_or(Duration::ZERO, wall);
    per_test * total as u32 + STALL_GRACE
}

/// A checker's or reference solution's container, started from its own language's
/// image and compiled, under `limits` or else its language's defaults. `Ok(Err(why))`
/// when the job cannot use it (unknown language, missing image, compile error);
/// `Err` when the sandbox failed.
#[allow(clippy::too_many_arguments)]
async fn compiled_beside(
    ctx: &Context<'_>,
    job_id: Uuid,
    role: Role,
    script: Script,
    program: &Program,
    limits: Option<RunLimits>,
    harness: Option<Harness>,
    inputs: &[&str],
    args: &[String],
) -> Result<Result<Ready, String>, SandboxError> {
    let sandbox = match other_sandbox(ctx, &program.language).await? {
        Ok(sandbox) => sandbox,
        Err(why) => return Ok(Err(why)),
    };
    let lang = sandbox.language();
    let limits = limits.unwrap_or(sandbox.limits(lang.time_limit_ms, lang.memory_limit_mb));
    let input_bytes = inputs.iter().map(|i| i.len()).sum();
    let mut container = sandbox.start(job_id, role, limits, inputs.len(), input_bytes).await?;
    let (session, compiled) =
        container.open(script, &sources(harness, &lang.source_file, &program.source_code), inputs, args).await?;
    match compiled {
        Compiled::Failed { output } => {
            Ready { container, session }.release(true);
            let what = if role == Role::Checker { "checker" } else { "reference solution" };
            Ok(Err(format!("the {what} did not compile:\n{output}")))
        }
        Compiled::Ok { .. } => Ok(Ok(Ready { container, session })),
    }
}

/// The sandbox of a checker's or solution's language, or why the job cannot use it.
/// A missing or outdated image is the platform's fault, not the job's: it fails
/// the attempt (retried, then dead-lettered until an operator builds the image).
async fn other_sandbox(ctx: &Context<'_>, language: &str) -> Result<Result<Sandbox, String>, SandboxError> {
    let Ok(lang) = ctx.registry.get(language) else {
        return Ok(Err(format!("language '{language}' is not in this worker's language registry")));
    };
    ctx.sandbox.for_language(lang).await.map(Ok)
}

/// Reaches each test's verdict.
struct Judging<'a> {
    spec: &'a JobSpec,
    limits: RunLimits,
}

impl Judging<'_> {
    async fn judge(
        &self,
        index: usize,
        run: Observed,
        reference: Option<&Observed>,
        checker: Option<&mut Session>,
    ) -> Result<TestResult, SandboxError> {
        let spec = self.spec;
        let test = &spec.test_cases[index];
        if spec.mode == Mode::Custom {
            let message = run.failure.as_ref().map(|f| f.1.clone());
            return Ok(judge::test_result(test.id, run, None, message));
        }
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
                    let check = judge::observe(check, &self.limits);
                    let (verdict, message) = judge::checker_verdict(&check);
                    (verdict, message, judge::checker_message(&check))
                }
                (None, Some(Harness::PythonCall), Some(expected)) => {
                    let (verdict, message) =
                        off_the_runtime(|| harness::judge(&test.input, &run.stdout, expected, spec.compare_for(index)));
                    (verdict, message, None)
                }
                (None, _, None) => (Verdict::Accepted, None, None),
                (None, _, Some(expected)) => {
                    match off_the_runtime(|| compare(spec.compare_for(index), &run.stdout, expected)) {
                        Ok(()) => (Verdict::Accepted, None, None),
                        Err(why) => (Verdict::WrongAnswer, Some(why), None),
                    }
                }
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

/// Runs a comparison (megabytes of output may take a while) where it cannot hold
/// up the runtime's other tasks: heartbeats, cancel watches, other slots. The
/// worker always runs on the multi-threaded runtime.
fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
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
