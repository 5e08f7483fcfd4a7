//! `containerctl update --check`: for each unit, the newest version its `[update]` policy allows,
//! from the tags its registry holds, skipping the versions that were rolled back on it. Each
//! answer is stored (list, status and /metrics show it) and a newly found version is announced.

use super::{Daemon, NoticeKind, OpError};
use crate::db::CheckRecord;
use crate::policy::{self, Action, Caller};
use crate::progress::Progress;
use crate::time::now_ms;
use crate::unit::{Unit, UnitName, UpdatePolicy};
use crate::update::tags;
use crate::update::Version;
use crate::wire::{UnitVersions, UpdateCheck, VersionInfo};

impl Daemon {
    /// Checks `names` (every valid unit when empty), one after the other, reporting each to `p`.
    pub async fn check_updates(
        &self,
        caller: &Caller,
        names: &[UnitName],
        p: &Progress,
    ) -> Result<Vec<UpdateCheck>, OpError> {
        policy::may(caller.role, Action::CheckUpdates, "*", false).map_err(OpError::refused)?;
        let mut units = Vec::new();
        for (name, def) in self.definitions() {
            if !names.is_empty() && !names.contains(&name) {
                continue;
            }
            if let Ok(u) = def.unit {
                units.push((name, u));
            }
        }
        for n in names {
            if !units.iter().any(|(u, _)| u == n) {
                return Err(OpError::NotFound(format!(
                    "no unit {n} that can be checked (a valid unit file): see containerctl list"
                )));
            }
        }
        let mut out = Vec::new();
        for (name, unit) in units {
            let check = self.check_unit(&name, &unit).await;
            let detail = match (&check.available, &check.error) {
                (_, Some(e)) => format!("{name}: cannot check: {e}"),
                (Some(v), None) => format!("{name}: {} → {v} available", check.current),
                (None, None) if check.policy == "manual" => format!("{name}: policy manual, not checked"),
                (None, None) => format!("{name}: {} is the newest allowed", check.current),
            };
            p.step("check", if check.error.is_some() { "failed" } else { "done" }, detail);
            out.push(check);
        }
        Ok(out)
    }

    /// The versions of `name`'s image that compare with the one it runs (for choosing one).
    pub async fn versions(&self, caller: &Caller, name: &UnitName) -> Result<UnitVersions, OpError> {
        policy::may(caller.role, Action::CheckUpdates, name.as_str(), false).map_err(OpError::refused)?;
        let def = self.definition(name).ok_or_else(|| super::ops::not_found(name))?;
        let unit =
            def.unit.map_err(|e| OpError::Conflict(format!("{} is not valid: {e}", def.path.display())))?;
        let settings = unit.update_settings();
        let c = &unit.container;
        let track = settings
            .track
            .as_deref()
            .map(regex_lite::Regex::new)
            .transpose()
            .map_err(|e| OpError::Conflict(format!("[update] track: {e}")))?;
        let tags = tags::list(&c.image, &self.registry_access(&c.image).await)
            .await
            .map_err(|e| OpError::Unavailable(format!("cannot list the tags of {}: {e}", c.image)))?;
        let bad = self.db().bad_versions(name.as_str(), &c.image)?;
        let current = Version::parse(&c.version, track.as_ref());
        let mut versions: Vec<Version> = tags
            .iter()
            .filter_map(|t| Version::parse(t, track.as_ref()))
            .filter(|v| current.as_ref().is_none_or(|cur| cur.comparable(v)))
            .collect();
        versions.sort_by(|a, b| b.numbers.cmp(&a.numbers));
        versions.truncate(100);
        let skipped: Vec<String> = bad.iter().map(|b| b.version.clone()).collect();
        let available = crate::update::newest_allowed(
            &c.version,
            tags.iter().map(String::as_str),
            settings.policy,
            track.as_ref(),
            &skipped,
        )
        .map(|v| v.tag);
        Ok(UnitVersions {
            name: name.to_string(),
            image: c.image.clone(),
            current: c.version.clone(),
            policy: settings.policy.as_str().to_owned(),
            available,
            versions: versions
                .into_iter()
                .map(|v| VersionInfo {
                    allowed: current.as_ref().is_some_and(|cur| cur.allows(&v, settings.policy)),
                    rolled_back: bad.iter().find(|b| b.version == v.tag).map(|b| b.reason.clone()),
                    tag: v.tag,
                })
                .collect(),
        })
    }

