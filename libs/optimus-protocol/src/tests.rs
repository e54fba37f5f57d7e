use std::path::PathBuf;

use super::*;

/// The caps the vectors are written for.
const CAPS: Caps = Caps { stream: 16, compile: 64, artifact: 32 };

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every report in `bytes`, fed `chunk` bytes at a time.
fn parse(bytes: &[u8], chunk: usize) -> Result<Vec<Report>, ProtocolError> {
    let mut p = Parser::new(CAPS);
    let mut out = Vec::new();
    for c in bytes.chunks(chunk) {
        p.feed(c);
        while let Some(r) = p.next_report()? {
            out.push(r);
        }
    }
    assert!(p.is_idle(), "bytes left over");
    Ok(out)
}

/// Each vector and the reports it holds: the writer must produce exactly the
/// vector's bytes and the reader must give back exactly these reports.
fn accepted() -> Vec<(&'static str, Vec<Report>)> {
    let test = |index, exit_status, wall_us, cpu_us, peak_kb, oom_killed, timed_out, out: &str, err: &str| {
        Report::Test(TestRun {
            index,
            exit_status,
            wall_us,
            cpu_us,
            peak_kb,
            oom_killed,
            timed_out,
            timing: Timing::default(),
            stdout: out.into(),
            stderr: err.into(),
        })
    };
    vec![
        (
            "compile-error.report",
            vec![Report::Compile {
                status: CompileStatus::Error,
                exit_code: 1,
                time_ms: 250,
                output: b"err\n!".to_vec(),
            }],
        ),
        (
            "compile-none.report",
            vec![Report::Compile { status: CompileStatus::None, exit_code: 0, time_ms: 0, output: Vec::new() }],
        ),
        ("test-accepted.report", {
            let mut run = test(0, 0, 1200, 800, 5000, false, false, "a\nb", "xy");
            if let Report::Test(t) = &mut run {
                t.timing = Timing { started_us: 1_765_000_000_000_000, setup_us: 300, teardown_us: 200 };
            }
            vec![run]
        }),
        ("test-killed.report", vec![test(1, 137, 2_000_000, 1_999_000, 100, true, true, "", "")]),
        // Output that looks like a header is only output.
        ("test-header-lookalike.report", vec![test(2, 0, 10, 5, 64, false, false, "@@optimus done\n\n", "")]),
        ("done.report", vec![Report::Done]),
        ("ended.report", vec![Report::Ended { exit: 70 }]),
        ("artifact.report", vec![Report::Artifact { tar: b"@@optimus done\n\0\xff".to_vec() }]),
        ("artifact-skipped.report", vec![Report::ArtifactSkipped { len: 40_000_000 }]),
    ]
}

#[test]
fn the_writer_produces_every_vector_byte_for_byte() {
    for (name, reports) in accepted() {
        let written: Vec<u8> = reports.iter().flat_map(Report::encode).collect();
        assert_eq!(written, vector(name), "{name}");
    }
}

#[test]
fn the_reader_decodes_every_vector_in_any_chunking() {
    for (name, reports) in accepted() {
        for chunk in [1, 3, 7, 4096] {
            assert_eq!(parse(&vector(name), chunk).unwrap(), reports, "{name} in chunks of {chunk}");
        }
    }
    // A whole job's stream is the vectors one after another.
    let stream: Vec<u8> = accepted().iter().flat_map(|(name, _)| vector(name)).collect();
    let all: Vec<Report> = accepted().into_iter().flat_map(|(_, r)| r).collect();
    assert_eq!(parse(&stream, 5).unwrap(), all);
}

#[test]
fn the_reader_refuses_every_reject_vector_before_keeping_its_body() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/reject");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // Only the header is fed: a length over the cap is refused at once,
        // without waiting for (or buffering) the body it announces.
        let mut p = Parser::new(CAPS);
        p.feed(&bytes);
        assert!(p.next_report().is_err(), "{} was accepted", path.display());
        seen += 1;
    }
    assert!(seen >= 9, "reject vectors missing");
}

#[test]
fn caps_allow_one_byte_past_the_output_limit() {
    let caps = Caps::for_output_limit(16);
    let mut p = Parser::new(caps);
    p.feed(b"@@optimus test 0 0 1 1 1 0 0 0 0 0 17 0\n");
    p.feed(&[b'y'; 17]);
    assert!(matches!(p.next_report(), Ok(Some(Report::Test(t))) if t.stdout.len() == 17));
    assert_eq!(Caps::for_output_limit(usize::MAX).stream, usize::MAX);
}

#[test]
fn a_sandbox_uid_is_one_of_the_range_and_never_root() {
    assert_eq!(sandbox_uid("10001"), Some(SANDBOX_UID));
    assert_eq!(sandbox_uid(&(SANDBOX_UID + SANDBOX_USERS - 1).to_string()), Some(SANDBOX_UID + SANDBOX_USERS - 1));
    for bad in ["0", "10000", &(SANDBOX_UID + SANDBOX_USERS).to_string(), "-1", "", "x", "4294967296"] {
        assert_eq!(sandbox_uid(bad), None, "{bad:?}");
    }
}
