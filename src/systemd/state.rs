//! Reading a unit's state: [`UnitState`], the `GetAll` reads of the Unit and Service interfaces it
//! is built from, and their tolerant conversion (a missing or ill-typed property keeps its
//! default, since what systemd sends differs between versions).

use futures_util::StreamExt;
use serde::Serialize;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{ObjectPath, Value};

use super::bus::{Properties, UnitPropertiesProxy, SERVICE_INTERFACE, UNIT_INTERFACE};
use super::names::{instance_of, is_container_unit, UNIT_PATTERN};
use super::{Systemd, SystemdError};

/// Snapshot of one container unit as systemd reports it. Timestamps are CLOCK_REALTIME
/// microseconds, 0 when the event never happened since the unit was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnitState {
    /// Full unit name, `containerctl@NAME.service`.
    pub unit: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// The service's `Result`: "success", "exit-code", "signal", "timeout", "watchdog", ...
    pub result: String,
    pub n_restarts: u32,
    pub exec_main_status: i32,
    /// `si_code` of the main process's end: 1 exited, 2 killed, 3 dumped core, 0 never ended.
    pub exec_main_code: i32,
    pub main_pid: u32,
    pub status_text: String,
    pub active_enter_us: u64,
    pub inactive_enter_us: u64,
    pub state_change_us: u64,
    /// systemd's InvocationID of the current (or last) run, in hex; empty before the first.
    pub invocation_id: String,
    /// The service's RestartUSec=: how long after its end systemd restarts it (auto-restart).
    #[serde(skip)]
    pub restart_us: u64,
}

impl UnitState {
    /// The NAME of `containerctl@NAME.service`.
    pub fn instance(&self) -> Option<&str> {
        instance_of(&self.unit)
    }

    /// False for a unit systemd knows nothing about: no unit file and nothing running.
    pub fn exists(&self) -> bool {
        self.load_state != "not-found" || self.active_state != "inactive"
    }
}

/// Unit state reads in flight at once (two bus calls each), well below the bus's limit of pending
/// replies per connection.
const MAX_PENDING_READS: usize = 32;

