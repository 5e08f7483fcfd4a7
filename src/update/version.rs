//! Tags read as versions, and the newest one a policy allows (pure).
//!
//! Without `track`, a tag is a version when it is numbers separated by dots, with an optional
//! leading `v` and an optional suffix after `-` or `+` (`1.4.2`, `v2.0`, `1.4.2-alpine`). Two
//! versions compare only when they have the same shape: the same `v`, as many numbers and the
//! same suffix. So `1.4.2-alpine` moves to `1.4.3-alpine`, never to `1.4.3` or to the floating
//! tags `1.4` and `1`, and a pre-release (`1.5.0-rc1`) is never taken for a release.
//!
//! With `track = "REGEX"` a tag is a version when the expression matches it whole; its capture
//! groups (or, without any, its runs of digits) are its numbers, and every matching tag compares.
//!
//! The policy looks at the numbers by position: `patch` keeps the first two (major, minor),
//! `minor` the first, `any` none.

use std::cmp::Ordering;

use crate::unit::UpdatePolicy;

/// A tag read as a version: its numbers and its shape (what must be equal to compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub tag: String,
    pub numbers: Vec<u64>,
    shape: String,
}

impl Version {
    /// `tag` as a version, under `track` when the unit has one; None when it is not one.
    pub fn parse(tag: &str, track: Option<&regex_lite::Regex>) -> Option<Version> {
        match track {
            Some(re) => tracked(tag, re),
            None => dotted(tag),
        }
    }

    /// Whether the two can be compared at all.
    pub fn comparable(&self, other: &Version) -> bool {
        self.shape == other.shape && self.numbers.len() == other.numbers.len()
    }

    /// Whether `policy` allows moving from `self` to `other` (a newer, comparable version).
    pub fn allows(&self, other: &Version, policy: UpdatePolicy) -> bool {
        let keep = match policy {
            UpdatePolicy::Manual => return false,
            UpdatePolicy::Patch => 2,
            UpdatePolicy::Minor => 1,
            UpdatePolicy::Any => 0,
        };
        // With fewer numbers than the policy keeps, every one is kept: nothing newer is allowed.
        let keep = keep.min(self.numbers.len());
        self.comparable(other)
            && self.numbers[..keep] == other.numbers[..keep]
            && other.numbers.cmp(&self.numbers) == Ordering::Greater
    }
}

fn dotted(tag: &str) -> Option<Version> {
    let (prefix, rest) = match tag.strip_prefix('v') {
        Some(r) => ("v", r),
        None => ("", tag),
    };
    let end = rest.find(['-', '+']).unwrap_or(rest.len());
    let (core, suffix) = rest.split_at(end);
    let numbers = core
        .split('.')
        .map(|n| if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) { n.parse().ok() } else { None })
        .collect::<Option<Vec<u64>>>()?;
    if suffix == "-" || suffix == "+" {
        return None;
    }
    Some(Version { tag: tag.to_owned(), shape: format!("{prefix}#{suffix}"), numbers })
}

fn tracked(tag: &str, re: &regex_lite::Regex) -> Option<Version> {
    let caps = re.captures(tag)?;
    let whole = caps.get(0)?;
    if whole.start() != 0 || whole.end() != tag.len() {
        return None;
    }
    if caps.len() > 1 {
        let numbers = (1..caps.len())
            .map(|i| caps.get(i).and_then(|m| m.as_str().parse::<u64>().ok()))
            .collect::<Option<Vec<u64>>>()?;
        return Some(Version { tag: tag.to_owned(), numbers, shape: "track".into() });
    }
    let mut numbers = Vec::new();
    let mut shape = String::new();
    let mut digits = String::new();
    for c in tag.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            numbers.push(digits.parse().ok()?);
            digits.clear();
            shape.push('#');
        }
        if c != '\0' {
            shape.push(c);
        }
    }
    Some(Version { tag: tag.to_owned(), numbers, shape })
}

