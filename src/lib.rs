//! containerctl: Docker containers run as supervised systemd units.
//!
//! The library holds everything the binaries share. Pure parts (the unit model, the generator's
//! translation, the Docker spec) do no I/O; the modules that touch files, systemd or Docker say so
//! in their docs. See ARCHITECTURE.md for the map.

pub mod api;
pub mod atomic_file;
pub mod auth;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod db;
pub mod devices;
pub mod diag;
pub mod digest;
pub mod generator;
pub mod import;
pub mod journal;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod port_holder;
pub mod progress;
pub mod runner;
pub mod search;
pub mod secrets;
pub mod serve;
pub mod systemd;
pub mod time;
pub mod transfer;
pub mod unit;
pub mod update;
pub mod webhook;
pub mod wire;
