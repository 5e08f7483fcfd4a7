//! /metrics in Prometheus' text format: the units' families (`crate::metrics`, kept rendered by the
//! daemon's listing), the daemon's build, and the notifications' counters.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;

use super::Caller;
use crate::daemon::Daemon;
use crate::webhook::Counters;

/// The notifications' families: name, type, help.
const NOTIFICATION_FAMILIES: [(&str, &str, &str); 5] = [
    ("containerctl_notifications_delivered_total", "counter", "Notifications a webhook accepted (2xx)."),
    ("containerctl_notifications_failed_total", "counter", "Notifications refused, or out of attempts."),
    ("containerctl_notifications_dropped_total", "counter", "Notifications dropped from a full queue."),
    ("containerctl_notification_attempts_failed_total", "counter", "Failed delivery attempts."),
    ("containerctl_notifications_queued", "gauge", "Notifications waiting for delivery."),
];

/// The notifications' counters and queue.
pub fn render_notifications(c: &Counters, waiting: usize) -> String {
    let values = [&c.delivered, &c.failed, &c.dropped, &c.failed_attempts].map(Counters::get);
    let values = values.into_iter().chain([waiting as u64]);
    let mut s = String::new();
    for ((name, kind, help), v) in NOTIFICATION_FAMILIES.iter().zip(values) {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    s
}

pub async fn metrics(State(d): State<Arc<Daemon>>, Extension(_c): Extension<Caller>) -> impl IntoResponse {
    let units = d.units_metrics();
    let notifications = render_notifications(&d.outbox.counters, crate::daemon::notifications::waiting(&d));
    let mut text = String::with_capacity(units.len() + notifications.len());
    text.push_str(&units);
    text.push_str(&notifications);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_counters_are_prometheus_families() {
        let c = Counters::default();
        Counters::add(&c.delivered);
        Counters::add(&c.delivered);
        Counters::add(&c.dropped);
        let text = render_notifications(&c, 4);
        for want in [
            "# TYPE containerctl_notifications_delivered_total counter\ncontainerctl_notifications_delivered_total 2\n",
            "\ncontainerctl_notifications_failed_total 0\n",
            "\ncontainerctl_notifications_dropped_total 1\n",
            "\ncontainerctl_notification_attempts_failed_total 0\n",
            "# TYPE containerctl_notifications_queued gauge\ncontainerctl_notifications_queued 4\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
