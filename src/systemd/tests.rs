//! Tests of the systemd module's pure parts: unit names and object paths, job results, property
//! maps, the watcher's merging and resolving of signals, and the classification of bus errors.
//! Nothing here needs a bus.

use zbus::zvariant::{OwnedValue, Value};
use zbus::Message;

use super::bus::{Properties, SERVICE_INTERFACE, UNIT_INTERFACE};
use super::state::{apply_properties, prop_string, state_from_properties};
use super::watch::{plan, resolve_state, Known, Signal, Step};
use super::*;

fn owned(value: Value<'_>) -> OwnedValue {
    value.try_to_owned().expect("values without file descriptors convert")
}

fn props(entries: &[(&str, Value<'_>)]) -> Properties {
    entries.iter().map(|(k, v)| ((*k).to_owned(), owned(v.clone()))).collect()
}

#[test]
fn escapes_unit_names_as_systemd_does() {
    assert_eq!(
        escape_unit_path("containerctl@web-1.service"),
        "/org/freedesktop/systemd1/unit/containerctl_40web_2d1_2eservice"
    );
    // As systemd 252's LoadUnit answered.
    assert_eq!(
        escape_unit_path("containerctl@0a_b.c.service"),
        "/org/freedesktop/systemd1/unit/containerctl_400a_5fb_2ec_2eservice"
    );
    assert_eq!(escape_unit_path("1x2.service"), "/org/freedesktop/systemd1/unit/_31x2_2eservice");
    assert_eq!(escape_unit_path("a_b.c"), "/org/freedesktop/systemd1/unit/a_5fb_2ec");
    assert_eq!(escape_unit_path("1x2"), "/org/freedesktop/systemd1/unit/_31x2");
    assert_eq!(escape_unit_path(""), "/org/freedesktop/systemd1/unit/_");
    assert_eq!(escape_unit_path("é"), "/org/freedesktop/systemd1/unit/_c3_a9");
}

#[test]
fn unescape_inverts_escape() {
    for name in ["containerctl@web-1.service", "containerctl@a_b.c-d.service", "0abc", "é@x", "dbus.socket"]
    {
        assert_eq!(unescape_unit_path(&escape_unit_path(name)).as_deref(), Some(name));
    }
    assert_eq!(unescape_unit_path("/org/freedesktop/systemd1/unit/_").as_deref(), Some(""));
    assert_eq!(
        unescape_unit_path("/org/freedesktop/systemd1/unit/sshd_2eSERVICE").as_deref(),
        Some("sshd.SERVICE")
    );
    assert_eq!(unescape_unit_path("/org/freedesktop/systemd1/unit/a_2E").as_deref(), Some("a."));
}

#[test]
fn unescape_rejects_other_paths_and_bad_escapes() {
    for path in [
        "/org/freedesktop/systemd1",
        "/org/freedesktop/systemd1/unit/",
        "/org/freedesktop/systemd1/job/12",
        "/org/freedesktop/systemd1/unit/a/b",
        "/org/freedesktop/systemd1/unit/abc_4",
        "/org/freedesktop/systemd1/unit/abc_zz",
        "/org/freedesktop/systemd1/unit/_c3",
        "/org/freedesktop/systemd1/unit/_+1",
    ] {
        assert_eq!(unescape_unit_path(path), None, "{path}");
    }
}

#[test]
fn container_unit_names() {
    assert_eq!(unit_name("web"), "containerctl@web.service");
    assert_eq!(instance_of("containerctl@web.service"), Some("web"));
    assert_eq!(instance_of("containerctl@.service"), None);
    assert_eq!(instance_of("containerctld.service"), None);
    assert_eq!(instance_of("containerctl@web.socket"), None);
    assert!(is_container_unit("containerctl@a.b-c.service"));
    assert!(!is_container_unit("docker.service"));
}

#[test]
fn parses_job_results() {
    assert_eq!(JobResult::parse("done"), JobResult::Done);
    assert_eq!(JobResult::parse("failed"), JobResult::Failed);
    assert_eq!(JobResult::parse("canceled"), JobResult::Canceled);
    assert_eq!(JobResult::parse("timeout"), JobResult::Timeout);
    assert_eq!(JobResult::parse("dependency"), JobResult::Dependency);
    assert_eq!(JobResult::parse("skipped"), JobResult::Skipped);
    assert_eq!(JobResult::parse("frozen"), JobResult::Other("frozen".into()));
    let outcome = JobOutcome { job: 7, result: "done".into() };
    assert!(outcome.is_done());
    assert!(!JobOutcome { job: 8, result: "failed".into() }.is_done());
}

#[test]
fn converts_full_property_maps() {
    let unit = props(&[
        ("Id", Value::from("containerctl@web.service")),
        ("LoadState", Value::from("loaded")),
        ("ActiveState", Value::from("active")),
        ("SubState", Value::from("running")),
        ("ActiveEnterTimestamp", Value::U64(1_700_000_000_000_000)),
        ("InactiveEnterTimestamp", Value::U64(0)),
        ("StateChangeTimestamp", Value::U64(1_700_000_000_000_001)),
        ("Description", Value::from("web")),
        ("InvocationID", Value::from(vec![0xabu8, 0x01, 0xff])),
    ]);
    let service = props(&[
        ("Result", Value::from("success")),
        ("NRestarts", Value::U32(2)),
        ("ExecMainStatus", Value::I32(0)),
        ("ExecMainCode", Value::I32(0)),
        ("MainPID", Value::U32(4242)),
        ("StatusText", Value::from("running containerctl-web")),
        ("RestartUSec", Value::U64(100_000)),
    ]);
    let state = state_from_properties("containerctl@web.service", &unit, &service);
    assert_eq!(
        state,
        UnitState {
            unit: "containerctl@web.service".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            n_restarts: 2,
            exec_main_status: 0,
            exec_main_code: 0,
            main_pid: 4242,
            status_text: "running containerctl-web".into(),
            active_enter_us: 1_700_000_000_000_000,
            inactive_enter_us: 0,
            state_change_us: 1_700_000_000_000_001,
            invocation_id: "ab01ff".into(),
            restart_us: 100_000,
        }
    );
    assert_eq!(state.instance(), Some("web"));
    assert!(state.exists());
}

#[test]
fn tolerates_missing_and_ill_typed_properties() {
    let unit = props(&[
        ("ActiveState", Value::U32(3)),
        ("SubState", Value::from("dead")),
        ("ActiveEnterTimestamp", Value::from("yesterday")),
        ("StateChangeTimestamp", Value::Value(Box::new(Value::U64(5)))),
    ]);
    let service = props(&[
        ("NRestarts", Value::U64(u64::MAX)),
        ("ExecMainStatus", Value::I64(-1)),
        ("ExecMainCode", Value::Bool(true)),
        ("MainPID", Value::I32(-4)),
    ]);
    let state = state_from_properties("containerctl@x.service", &unit, &service);
    assert_eq!(
        state,
        UnitState {
            unit: "containerctl@x.service".into(),
            sub_state: "dead".into(),
            exec_main_status: -1,
            state_change_us: 5,
            ..UnitState::default()
        }
    );
    let empty = state_from_properties("containerctl@y.service", &Properties::new(), &Properties::new());
    assert_eq!(empty.unit, "containerctl@y.service");
    assert!(!UnitState { load_state: "not-found".into(), active_state: "inactive".into(), ..empty }.exists());
}

#[test]
fn applies_changed_values_over_a_known_state() {
    let base = UnitState {
        unit: "containerctl@web.service".into(),
        load_state: "loaded".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        main_pid: 10,
        ..UnitState::default()
    };
    let unit = props(&[("ActiveState", Value::from("failed")), ("SubState", Value::from("failed"))]);
    let service = props(&[
        ("Result", Value::from("exit-code")),
        ("ExecMainStatus", Value::I32(3)),
        ("MainPID", Value::U32(0)),
    ]);
    let state = apply_properties(base, "containerctl@web.service", &unit, &service);
    assert_eq!(state.load_state, "loaded");
    assert_eq!(state.active_state, "failed");
    assert_eq!(state.result, "exit-code");
    assert_eq!(state.exec_main_status, 3);
    assert_eq!(state.main_pid, 0);
}

#[test]
fn resolve_prefers_the_read_unless_it_went_back_in_time() {
    let unit = "containerctl@web.service";
    let known = Known {
        state: UnitState {
            unit: unit.into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            main_pid: 10,
            ..UnitState::default()
        },
        changed_mono: 100,
    };
    let signal_unit = props(&[
        ("ActiveState", Value::from("inactive")),
        ("StateChangeTimestampMonotonic", Value::U64(200)),
    ]);
    let signal_service = props(&[("ExecMainCode", Value::I32(2)), ("ExecMainStatus", Value::I32(15))]);

    let fresh = (
        props(&[
            ("LoadState", Value::from("loaded")),
            ("ActiveState", Value::from("inactive")),
            ("StateChangeTimestampMonotonic", Value::U64(200)),
        ]),
        props(&[("ExecMainCode", Value::I32(2)), ("ExecMainStatus", Value::I32(15))]),
    );
    let next = resolve_state(unit, Some(&fresh), &signal_unit, &signal_service, Some(&known));
    assert_eq!(
        (next.state.active_state.as_str(), next.state.main_pid, next.changed_mono),
        ("inactive", 0, 200)
    );

    // Collected and loaded afresh by the read: nothing ever happened to that unit object.
    let reloaded = (
        props(&[("LoadState", Value::from("loaded")), ("ActiveState", Value::from("inactive"))]),
        props(&[("ExecMainCode", Value::I32(0))]),
    );
    let next = resolve_state(unit, Some(&reloaded), &signal_unit, &signal_service, Some(&known));
    assert_eq!(next.state.exec_main_code, 2);
    assert_eq!(next.state.exec_main_status, 15);
    assert_eq!(next.state.active_state, "inactive");
    assert_eq!(next.state.main_pid, 10, "fields the signals did not carry come from the known state");
    assert_eq!(next.changed_mono, 200);

    let next = resolve_state(unit, None, &signal_unit, &signal_service, None);
    assert_eq!(next.state.unit, unit);
    assert_eq!(next.state.load_state, "loaded");
    assert_eq!(next.state.exec_main_status, 15);
    let next = resolve_state(unit, None, &Properties::new(), &signal_service, None);
    assert_eq!((next.state.active_state.as_str(), next.state.sub_state.as_str()), ("inactive", "dead"));
}

fn changed(unit: &str, interface: &str, entries: &[(&str, Value<'_>)]) -> Signal {
    Signal::Changed { unit: unit.into(), interface: interface.into(), props: props(entries) }
}

#[test]
fn plan_merges_changes_until_new_or_removed() {
    let a = "containerctl@a.service";
    let b = "containerctl@b.service";
    let steps = plan(vec![
        changed(a, UNIT_INTERFACE, &[("ActiveState", Value::from("deactivating"))]),
        changed(b, UNIT_INTERFACE, &[]),
        changed(a, SERVICE_INTERFACE, &[("Result", Value::from("success"))]),
        changed(a, UNIT_INTERFACE, &[("ActiveState", Value::from("inactive"))]),
        Signal::Removed(a.into()),
        Signal::New(a.into()),
        changed(a, UNIT_INTERFACE, &[]),
        changed(b, UNIT_INTERFACE, &[]),
        Signal::Reloaded,
        changed(b, UNIT_INTERFACE, &[]),
    ]);
    let summary: Vec<String> = steps
        .iter()
        .map(|step| match step {
            Step::Read { unit, removed, unit_props, service_props, .. } => format!(
                "read {unit} removed={removed} active={:?} result={:?}",
                prop_string(unit_props, "ActiveState"),
                prop_string(service_props, "Result")
            ),
            Step::New(unit) => format!("new {unit}"),
            Step::Removed(unit) => format!("removed {unit}"),
            Step::Reloaded => "reloaded".into(),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "read containerctl@a.service removed=true active=Some(\"inactive\") result=Some(\"success\")",
            "read containerctl@b.service removed=false active=None result=None",
            "removed containerctl@a.service",
            "new containerctl@a.service",
            "read containerctl@a.service removed=false active=None result=None",
            "reloaded",
            "read containerctl@b.service removed=false active=None result=None",
        ]
    );
}

fn empty_message() -> Message {
    Message::method_call("/", "Ping").expect("static names are valid").build(&()).expect("empty body")
}

#[test]
fn bus_errors_are_classified() {
    let method_error = |name: &str| {
        zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from(name.to_owned()).expect("valid error name"),
            Some("detail".into()),
            empty_message(),
        )
    };
    let unit = Some("containerctl@x.service");
    let e = SystemdError::from_bus(
        "start containerctl@x.service",
        unit,
        method_error("org.freedesktop.systemd1.NoSuchUnit"),
    );
    assert!(matches!(&e, SystemdError::NoSuchUnit { unit } if unit == "containerctl@x.service"));
    assert_eq!(e.to_string(), "no such unit containerctl@x.service");
    let missing = zbus::Error::MethodError(
        zbus::names::OwnedErrorName::try_from("org.freedesktop.systemd1.NoSuchUnit".to_owned())
            .expect("valid error name"),
        Some("Unit nosuch.service not found.".into()),
        empty_message(),
    );
    let e = SystemdError::from_bus("start containerctl@x.service", unit, missing);
    assert_eq!(
        e.to_string(),
        "systemd refused to start containerctl@x.service: it requires nosuch.service, which does not exist"
    );
    let e = SystemdError::from_bus(
        "stop containerctl@x.service",
        unit,
        method_error("org.freedesktop.DBus.Error.AccessDenied"),
    );
    assert!(matches!(e, SystemdError::AccessDenied { .. }));
    assert_eq!(
        e.to_string(),
        "systemd denied access to stop containerctl@x.service: detail (containerctld must run as root)"
    );
    let e = SystemdError::from_bus(
        "start containerctl@x.service",
        unit,
        method_error("org.freedesktop.systemd1.UnitMasked"),
    );
    assert!(
        matches!(&e, SystemdError::Refused { error, .. } if error == "org.freedesktop.systemd1.UnitMasked")
    );
    let e = SystemdError::from_bus("start containerctl@x.service", unit, method_error("org.example.Other"));
    assert!(matches!(e, SystemdError::Bus { .. }));
    let io =
        zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
    assert!(SystemdError::from_bus("reload its configuration", None, io).ends_watch());
}
