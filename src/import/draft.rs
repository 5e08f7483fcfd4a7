//! A unit being converted, written out as a unit file only once every key converted.

use std::collections::BTreeMap;
use std::ops::Range;

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

/// The keys of a unit that an import can fill, as strings the unit format parses (durations,
/// sizes and ports are checked by the unit's own validation afterwards).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Draft {
    pub description: Option<String>,
    pub image: String,
    pub version: String,
    pub digest: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub devices: Vec<String>,
    pub volumes: Vec<String>,
    pub ports: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub read_only: bool,
    pub init: bool,
    pub privileged: bool,
    pub capabilities: Vec<String>,
    pub network: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub secrets: Vec<String>,
    pub restart: Option<&'static str>,
    pub stop_timeout: Option<String>,
    pub after: Vec<String>,
    pub requires: Vec<String>,
    pub enabled: bool,
    pub health: Option<Health>,
    pub deploy: Option<Deploy>,
    /// Where each key came from in the source (`container.ports` → its span), so that a value
    /// the unit format refuses is reported at the line that produced it.
    pub origins: BTreeMap<&'static str, Range<usize>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
    pub start_period: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Deploy {
    pub replicas: Option<i64>,
    pub constraints: Vec<String>,
    pub max_replicas_per_node: Option<i64>,
}

fn strings(items: &[String]) -> Item {
    let mut a = Array::new();
    for s in items {
        a.push(s.as_str());
    }
    value(a)
}

impl Draft {
    pub fn origin(&mut self, key: &'static str, span: Range<usize>) {
        self.origins.entry(key).or_insert(span);
    }

    /// The unit file: tables and keys in the order of containerctl.unit(5).
    pub fn to_toml(&self) -> String {
        let mut doc = DocumentMut::new();
        if let Some(d) = &self.description {
            doc.insert("description", value(d.as_str()));
        }
        let mut c = Table::new();
        c.insert("image", value(self.image.as_str()));
        c.insert("version", value(self.version.as_str()));
        if let Some(d) = &self.digest {
            c.insert("digest", value(d.as_str()));
        }
        if let Some(e) = &self.entrypoint {
            c.insert("entrypoint", strings(e));
        }
        if !self.args.is_empty() {
            c.insert("args", strings(&self.args));
        }
        if !self.env.is_empty() {
            let mut t = InlineTable::new();
            for (k, v) in &self.env {
                t.insert(k, v.as_str().into());
            }
            c.insert("env", value(t));
        }
        for (key, items) in [
            ("devices", &self.devices),
            ("volumes", &self.volumes),
            ("ports", &self.ports),
            ("capabilities", &self.capabilities),
            ("secrets", &self.secrets),
        ] {
            if !items.is_empty() {
                c.insert(key, strings(items));
            }
        }
        for (key, v) in [("user", &self.user), ("workdir", &self.workdir), ("network", &self.network)] {
            if let Some(v) = v {
                c.insert(key, value(v.as_str()));
            }
        }
        for (key, v) in [("read_only", self.read_only), ("init", self.init), ("privileged", self.privileged)]
        {
            if v {
                c.insert(key, value(true));
            }
        }
        if let Some(m) = &self.memory {
            c.insert("memory", value(m.as_str()));
        }
        if let Some(cpus) = &self.cpus {
            c.insert("cpus", value(cpus.as_str()));
        }
        doc.insert("container", Item::Table(c));
        let mut s = Table::new();
        if let Some(r) = self.restart {
            s.insert("restart", value(r));
        }
        if let Some(t) = &self.stop_timeout {
            s.insert("stop_timeout", value(t.as_str()));
        }
        if !self.after.is_empty() {
            s.insert("after", strings(&self.after));
        }
        if !self.requires.is_empty() {
            s.insert("requires", strings(&self.requires));
        }
        if self.enabled {
            s.insert("enabled", value(true));
        }
        if !s.is_empty() {
            doc.insert("service", Item::Table(s));
        }
        if let Some(h) = &self.health {
            let mut t = Table::new();
            t.insert("cmd", strings(&h.cmd));
            for (key, v) in
                [("interval", &h.interval), ("timeout", &h.timeout), ("start_period", &h.start_period)]
            {
                if let Some(v) = v {
                    t.insert(key, value(v.as_str()));
                }
            }
            if let Some(r) = h.retries {
                t.insert("retries", value(r));
            }
            doc.insert("health", Item::Table(t));
        }
        if let Some(d) = &self.deploy {
            let mut t = Table::new();
            if let Some(r) = d.replicas {
                t.insert("replicas", value(r));
            }
            if !d.constraints.is_empty() {
                t.insert("constraints", strings(&d.constraints));
            }
            if let Some(m) = d.max_replicas_per_node {
                t.insert("max_replicas_per_node", value(m));
            }
            // An empty [deploy] still means "run as a Swarm service".
            t.set_implicit(false);
            doc.insert("deploy", Item::Table(t));
        }
        doc.to_string()
    }

    /// The key of the generated file at 1-based `line` (`container.ports`), to find its origin.
    pub fn key_at_line(text: &str, line: usize) -> Option<String> {
        let mut table = String::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if let Some(t) = l.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                table = t.to_owned();
            }
            if i + 1 == line {
                let key = l.split('=').next()?.trim();
                if key.starts_with('[') {
                    return Some(table);
                }
                return Some(if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_draft_is_a_valid_unit() {
        let d = Draft {
            description: Some("Imported".into()),
            image: "postgres".into(),
            version: "16.2".into(),
            entrypoint: Some(vec![]),
            args: vec!["-c".into(), "max_connections=50".into()],
            env: [("POSTGRES_USER".to_string(), "app".to_string())].into(),
            volumes: vec!["app_db:/var/lib/postgresql/data".into()],
            ports: vec!["5432:5432".into()],
            secrets: vec!["db-password".into()],
            restart: Some("always"),
            enabled: true,
            health: Some(Health { cmd: vec!["pg_isready".into()], retries: Some(5), ..Default::default() }),
            deploy: Some(Deploy::default()),
            ..Default::default()
        };
        let text = d.to_toml();
        let unit =
            crate::unit::parse("app-db", "app-db.toml", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(unit.entrypoint, Some(vec![]));
        assert_eq!(unit.deploy.map(|d| d.replicas), Some(1));
        assert_eq!(
            Draft::key_at_line(
                &text,
                text.lines().position(|l| l.starts_with("ports")).expect("test input") + 1
            )
            .as_deref(),
            Some("container.ports")
        );
    }
}
