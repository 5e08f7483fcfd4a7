//! Notifications: where the daemon's events become [`Notice`]s (the broadcast, and the webhooks'
//! queues of `webhook::Outbox`), and their delivery to each webhook with retries, every attempt in
//! the audit. Delivery runs in tasks of its own (spawned by containerctld's main through
//! [`deliver`]); emitting only queues, so nothing the daemon does waits for a webhook.

use std::sync::Arc;

use super::{Daemon, Notice, NoticeKind};
use crate::db::NewAudit;
use crate::time::now_ms;
use crate::webhook::{self, Counters, Endpoint, Message, Outcome, Queue};

/// The actor and role of notification attempts in the audit.
pub const NOTIFY_ACTOR: &str = "containerctld";
const NOTIFY_ROLE: &str = "daemon";

impl Daemon {
    /// Tells the broadcast and the webhooks that `kind` happened to `unit` on this host.
    pub(super) fn emit(&self, kind: NoticeKind, unit: &str, at_ms: i64, detail: String) {
        let host = crate::cluster::hostname();
        self.send_notice(Notice { kind, unit: Some(unit.to_owned()), host, at_ms, detail });
    }

    /// Tells the broadcast and the webhooks that `kind` (node_down, node_up) happened to the node
    /// `hostname`.
    pub fn emit_node(&self, kind: NoticeKind, hostname: &str, detail: String) {
        self.send_notice(Notice { kind, unit: None, host: hostname.to_owned(), at_ms: now_ms(), detail });
    }

    /// Records `kind` as an event of `unit`, then emits it.
    pub(super) fn notice(&self, kind: NoticeKind, unit: &str, detail: String) {
        let at_ms = now_ms();
        self.record(unit, kind.as_str(), detail.clone(), at_ms);
        self.emit(kind, unit, at_ms, detail);
        self.changed();
    }

    fn send_notice(&self, notice: Notice) {
        self.outbox.post(&notice);
        // Nobody listening is fine: the webhooks have their own queues.
        let _ = self.notices.send(notice);
    }

    /// One attempt's outcome, in the audit and the journal.
    fn audit_attempt(&self, m: &Message, result: String, failed: bool) {
        let entry = NewAudit {
            at_ms: now_ms(),
            actor: NOTIFY_ACTOR.to_owned(),
            role: NOTIFY_ROLE.to_owned(),
            action: format!("notify {}", m.kind.as_str()),
            unit: m.unit.clone(),
            before: None,
            after: None,
            result,
        };
        if failed {
            tracing::warn!("notification {}: {}", m.kind.as_str(), entry.result);
        } else {
            tracing::info!("notification {}: {}", m.kind.as_str(), entry.result);
        }
        if let Err(e) = self.db().record_audit(&entry) {
            tracing::error!("cannot record the audit of notification {}: {e}", m.kind.as_str());
        }
    }
}

/// Delivers what the outbox queues to every webhook, each in its own order, for as long as the
/// daemon runs.
pub async fn deliver(d: Arc<Daemon>) {
    let workers: Vec<_> = d.outbox.webhooks().enumerate().map(|(i, _)| deliver_to(d.clone(), i)).collect();
    futures_util::future::join_all(workers).await;
}

async fn deliver_to(d: Arc<Daemon>, index: usize) {
    let Some((endpoint, queue)) = d.outbox.webhooks().nth(index) else { return };
    let client = webhook::client_for(endpoint);
    loop {
        let m = queue.pop().await;
        match &client {
            Ok(client) => deliver_one(&d, client, endpoint, &m).await,
            Err(e) => {
                Counters::add(&d.outbox.counters.failed);
                d.audit_attempt(&m, format!("failed: {endpoint}: no HTTPS client: {e}"), true);
            }
        }
    }
}

/// Attempts `m` until it is delivered, refused, or the attempts are used up.
async fn deliver_one(d: &Daemon, client: &crate::cluster::tls::Client, endpoint: &Endpoint, m: &Message) {
    let s = &d.outbox.settings;
    let payload = webhook::payload(m, s.format);
    let counters = &d.outbox.counters;
    for attempt in 1..=s.attempts {
        let of = format!("attempt {attempt} of {}", s.attempts);
        let outcome = Outcome::of(webhook::send(client, endpoint, &payload, s.timeout).await);
        match outcome {
            Outcome::Delivered(status) => {
                Counters::add(&counters.delivered);
                d.audit_attempt(m, format!("delivered: {endpoint} answered HTTP {status} ({of})"), false);
                return;
            }
            Outcome::Refused(why) => {
                Counters::add(&counters.failed_attempts);
                Counters::add(&counters.failed);
                d.audit_attempt(m, format!("refused: {endpoint} answered {why} ({of}, not retried)"), true);
                return;
            }
            Outcome::Retry(why) if attempt == s.attempts => {
                Counters::add(&counters.failed_attempts);
                Counters::add(&counters.failed);
                d.audit_attempt(m, format!("failed: {endpoint}: {why} ({of}, given up)"), true);
                return;
            }
            Outcome::Retry(why) => {
                Counters::add(&counters.failed_attempts);
                let wait = webhook::backoff(attempt);
                d.audit_attempt(
                    m,
                    format!("failed: {endpoint}: {why} ({of}, next in {}s)", wait.as_secs()),
                    true,
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Messages waiting, for /metrics.
pub fn waiting(d: &Daemon) -> usize {
    d.outbox.webhooks().map(|(_, q): (_, &Queue<Message>)| q.len()).sum()
}
