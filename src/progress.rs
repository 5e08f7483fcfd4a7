//! The progress of a long operation (cluster init, image push, an update): each step is one JSON
//! line that the API streams to the caller as it happens (NDJSON), ending with the result or the
//! failure.

use serde_json::{json, Value};

/// Where a long operation reports its steps. Cheap to clone; a caller that went away makes the
/// reports go nowhere, never fail.
#[derive(Clone)]
pub struct Progress(tokio::sync::mpsc::UnboundedSender<Value>);

impl Progress {
    pub fn new() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Progress(tx), rx)
    }

    /// `state` is `running`, `done`, `skipped` or `failed`.
    pub fn step(&self, step: &str, state: &str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!("{step}: {state} {detail}");
        let _ = self.0.send(json!({"step": step, "state": state, "detail": detail}));
    }

    /// A `progress` line of a transfer: `current` of `total` bytes.
    pub fn transfer(&self, step: &str, detail: impl Into<String>, current: u64, total: u64) {
        let detail = detail.into();
        let _ = self.0.send(json!({"step": step, "state": "progress", "detail": detail,
            "progress": {"current": current, "total": total}}));
    }

    pub fn send(&self, v: Value) {
        let _ = self.0.send(v);
    }
}

/// The lines a [`Progress`] reports, as the chunks of an NDJSON body (one JSON value a line).
pub fn ndjson_lines(
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut text = v.to_string();
        text.push('\n');
        Some((Ok(bytes::Bytes::from(text)), rx))
    })
}
