//! The units' part of /metrics in Prometheus' text format (pure): per-unit state, restarts, last
//! exit status, health, CPU, memory and updates. A unit's lines are rendered when the unit
//! changes (the daemon's listing keeps them) and joined family by family per request.

use std::fmt::Write;

use crate::wire::Unit as UnitView;

/// The unit families: name, type, help, in the order they are written.
pub const UNIT_FAMILIES: [(&str, &str, &str); 9] = [
    ("containerctl_unit_active", "gauge", "1 when the unit is active, 0 otherwise."),
    ("containerctl_unit_state", "gauge", "The unit's systemd ActiveState, as a label set to 1."),
    (
        "containerctl_unit_restarts_total",
        "counter",
        "Automatic restarts systemd made since the unit was loaded (NRestarts).",
    ),
    ("containerctl_unit_last_exit_status", "gauge", "Exit status (or signal) of the unit's last main process."),
    ("containerctl_unit_healthy", "gauge", "1 healthy, 0 unhealthy, 0.5 starting; absent without a health check."),
    (
        "containerctl_unit_cpu_percent",
        "gauge",
        "CPU use of the unit's container in percent of one CPU (last sample).",
    ),
    ("containerctl_unit_memory_bytes", "gauge", "Memory use of the unit's container (last sample)."),
    (
        "containerctl_unit_update_available",
        "gauge",
        "1 when the last update check found a newer version the unit's policy allows (the version as a label).",
    ),
    (
        "containerctl_unit_last_update_timestamp_seconds",
        "gauge",
        "When the unit's last update ended, with its outcome (updated, rolled_back, ...) as a label.",
    ),
];

/// One unit's lines, one string per family of [`UNIT_FAMILIES`] (empty where it has no value).
pub type UnitLines = [String; UNIT_FAMILIES.len()];

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The lines of unit `x` in every family.
pub fn unit_lines(x: &UnitView) -> UnitLines {
    let unit = format!("unit=\"{}\"", label(&x.name));
    let line = |family: usize, labels: &str, v: f64| format!("{}{{{labels}}} {v}\n", UNIT_FAMILIES[family].0);
    let health = x.health.as_deref().map(|h| match h {
        "healthy" => 1.0,
        "unhealthy" => 0.0,
        _ => 0.5,
    });
    let update = x.update.as_ref();
    let available = update.and_then(|u| u.available.as_ref());
    let last = update.and_then(|u| u.last.as_ref());
    [
        line(0, &unit, f64::from(u8::from(x.active_state == "active"))),
        line(1, &format!("{unit},state=\"{}\"", label(&x.active_state)), 1.0),
        line(2, &unit, f64::from(x.n_restarts)),
        line(3, &unit, f64::from(x.exit_status)),
        health.map(|v| line(4, &unit, v)).unwrap_or_default(),
        x.cpu_percent.map(|v| line(5, &unit, v)).unwrap_or_default(),
        x.memory_bytes.map(|v| line(6, &unit, v as f64)).unwrap_or_default(),
        available.map(|v| line(7, &format!("{unit},version=\"{}\"", label(v)), 1.0)).unwrap_or_default(),
        last.map(|l| {
            let labels =
                format!("{unit},outcome=\"{}\",version=\"{}\"", label(&l.outcome), label(&l.to_version));
            line(8, &labels, l.at_ms as f64 / 1000.0)
        })
        .unwrap_or_default(),
    ]
}

/// The build line and every unit family, from each unit's [`unit_lines`] in list order.
pub fn render<'a>(units: impl Iterator<Item = &'a UnitLines> + Clone) -> String {
    let size: usize = units.clone().map(|l| l.iter().map(String::len).sum::<usize>()).sum();
    let mut s = String::with_capacity(size + 2048);
    let _ = writeln!(s, "# HELP containerctl_build_info The running containerctld's version.");
    let _ = writeln!(s, "# TYPE containerctl_build_info gauge");
    let _ = writeln!(s, "containerctl_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    for (i, (name, kind, help)) in UNIT_FAMILIES.iter().enumerate() {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for lines in units.clone() {
            s.push_str(&lines[i]);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{LastUpdate, UnitUpdate};

    #[test]
    fn every_family_has_its_lines_in_list_order() {
        let a = UnitView {
            name: "a".into(),
            active_state: "active".into(),
            n_restarts: 2,
            health: Some("healthy".into()),
            cpu_percent: Some(1.5),
            memory_bytes: Some(4096),
            update: Some(UnitUpdate {
                available: Some("1.2".into()),
                last: Some(LastUpdate {
                    outcome: "updated".into(),
                    to_version: "1.1".into(),
                    at_ms: 1500,
                    ..LastUpdate::default()
                }),
                ..UnitUpdate::default()
            }),
            ..UnitView::default()
        };
        let b = UnitView {
            name: "b\"x".into(),
            active_state: "failed".into(),
            exit_status: 3,
            ..UnitView::default()
        };
        let lines = [unit_lines(&a), unit_lines(&b)];
        let text = render(lines.iter());
        for want in [
            "# TYPE containerctl_unit_active gauge\ncontainerctl_unit_active{unit=\"a\"} 1\ncontainerctl_unit_active{unit=\"b\\\"x\"} 0\n",
            "containerctl_unit_state{unit=\"b\\\"x\",state=\"failed\"} 1\n",
            "containerctl_unit_restarts_total{unit=\"a\"} 2\n",
            "containerctl_unit_last_exit_status{unit=\"b\\\"x\"} 3\n",
            "# TYPE containerctl_unit_healthy gauge\ncontainerctl_unit_healthy{unit=\"a\"} 1\n# HELP containerctl_unit_cpu_percent",
            "containerctl_unit_cpu_percent{unit=\"a\"} 1.5\n",
            "containerctl_unit_memory_bytes{unit=\"a\"} 4096\n",
            "containerctl_unit_update_available{unit=\"a\",version=\"1.2\"} 1\n",
            "containerctl_unit_last_update_timestamp_seconds{unit=\"a\",outcome=\"updated\",version=\"1.1\"} 1.5\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(text.starts_with("# HELP containerctl_build_info"));
        assert_eq!(text.matches("# TYPE ").count(), UNIT_FAMILIES.len() + 1);
    }
}
