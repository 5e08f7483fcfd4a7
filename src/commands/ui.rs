//! Pure rendering for the CLI: tables, colours, durations, sizes, times, status, log lines and
//! error details. Nothing here does I/O; the subcommands print what it returns.

use std::fmt::Write as _;

use crate::client::{
    ApiError, Applied, Device, LogEntry, LogLine, Revision, SecretInfo, Unit, UnitDetail, Violation,
    WireDiagnostic,
};
use crate::diag::Diagnostic;

/// Whether to emit ANSI colours (decided once per stream from isatty and NO_COLOR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Cyan,
    Bold,
    Dim,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Red => "\x1b[31m",
            Color::Green => "\x1b[32m",
            Color::Yellow => "\x1b[33m",
            Color::Cyan => "\x1b[36m",
            Color::Bold => "\x1b[1m",
            Color::Dim => "\x1b[2m",
        }
    }
}

impl Style {
    pub const PLAIN: Style = Style { color: false };

    pub fn paint(self, color: Option<Color>, text: &str) -> String {
        match color {
            Some(c) if self.color && !text.is_empty() => format!("{}{text}\x1b[0m", c.code()),
            _ => text.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row, columns two spaces apart; the last column is not padded.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<(String, Option<Color>)>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<(String, Option<Color>)>) {
        self.rows.push(cells);
    }

    pub fn render(&self, style: Style) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (text, _)) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<(String, Option<Color>)> =
            self.columns.iter().map(|(h, _)| ((*h).to_owned(), Some(Color::Bold))).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (text, color)) in row.iter().enumerate().take(n) {
                let pad = " ".repeat(widths[i].saturating_sub(text.chars().count()));
                let last = i + 1 == n;
                if i > 0 {
                    line.push_str("  ");
                }
                match self.columns[i].1 {
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(&style.paint(*color, text));
                    }
                    Align::Left => {
                        line.push_str(&style.paint(*color, text));
                        if !last {
                            line.push_str(&pad);
                        }
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `3min 2s`, `2h 5min`, `1 day 3h`: the two largest parts, like systemd's timespans.
pub fn format_span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "day"), (3600, "h"), (60, "min"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 || (size == 1 && parts.is_empty()) {
            parts.push(match name {
                "day" if n == 1 => "1 day".to_owned(),
                "day" => format!("{n} days"),
                _ => format!("{n}{name}"),
            });
        }
        if !parts.is_empty() && parts.len() == 2 {
            break;
        }
        if !parts.is_empty() && n == 0 {
            break;
        }
    }
    parts.join(" ")
}

/// `512B`, `1.5K`, `20.0M`, `1.2G` (powers of 1024, as systemctl shows memory).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

pub fn format_percent(p: f64) -> String {
    format!("{p:.1}%")
}

pub use crate::time::{format_stamp, format_time};

fn us_to_ms(us: u64) -> i64 {
    i64::try_from(us / 1000).unwrap_or(i64::MAX)
}

/// Colour of an ActiveState.
pub fn state_color(active_state: &str) -> Option<Color> {
    match active_state {
        "active" => Some(Color::Green),
        "failed" => Some(Color::Red),
        "activating" | "deactivating" | "reloading" | "refreshing" => Some(Color::Yellow),
        _ => None,
    }
}

/// The marker systemctl puts before a unit: `●` running or changing, `×` failed, `○` inactive.
pub fn state_glyph(active_state: &str) -> &'static str {
    match active_state {
        "failed" => "×",
        "inactive" | "" => "○",
        _ => "●",
    }
}

pub fn health_color(health: &str) -> Option<Color> {
    match health {
        "healthy" => Some(Color::Green),
        "unhealthy" => Some(Color::Red),
        "starting" => Some(Color::Yellow),
        _ => None,
    }
}

/// `image:version`, or `-` when the unit has no valid definition.
pub fn image_ref(unit: &Unit) -> String {
    match (&unit.image, &unit.version) {
        (Some(i), Some(v)) => format!("{i}:{v}"),
        (Some(i), None) => i.clone(),
        _ => "-".to_owned(),
    }
}

