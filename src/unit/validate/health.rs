//! The `[health]` table: the health check Docker runs in the container, with its timings.

use std::ops::Range;
use std::time::Duration;

use super::Validator;
use crate::unit::raw::RawHealth;
use crate::unit::Health;

impl Validator<'_> {
    pub(super) fn health(&mut self, span: Range<usize>, raw: RawHealth) -> Option<Health> {
        let cmd = match raw.cmd {
            Some(c) if !c.get_ref().is_empty() && !c.get_ref()[0].is_empty() => Some(c.into_inner()),
            Some(c) => {
                self.error(c.span(), "health cmd is empty", Some("give the command and its arguments, like [\"wget\", \"-q\", \"-O-\", \"http://localhost/\"]"));
                None
            }
            None => {
                let header = self.text[span.clone()].lines().next().unwrap_or("").len();
                self.error(
                    span.start..span.start + header,
                    "missing required key `cmd` in [health]",
                    Some("add cmd = [\"PROGRAM\", \"ARG\"...]"),
                );
                None
            }
        };
        let interval =
            self.duration_min(raw.interval, Duration::from_secs(30), "interval", Duration::from_secs(1));
        let timeout =
            self.duration_min(raw.timeout, Duration::from_secs(10), "timeout", Duration::from_millis(100));
        let start_period = self.duration(raw.start_period, Duration::ZERO, "start_period");
        let retries = match raw.retries {
            None => Some(3),
            Some(r) if (1..=100).contains(r.get_ref()) => Some(*r.get_ref() as u32),
            Some(r) => {
                self.error(r.span(), format!("retries = {} is out of range (1 to 100)", r.get_ref()), None);
                None
            }
        };
        Some(Health {
            cmd: cmd?,
            interval: interval?,
            timeout: timeout?,
            retries: retries?,
            start_period: start_period?,
        })
    }
}
