//! The unit file as written: TOML deserialised with positions, not yet checked.
//!
//! Every field is optional here so that a missing required key is reported by the validator
//! with a position and a hint, instead of by serde with neither.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUnit {
    pub description: Option<S<String>>,
    pub container: Option<S<RawContainer>>,
    pub service: Option<S<RawService>>,
    pub health: Option<S<RawHealth>>,
    pub deploy: Option<S<RawDeploy>>,
    pub update: Option<S<RawUpdate>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContainer {
    pub image: Option<S<String>>,
    pub version: Option<S<String>>,
    pub digest: Option<S<String>>,
    pub entrypoint: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub args: Vec<S<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, S<String>>,
    pub devices: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub volumes: Vec<S<String>>,
    #[serde(default)]
    pub ports: Vec<S<String>>,
    pub user: Option<S<String>>,
    pub workdir: Option<S<String>>,
    pub read_only: Option<S<bool>>,
    pub init: Option<S<bool>>,
    pub privileged: Option<S<bool>>,
    pub no_new_privileges: Option<S<bool>>,
    pub capabilities: Option<S<Vec<S<String>>>>,
    pub network: Option<S<String>>,
    pub memory: Option<S<SizeValue>>,
    pub cpus: Option<S<NumberValue>>,
    #[serde(default)]
    pub secrets: Vec<S<String>>,
    #[serde(default)]
    pub env_secrets: BTreeMap<String, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub restart: Option<S<String>>,
    pub restart_sec: Option<S<DurationValue>>,
    pub stop_timeout: Option<S<DurationValue>>,
    pub log_rate_limit: Option<S<String>>,
    #[serde(default)]
    pub after: Vec<S<String>>,
    #[serde(default)]
    pub requires: Vec<S<String>>,
    pub enabled: Option<S<bool>>,
    pub protected: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub cmd: Option<S<Vec<String>>>,
    pub interval: Option<S<DurationValue>>,
    pub timeout: Option<S<DurationValue>>,
    pub retries: Option<S<i64>>,
    pub start_period: Option<S<DurationValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    pub replicas: Option<S<i64>>,
    #[serde(default)]
    pub constraints: Vec<S<String>>,
    pub max_replicas_per_node: Option<S<i64>>,
    pub update_parallelism: Option<S<i64>>,
    pub update_delay: Option<S<DurationValue>>,
    pub update_order: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    pub policy: Option<S<String>>,
    pub track: Option<S<String>>,
    pub soak: Option<S<DurationValue>>,
    pub schedule: Option<S<String>>,
    pub auto: Option<S<bool>>,
}

/// A duration as a string (`"2s"`) or a number of seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    Text(String),
    Seconds(f64),
}

/// A size as a string (`"512M"`) or a number of bytes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Text(String),
    Bytes(i64),
}

/// A number written as a number or a string (`cpus = 1.5` or `cpus = "1.5"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NumberValue {
    Text(String),
    Number(f64),
}
