//! What a Swarm rolling update looks like from its service and tasks (pure): the phase Swarm says
//! the update is in, and each node's tasks as one progress line, so that `containerctl update`
//! of a `[deploy]` unit shows the update go node by node.

use std::collections::{BTreeMap, HashMap, HashSet};

use bollard::models::{ServiceUpdateStatusStateEnum, Task, TaskState};

/// Where Swarm's update of a service is, from its `UpdateStatus.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Replacing tasks with the new spec.
    Updating,
    /// Every task runs the new spec and stayed up for the monitor period.
    Completed,
    /// A task failed: Swarm goes back to the previous spec.
    RollingBack,
    /// The previous spec runs again.
    RolledBack,
    /// The update stopped halfway (failure_action pause, or a `docker service update` paused it).
    Paused,
    /// The rollback itself failed and stopped halfway.
    RollbackPaused,
}

impl Phase {
    pub fn of(state: ServiceUpdateStatusStateEnum) -> Option<Phase> {
        match state {
            ServiceUpdateStatusStateEnum::EMPTY => None,
            ServiceUpdateStatusStateEnum::UPDATING => Some(Phase::Updating),
            ServiceUpdateStatusStateEnum::COMPLETED => Some(Phase::Completed),
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => Some(Phase::RollingBack),
            ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => Some(Phase::RolledBack),
            ServiceUpdateStatusStateEnum::PAUSED => Some(Phase::Paused),
            ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => Some(Phase::RollbackPaused),
        }
    }

    /// Whether Swarm is done with the update, one way or the other.
    pub fn is_final(self) -> bool {
        !matches!(self, Phase::Updating | Phase::RollingBack)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Updating => "updating",
            Phase::Completed => "completed",
            Phase::RollingBack => "rolling back",
            Phase::RolledBack => "rolled back",
            Phase::Paused => "paused",
            Phase::RollbackPaused => "rollback paused",
        }
    }
}

/// The tag of an image reference: `reg:5002/app:1.2@sha256:…` → `1.2`; `latest` without one.
pub fn version_of(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once(':').map_or("latest", |(_, tag)| tag)
}

/// The digest of an image reference (`…@sha256:…`), if it has one.
pub fn digest_of(image: &str) -> Option<&str> {
    image.split_once('@').map(|(_, d)| d)
}

fn task_image(t: &Task) -> Option<&str> {
    t.spec.as_ref()?.container_spec.as_ref()?.image.as_deref()
}

fn task_state(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

fn failed(t: &Task) -> bool {
    matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED))
}

