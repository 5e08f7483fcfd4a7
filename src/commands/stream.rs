//! Long operations the daemon streams as NDJSON (cluster init/join/leave, image push, update):
//! each step is printed to stderr as it happens (`--json` prints the daemon's lines to stdout
//! instead), transfers on one line that rewrites itself on a terminal.

use std::io::Write;

use serde_json::Value;

use super::{exit, Ctx, Error};
use crate::client::StreamLine;
use crate::wire::StepFailure;

/// How a streamed operation ended.
pub enum Streamed {
    Result(Value),
    Failure(StepFailure),
}

/// The exit status for a failure's `kind`.
pub fn exit_for(kind: &str) -> u8 {
    match kind {
        "forbidden" => exit::DENIED,
        "not_found" => exit::NOT_FOUND,
        "unavailable" => exit::UNAVAILABLE,
        _ => exit::FAILED,
    }
}

/// POSTs `body` to `route` and follows the stream to its last line.
pub fn run<B: serde::Serialize>(ctx: &Ctx, route: &str, body: &B, json: bool) -> Result<Streamed, Error> {
    let mut result = None;
    let mut failure: Option<StepFailure> = None;
    let stderr_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_progress = String::new();
    ctx.client.stream_lines_with::<Error, B>(hyper::Method::POST, route, Some(body), |line| {
        if json {
            ctx.term.println(&String::from_utf8_lossy(line))?;
        }
        let v: StreamLine =
            serde_json::from_slice(line).map_err(|e| Error::Failed(format!("bad progress line: {e}")))?;
        match v {
            StreamLine::Result { result: r } => result = Some(r),
            StreamLine::Failure { error } => failure = Some(error),
            StreamLine::Progress(_) if json => {}
            StreamLine::Progress(p) => {
                let (step, detail) = (p.step.as_str(), p.detail.as_str());
                match p.state.as_str() {
                    "progress" => {
                        if stderr_tty && detail != last_progress {
                            eprint!("\r\x1b[K  {detail}");
                            let _ = std::io::stderr().flush();
                        } else if !stderr_tty && detail != last_progress && !detail.starts_with("Pushing") {
                            eprintln!("  {detail}");
                        }
                        last_progress = detail.to_owned();
                    }
                    "failed" => {}
                    state => {
                        if stderr_tty && !last_progress.is_empty() {
                            eprint!("\r\x1b[K");
                            last_progress.clear();
                        }
                        let mark = match state {
                            "done" => "✓",
                            "skipped" => "·",
                            _ => "…",
                        };
                        eprintln!("{mark} {step}: {detail}");
                    }
                }
            }
        }
        Ok(())
    })?;
    if let Some(e) = failure {
        return Ok(Streamed::Failure(e));
    }
    result.map(Streamed::Result).ok_or_else(|| {
        Error::Failed("the daemon ended the operation without a result (see its journal)".into())
    })
}
