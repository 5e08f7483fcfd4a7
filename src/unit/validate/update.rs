//! The `[update]` table: the update policy, the tag scheme it follows, the soak time and the
//! schedule. The schedule is checked for its shape only (no I/O here): systemd parses it when the
//! generator's timer is loaded, and `systemd-analyze calendar EXPR` shows when it fires.

use super::Validator;
use crate::unit::raw::RawUpdate;
use crate::unit::{Update, UpdatePolicy};

/// The longest `track` expression accepted.
const MAX_TRACK: usize = 256;
/// The longest `schedule` accepted.
const MAX_SCHEDULE: usize = 128;

impl Validator<'_> {
    pub(super) fn update(&mut self, raw: RawUpdate) -> Option<Update> {
        let default = Update::default();
        let policy = self.one_of(
            raw.policy.as_ref(),
            "policy",
            UpdatePolicy::NAMES,
            UpdatePolicy::parse,
            default.policy,
            "\"patch\" takes 1.4.2 to 1.4.3, \"minor\" to 1.5.0, \"any\" to 2.0.0",
        );
        let track = match raw.track {
            None => Some(None),
            Some(t) => match check_track(t.get_ref()) {
                Ok(()) => Some(Some(t.into_inner())),
                Err(why) => {
                    self.error(
                        t.span(),
                        format!("track: {why}"),
                        Some("write a regular expression that matches whole tags, like '^v?(\\d+)\\.(\\d+)$' (its groups are the numbers compared)"),
                    );
                    None
                }
            },
        };
        let soak = self.duration_max(raw.soak, default.soak, "soak", Update::MAX_SOAK);
        let schedule = match &raw.schedule {
            None => Some(None),
            Some(s) => match check_calendar(s.get_ref()) {
                Ok(()) => Some(Some(s.get_ref().trim().to_owned())),
                Err(why) => {
                    self.error(
                        s.span(),
                        format!("schedule \"{}\" {why}", s.get_ref().escape_debug()),
                        Some("write a systemd calendar expression like \"daily\", \"Mon *-*-* 04:00\" or \"*:0/15\" (see systemd.time(7))"),
                    );
                    None
                }
            },
        };
        let auto = raw.auto.as_ref().is_some_and(|a| *a.get_ref());
        if policy == Some(UpdatePolicy::Manual) {
            // Nothing is ever allowed by "manual": a timer would run for nothing.
            let manual = "with policy = \"manual\" no version is allowed without an admin naming it";
            if let Some(s) = &raw.schedule {
                self.error(
                    s.span(),
                    format!("schedule: {manual}"),
                    Some("set policy = \"patch\", \"minor\" or \"any\", or remove the schedule"),
                );
            }
            if let Some(a) = raw.auto.as_ref().filter(|a| *a.get_ref()) {
                self.error(
                    a.span(),
                    format!("auto = true: {manual}"),
                    Some("set policy = \"patch\", \"minor\" or \"any\""),
                );
            }
        }
        if let Some(a) = raw.auto.as_ref().filter(|a| *a.get_ref() && raw.schedule.is_none()) {
            self.error(
                a.span(),
                "auto = true needs a schedule: the timer that runs the update",
                Some("add schedule = \"daily\" (or another calendar expression) to [update]"),
            );
        }
        Some(Update { policy: policy?, track: track?, soak: soak?, schedule: schedule?, auto })
    }
}

/// A `track` expression must compile and stay small.
fn check_track(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("the expression is empty".into());
    }
    if t.len() > MAX_TRACK {
        return Err(format!("the expression is longer than {MAX_TRACK} characters"));
    }
    regex_lite::Regex::new(t).map(|_| ()).map_err(|e| format!("not a regular expression: {e}"))
}

/// systemd's shorthands for calendar events.
const SHORTHANDS: &[&str] =
    &["minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly", "semiannually"];
