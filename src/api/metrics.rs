//! /metrics in Prometheus' text format: per-unit state, restarts, last exit status, health, CPU
//! and memory, and the daemon's build.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;

use super::Caller;
use crate::daemon::{Daemon, UnitView};
use crate::webhook::Counters;

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(units: &[UnitView]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# HELP containerctl_build_info The running containerctld's version.");
    let _ = writeln!(s, "# TYPE containerctl_build_info gauge");
    let _ = writeln!(s, "containerctl_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    let mut family = |name: &str, kind: &str, help: &str, values: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for (labels, v) in values {
            let _ = writeln!(s, "{name}{{{labels}}} {v}");
        }
    };
    let u = |x: &UnitView| format!("unit=\"{}\"", label(&x.name));
    family(
        "containerctl_unit_active",
        "gauge",
        "1 when the unit is active, 0 otherwise.",
        &mut units.iter().map(|x| (u(x), f64::from(u8::from(x.active_state == "active")))),
    );
    family(
        "containerctl_unit_state",
        "gauge",
        "The unit's systemd ActiveState, as a label set to 1.",
        &mut units.iter().map(|x| (format!("{},state=\"{}\"", u(x), label(&x.active_state)), 1.0)),
    );
    family(
        "containerctl_unit_restarts_total",
        "counter",
        "Automatic restarts systemd made since the unit was loaded (NRestarts).",
        &mut units.iter().map(|x| (u(x), f64::from(x.n_restarts))),
    );
    family(
        "containerctl_unit_last_exit_status",
        "gauge",
        "Exit status (or signal) of the unit's last main process.",
        &mut units.iter().map(|x| (u(x), f64::from(x.exit_status))),
    );
    family(
        "containerctl_unit_healthy",
        "gauge",
        "1 healthy, 0 unhealthy, 0.5 starting; absent without a health check.",
        &mut units.iter().filter_map(|x| {
            let v = match x.health.as_deref()? {
                "healthy" => 1.0,
                "unhealthy" => 0.0,
                _ => 0.5,
            };
            Some((u(x), v))
        }),
    );
    family(
        "containerctl_unit_cpu_percent",
        "gauge",
        "CPU use of the unit's container in percent of one CPU (last sample).",
        &mut units.iter().filter_map(|x| Some((u(x), x.cpu_percent?))),
    );
    family(
        "containerctl_unit_memory_bytes",
        "gauge",
        "Memory use of the unit's container (last sample).",
        &mut units.iter().filter_map(|x| Some((u(x), x.memory_bytes? as f64))),
    );
    family(
        "containerctl_unit_update_available",
        "gauge",
        "1 when the last update check found a newer version the unit's policy allows (the version as a label).",
        &mut units.iter().filter_map(|x| {
            let v = x.update.as_ref()?.available.as_ref()?;
            Some((format!("{},version=\"{}\"", u(x), label(v)), 1.0))
        }),
    );
    family(
        "containerctl_unit_last_update_timestamp_seconds",
        "gauge",
        "When the unit's last update ended, with its outcome (updated, rolled_back, ...) as a label.",
        &mut units.iter().filter_map(|x| {
            let last = x.update.as_ref()?.last.as_ref()?;
            let labels = format!(
                "{},outcome=\"{}\",version=\"{}\"",
                u(x),
                label(&last.outcome),
                label(&last.to_version)
            );
            Some((labels, last.at_ms as f64 / 1000.0))
        }),
    );
    s
}

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
    let mut text = render(&d.list());
    text.push_str(&render_notifications(&d.outbox.counters, crate::daemon::notifications::waiting(&d)));
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