/// Each node's tasks, as `HOST: STATE VERSION[, STATE VERSION]` joined by `; `, hosts sorted.
/// Shown are the tasks Swarm wants running, the ones still stopping, and the failures of this
/// update (tasks not in `known`, the tasks there were before it began). `nodes` maps node IDs to
/// host names.
pub fn node_line(tasks: &[Task], nodes: &HashMap<String, String>, known: &HashSet<String>) -> String {
    let mut by_node: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for t in tasks {
        let state = task_state(t);
        let wanted = t.desired_state == Some(TaskState::RUNNING);
        let stopping = !wanted && state.is_some_and(|s| s <= TaskState::RUNNING);
        let new_failure = failed(t) && t.id.as_ref().is_some_and(|id| !known.contains(id));
        if !(wanted || stopping || new_failure) {
            continue;
        }
        let node = t.node_id.as_deref().unwrap_or_default();
        let host = nodes.get(node).cloned().unwrap_or_else(|| {
            if node.is_empty() {
                "unassigned".into()
            } else {
                node.chars().take(12).collect()
            }
        });
        let state = match state {
            Some(TaskState::RUNNING) if stopping => "stopping".to_owned(),
            Some(s) => s.to_string(),
            None => "new".to_owned(),
        };
        let entry = format!("{state} {}", task_image(t).map_or("?", version_of));
        by_node.entry(host).or_default().push((t.slot.unwrap_or(0), entry));
    }
    by_node
        .into_iter()
        .map(|(host, mut entries)| {
            entries.sort();
            let states: Vec<String> = entries.into_iter().map(|(_, e)| e).collect();
            format!("{host}: {}", states.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The failure of this update that made Swarm roll back: the most recent failed task that was
/// not there before (`known`), as `(task ID, "task.SLOT on HOST: ERROR")`.
pub fn failing_task(
    tasks: &[Task],
    nodes: &HashMap<String, String>,
    known: &HashSet<String>,
) -> Option<(String, String)> {
    let t = tasks
        .iter()
        .filter(|t| failed(t) && t.id.as_ref().is_some_and(|id| !known.contains(id)))
        .max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0))?;
    let s = t.status.as_ref()?;
    let what = s.err.as_deref().filter(|e| !e.is_empty()).or(s.message.as_deref()).unwrap_or("failed");
    let slot = t.slot.map(|s| format!(".{s}")).unwrap_or_default();
    let host = t
        .node_id
        .as_ref()
        .map(|n| nodes.get(n).cloned().unwrap_or_else(|| n.chars().take(12).collect()))
        .map(|h| format!(" on {h}"))
        .unwrap_or_default();
    Some((t.id.clone()?, format!("task{slot}{host}: {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ObjectVersion, TaskSpec, TaskSpecContainerSpec, TaskStatus};

    fn task(id: &str, node: &str, slot: i64, desired: TaskState, state: TaskState, image: &str) -> Task {
        Task {
            id: Some(id.into()),
            version: Some(ObjectVersion { index: Some(slot as u64) }),
            slot: Some(slot),
            node_id: Some(node.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus { state: Some(state), ..Default::default() }),
            spec: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn versions_and_digests_come_from_the_reference() {
        assert_eq!(version_of("10.0.0.1:5002/ctl/app:2.0.1@sha256:ab"), "2.0.1");
        assert_eq!(version_of("10.0.0.1:5002/ctl/app"), "latest");
        assert_eq!(version_of("app:1"), "1");
        assert_eq!(digest_of("10.0.0.1:5002/app:1@sha256:ab"), Some("sha256:ab"));
        assert_eq!(digest_of("10.0.0.1:5002/app:1"), None);
    }

    #[test]
    fn phases_say_when_swarm_is_done() {
        assert_eq!(Phase::of(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED), Some(Phase::RolledBack));
        assert_eq!(Phase::of(ServiceUpdateStatusStateEnum::EMPTY), None);
        assert!(!Phase::Updating.is_final() && !Phase::RollingBack.is_final());
        assert!(Phase::Completed.is_final() && Phase::RollbackPaused.is_final());
    }

    #[test]
    fn each_node_shows_its_tasks_and_this_updates_failures() {
        let nodes = HashMap::from([("n1".to_owned(), "c1".to_owned()), ("n2".to_owned(), "c2".to_owned())]);
        let known = HashSet::from(["old-fail".to_owned(), "a".to_owned(), "b".to_owned()]);
        let tasks = [
            task("a", "n1", 1, TaskState::RUNNING, TaskState::RUNNING, "r/app:2@sha256:x"),
            task("b", "n2", 2, TaskState::SHUTDOWN, TaskState::RUNNING, "r/app:1"),
            task("c", "n2", 2, TaskState::RUNNING, TaskState::PREPARING, "r/app:2@sha256:x"),
            task("old-fail", "n2", 3, TaskState::SHUTDOWN, TaskState::FAILED, "r/app:0"),
            task("gone", "n1", 4, TaskState::SHUTDOWN, TaskState::SHUTDOWN, "r/app:1"),
            task("new-fail", "n9abcdefghijklmn", 3, TaskState::SHUTDOWN, TaskState::FAILED, "r/app:3"),
        ];
        assert_eq!(
            node_line(&tasks, &nodes, &known),
            "c1: running 2; c2: preparing 2, stopping 1; n9abcdefghij: failed 3"
        );
        let (id, why) = failing_task(&tasks, &nodes, &known).expect("a failure");
        assert_eq!((id.as_str(), why.as_str()), ("new-fail", "task.3 on n9abcdefghij: failed"));
        assert_eq!(
            failing_task(&tasks[..4], &nodes, &known),
            None,
            "the failure before the update is not it"
        );
    }
}
