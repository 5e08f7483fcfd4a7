//! The `[deploy]` table, which makes the unit a Docker Swarm service: replicas, placement
//! constraints, and the `[container]` settings a Swarm service cannot honour.

use std::ops::Range;

use super::host::parse_port;
use super::Validator;
use crate::unit::raw::{RawContainer, RawDeploy, S};
use crate::unit::{Deploy, UpdateOrder};

impl Validator<'_> {
    pub(super) fn deploy(&mut self, raw: RawDeploy) -> Option<Deploy> {
        let mut count = |value: Option<S<i64>>, key: &str| match value {
            None => Some(None),
            Some(r) if (1..=i64::from(Deploy::MAX_REPLICAS)).contains(r.get_ref()) => {
                Some(u32::try_from(*r.get_ref()).ok())
            }
            Some(r) => {
                self.error(
                    r.span(),
                    format!("{key} = {} is out of range (1 to {})", r.get_ref(), Deploy::MAX_REPLICAS),
                    None,
                );
                None
            }
        };
        let replicas = count(raw.replicas, "replicas");
        let max_replicas_per_node = count(raw.max_replicas_per_node, "max_replicas_per_node");
        let update_parallelism = count(raw.update_parallelism, "update_parallelism");
        let default = Deploy::default();
        let update_delay = self.duration_max(
            raw.update_delay,
            default.update_delay,
            "update_delay",
            Deploy::MAX_UPDATE_DELAY,
        );
        let update_order = self.one_of(
            raw.update_order.as_ref(),
            "update_order",
            UpdateOrder::NAMES,
            UpdateOrder::parse,
            default.update_order,
            "\"stop-first\" stops a task before its replacement starts, \"start-first\" after",
        );
        let mut constraints = Vec::new();
        let mut ok = true;
        for c in raw.constraints {
            match check_constraint(c.get_ref()) {
                Ok(()) => constraints.push(c.get_ref().trim().to_owned()),
                Err(why) => {
                    self.error(
                        c.span(),
                        format!("constraint `{}` {why}", c.get_ref().escape_debug()),
                        Some(
                            "write KEY==VALUE or KEY!=VALUE with KEY node.id, node.hostname, node.role, \
                             node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME, \
                             like \"node.role==worker\" or \"node.labels.zone==b\"",
                        ),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Deploy {
            replicas: replicas?.unwrap_or(default.replicas),
            constraints,
            max_replicas_per_node: max_replicas_per_node?,
            update_parallelism: update_parallelism?.unwrap_or(default.update_parallelism),
            update_delay: update_delay?,
            update_order: update_order?,
        })
    }

    /// What a Swarm service cannot do, each reported at the key that asks for it.
    pub(super) fn refuse_for_swarm(&mut self, r: SwarmRefusals) {
        const ONE_HOST: &str = "remove [deploy] to run this unit on one host";
        if let Some(span) = r.devices {
            self.error(
                span,
                "Swarm services cannot map host devices",
                Some(&format!("{ONE_HOST}, or remove the devices")),
            );
        }
        if let Some(span) = r.privileged {
            self.error(
                span,
                "Swarm services cannot run in privileged mode",
                Some(&format!("{ONE_HOST}, or remove privileged")),
            );
        }
        if let Some(span) = r.host_network {
            self.error(
                span,
                "Swarm services cannot use the host network",
                Some(&format!(
                    "{ONE_HOST}, or remove network = \"host\" (Swarm publishes ports through its ingress network)"
                )),
            );
        }
        for (span, var) in r.env_secrets {
            self.error(
                span,
                format!("Swarm services get secrets as files only, not as environment variable {var}"),
                Some(&format!(
                    "use secrets = [\"NAME\"] and read /run/secrets/NAME in the container, or {ONE_HOST}"
                )),
            );
        }
        for (span, ip) in r.port_addresses {
            self.error(
                span,
                format!("Swarm publishes ports on every node's addresses and cannot bind one to {ip}"),
                Some(&format!(
                    "write HOST_PORT:CONTAINER_PORT[/PROTOCOL] without the address, or {ONE_HOST}"
                )),
            );
        }
    }
}

/// Positions of `[container]` settings that a unit with `[deploy]` may not use.
#[derive(Default)]
pub(super) struct SwarmRefusals {
    devices: Option<Range<usize>>,
    privileged: Option<Range<usize>>,
    host_network: Option<Range<usize>>,
    port_addresses: Vec<(Range<usize>, String)>,
    /// `env_secrets` entries: a service's environment is in its spec, readable by every manager.
    env_secrets: Vec<(Range<usize>, String)>,
}

impl SwarmRefusals {
    pub(super) fn of(c: &RawContainer) -> Self {
        SwarmRefusals {
            devices: c.devices.as_ref().filter(|d| !d.get_ref().is_empty()).map(S::span),
            privileged: c.privileged.as_ref().filter(|p| *p.get_ref()).map(S::span),
            host_network: c.network.as_ref().filter(|n| n.get_ref() == "host").map(S::span),
            port_addresses: c
                .ports
                .iter()
                .filter_map(|p| Some((p.span(), parse_port(p.get_ref())?.host_ip?)))
                .collect(),
            env_secrets: c.env_secrets.iter().map(|(var, name)| (name.span(), var.clone())).collect(),
        }
    }
}

/// Keys Swarm accepts in placement constraints, besides `node.labels.*` and `engine.labels.*`.
const CONSTRAINT_KEYS: &[&str] =
    &["node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"];

/// Checks the shape `KEY==VALUE` / `KEY!=VALUE` that Swarm's scheduler parses.
fn check_constraint(c: &str) -> Result<(), String> {
    let (key, value) = match (c.split_once("=="), c.split_once("!=")) {
        (Some(eq), None) => eq,
        (None, Some(ne)) => ne,
        _ => return Err("is not KEY==VALUE or KEY!=VALUE".into()),
    };
    let (key, value) = (key.trim(), value.trim());
    let label = ["node.labels.", "engine.labels."]
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    if !label && !CONSTRAINT_KEYS.contains(&key) {
        return Err(format!("has an unknown key `{key}`"));
    }
    let value_ok = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || ":-_. *()?+[]\\^$|/".contains(c));
    if !value_ok {
        return Err("has an empty value or one with characters Swarm does not accept".into());
    }
    if key == "node.role" && value != "manager" && value != "worker" {
        return Err(format!("compares node.role with `{value}`, which is neither manager nor worker"));
    }
    Ok(())
}
