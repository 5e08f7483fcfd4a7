//! [`Systemd::watch`]: the live stream of container-unit changes. One task drains the bus, another
//! merges the signals of a burst and re-reads each changed unit, guarding against reads of units
//! systemd unloaded in between (see the module docs of `systemd`).

use std::collections::HashMap;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use zbus::message::Type as MessageType;
use zbus::{MatchRule, Message, MessageStream};

use super::bus::{
    Properties, Reloading, UnitNew, UnitRemoved, MANAGER_INTERFACE, MANAGER_PATH, PROPERTIES_INTERFACE,
    SERVICE_INTERFACE, SYSTEMD_SERVICE, UNIT_INTERFACE,
};
use super::names::{is_container_unit, unescape_unit_path};
use super::state::{apply_properties, prop_u64, state_from_properties, UnitState};
use super::{Systemd, SystemdError};

/// Queue size of the watch stream; it is drained continuously, this only absorbs bursts.
const WATCH_QUEUE: usize = 1024;
/// Capacity of the channel [`Systemd::watch`] returns.
const WATCH_CHANNEL: usize = 256;

/// What [`Systemd::watch`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitChange {
    /// A container unit's properties changed; this is its full state after the change.
    State(UnitState),
    /// systemd loaded a container unit into memory (UnitNew). Says nothing about its state. Do
    /// not answer it with [`Systemd::unit_state`]: its LoadUnit loads an inactive unit that was
    /// already unloaded again, which sends New again, a loop that never ends.
    New(String),
    /// systemd unloaded a container unit (UnitRemoved): an inactive unit nothing refers to, or any
    /// loaded unit during a daemon-reload (which sends Removed and New for each). Not a deletion.
    Removed(String),
    /// A daemon-reload finished; re-read everything with [`Systemd::list`].
    Reloaded,
}

impl Systemd {
    /// Live changes of container units. Call it before [`Systemd::list`] so nothing falls between
    /// the snapshot and the first change. The receiver ends when the bus connection breaks
    /// (reconnect and call both again) and its task ends when the receiver is dropped.
    pub async fn watch(&self) -> Result<mpsc::Receiver<UnitChange>, SystemdError> {
        let action = "watch the containerctl units";
        // One rule over the manager object and the unit objects below it, so that UnitNew,
        // PropertiesChanged and UnitRemoved come through one queue in the order systemd sent them.
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD_SERVICE)
            .and_then(|b| b.path_namespace(MANAGER_PATH))
            .map_err(|e| SystemdError::from_bus(action, None, e))?
            .build();
        let stream = MessageStream::for_match_rule(rule, &self.conn, Some(WATCH_QUEUE))
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        tokio::spawn(drain_watch_stream(stream, signals_tx));
        tokio::spawn(resolve_signals(self.clone(), signals_rx, tx));
        Ok(rx)
    }
}

/// A container-unit signal from the watch stream, before its state is read.
#[derive(Debug, Clone)]
pub(super) enum Signal {
    /// PropertiesChanged of a unit object; `props` are the values it carried.
    Changed {
        unit: String,
        interface: String,
        props: Properties,
    },
    New(String),
    Removed(String),
    Reloaded,
}

/// Turns a message of the watch stream into a [`Signal`] about a container unit, or None.
fn classify_signal(msg: &Message) -> Option<Signal> {
    let header = msg.header();
    let path = header.path()?;
    let interface = header.interface()?;
    let member = header.member()?;
    match (interface.as_str(), member.as_str()) {
        (PROPERTIES_INTERFACE, "PropertiesChanged") => {
            let unit = unescape_unit_path(path.as_str()).filter(|u| is_container_unit(u))?;
            let (changed_interface, props, _invalidated): (String, Properties, Vec<String>) =
                msg.body().deserialize().ok()?;
            if changed_interface != UNIT_INTERFACE && changed_interface != SERVICE_INTERFACE {
                return None;
            }
            Some(Signal::Changed { unit, interface: changed_interface, props })
        }
        (MANAGER_INTERFACE, "UnitNew") if path.as_str() == MANAGER_PATH => {
            let signal = UnitNew::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            is_container_unit(args.id()).then(|| Signal::New((*args.id()).to_owned()))
        }
        (MANAGER_INTERFACE, "UnitRemoved") if path.as_str() == MANAGER_PATH => {
            let signal = UnitRemoved::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            is_container_unit(args.id()).then(|| Signal::Removed((*args.id()).to_owned()))
        }
        (MANAGER_INTERFACE, "Reloading") if path.as_str() == MANAGER_PATH => {
            let signal = Reloading::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            (!*args.active()).then_some(Signal::Reloaded)
        }
        _ => None,
    }
}

/// Reads the bus stream without pause (see the module docs) into an unbounded queue.
async fn drain_watch_stream(mut stream: MessageStream, signals: mpsc::UnboundedSender<Signal>) {
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            () = signals.closed() => return,
        };
        match msg {
            Some(Ok(msg)) => {
                if let Some(signal) = classify_signal(&msg) {
                    if signals.send(signal).is_err() {
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!("systemd signal stream failed: {e}");
                return;
            }
            None => return,
        }
    }
}

