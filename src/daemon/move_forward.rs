//! A move asked on a member that does not have the unit: this daemon finds the member that has
//! it (asking every other member) and forwards the request there over the member TLS, with who
//! asked (their role as authenticated here and their name), so the unit's host runs the move as
//! if asked itself and its audit says "ACTOR via THIS-HOST". Its progress comes back as NDJSON
//! and is relayed line by line.
//!
//! The unit's host decides with its own policy what that role may do to the unit; it trusts this
//! host's word on the role as a move's target trusts the source's. Lines coming back are another
//! host's: only JSON objects are relayed, a line is at most 64 KiB, and the last line must be the
//! result or the error.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Daemon, OpError};
use crate::cluster::ops::{self as cluster_ops, PeerNode};
use crate::policy::Caller;
use crate::progress::Progress;
use crate::unit::UnitName;
use crate::wire::{DrainForward, DrainNode, MoveCaller, MoveForward, MoveUnit, UnitHere};

/// A line of forwarded progress may be this long at most.
const MAX_LINE: usize = 64 << 10;
/// A forwarded move's answer may take this long (its data and its start included).
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl Daemon {
    /// Whether unit `name` is defined here, and its state (a member route asks it).
    pub fn unit_here(&self, name: &UnitName) -> Option<UnitHere> {
        let def = self.definition(name)?;
        let active = self.active_state(name.as_str());
        Some(UnitHere {
            unit: name.to_string(),
            active: matches!(active.as_str(), "active" | "activating" | "reloading"),
            enabled: def.unit.as_ref().is_ok_and(|u| u.service.enabled),
        })
    }

    /// The member that has unit `name`: running there first, then enabled, then defined.
    pub async fn unit_host(&self, name: &UnitName) -> Result<PeerNode, OpError> {
        let me = self
            .cluster
            .state()
            .ok_or_else(|| OpError::NotFound(format!("no unit {name}: see containerctl list")))?;
        let members =
            cluster_ops::members(self).await.map_err(|e| OpError::Unavailable(e.message_with_hint()))?;
        let client =
            cluster_ops::peer_client(self).map_err(|e| OpError::Unavailable(e.message_with_hint()))?;
        let asks = members.into_iter().filter(|m| m.addr != me.addr).map(|m| {
            let client = client.clone();
            let body = json!({ "unit": name.as_str() });
            async move {
                let body = serde_json::to_vec(&body).unwrap_or_default();
                let answer = client
                    .request(&m.api(), http::Method::POST, "/cluster/v1/units/where", &[], Some(body))
                    .await;
                match answer {
                    Ok((200, b)) => serde_json::from_slice::<UnitHere>(&b)
                        .ok()
                        .filter(|h| h.unit == name.as_str())
                        .map(|h| (m, h)),
                    _ => None,
                }
            }
        });
        let mut found: Vec<(PeerNode, UnitHere)> =
            futures_util::future::join_all(asks).await.into_iter().flatten().collect();
        found.sort_by_key(|(m, h)| (!h.active, !h.enabled, m.hostname.clone()));
        found.into_iter().next().map(|(m, _)| m).ok_or_else(|| {
            OpError::NotFound(format!("no unit {name} here or on any other member: see containerctl list"))
        })
    }

    /// Forwards a move of `name` to `host`, relaying its progress; the last line (result or error).
    pub async fn forward_move(
        &self,
        caller: &Caller,
        host: &PeerNode,
        name: &UnitName,
        req: &MoveUnit,
        p: &Progress,
    ) -> Value {
        p.step("forward", "running", format!("{name} is on {}: the move runs there", host.hostname));
        let fwd = MoveForward {
            unit: name.to_string(),
            request: req.clone(),
            caller: MoveCaller { role: caller.role.to_string(), actor: caller.actor.clone() },
        };
        self.forward(host, "/cluster/v1/moves/forward", &fwd, p).await
    }

    /// Forwards a drain of `host` there, relaying its progress; the last line.
    pub async fn forward_drain(
        &self,
        caller: &Caller,
        host: &PeerNode,
        req: &DrainNode,
        p: &Progress,
    ) -> Value {
        p.step("forward", "running", format!("the drain runs on {}", host.hostname));
        let fwd = DrainForward {
            request: req.clone(),
            caller: MoveCaller { role: caller.role.to_string(), actor: caller.actor.clone() },
        };
        self.forward(host, "/cluster/v1/drain/forward", &fwd, p).await
    }

    /// POSTs `body` to a member route that answers NDJSON, relaying its lines; the last line.
    async fn forward<B: serde::Serialize>(
        &self,
        host: &PeerNode,
        path: &str,
        body: &B,
        p: &Progress,
    ) -> Value {
        let here = crate::cluster::hostname();
        let error =
            |m: String| json!({"error": {"kind": "failed", "step": "forward", "message": m, "hint": ""}});
        let client = match cluster_ops::peer_client(self) {
            Ok(c) => c,
            Err(e) => return error(e.message_with_hint()),
        };
        let body = match serde_json::to_vec(body) {
            Ok(b) => b,
            Err(e) => return error(e.to_string()),
        };
        let body = http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            http_body_util::Full::new(Bytes::from(body)),
            |never: std::convert::Infallible| -> std::io::Error { match never {} },
        ));
        let mut relay = Relay { buf: Vec::new(), last: None, broken: None, p: p.clone() };
        let answer = client
            .send_streaming(
                &host.api(),
                (http::Method::POST, path, &[("content-type", "application/json".into())]),
                body,
                FORWARD_TIMEOUT,
                Some(&mut |chunk: Bytes| relay.feed(&chunk)),
            )
            .await;
        match answer {
            Err(e) => error(format!("{} did not answer: {e}", host.hostname)),
            Ok(a) if !(200..300).contains(&a.status) => {
                let message = cluster_ops::error_message(&a.body);
                let kind = match a.status {
                    403 => "forbidden",
                    404 => "not_found",
                    409 => "conflict",
                    400 | 422 => "invalid",
                    _ => "failed",
                };
                json!({"error": {"kind": kind, "step": "forward", "message": format!("on {}: {message}", host.hostname), "hint": ""}})
            }
            Ok(_) => match (relay.broken, relay.last) {
                (Some(why), _) => error(format!("{} sent a bad progress line: {why}", host.hostname)),
                (None, Some(last)) => last,
                (None, None) => error(format!(
                    "the answer of {} ended without a result: see its journal (forwarded from {here})",
                    host.hostname
                )),
            },
        }
    }
}