fn state_text(unit: &Unit) -> String {
    if unit.sub_state.is_empty() || unit.sub_state == unit.active_state {
        or_dash(&unit.active_state).to_owned()
    } else {
        format!("{} ({})", or_dash(&unit.active_state), unit.sub_state)
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// What `status`, `list` and `cat` say when the file is not what systemd loaded.
pub const CHANGED_ON_DISK: &str = "changed on disk: run `systemctl daemon-reload`";

/// The `list` table.
pub fn render_list(units: &[Unit], style: Style) -> String {
    let mut columns = vec![
        ("", Align::Left),
        ("NAME", Align::Left),
        ("STATE", Align::Left),
        ("ENABLED", Align::Left),
        ("HEALTH", Align::Left),
        ("RESTARTS", Align::Right),
        ("CPU", Align::Right),
        ("MEMORY", Align::Right),
        ("IMAGE", Align::Left),
    ];
    // The column appears once some unit was checked or updated.
    let updates = units.iter().any(|u| update_note(u).is_some());
    if updates {
        columns.push(("UPDATE", Align::Left));
    }
    let mut t = Table::new(&columns);
    for u in units {
        let color = state_color(&u.active_state);
        let mut row = vec![
            (state_glyph(&u.active_state).to_owned(), color),
            (u.name.clone(), None),
            (state_text(u), color),
            ((if u.enabled { "enabled" } else { "disabled" }).to_owned(), None),
            match &u.health {
                Some(h) => (h.clone(), health_color(h)),
                None => ("-".to_owned(), None),
            },
            (u.n_restarts.to_string(), None),
            (u.cpu_percent.map_or_else(|| "-".to_owned(), format_percent), None),
            (u.memory_bytes.map_or_else(|| "-".to_owned(), format_size), None),
            (image_ref(u), None),
        ];
        if updates {
            row.push(match update_note(u) {
                Some((text, warn)) => (text, warn.then_some(Color::Yellow)),
                None => ("-".to_owned(), None),
            });
        }
        t.row(row);
    }
    t.render(style)
}

/// The list's UPDATE cell: a version available, else a last update that did not succeed.
fn update_note(u: &Unit) -> Option<(String, bool)> {
    let up = u.update.as_ref()?;
    if let Some(v) = &up.available {
        return Some((format!("{v} available"), false));
    }
    let last = up.last.as_ref()?;
    match last.outcome.as_str() {
        "updated" | "unchanged" => None,
        other => Some((format!("{} ({})", other.replace('_', " "), last.to_version), true)),
    }
}

/// The status lines of a unit's update state: what is available, how the last update ended.
fn update_fields(u: &Unit) -> Vec<(&'static str, String, bool)> {
    let mut out = Vec::new();
    let Some(up) = &u.update else { return out };
    if let Some(v) = &up.available {
        let when = up.checked_at_ms.map(|t| format!(" (checked {})", format_time(t))).unwrap_or_default();
        out.push(("Update", format!("{v} available{when}: containerctl update {} --to {v}", u.name), false));
    } else if let Some(e) = &up.check_error {
        out.push(("Update", format!("the last check failed: {e}"), true));
    }
    if let Some(last) = &up.last {
        let what = last.outcome.replace('_', " ");
        let mut text = format!(
            "last: {what} {} → {} at {}",
            last.from_version,
            last.to_version,
            format_time(last.at_ms)
        );
        if !last.reason.is_empty() {
            text.push_str(&format!(": {}", last.reason));
        }
        out.push(("Update", text, last.outcome != "updated" && last.outcome != "unchanged"));
    }
    out
}

fn signal_name(n: i64) -> Option<&'static str> {
    Some(match n {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        11 => "SEGV",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return None,
    })
}

/// What the runner's own exit statuses mean (ARCHITECTURE.md), and the two generic ones.
fn exit_meaning(status: i64) -> Option<&'static str> {
    Some(match status {
        0 => "SUCCESS",
        1 => "FAILURE",
        78 => "CONFIG: the definition cannot run as written",
        123 => "the container became unhealthy",
        125 => "docker failed",
        _ => return None,
    })
}

/// systemd's ExecMainCode/ExecMainStatus as `exited, status=1/FAILURE` or `killed, signal=TERM`.
pub fn describe_exit(code: Option<i64>, status: Option<i64>) -> Option<String> {
    let status = status.unwrap_or(0);
    match code? {
        1 => Some(match exit_meaning(status) {
            Some(m) => format!("exited, status={status}/{m}"),
            None => format!("exited, status={status}"),
        }),
        c @ (2 | 3) => {
            let how = if c == 2 { "killed" } else { "dumped core" };
            Some(match signal_name(status) {
                Some(s) => format!("{how}, signal={s}"),
                None => format!("{how}, signal={status}"),
            })
        }
        _ => None,
    }
}

/// One journal line: `2025-11-21T23:50:01Z web: message`, errors red and warnings yellow.
pub fn render_log_line(line: &LogLine, style: Style) -> String {
    let color = match line.priority {
        Some(0..=3) => Some(Color::Red),
        Some(4) => Some(Color::Yellow),
        _ => None,
    };
    let stamp = format_stamp(us_to_ms(line.at_us));
    let text = match line.identifier.as_deref().filter(|i| !i.is_empty()) {
        Some(id) => format!("{id}: {}", line.message),
        None => line.message.clone(),
    };
    format!("{} {}", style.paint(Some(Color::Dim), &stamp), style.paint(color, &text))
}

pub fn render_log_entry(entry: &LogEntry, style: Style) -> String {
    match entry {
        LogEntry::Line(l) => render_log_line(l, style),
        LogEntry::Text(t) => t.clone(),
    }
}