    /// One unit's check, stored. A unit with policy `manual` is not looked up.
    pub(super) async fn check_unit(&self, name: &UnitName, unit: &Unit) -> UpdateCheck {
        let settings = unit.update_settings();
        let c = &unit.container;
        let bad = self.db().bad_versions(name.as_str(), &c.image).unwrap_or_default();
        let mut check = UpdateCheck {
            name: name.to_string(),
            image: c.image.clone(),
            current: c.version.clone(),
            policy: settings.policy.as_str().to_owned(),
            skipped: bad.iter().map(|b| b.version.clone()).collect(),
            checked_at_ms: now_ms(),
            ..UpdateCheck::default()
        };
        if settings.policy == UpdatePolicy::Manual {
            return check;
        }
        let track = match settings.track.as_deref().map(regex_lite::Regex::new).transpose() {
            Ok(t) => t,
            Err(e) => {
                check.error = Some(format!("track: {e}"));
                return check;
            }
        };
        match tags::list(&c.image, &self.registry_access(&c.image).await).await {
            Ok(list) => {
                let newest = crate::update::newest_allowed(
                    &c.version,
                    list.iter().map(String::as_str),
                    settings.policy,
                    track.as_ref(),
                    &check.skipped,
                );
                check.available = newest.map(|v| v.tag);
            }
            Err(e) => check.error = Some(e.to_string()),
        }
        let previous = self.db().check(name.as_str()).ok().flatten();
        let record = CheckRecord {
            unit: name.to_string(),
            at_ms: check.checked_at_ms,
            image: c.image.clone(),
            current: c.version.clone(),
            available: check.available.clone(),
            error: check.error.clone(),
        };
        if let Err(e) = self.db().record_check(&record) {
            tracing::warn!("cannot record the update check of {name}: {e}");
        }
        if let Some(v) = &check.available {
            if previous.and_then(|p| p.available).as_ref() != Some(v) {
                self.notice(NoticeKind::UpdateAvailable, name.as_str(), format!("{} → {v}", c.version));
            }
        }
        self.changed();
        check
    }

    /// Starts the update timers of units with `[update] schedule` and stops those of units
    /// without: a timer linked into timers.target by the generator is started only at the next
    /// boot otherwise (the target is active already). Run at start and after every reload.
    pub async fn sync_update_timers(&self) {
        let want: Vec<String> = self
            .definitions()
            .into_iter()
            .filter(|(_, d)| {
                d.unit.as_ref().is_ok_and(|u| u.update.as_ref().is_some_and(|u| u.schedule.is_some()))
            })
            .map(|(n, _)| crate::generator::update_timer(&n))
            .collect();
        let active = match self.systemd.active_units("containerctl-update@*.timer").await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("cannot list the update timers: {e}");
                return;
            }
        };
        for t in want.iter().filter(|t| !active.contains(t)) {
            match self.systemd.start(t).await {
                Ok(o) if o.is_done() => tracing::info!("started {t}"),
                Ok(o) => tracing::warn!("starting {t} ended with result {}", o.result),
                Err(e) => tracing::warn!("cannot start {t}: {e}"),
            }
        }
        for t in active.iter().filter(|t| !want.contains(t)) {
            if let Err(e) = self.systemd.stop(t).await {
                tracing::warn!("cannot stop {t}: {e}");
            }
        }
    }

    /// How to reach `image`'s registry: the stored credentials for it, and whether Docker would
    /// talk plain HTTP to it (a loopback registry, or one of dockerd's insecure-registries).
    async fn registry_access(&self, image: &str) -> tags::Access {
        let repo = tags::Repository::of(image);
        // The cluster registry's node credential, else the one of `containerctl registry login`.
        let credentials = crate::runner::registry::for_image(image).map(|c| c.auth);
        let mut access = tags::Access {
            username: credentials.as_ref().and_then(|c| c.username.clone()),
            password: credentials.and_then(|c| c.password),
            ..tags::Access::default()
        };
        let host = crate::cluster::host_of(&repo.registry).trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        access.insecure = loopback;
        if !loopback {
            if let Some(docker) = self.docker() {
                if let Ok(info) = docker.info().await {
                    let config = info.registry_config.unwrap_or_default();
                    let insecure_index = config
                        .index_configs
                        .unwrap_or_default()
                        .get(&repo.registry)
                        .is_some_and(|i| i.secure == Some(false));
                    let in_cidr = host.parse::<std::net::IpAddr>().ok().is_some_and(|ip| {
                        config
                            .insecure_registry_cidrs
                            .unwrap_or_default()
                            .iter()
                            .any(|cidr| in_cidr(ip, cidr))
                    });
                    access.insecure = insecure_index || in_cidr;
                }
            }
        }
        access
    }
}

/// Whether `ip` is in `cidr` (`127.0.0.0/8`, `fd00::/8`).
fn in_cidr(ip: std::net::IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else { return false };
    let (Ok(net), Ok(bits)) = (net.parse::<std::net::IpAddr>(), bits.parse::<u32>()) else { return false };
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert!(in_cidr(ip("127.0.0.1"), "127.0.0.0/8"));
        assert!(!in_cidr(ip("10.0.0.1"), "127.0.0.0/8"));
        assert!(in_cidr(ip("10.1.2.3"), "10.0.0.0/8"));
        assert!(in_cidr(ip("fd00::1"), "fd00::/8"));
        assert!(!in_cidr(ip("::1"), "127.0.0.0/8"));
        assert!(!in_cidr(ip("1.2.3.4"), "garbage"));
    }
}
