//! systemd as seen on the bus: the names of its service, objects and interfaces, and the zbus
//! proxies of its Manager object and of a unit object's properties. Declarations only; the calls
//! are made by the sibling modules.

use std::collections::HashMap;

use zbus::proxy;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

pub(super) const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
pub(super) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub(super) const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
pub(super) const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
pub(super) const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
pub(super) const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub(super) trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
    fn list_units_by_patterns(&self, states: &[&str], patterns: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: ObjectPath<'_>, unit: &str, result: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unit_new(&self, id: &str, unit: ObjectPath<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unit_removed(&self, id: &str, unit: ObjectPath<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
}

/// The Unit and Service interfaces are read whole, one `GetAll` each, through the standard
/// properties interface of the unit's object; a proxy of their own would add nothing.
#[proxy(interface = "org.freedesktop.DBus.Properties", default_service = "org.freedesktop.systemd1")]
pub(super) trait UnitProperties {
    fn get_all(&self, interface: &str) -> zbus::Result<Properties>;
}

/// `ListUnitsByPatterns` rows: name, description, load, active and sub state, following, unit
/// path, job id, job type, job path.
type ListedUnit =
    (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

pub(super) type Properties = HashMap<String, OwnedValue>;