/// `containerctl status NAME`, in the manner of `systemctl status`.
pub fn render_status(detail: &UnitDetail, now_ms: i64, style: Style) -> String {
    let u = &detail.unit;
    let color = state_color(&u.active_state);
    let mut out = String::new();
    let title = match u.description.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => format!("{} (containerctl@{}.service) - {d}", u.name, u.name),
        None => format!("{} (containerctl@{}.service)", u.name, u.name),
    };
    let _ = writeln!(out, "{} {title}", style.paint(color, state_glyph(&u.active_state)));
    let field = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "{label:>10}: {value}");
    };

    let mut loaded = vec![u.source.clone().unwrap_or_else(|| "no unit file".to_owned())];
    loaded.push((if u.enabled { "enabled" } else { "disabled" }).to_owned());
    if u.protected {
        loaded.push("protected".to_owned());
    }
    field(&mut out, "Loaded", &loaded.join("; "));
    if u.changed_on_disk {
        field(&mut out, "Warning", &style.paint(Some(Color::Yellow), CHANGED_ON_DISK));
    }
    if !u.valid {
        let msg = u.error.as_deref().unwrap_or("the unit file has errors");
        let text = format!("{msg} (the running container keeps its previous definition)");
        field(&mut out, "Error", &style.paint(Some(Color::Red), &text));
    }

    let mut active = state_text(u);
    if let Some(r) = Some(u.result.as_str()).filter(|r| !r.is_empty() && *r != "success") {
        active = format!("{active} (result: {r})");
    }
    let mut active = style.paint(color, &active);
    if let Some(since_us) = Some(u.since_us).filter(|&s| s > 0) {
        let since_ms = us_to_ms(since_us);
        let ago = u64::try_from(now_ms.saturating_sub(since_ms) / 1000).unwrap_or(0);
        let _ = write!(active, " since {}; {} ago", format_time(since_ms), format_span(ago));
    }
    field(&mut out, "Active", &active);
    if let Some(s) = Some(u.status_text.as_str()).filter(|s| !s.is_empty()) {
        field(&mut out, "Status", &format!("\"{s}\""));
    }
    field(&mut out, "Image", &image_ref(u));
    if let Some(h) = &u.health {
        field(&mut out, "Health", &style.paint(health_color(h), h));
    }
    field(&mut out, "Restarts", &u.n_restarts.to_string());
    if let Some(pid) = Some(u.main_pid).filter(|&p| p > 0) {
        field(&mut out, "Main PID", &pid.to_string());
    }
    if let Some(exit) = describe_exit(Some(u.exit_code.into()), Some(u.exit_status.into())) {
        let bad = u.exit_status != 0 || u.exit_code != 1;
        field(&mut out, "Last exit", &style.paint(bad.then_some(Color::Red), &exit));
    }
    if let Some(c) = u.cpu_percent {
        field(&mut out, "CPU", &format_percent(c));
    }
    if let Some(m) = u.memory_bytes {
        field(&mut out, "Memory", &format_size(m));
    }
    for (label, text, warn) in update_fields(u) {
        field(&mut out, label, &style.paint(warn.then_some(Color::Yellow), &text));
    }
    if let Some(d) = &detail.log_dropped {
        let text = format!(
            "{} lines at {} by journald's rate limit (service.log_rate_limit)",
            d.dropped,
            format_time(us_to_ms(d.at_us))
        );
        field(&mut out, "Log drop", &style.paint(Some(Color::Yellow), &text));
    }
    if !detail.log.is_empty() {
        out.push('\n');
        for entry in &detail.log {
            out.push_str(&render_log_entry(entry, style));
            out.push('\n');
        }
    }
    out
}

/// The `history` table.
pub fn render_history(revisions: &[Revision], style: Style) -> String {
    let mut t = Table::new(&[
        ("REV", Align::Right),
        ("DATE", Align::Left),
        ("ACTOR", Align::Left),
        ("ACTION", Align::Left),
        ("SIZE", Align::Right),
    ]);
    for r in revisions {
        t.row(vec![
            (r.rev.to_string(), None),
            (format_stamp(r.at_ms), None),
            (or_dash(&r.actor).to_owned(), None),
            (or_dash(&r.action).to_owned(), None),
            (r.size.map_or_else(|| "-".to_owned(), format_size), None),
        ]);
    }
    t.render(style)
}

/// The `devices` table; a declared device that is missing is flagged in red.
pub fn render_devices(devices: &[Device], style: Style) -> String {
    let mut t = Table::new(&[
        ("PATH", Align::Left),
        ("TARGET", Align::Left),
        ("PRESENT", Align::Left),
        ("UNITS", Align::Left),
    ]);
    for d in devices {
        let present =
            if d.present { ("yes".to_owned(), None) } else { ("MISSING".to_owned(), Some(Color::Red)) };
        let units = if d.units.is_empty() { "-".to_owned() } else { d.units.join(",") };
        t.row(vec![
            (d.path.clone(), None),
            (d.target.clone().unwrap_or_else(|| "-".to_owned()), None),
            present,
            (units, None),
        ]);
    }
    t.render(style)
}

/// A unified diff, coloured like `git diff`.
pub fn render_diff(diff: &str, style: Style) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let color = if line.starts_with("+++") || line.starts_with("---") {
            Some(Color::Bold)
        } else if line.starts_with("@@") {
            Some(Color::Cyan)
        } else if line.starts_with('+') {
            Some(Color::Green)
        } else if line.starts_with('-') {
            Some(Color::Red)
        } else {
            None
        };
        out.push_str(&style.paint(color, line));
        out.push('\n');
    }
    out
}

