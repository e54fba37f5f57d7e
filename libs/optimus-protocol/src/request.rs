//! The worker's side of a container's attached stream: requests to the
//! container's init (`optimus-launcher init`), which starts one runner session
//! at a time and feeds it. A pooled container is made once and then serves job
//! after job over the one stream, so no job pays for a `docker exec` (the
//! engine's most expensive call on a job's path).
//!
//! ```text
//! start <job|checker> <env_len>\n<env>    env: KEY=VALUE entries, each ended by a NUL
//! data <len>\n<bytes>                     bytes for the session's stdin
//! eof\n                                   the session's stdin ends
//! ```
//!
//! A session's stdin is a pipe of its own, which init writes the data frames
//! into, so the runner sees exactly the bytes the worker sent and a real end of
//! file; init answers each session with `@@optimus ended <exit>` once its
//! runner has exited. Data or eof with no session running is dropped (the
//! runner ended early, and the worker learns it from `ended`).
//!
//! Only the worker writes this stream (through the engine): no process inside
//! the container can reach init's stdin. The reader still checks every header,
//! so a bug cannot make init hold more than [`MAX_ENV`] bytes.

use crate::ProtocolError;

/// The longest environment a start request may carry.
pub const MAX_ENV: usize = 64 * 1024;
/// A request header line longer than this is not one.
const MAX_LINE: usize = 64;

/// What a session runs: `runner.sh job` or `runner.sh checker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Job,
    Checker,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Job => "job",
            Verb::Checker => "checker",
        }
    }
}

/// One request, as [`Reader`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start a session with these `KEY=VALUE` entries added to init's environment.
    Start {
        verb: Verb,
        env: Vec<Vec<u8>>,
    },
    /// Bytes for the session's stdin: all or part of one data frame.
    Data(Vec<u8>),
    Eof,
}

/// A start request's bytes. Entries holding a NUL or no `=` are the caller's bug.
pub fn start(verb: Verb, env: &[String]) -> Vec<u8> {
    let body: Vec<u8> = env.iter().flat_map(|e| e.bytes().chain([0])).collect();
    let mut out = format!("start {} {}\n", verb.as_str(), body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The header of a data frame of `len` bytes (the bytes follow it).
pub fn data_header(len: usize) -> String {
    format!("data {len}\n")
}

pub const EOF: &[u8] = b"eof\n";

/// An incremental reader of requests: feed it what arrives, take requests as
/// they complete. A data frame is handed out in pieces as its bytes arrive, so
/// a large archive is never held whole.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Bytes of the current data frame not yet handed out.
    data_left: usize,
}

impl Reader {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next request (or piece of a data frame) the bytes fed so far hold.
    pub fn next_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        if self.data_left > 0 {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let n = self.data_left.min(self.buf.len());
            self.data_left -= n;
            return Ok(Some(Request::Data(self.buf.drain(..n).collect())));
        }
        let Some(nl) = self.buf.iter().take(MAX_LINE + 1).position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_LINE {
                return Err(ProtocolError("a request line is too long".into()));
            }
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
        let bad = || ProtocolError(format!("bad request {line:?}"));
        let mut f = line.split(' ');
        let (word, a, b, extra) = (f.next(), f.next(), f.next(), f.next());
        if extra.is_some() {
            return Err(bad());
        }
        let number = |s: Option<&str>| s.and_then(|s| s.parse::<usize>().ok()).ok_or_else(bad);
        match (word, a, b) {
            (Some("eof"), None, None) => {
                self.buf.drain(..=nl);
                Ok(Some(Request::Eof))
            }
            (Some("data"), len, None) => {
                self.data_left = number(len)?;
                self.buf.drain(..=nl);
                self.next_request()
            }
            (Some("start"), Some(verb), len) => {
                let verb = match verb {
                    "job" => Verb::Job,
                    "checker" => Verb::Checker,
                    _ => return Err(bad()),
                };
                let len = number(len)?;
                if len > MAX_ENV {
                    return Err(ProtocolError(format!(
                        "a start request's environment of {len} bytes is over {MAX_ENV}"
                    )));
                }
                if self.buf.len() < nl + 1 + len {
                    return Ok(None);
                }
                let body: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
                let mut env = Vec::new();
                if !body.is_empty() {
                    let Some(body) = body.strip_suffix(&[0]) else { return Err(bad()) };
                    for entry in body.split(|&b| b == 0) {
                        if !entry.iter().skip(1).any(|&b| b == b'=') {
                            return Err(ProtocolError(format!("bad environment entry in {line:?}")));
                        }
                        env.push(entry.to_vec());
                    }
                }
                Ok(Some(Request::Start { verb, env }))
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], chunk: usize) -> Result<Vec<Request>, ProtocolError> {
        let mut r = Reader::default();
        let mut out: Vec<Request> = Vec::new();
        for c in bytes.chunks(chunk) {
            r.feed(c);
            while let Some(req) = r.next_request()? {
                // Pieces of one data frame are joined, so chunkings compare equal.
                match (out.last_mut(), req) {
                    (Some(Request::Data(have)), Request::Data(more)) => have.extend(more),
                    (_, req) => out.push(req),
                }
            }
        }
        assert!(r.buf.is_empty() && r.data_left == 0, "bytes left over");
        Ok(out)
    }

    #[test]
    fn what_the_worker_writes_init_reads_back_in_any_chunking() {
        let mut stream = start(Verb::Job, &["LANGUAGE=python".into(), "RUN_CMD=a=b c".into()]);
        stream.extend(data_header(5).bytes());
        stream.extend(b"eof\nx");
        stream.extend(EOF);
        stream.extend(start(Verb::Checker, &[]));
        let want = vec![
            Request::Start { verb: Verb::Job, env: vec![b"LANGUAGE=python".to_vec(), b"RUN_CMD=a=b c".to_vec()] },
            // Data that looks like a request is only data.
            Request::Data(b"eof\nx".to_vec()),
            Request::Eof,
            Request::Start { verb: Verb::Checker, env: vec![] },
        ];
        for chunk in [1, 2, 5, 4096] {
            assert_eq!(read_all(&stream, chunk).unwrap(), want, "chunks of {chunk}");
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        let too_big = format!("start job {}\n", MAX_ENV + 1);
        for bad in [
            &b"start shell 0\n"[..],
            b"start job x\n",
            b"data -1\n",
            b"data 1 2\n",
            b"eof now\n",
            b"run\n",
            b"start job 3\nA=B",
            b"start job 2\n=\0",
            b"start job 3\nAB\0",
            too_big.as_bytes(),
            &[b'x'; MAX_LINE + 1],
        ] {
            let mut r = Reader::default();
            r.feed(bad);
            assert!(r.next_request().is_err(), "{:?} was accepted", String::from_utf8_lossy(bad));
        }
    }
}