/// One step of [`resolve_signals`]' work, after a batch of signals was merged.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Read the unit's state. `removed`: the unit was unloaded after the change, so a read would
    /// load it afresh; build the state from the signals' values instead.
    Read {
        unit: String,
        unit_props: Properties,
        service_props: Properties,
        removed: bool,
    },
    New(String),
    Removed(String),
    Reloaded,
}

/// Merges the signals of a batch: all changes of a unit up to its next New or Removed become one
/// read at the place of the first, with the carried values of later signals winning.
pub(super) fn plan(batch: Vec<Signal>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    // Unit → index in `steps` of its pending Read.
    let mut pending: HashMap<String, usize> = HashMap::new();
    for signal in batch {
        match signal {
            Signal::Changed { unit, interface, props } => {
                let index = match pending.get(&unit) {
                    Some(&index) => index,
                    None => {
                        steps.push(Step::Read {
                            unit: unit.clone(),
                            unit_props: Properties::new(),
                            service_props: Properties::new(),
                            removed: false,
                        });
                        pending.insert(unit, steps.len() - 1);
                        steps.len() - 1
                    }
                };
                if let Some(Step::Read { unit_props, service_props, .. }) = steps.get_mut(index) {
                    let target = if interface == UNIT_INTERFACE { unit_props } else { service_props };
                    target.extend(props);
                }
            }
            Signal::New(unit) => {
                pending.remove(&unit);
                steps.push(Step::New(unit));
            }
            Signal::Removed(unit) => {
                if let Some(index) = pending.remove(&unit) {
                    if let Some(Step::Read { removed, .. }) = steps.get_mut(index) {
                        *removed = true;
                    }
                }
                steps.push(Step::Removed(unit));
            }
            Signal::Reloaded => {
                pending.clear();
                steps.push(Step::Reloaded);
            }
        }
    }
    steps
}

/// What the watcher last delivered for a unit, with the unit's `StateChangeTimestampMonotonic`.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub(super) state: UnitState,
    pub(super) changed_mono: u64,
}

/// Turns signals into [`UnitChange`]s, reading each changed unit's full state.
async fn resolve_signals(
    systemd: Systemd,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    changes: mpsc::Sender<UnitChange>,
) {
    let mut known: HashMap<String, Known> = HashMap::new();
    while let Some(first) = signals.recv().await {
        let mut batch = vec![first];
        while let Ok(signal) = signals.try_recv() {
            batch.push(signal);
        }
        for step in plan(batch) {
            let change = match step {
                Step::Read { unit, unit_props, service_props, removed } => {
                    // GetUnit first: reading a collected unit's path would load it afresh.
                    let read = if removed {
                        None
                    } else {
                        match systemd.loaded_properties(&unit).await {
                            Ok(read) => read,
                            Err(e) if e.ends_watch() => return,
                            Err(e) => {
                                tracing::warn!("{e}");
                                continue;
                            }
                        }
                    };
                    let next =
                        resolve_state(&unit, read.as_ref(), &unit_props, &service_props, known.get(&unit));
                    let unchanged = known.get(&unit).is_some_and(|k| k.state == next.state);
                    let state = next.state.clone();
                    known.insert(unit, next);
                    if unchanged {
                        continue;
                    }
                    UnitChange::State(state)
                }
                Step::New(unit) => UnitChange::New(unit),
                Step::Removed(unit) => {
                    known.remove(&unit);
                    UnitChange::Removed(unit)
                }
                Step::Reloaded => UnitChange::Reloaded,
            };
            if changes.send(change).await.is_err() {
                return;
            }
        }
    }
}

const STATE_CHANGE_MONO: &str = "StateChangeTimestampMonotonic";

/// The state to deliver after a change: the fresh read, unless there is none (the unit was
/// unloaded) or it is older than what the signals or an earlier read showed (the read raced with
/// garbage collection and loaded the unit afresh, forgetting its result and exit status). Then the
/// values the signals carried are applied over the last known state; signals carry every field
/// but `LoadState` and `Id`.
pub(super) fn resolve_state(
    unit: &str,
    read: Option<&(Properties, Properties)>,
    unit_signals: &Properties,
    service_signals: &Properties,
    known: Option<&Known>,
) -> Known {
    let seen_mono =
        known.map_or(0, |k| k.changed_mono).max(prop_u64(unit_signals, STATE_CHANGE_MONO).unwrap_or(0));
    if let Some((unit_props, service_props)) = read {
        let read_mono = prop_u64(unit_props, STATE_CHANGE_MONO).unwrap_or(0);
        if read_mono >= seen_mono {
            return Known {
                state: state_from_properties(unit, unit_props, service_props),
                changed_mono: read_mono,
            };
        }
    }
    let base = known.map(|k| k.state.clone()).unwrap_or_else(|| UnitState {
        // It sent PropertiesChanged, so it was loaded; systemd only unloads inactive units.
        load_state: "loaded".to_owned(),
        active_state: "inactive".to_owned(),
        sub_state: "dead".to_owned(),
        ..UnitState::default()
    });
    Known { state: apply_properties(base, unit, unit_signals, service_signals), changed_mono: seen_mono }
}