/// One diagnostic; with the text the user edited, it quotes and underlines the line.
pub fn render_diagnostic(d: &WireDiagnostic, text: Option<&str>) -> String {
    let file = d.file.clone().unwrap_or_else(|| "unit file".to_owned());
    let line = d.line.unwrap_or(0);
    let source_line = text.and_then(|t| line.checked_sub(1).and_then(|i| t.lines().nth(i)));
    match source_line {
        Some(src) => Diagnostic {
            file,
            line,
            column: d.column.unwrap_or(1).max(1),
            message: d.message.clone(),
            hint: d.hint.clone(),
            source_line: src.trim_end_matches('\r').to_owned(),
            width: 1,
        }
        .to_string(),
        None => {
            let mut s = match (line, d.column) {
                (0, _) => format!("{file}: {}", d.message),
                (l, Some(c)) => format!("{file}:{l}:{c}: {}", d.message),
                (l, None) => format!("{file}:{l}: {}", d.message),
            };
            if let Some(h) = &d.hint {
                let _ = write!(s, "\n  = hint: {h}");
            }
            s
        }
    }
}

/// LINE and COL of `FILE:LINE:COL`.
fn line_and_column(location: &str) -> Option<(usize, usize)> {
    let mut parts = location.rsplitn(3, ':');
    let (col, line) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some((line.parse().ok().filter(|&l| l > 0)?, col.parse().ok()?))
}

/// The line a violation's location points at, quoted and marked as a diagnostic quotes it:
/// from the daemon (`source_line`), else from `text`, the unit file the user wrote.
fn quote_violation(v: &Violation, text: Option<&str>) -> Option<String> {
    let (line, column) = line_and_column(v.location.as_deref()?)?;
    let source = match &v.source_line {
        Some(s) => s.as_str(),
        None => text?.lines().nth(line - 1)?.trim_end_matches('\r'),
    };
    let n = line.to_string();
    let pad = " ".repeat(n.len());
    let caret = " ".repeat(column.saturating_sub(1));
    Some(format!("    {pad} |\n    {n} | {source}\n    {pad} | {caret}^\n"))
}

/// The lines after `containerctl: MESSAGE`: violations, diagnostics, job result and log lines.
pub fn render_error_details(e: &ApiError, text: Option<&str>, style: Style) -> String {
    let mut out = String::new();
    for v in &e.violations {
        if v.rule.is_empty() {
            let _ = writeln!(out, "  policy: {}", v.message);
        } else {
            let _ = writeln!(out, "  policy rule {}: {}", v.rule, v.message);
        }
        match (&v.location, &v.key) {
            (Some(at), Some(key)) => {
                let _ = writeln!(out, "    at {at} ({key})");
            }
            (Some(at), None) | (None, Some(at)) => {
                let _ = writeln!(out, "    at {at}");
            }
            (None, None) => {}
        }
        if let Some(quote) = quote_violation(v, text) {
            out.push_str(&quote);
        }
        if let Some(fix) = &v.fix {
            let _ = writeln!(out, "    to allow it, an admin can {fix}");
        }
    }
    // Without the text (`set`: the daemon made it), the daemon's own rendering quotes the line.
    let rendered =
        if text.is_none() && e.rendered.len() == e.diagnostics.len() { &e.rendered[..] } else { &[] };
    for (i, d) in e.diagnostics.iter().enumerate() {
        let shown = rendered.get(i).cloned().unwrap_or_else(|| render_diagnostic(d, text));
        let _ = writeln!(out, "{} {shown}", style.paint(Some(Color::Red), "error:"));
    }
    if let Some(r) = e.result.as_deref().filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "  job result: {r}");
    }
    if let Some(s) = e.status_text.as_deref().filter(|s| !s.is_empty()) {
        let _ = writeln!(out, "  status: \"{s}\"");
    }
    if !e.log.is_empty() {
        let _ = writeln!(out, "  last log lines:");
        for l in &e.log {
            let _ = writeln!(out, "    {}", render_log_entry(l, style));
        }
    }
    out
}

/// The result line of a change to a unit file (edit, set, revert, new).
pub fn describe_applied(name: &str, applied: &Applied, restart_requested: bool) -> String {
    let mut s = if applied.changed {
        let mut s = format!("{name}: saved");
        if let Some(r) = applied.revision {
            let _ = write!(s, " revision {r}");
        }
        if let Some(p) = Some(applied.path.as_str()).filter(|p| !p.is_empty()) {
            let _ = write!(s, " to {p}");
        }
        s
    } else {
        format!("{name}: no change")
    };
    if applied.restarted {
        let _ = write!(s, "; restarted containerctl@{name}.service");
    } else if restart_requested && applied.changed {
        s.push_str("; not restarted because it is not active");
    }
    s
}

/// The note after a change saved without a restart. Only a running unit keeps its old definition
/// until it restarts; a stopped one starts with the new file, and `service.enabled` alone changes
/// what starts at boot, not what runs.
pub fn next_start_note(name: &str, active_state: Option<&str>, only_enabled: bool) -> Option<String> {
    let running = matches!(active_state, Some("active" | "activating" | "reloading" | "deactivating"));
    (running && !only_enabled)
        .then(|| format!("it takes effect at the next start: `containerctl restart {name}`"))
}