/// NDJSON lines of another member, relayed to this caller's progress.
struct Relay {
    buf: Vec<u8>,
    last: Option<Value>,
    broken: Option<String>,
    p: Progress,
}

impl Relay {
    fn feed(&mut self, chunk: &[u8]) {
        if self.broken.is_some() {
            return;
        }
        self.buf.extend_from_slice(chunk);
        while let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=at).collect();
            self.line(&line[..line.len() - 1]);
        }
        if self.buf.len() > MAX_LINE {
            self.broken = Some(format!("a line longer than {MAX_LINE} bytes"));
        }
    }

    fn line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) if v.get("result").is_some() || v.get("error").is_some() => self.last = Some(v),
            Ok(v) if v.get("step").is_some_and(Value::is_string) => self.p.send(v),
            Ok(_) => self.broken = Some("a line that is neither a step, a result nor an error".into()),
            Err(e) => self.broken = Some(format!("not JSON: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> (Relay, tokio::sync::mpsc::UnboundedReceiver<Value>) {
        let (p, rx) = Progress::new();
        (Relay { buf: Vec::new(), last: None, broken: None, p }, rx)
    }

    #[test]
    fn steps_are_relayed_across_chunks_and_the_last_line_is_kept() {
        let (mut r, mut rx) = relay();
        r.feed(b"{\"step\":\"copy\",\"state\":\"run");
        r.feed(b"ning\",\"detail\":\"x\"}\n\n{\"result\":{\"unit\":\"cam\"}}\n");
        assert_eq!(rx.try_recv().expect("a step")["state"], "running");
        assert!(rx.try_recv().is_err(), "the result is not relayed as a step");
        assert_eq!(r.last.expect("the result")["result"]["unit"], "cam");
        assert!(r.broken.is_none());
    }

    #[test]
    fn a_hostile_member_cannot_inject_other_lines() {
        for (input, why) in [
            (b"not json\n".to_vec(), "not JSON"),
            (b"{\"step\": 3}\n".to_vec(), "neither a step"),
            (b"[1,2]\n".to_vec(), "neither a step"),
            (vec![b'x'; MAX_LINE + 1], "longer than"),
        ] {
            let (mut r, mut rx) = relay();
            r.feed(&input);
            r.feed(b"{\"step\":\"copy\",\"state\":\"done\",\"detail\":\"after\"}\n");
            let broken = r.broken.clone().expect("refused");
            assert!(broken.contains(why), "{broken}");
            assert!(rx.try_recv().is_err(), "nothing relayed after a bad line");
        }
    }
}