impl Systemd {
    /// The state of `unit`. Loads the unit if systemd had not (a unit without a file comes back
    /// with load_state "not-found", see [`UnitState::exists`]); an unreferenced inactive unit is
    /// unloaded again soon after, with UnitNew and UnitRemoved signals.
    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let action = format!("read the state of {unit}");
        let path =
            self.manager.load_unit(unit).await.map_err(|e| SystemdError::from_bus(&action, Some(unit), e))?;
        self.state_at(unit, &path).await
    }

    /// Every container unit systemd has loaded, with its state, sorted by name. A unit that exists
    /// only as a generator drop-in and was never started nor enabled is not loaded, so not listed.
    pub async fn list(&self) -> Result<Vec<UnitState>, SystemdError> {
        let action = "list the containerctl units";
        let rows = self
            .manager
            .list_units_by_patterns(&[], &[UNIT_PATTERN])
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        // Collected first: a stream over the iterator's closures is not Send for every lifetime.
        let reads: Vec<_> = rows
            .iter()
            .filter(|row| is_container_unit(&row.0))
            .map(|row| self.state_at(&row.0, &row.6))
            .collect();
        // A few at a time: the bus refuses more than 128 replies pending on one connection
        // (dbus-daemon's max_replies_per_connection), and each read has two. All at once, 500
        // units stopped containerctld from starting (LimitsExceeded).
        let results: Vec<_> =
            futures_util::stream::iter(reads).buffer_unordered(MAX_PENDING_READS).collect().await;
        let mut states = Vec::with_capacity(rows.len());
        for result in results {
            match result {
                Ok(state) => states.push(state),
                // Gone between the listing and the read.
                Err(SystemdError::NoSuchUnit { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        states.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(states)
    }

    /// The names of the active units matching `pattern` (a glob, like `foo@*.timer`).
    pub async fn active_units(&self, pattern: &str) -> Result<Vec<String>, SystemdError> {
        let rows = self
            .manager
            .list_units_by_patterns(&["active"], &[pattern])
            .await
            .map_err(|e| SystemdError::from_bus("list units", None, e))?;
        Ok(rows.into_iter().map(|row| row.0).collect())
    }

    async fn state_at(&self, unit: &str, path: &ObjectPath<'_>) -> Result<UnitState, SystemdError> {
        let (unit_props, service_props) = self.read_properties(unit, path).await?;
        Ok(state_from_properties(unit, &unit_props, &service_props))
    }

    /// The Unit and Service properties of `unit` if systemd has it loaded, without loading it.
    pub(super) async fn loaded_properties(
        &self,
        unit: &str,
    ) -> Result<Option<(Properties, Properties)>, SystemdError> {
        let action = format!("read the state of {unit}");
        let path = match self.manager.get_unit(unit).await {
            Ok(path) => path,
            Err(e) => {
                return match SystemdError::from_bus(&action, Some(unit), e) {
                    SystemdError::NoSuchUnit { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        self.read_properties(unit, &path).await.map(Some)
    }

    /// One `GetAll` per interface. On the path of a unit systemd has not loaded, this loads it.
    async fn read_properties(
        &self,
        unit: &str,
        path: &ObjectPath<'_>,
    ) -> Result<(Properties, Properties), SystemdError> {
        let action = format!("read the state of {unit}");
        let err = |e| SystemdError::from_bus(&action, Some(unit), e);
        let props = UnitPropertiesProxy::builder(&self.conn)
            .path(path.to_owned())
            .map_err(err)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        let (unit_props, service_props) =
            futures_util::future::join(props.get_all(UNIT_INTERFACE), props.get_all(SERVICE_INTERFACE)).await;
        Ok((unit_props.map_err(err)?, service_props.map_err(err)?))
    }
}

/// Builds a [`UnitState`] from the `GetAll` maps of the Unit and Service interfaces. Missing or
/// ill-typed properties are left at their defaults; the name is the unit's `Id` when present.
pub(super) fn state_from_properties(
    unit: &str,
    unit_props: &Properties,
    service_props: &Properties,
) -> UnitState {
    apply_properties(UnitState::default(), unit, unit_props, service_props)
}

/// Overwrites the fields of `state` whose properties are present and well-typed.
pub(super) fn apply_properties(
    mut state: UnitState,
    unit: &str,
    unit_props: &Properties,
    service_props: &Properties,
) -> UnitState {
    state.unit = prop_string(unit_props, "Id").filter(|id| !id.is_empty()).unwrap_or_else(|| unit.to_owned());
    let set_string = |field: &mut String, props: &Properties, key: &str| {
        if let Some(value) = prop_string(props, key) {
            *field = value;
        }
    };
    set_string(&mut state.load_state, unit_props, "LoadState");
    set_string(&mut state.active_state, unit_props, "ActiveState");
    set_string(&mut state.sub_state, unit_props, "SubState");
    set_string(&mut state.result, service_props, "Result");
    set_string(&mut state.status_text, service_props, "StatusText");
    if let Some(v) = prop_u64(service_props, "NRestarts").and_then(|v| u32::try_from(v).ok()) {
        state.n_restarts = v;
    }
    if let Some(v) = prop_i64(service_props, "ExecMainStatus").and_then(|v| i32::try_from(v).ok()) {
        state.exec_main_status = v;
    }
    if let Some(v) = prop_i64(service_props, "ExecMainCode").and_then(|v| i32::try_from(v).ok()) {
        state.exec_main_code = v;
    }
    if let Some(v) = prop_u64(service_props, "MainPID").and_then(|v| u32::try_from(v).ok()) {
        state.main_pid = v;
    }
    if let Some(v) = prop_u64(unit_props, "ActiveEnterTimestamp") {
        state.active_enter_us = v;
    }
    if let Some(v) = prop_u64(unit_props, "InactiveEnterTimestamp") {
        state.inactive_enter_us = v;
    }
    if let Some(v) = prop_u64(unit_props, "StateChangeTimestamp") {
        state.state_change_us = v;
    }
    if let Some(v) = prop_hex(unit_props, "InvocationID") {
        state.invocation_id = v;
    }
    if let Some(v) = prop_u64(service_props, "RestartUSec") {
        state.restart_us = v;
    }
    state
}

fn prop<'a>(props: &'a Properties, key: &str) -> Option<&'a Value<'static>> {
    let mut value: &Value<'static> = props.get(key)?;
    while let Value::Value(inner) = value {
        value = inner;
    }
    Some(value)
}

pub(super) fn prop_string(props: &Properties, key: &str) -> Option<String> {
    match prop(props, key)? {
        Value::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A byte array property (`ay`, like InvocationID) in lowercase hex.
fn prop_hex(props: &Properties, key: &str) -> Option<String> {
    match prop(props, key)? {
        Value::Array(a) => {
            let mut out = String::with_capacity(a.len() * 2);
            for b in a.iter() {
                let Value::U8(b) = b else { return None };
                out.push_str(&format!("{b:02x}"));
            }
            Some(out)
        }
        _ => None,
    }
}

pub(super) fn prop_u64(props: &Properties, key: &str) -> Option<u64> {
    match prop(props, key)? {
        Value::U64(v) => Some(*v),
        Value::U32(v) => Some(u64::from(*v)),
        Value::U16(v) => Some(u64::from(*v)),
        Value::U8(v) => Some(u64::from(*v)),
        Value::I64(v) => u64::try_from(*v).ok(),
        Value::I32(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn prop_i64(props: &Properties, key: &str) -> Option<i64> {
    match prop(props, key)? {
        Value::I64(v) => Some(*v),
        Value::I32(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::U8(v) => Some(i64::from(*v)),
        _ => None,
    }
}