/// Whether two unit texts differ in `service.enabled` only (both parse, nothing else changed).
pub fn only_enabled_differs(before: &str, after: &str) -> bool {
    let strip = |text: &str| {
        let mut t: toml::Table = text.parse().ok()?;
        if let Some(toml::Value::Table(service)) = t.get_mut("service") {
            service.remove("enabled");
            if service.is_empty() {
                t.remove("service");
            }
        }
        Some(t)
    };
    matches!((strip(before), strip(after)), (Some(a), Some(b)) if a == b)
}

/// Whether `set` assignments touch `service.enabled` only.
pub fn assigns_enabled_only(assignments: &[String]) -> bool {
    assignments.iter().all(|a| a.split_once('=').is_some_and(|(k, _)| k.trim() == "service.enabled"))
}

/// A KEY=VALUE argument of `set`: KEY is `TABLE.KEY` (or a top-level key), VALUE may be empty.
pub fn check_assignment(s: &str) -> Result<(&str, &str), String> {
    let (key, value) =
        s.split_once('=').ok_or_else(|| format!("`{s}` is not KEY=VALUE (e.g. container.version=1.5)"))?;
    let key = key.trim();
    let ok = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if ok {
        Ok((key, value))
    } else {
        Err(format!("`{key}` is not a key: write TABLE.KEY, e.g. container.version or service.restart"))
    }
}

