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
#[derive(Debug)]
pub enum DurationValue {
    Text(String),
    Seconds(f64),
}

/// A size as a string (`"512M"`) or a number of bytes.
#[derive(Debug)]
pub enum SizeValue {
    Text(String),
    Bytes(i64),
}

/// A number written as a number or a string (`cpus = 1.5` or `cpus = "1.5"`).
#[derive(Debug)]
pub enum NumberValue {
    Text(String),
    Number(f64),
}

// These three take a string or a number. Each is read by one visitor, not by serde's untagged
// enums, which buffer the value and try the variants in turn (building an error for each miss):
// every unit at every boot has a few of them. They accept what the untagged enums accepted, and
// a value of another type fails with the type's name in the message, which
// `validate::toml_error` turns into its hint.
macro_rules! string_or_number {
    ($ty:ident, $number:ident: $num:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(stringify!($ty))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::Text(v.to_owned()))
                    }
                    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<$ty, E> {
                        Ok($ty::Text(v))
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$ty, E> {
                        let n = <$num as Number>::from_f64(v);
                        n.map($ty::$number)
                            .ok_or_else(|| E::invalid_type(serde::de::Unexpected::Float(v), &self))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        Ok($ty::$number(<$num as Number>::from_i64(v)))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        let n = <$num as Number>::from_u64(v);
                        n.map($ty::$number)
                            .ok_or_else(|| E::invalid_type(serde::de::Unexpected::Unsigned(v), &self))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// The number of a [`DurationValue`], [`SizeValue`] or [`NumberValue`] from a TOML number, when
/// it can be (serde's own conversions: an integer is a float, a float is no integer).
trait Number: Sized {
    fn from_f64(v: f64) -> Option<Self>;
    fn from_i64(v: i64) -> Self;
    fn from_u64(v: u64) -> Option<Self>;
}

impl Number for f64 {
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
    fn from_i64(v: i64) -> Self {
        v as f64
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
}

impl Number for i64 {
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_i64(v: i64) -> Self {
        v
    }
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok()
    }
}

string_or_number!(DurationValue, Seconds: f64);
string_or_number!(SizeValue, Bytes: i64);
string_or_number!(NumberValue, Number: f64);
