//! The runner's report stream, which a sandboxed program can forge (it shares the
//! runner's stdout). Whatever the bytes, however they are cut into chunks: no
//! panic, no report past the caps, the same reports as when read in one piece,
//! and every report reads back the same from its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optimus_protocol::{Caps, Parser, ProtocolError, Report};

const CAPS: Caps = Caps { stream: 48, compile: 32, artifact: 40 };

/// Every report `chunks` hold, until the stream ends or is refused.
fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Report>, Option<ProtocolError>) {
    let mut parser = Parser::new(CAPS);
    let mut reports = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        loop {
            match parser.next_report() {
                Ok(Some(report)) => reports.push(report),
                Ok(None) => break,
                Err(e) => return (reports, Some(e)),
            }
        }
    }
    (reports, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size the bytes arrive in.
    let Some((&cut, stream)) = data.split_first() else { return };
    let whole = read(std::iter::once(stream));
    let chunked = read(stream.chunks(usize::from(cut % 17) + 1));
    assert_eq!(whole.0, chunked.0, "chunking changed the reports");
    assert_eq!(whole.1.is_some(), chunked.1.is_some(), "chunking changed whether the stream is refused");
    for report in &whole.0 {
        match report {
            Report::Compile { output, .. } => assert!(output.len() <= CAPS.compile),
            Report::Test(t) => assert!(t.stdout.len() <= CAPS.stream && t.stderr.len() <= CAPS.stream),
            Report::Artifact { tar } => assert!(tar.len() <= CAPS.artifact),
            Report::Done | Report::Ended { .. } | Report::ArtifactSkipped { .. } => {}
        }
        let (again, err) = read(std::iter::once(report.encode().as_slice()));
        assert!(err.is_none(), "{report:?} does not read back: {err:?}");
        assert_eq!(again, vec![report.clone()], "a report reads back differently");
    }
});