/// The `secret list` table: never a value, only what is known about each.
pub fn render_secrets(secrets: &[SecretInfo], style: Style) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("SIZE", Align::Right),
        ("UPDATED", Align::Left),
        ("BY", Align::Left),
        ("USED BY", Align::Left),
    ]);
    for s in secrets {
        t.row(vec![
            (s.name.clone(), None),
            (format_size(s.size), None),
            (format_stamp(s.updated_at_ms), None),
            (s.updated_by.clone().unwrap_or_else(|| "-".to_owned()), None),
            (if s.units.is_empty() { "-".to_owned() } else { s.units.join(", ") }, None),
        ]);
    }
    t.render(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_start_is_said_of_running_units_and_real_changes_only() {
        let note = "it takes effect at the next start: `containerctl restart web`";
        assert_eq!(next_start_note("web", Some("active"), false).as_deref(), Some(note));
        assert_eq!(next_start_note("web", Some("inactive"), false), None);
        assert_eq!(next_start_note("web", Some("failed"), false), None);
        assert_eq!(next_start_note("web", None, false), None);
        assert_eq!(next_start_note("web", Some("active"), true), None);
        let before = "[container]\nimage = \"a\"\nversion = \"1\"\n";
        assert!(only_enabled_differs(before, &format!("{before}\n[service]\nenabled = false\n")));
        assert!(!only_enabled_differs(before, &before.replace('1', "2")));
        assert!(!only_enabled_differs(before, "not toml ="));
        assert!(assigns_enabled_only(&["service.enabled=false".into()]));
        assert!(!assigns_enabled_only(&["service.enabled=false".into(), "container.version=2".into()]));
    }

    #[test]
    fn without_the_text_the_daemons_rendering_quotes_the_line() {
        let api = ApiError {
            status: 422,
            kind: "invalid".into(),
            message: "the unit file of web has 1 error".into(),
            violations: Vec::new(),
            diagnostics: vec![WireDiagnostic {
                file: Some("/etc/containerctl/units/web.toml".into()),
                line: Some(2),
                column: Some(11),
                message: "bad".into(),
                hint: None,
            }],
            rendered: vec![
                "/etc/containerctl/units/web.toml:2:11: bad\n  |\n2 | restart = \"x\"\n  |           ^"
                    .into(),
            ],
            result: None,
            status_text: None,
            log: Vec::new(),
        };
        let out = render_error_details(&api, None, Style::default());
        assert!(out.contains("2 | restart = \"x\"\n"), "{out}");
    }

    #[test]
    fn a_policy_location_quotes_the_line_of_the_text() {
        let api = ApiError {
            status: 403,
            kind: "forbidden".into(),
            message: "refused".into(),
            violations: vec![Violation {
                rule: "ports".into(),
                message: "port 22 is not allowed".into(),
                key: Some("container.ports[0]".into()),
                location: Some("/tmp/containerctl-web-1.toml:3:10".into()),
                source_line: None,
                fix: None,
            }],
            diagnostics: Vec::new(),
            rendered: Vec::new(),
            result: None,
            status_text: None,
            log: Vec::new(),
        };
        let out = render_error_details(
            &api,
            Some("[container]\nimage = \"a\"\nports = [\"22:22\"]\n"),
            Style::default(),
        );
        assert!(
            out.contains(concat!(
                "    at /tmp/containerctl-web-1.toml:3:10 (container.ports[0])\n",
                "      |\n",
                "    3 | ports = [\"22:22\"]\n",
                "      |          ^\n"
            )),
            "{out}"
        );
        // Without the text (`set`), the daemon's copy of the line is quoted; with neither, none.
        let mut api = api;
        api.violations[0].source_line = Some("ports = [\"22:22\"]".into());
        let out = render_error_details(&api, None, Style::default());
        assert!(out.contains("    3 | ports = [\"22:22\"]\n      |          ^\n"), "{out}");
        api.violations[0].source_line = None;
        let out = render_error_details(&api, None, Style::default());
        assert!(!out.contains(" | "), "{out}");
    }

    fn unit(name: &str, state: &str, sub: &str) -> Unit {
        Unit {
            name: name.into(),
            image: Some("ctl-test/busybox".into()),
            version: Some("1".into()),
            source: Some(format!("/etc/containerctl/units/{name}.toml")),
            valid: true,
            enabled: true,
            active_state: state.into(),
            sub_state: sub.into(),
            n_restarts: 0,
            ..Unit::default()
        }
    }

    #[test]
    fn spans() {
        assert_eq!(format_span(0), "0s");
        assert_eq!(format_span(42), "42s");
        assert_eq!(format_span(182), "3min 2s");
        assert_eq!(format_span(180), "3min");
        assert_eq!(format_span(7500), "2h 5min");
        assert_eq!(format_span(3601), "1h");
        assert_eq!(format_span(86_400 + 3 * 3600 + 5), "1 day 3h");
        assert_eq!(format_span(3 * 86_400 + 59), "3 days");
    }

    #[test]
    fn sizes_and_percent() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(1_048_576), "1.0M");
        assert_eq!(format_size(5 * 1024 * 1024 * 1024), "5.0G");
        assert_eq!(format_percent(0.42), "0.4%");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_stamp(1_790_000_000_000), "2026-09-21T14:13:20Z");
        assert_eq!(format_stamp(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_stamp(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn exits() {
        assert_eq!(describe_exit(None, None), None);
        assert_eq!(describe_exit(Some(0), Some(0)), None);
        assert_eq!(describe_exit(Some(1), Some(0)).as_deref(), Some("exited, status=0/SUCCESS"));
        assert_eq!(
            describe_exit(Some(1), Some(78)).as_deref(),
            Some("exited, status=78/CONFIG: the definition cannot run as written")
        );
        assert_eq!(describe_exit(Some(1), Some(3)).as_deref(), Some("exited, status=3"));
        assert_eq!(describe_exit(Some(2), Some(15)).as_deref(), Some("killed, signal=TERM"));
        assert_eq!(describe_exit(Some(3), Some(11)).as_deref(), Some("dumped core, signal=SEGV"));
    }

    #[test]
    fn table_aligns_and_trims() {
        let mut t = Table::new(&[("NAME", Align::Left), ("N", Align::Right), ("NOTE", Align::Left)]);
        t.row(vec![("a".into(), None), ("10".into(), None), ("".into(), None)]);
        t.row(vec![("longer".into(), Some(Color::Red)), ("7".into(), None), ("x".into(), None)]);
        assert_eq!(t.render(Style::PLAIN), "NAME     N  NOTE\na       10\nlonger   7  x\n");
        let coloured = t.render(Style { color: true });
        assert!(coloured.contains("\x1b[31mlonger\x1b[0m   7"), "{coloured:?}");
    }

    #[test]
    fn list_table() {
        let mut failed = unit("db", "failed", "failed");
        failed.enabled = false;
        failed.image = None;
        let mut web = unit("web", "active", "running");
        web.health = Some("healthy".into());
        web.cpu_percent = Some(0.4);
        web.memory_bytes = Some(1_048_576);
        let out = render_list(&[failed, web], Style::PLAIN);
        assert_eq!(
            out,
            "   NAME  STATE             ENABLED   HEALTH   RESTARTS   CPU  MEMORY  IMAGE\n\
             ×  db    failed            disabled  -               0     -       -  -\n\
             ●  web   active (running)  enabled   healthy         0  0.4%    1.0M  ctl-test/busybox:1\n"
        );
        let coloured = render_list(&[unit("web", "active", "running")], Style { color: true });
        assert!(coloured.contains("\x1b[32mactive (running)\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn status_like_systemctl() {
        let mut u = unit("web", "active", "running");
        u.description = Some("USB camera".into());
        u.protected = true;
        u.since_us = 1_790_000_000_000_000;
        u.status_text = "running container 3ec1ce6c1a66".into();
        u.health = Some("healthy".into());
        u.main_pid = 1234;
        u.n_restarts = 2;
        u.memory_bytes = Some(2048);
        let detail = UnitDetail {
            unit: u,
            text: None,
            events: Vec::new(),
            log: vec![
                LogEntry::Line(LogLine {
                    at_us: 1_790_000_001_000_000,
                    priority: Some(6),
                    identifier: Some("web".into()),
                    message: "listening".into(),
                }),
                LogEntry::Text("plain".into()),
            ],
            log_dropped: Some(crate::wire::LogDrop {
                at_us: 1_790_000_002_000_000,
                dropped: 162_502,
                message: "Suppressed 162502 messages from containerctl@web.service".into(),
            }),
        };
        let out = render_status(&detail, 1_790_000_182_000, Style::PLAIN);
        assert_eq!(
            out,
            "● web (containerctl@web.service) - USB camera\n\
             \x20   Loaded: /etc/containerctl/units/web.toml; enabled; protected\n\
             \x20   Active: active (running) since 2026-09-21 14:13:20 UTC; 3min 2s ago\n\
             \x20   Status: \"running container 3ec1ce6c1a66\"\n\
             \x20    Image: ctl-test/busybox:1\n\
             \x20   Health: healthy\n\
             \x20 Restarts: 2\n\
             \x20 Main PID: 1234\n\
             \x20   Memory: 2.0K\n\
             \x20 Log drop: 162502 lines at 2026-09-21 14:13:22 UTC by journald's rate limit (service.log_rate_limit)\n\
             \n\
             2026-09-21T14:13:21Z web: listening\n\
             plain\n"
        );
    }

    #[test]
    fn status_of_a_failed_invalid_unit() {
        let mut u = unit("db", "failed", "failed");
        u.result = "exit-code".into();
        u.exit_code = 1;
        u.exit_status = 78;
        u.valid = false;
        u.error = Some("/etc/containerctl/units/db.toml:3:1: unknown key `imag`".into());
        let out = render_status(&UnitDetail { unit: u, ..UnitDetail::default() }, 0, Style::PLAIN);
        assert!(out.starts_with("× db (containerctl@db.service)\n"), "{out}");
        assert!(out.contains("\n    Active: failed (result: exit-code)\n"), "{out}");
        assert!(out.contains("\n Last exit: exited, status=78/CONFIG"), "{out}");
        assert!(
            out.contains(
                "\n     Error: /etc/containerctl/units/db.toml:3:1: unknown key `imag` (the running"
            ),
            "{out}"
        );
    }

    #[test]
    fn status_says_when_the_file_changed_on_disk() {
        let mut u = unit("web", "active", "running");
        let plain = render_status(&UnitDetail { unit: u.clone(), ..UnitDetail::default() }, 0, Style::PLAIN);
        assert!(!plain.contains("changed on disk"), "{plain}");
        u.changed_on_disk = true;
        let out = render_status(&UnitDetail { unit: u, ..UnitDetail::default() }, 0, Style::PLAIN);
        assert!(
            out.contains("\n    Loaded: /etc/containerctl/units/web.toml; enabled\n   Warning: changed on disk: run `systemctl daemon-reload`\n"),
            "{out}"
        );
    }

    #[test]
    fn update_state_in_list_and_status() {
        let plain = unit("web", "active", "running");
        assert!(
            !render_list(std::slice::from_ref(&plain), Style::PLAIN).contains("UPDATE"),
            "no column without updates"
        );
        let mut u = plain.clone();
        u.update = Some(crate::wire::UnitUpdate {
            available: None,
            checked_at_ms: Some(0),
            check_error: None,
            last: Some(crate::wire::LastUpdate {
                outcome: "rolled_back".into(),
                from_version: "1.0".into(),
                to_version: "1.1".into(),
                reason: "its container turned unhealthy".into(),
                ..Default::default()
            }),
        });
        let list = render_list(&[plain, u.clone()], Style::PLAIN);
        assert!(list.lines().next().is_some_and(|h| h.ends_with("UPDATE")), "{list}");
        assert!(list.contains("rolled back (1.1)"), "{list}");
        let status = render_status(&UnitDetail { unit: u.clone(), ..UnitDetail::default() }, 0, Style::PLAIN);
        assert!(
            status.contains(
                "    Update: last: rolled back 1.0 → 1.1 at 1970-01-01 00:00:00 UTC: its container turned unhealthy\n"
            ),
            "{status}"
        );
        if let Some(up) = u.update.as_mut() {
            up.available = Some("1.2".into());
        }
        let status = render_status(&UnitDetail { unit: u.clone(), ..UnitDetail::default() }, 0, Style::PLAIN);
        assert!(status.contains("    Update: 1.2 available (checked 1970-01-01 00:00:00 UTC): containerctl update web --to 1.2\n"), "{status}");
        assert!(render_list(&[u], Style::PLAIN).contains("1.2 available"));
    }

    #[test]
    fn log_lines_coloured_by_priority() {
        let mut l =
            LogLine { at_us: 0, priority: Some(4), identifier: Some("web".into()), message: "warn".into() };
        assert_eq!(render_log_line(&l, Style::PLAIN), "1970-01-01T00:00:00Z web: warn");
        assert!(render_log_line(&l, Style { color: true }).contains("\x1b[33mweb: warn\x1b[0m"));
        l.priority = Some(3);
        assert!(render_log_line(&l, Style { color: true }).contains("\x1b[31mweb: warn\x1b[0m"));
        l.priority = Some(6);
        l.identifier = None;
        assert!(render_log_line(&l, Style { color: true }).ends_with(" warn"));
    }

    #[test]
    fn history_devices_diff() {
        let revs =
            [Revision { rev: 12, at_ms: 0, actor: "root".into(), action: "edit".into(), size: Some(300) }];
        assert_eq!(
            render_history(&revs, Style::PLAIN),
            "REV  DATE                  ACTOR  ACTION  SIZE\n 12  1970-01-01T00:00:00Z  root   edit    300B\n"
        );
        let devs = [
            Device {
                path: "/dev/serial/by-id/usb-x".into(),
                target: Some("/dev/ttyUSB0".into()),
                present: true,
                units: vec!["cam".into()],
            },
            Device {
                path: "/dev/video9".into(),
                target: None,
                present: false,
                units: vec!["a".into(), "b".into()],
            },
        ];
        assert_eq!(
            render_devices(&devs, Style::PLAIN),
            "PATH                     TARGET        PRESENT  UNITS\n\
             /dev/serial/by-id/usb-x  /dev/ttyUSB0  yes      cam\n\
             /dev/video9              -             MISSING  a,b\n"
        );
        let d = render_diff("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n", Style { color: true });
        assert!(d.contains("\x1b[31m-x\x1b[0m\n\x1b[32m+y\x1b[0m\n z\n"), "{d:?}");
    }

    #[test]
    fn diagnostics_quote_the_edited_line() {
        let d = WireDiagnostic {
            file: Some("/etc/containerctl/units/web.toml".into()),
            line: Some(2),
            column: Some(11),
            message: "restart = \"sometimes\": expected one of no, on-failure, always".into(),
            hint: Some("use \"on-failure\"".into()),
        };
        let text = "[service]\nrestart = \"sometimes\"\n";
        let with = render_diagnostic(&d, Some(text));
        assert!(with.contains("2 | restart = \"sometimes\"\n  |           ^"), "{with}");
        assert!(with.ends_with("= hint: use \"on-failure\""), "{with}");
        let without = render_diagnostic(&d, None);
        assert!(without.starts_with("/etc/containerctl/units/web.toml:2:11: restart"), "{without}");
    }

    #[test]
    fn error_details() {
        let e = ApiError::from_response(
            502,
            br#"{"error": {"kind": "job_failed", "message": "m", "result": "failed", "status_text": "pull failed",
                "log": ["a line"], "violations": [{"rule": "devices", "message": "/dev/mem is not allowed"}]}}"#,
        );
        assert_eq!(
            render_error_details(&e, None, Style::PLAIN),
            "  policy rule devices: /dev/mem is not allowed\n  job result: failed\n  status: \"pull failed\"\n  last log lines:\n    a line\n"
        );
        let e = ApiError::from_response(
            403,
            br#"{"error": {"kind": "forbidden", "message": "m", "violations": [{"rule": "ports allow-list",
                "message": "web: host port 22 is not in policy.allowed_ports (1024-65535)", "key": "container.ports[0]",
                "location": "/etc/containerctl/units/web.toml:4:10", "fix": "add 22 to policy.allowed_ports in c.toml"}]}}"#,
        );
        assert_eq!(
            render_error_details(&e, None, Style::PLAIN),
            "  policy rule ports allow-list: web: host port 22 is not in policy.allowed_ports (1024-65535)\n    at /etc/containerctl/units/web.toml:4:10 (container.ports[0])\n    to allow it, an admin can add 22 to policy.allowed_ports in c.toml\n"
        );
    }

    #[test]
    fn secrets_table_shows_what_is_known_of_each() {
        let list = [
            SecretInfo {
                name: "db-password".into(),
                size: 2048,
                updated_at_ms: 0,
                updated_by: Some("uid 0 (root)".into()),
                units: vec!["app".into(), "db".into()],
                ..SecretInfo::default()
            },
            SecretInfo { name: "tls".into(), size: 12, ..SecretInfo::default() },
        ];
        let out = render_secrets(&list, Style::default());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAME") && lines[0].contains("USED BY"), "{out}");
        assert!(lines[1].starts_with("db-password") && lines[1].contains("2.0K"), "{out}");
        assert!(lines[1].ends_with("uid 0 (root)  app, db"), "{out}");
        assert!(lines[2].ends_with("-             -"), "{out}");
    }

    #[test]
    fn applied_lines() {
        let mut a = Applied {
            name: "web".into(),
            changed: true,
            revision: Some(4),
            restarted: false,
            path: "/etc/containerctl/units/web.toml".into(),
            ..Applied::default()
        };
        assert_eq!(
            describe_applied("web", &a, false),
            "web: saved revision 4 to /etc/containerctl/units/web.toml"
        );
        assert!(describe_applied("web", &a, true).ends_with("; not restarted because it is not active"));
        a.restarted = true;
        assert!(describe_applied("web", &a, true).ends_with("; restarted containerctl@web.service"));
        let same = Applied { name: "web".into(), ..Applied::default() };
        assert_eq!(describe_applied("web", &same, true), "web: no change");
    }

    #[test]
    fn assignments() {
        assert_eq!(check_assignment("container.version=1.5"), Ok(("container.version", "1.5")));
        assert_eq!(
            check_assignment("container.args=[\"a\", \"b=c\"]"),
            Ok(("container.args", "[\"a\", \"b=c\"]"))
        );
        assert_eq!(check_assignment("description="), Ok(("description", "")));
        assert!(check_assignment("container.version").is_err());
        assert!(check_assignment("=1").is_err());
        assert!(check_assignment("container..version=1").is_err());
        assert!(check_assignment("a b=1").is_err());
    }
}