const WEEKDAYS: &[&str] = &[
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The shape of a systemd calendar expression (systemd.time(7), "Calendar Events"):
/// `[WEEKDAYS] [DATE] [TIME] [TIMEZONE]` or a shorthand like `daily`, with nothing that could
/// leave the `OnCalendar=` line. systemd itself decides whether the expression is valid.
pub(crate) fn check_calendar(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("is empty".into());
    }
    if expr.len() > MAX_SCHEDULE {
        return Err(format!("is longer than {MAX_SCHEDULE} characters"));
    }
    if let Some(c) = expr.chars().find(|c| !(c.is_ascii_alphanumeric() || " ,.:*/~-_+".contains(*c))) {
        return Err(format!("has the character {:?}, which no calendar expression has", c));
    }
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    let mut rest = &tokens[..];
    if let Some((first, tail)) = rest.split_first() {
        if SHORTHANDS.contains(&first.to_ascii_lowercase().as_str()) {
            return match tail {
                [] => Ok(()),
                [tz] if is_timezone(tz) => Ok(()),
                _ => Err(format!("has `{}` after the shorthand {first}", tail.join(" "))),
            };
        }
    }
    let mut seen = false;
    if let Some((first, tail)) = rest.split_first() {
        if first.starts_with(|c: char| c.is_ascii_alphabetic()) && !is_timezone_only(first, tail.is_empty()) {
            check_weekdays(first)?;
            rest = tail;
            seen = true;
        }
    }
    if let Some((first, tail)) = rest.split_first() {
        if !first.contains(':') && first.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
            check_fields(first, &['-', '~'], 2..=3, "date")?;
            rest = tail;
            seen = true;
        }
    }
    if let Some((first, tail)) = rest.split_first() {
        if first.contains(':') {
            check_fields(first, &[':'], 2..=3, "time")?;
            rest = tail;
            seen = true;
        }
    }
    match rest {
        [] if seen => Ok(()),
        [] => Err("names no weekday, date or time".into()),
        [tz] if seen && is_timezone(tz) => Ok(()),
        _ => Err(format!("has `{}` where a date, a time or a time zone was expected", rest.join(" "))),
    }
}

/// A token that can only be a time zone: the last one, with a `/` or in capitals (`UTC`).
fn is_timezone_only(token: &str, last: bool) -> bool {
    last && is_timezone(token) && !WEEKDAYS.contains(&token.to_ascii_lowercase().as_str())
}

fn is_timezone(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        && !t.contains("//")
}

/// `Mon`, `Mon,Fri`, `Mon..Fri`, `Sat,Sun`.
fn check_weekdays(token: &str) -> Result<(), String> {
    for item in token.split(',') {
        for day in item.split("..") {
            if !WEEKDAYS.contains(&day.to_ascii_lowercase().as_str()) {
                return Err(format!("has `{day}` where a weekday (Mon to Sun) was expected"));
            }
        }
    }
    Ok(())
}

/// A date (`*-*-01`, `2025-06-*`, `*-*~01`) or a time (`04:00`, `*:0/15`, `12:00:00`): fields
/// separated by `seps`, each `*`, a number, a range `A..B`, a list `A,B`, with an optional `/STEP`.
fn check_fields(
    token: &str,
    seps: &[char],
    count: std::ops::RangeInclusive<usize>,
    what: &str,
) -> Result<(), String> {
    let fields: Vec<&str> = token.split(|c| seps.contains(&c)).collect();
    if !count.contains(&fields.len()) {
        return Err(format!("has `{token}`, which is not a {what}"));
    }
    for field in fields {
        let ok = !field.is_empty()
            && field.split(',').all(|item| {
                let (value, step) = match item.split_once('/') {
                    Some((v, s)) => (v, Some(s)),
                    None => (item, None),
                };
                let number = |n: &str| {
                    !n.is_empty()
                        && n.split_once('.').map_or(n, |(whole, _)| whole).bytes().all(|b| b.is_ascii_digit())
                        && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                };
                let value_ok = value == "*"
                    || number(value)
                    || value.split_once("..").is_some_and(|(a, b)| number(a) && number(b));
                value_ok && step.is_none_or(number)
            });
        if !ok {
            return Err(format!(
                "has `{field}` in its {what}, which is not *, a number, a range A..B or a step /N"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_expressions_of_systemd_time_pass() {
        for ok in [
            "daily",
            "hourly",
            "Weekly",
            "daily UTC",
            "*-*-* 04:00:00",
            "Mon *-*-* 04:00",
            "Mon..Fri 22:30",
            "Sat,Sun 20:00",
            "*:0/15",
            "*:*:0/5",
            "2025-06-01 12:00",
            "*-*~01 03:00",
            "*-01,07-01 00:00",
            "04:00 Europe/Berlin",
            "Mon 04:00 UTC",
            "12:00:00.5",
        ] {
            assert_eq!(check_calendar(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_cannot_be_a_calendar_expression_is_refused() {
        for bad in [
            "",
            "daily\nExecStart=/bin/sh",
            "100%",
            "sometimes",
            "daily every day",
            "Mon..Funday 04:00",
            "04:00:00:00",
            "*-*-*-* 04:00",
            "4:x0",
            "*:0/x",
            "Mon 04:00 UTC extra",
            &"*".repeat(200),
        ] {
            assert!(check_calendar(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tracks_must_compile() {
        assert_eq!(check_track(r"^v?(\d+)\.(\d+)$"), Ok(()));
        assert!(check_track("(").is_err());
        assert!(check_track("").is_err());
    }
}