/// The newest of `tags` that `policy` allows from `current`, skipping the tags in `bad` (versions
/// that were rolled back). None when there is none, or when `current` is not a version of the
/// scheme.
pub fn newest_allowed<'a>(
    current: &str,
    tags: impl IntoIterator<Item = &'a str>,
    policy: UpdatePolicy,
    track: Option<&regex_lite::Regex>,
    bad: &[String],
) -> Option<Version> {
    let current = Version::parse(current, track)?;
    tags.into_iter()
        .filter(|t| !bad.iter().any(|b| b == t))
        .filter_map(|t| Version::parse(t, track))
        .filter(|v| current.allows(v, policy))
        .max_by(|a, b| a.numbers.cmp(&b.numbers))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGS: &[&str] = &[
        "1",
        "1.4",
        "1.4.2",
        "1.4.3",
        "1.4.10",
        "1.5.0",
        "1.5.0-rc1",
        "2.0.0",
        "1.4.11-alpine",
        "1.4.3-alpine",
        "latest",
        "v1.4.9",
        "1.4.x",
        "1.4.12-",
    ];

    fn newest(current: &str, policy: UpdatePolicy) -> Option<String> {
        newest_allowed(current, TAGS.iter().copied(), policy, None, &[]).map(|v| v.tag)
    }

    #[test]
    fn policies_keep_the_leading_numbers() {
        assert_eq!(newest("1.4.2", UpdatePolicy::Patch).as_deref(), Some("1.4.10"));
        assert_eq!(newest("1.4.2", UpdatePolicy::Minor).as_deref(), Some("1.5.0"));
        assert_eq!(newest("1.4.2", UpdatePolicy::Any).as_deref(), Some("2.0.0"));
        assert_eq!(newest("1.4.2", UpdatePolicy::Manual), None);
        assert_eq!(newest("2.0.0", UpdatePolicy::Any), None, "nothing newer");
    }

    #[test]
    fn shapes_must_match() {
        assert_eq!(newest("1.4.2-alpine", UpdatePolicy::Patch).as_deref(), Some("1.4.11-alpine"));
        assert_eq!(newest("v1.4.2", UpdatePolicy::Patch).as_deref(), Some("v1.4.9"));
        assert_eq!(newest("1.4", UpdatePolicy::Any).as_deref(), None, "1.5 is not a tag");
        assert_eq!(newest("1", UpdatePolicy::Any), None);
        assert_eq!(newest("1.4", UpdatePolicy::Minor), None);
        assert_eq!(newest("latest", UpdatePolicy::Any), None, "not a version");
        assert!(Version::parse("1.4.12-", None).is_none());
        assert!(Version::parse("1..2", None).is_none());
    }

    #[test]
    fn bad_versions_are_skipped() {
        let bad = vec!["1.4.10".to_owned()];
        let got = newest_allowed("1.4.2", TAGS.iter().copied(), UpdatePolicy::Patch, None, &bad);
        assert_eq!(got.map(|v| v.tag).as_deref(), Some("1.4.3"));
    }

    #[test]
    fn tracks_compare_their_groups_or_digit_runs() {
        let re = regex_lite::Regex::new(r"(\d{4})\.(\d{2})\.(\d{2})").expect("regex");
        let tags = ["2024.01.05", "2024.03.01", "2025.01.01", "2024.03.01-x", "nightly"];
        let got = newest_allowed("2024.01.05", tags, UpdatePolicy::Minor, Some(&re), &[]);
        assert_eq!(got.map(|v| v.tag).as_deref(), Some("2024.03.01"));
        let got = newest_allowed("2024.01.05", tags, UpdatePolicy::Any, Some(&re), &[]);
        assert_eq!(got.map(|v| v.tag).as_deref(), Some("2025.01.01"));
        let re = regex_lite::Regex::new(r"build-\d+").expect("regex");
        let got =
            newest_allowed("build-9", ["build-10", "build-8", "build-x"], UpdatePolicy::Any, Some(&re), &[]);
        assert_eq!(got.map(|v| v.tag).as_deref(), Some("build-10"));
    }
}
