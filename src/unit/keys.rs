//! The keys a unit file may have, table by table: what `validate` reports every unknown key
//! against, and what `set` accepts. A test checks the lists against the serde types of `raw`.

use super::validate::closest;

/// The top level: one key and the tables.
pub const TOP: &[&str] = &["description", "container", "service", "health", "deploy", "update"];
pub const CONTAINER: &[&str] = &[
    "image",
    "version",
    "digest",
    "entrypoint",
    "args",
    "env",
    "devices",
    "volumes",
    "ports",
    "user",
    "workdir",
    "read_only",
    "init",
    "privileged",
    "no_new_privileges",
    "capabilities",
    "network",
    "memory",
    "cpus",
    "secrets",
    "env_secrets",
];
pub const SERVICE: &[&str] = &[
    "restart",
    "restart_sec",
    "stop_timeout",
    "log_rate_limit",
    "after",
    "requires",
    "enabled",
    "protected",
];
pub const HEALTH: &[&str] = &["cmd", "interval", "timeout", "retries", "start_period"];
pub const DEPLOY: &[&str] = &[
    "replicas",
    "constraints",
    "max_replicas_per_node",
    "update_parallelism",
    "update_delay",
    "update_order",
];
pub const UPDATE: &[&str] = &["policy", "track", "soak", "schedule", "auto"];

/// Keys whose value is a table of free-form keys (environment variables).
const MAPS: &[&str] = &["container.env", "container.env_secrets"];

/// Keys whose values are strings: `container.version=1.5` means the tag "1.5", not a number.
const STRINGS: &[&str] = &[
    "description",
    "container.image",
    "container.version",
    "container.digest",
    "container.user",
    "container.workdir",
    "container.network",
    "container.memory",
    "service.restart",
    "service.restart_sec",
    "service.stop_timeout",
    "service.log_rate_limit",
    "health.interval",
    "health.timeout",
    "health.start_period",
    "deploy.update_delay",
    "deploy.update_order",
    "update.policy",
    "update.track",
    "update.soak",
    "update.schedule",
];

/// The keys of a table, `None` for a name that is not a table.
pub fn of_table(table: &str) -> Option<&'static [&'static str]> {
    match table {
        "container" => Some(CONTAINER),
        "service" => Some(SERVICE),
        "health" => Some(HEALTH),
        "deploy" => Some(DEPLOY),
        "update" => Some(UPDATE),
        _ => None,
    }
}

/// Whether the value of the key at `path` is always a string (environment values included).
pub fn takes_string(path: &[&str]) -> bool {
    let joined = path.join(".");
    STRINGS.contains(&joined.as_str())
        || path.split_last().is_some_and(|(_, table)| MAPS.contains(&table.join(".").as_str()))
}

/// Checks that `path` (`container.env.TZ`, `service.restart`, `health`) names a key or a table a
/// unit file may have, with a did-you-mean hint when it does not.
pub fn check(path: &[&str]) -> Result<(), String> {
    let key = path.join(".");
    let unknown = |word: &str, known: &[&str], label: String| {
        let hint = match closest(word, known) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("known keys{label}: {}", known.join(", ")),
        };
        Err(format!("unknown key `{key}`: {hint}"))
    };
    let Some((first, rest)) = path.split_first() else {
        return Err("the key is empty".into());
    };
    if !TOP.contains(first) {
        return unknown(first, TOP, String::new());
    }
    let Some((second, rest)) = rest.split_first() else { return Ok(()) };
    let Some(known) = of_table(first) else {
        return Err(format!("`{first}` in `{key}` is not a table"));
    };
    if !known.contains(second) {
        return unknown(second, known, format!(" in [{first}]"));
    }
    match rest {
        [] => Ok(()),
        [_] if MAPS.contains(&format!("{first}.{second}").as_str()) => Ok(()),
        _ => Err(format!("`{first}.{second}` in `{key}` is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's list of expected fields, as the error of an unknown key in `table` gives it.
    fn serde_keys(table: &str) -> Vec<String> {
        let text = if table.is_empty() { "zzz = 1\n".to_owned() } else { format!("[{table}]\nzzz = 1\n") };
        let e = toml::from_str::<super::super::raw::RawUnit>(&text).expect_err("an unknown key");
        let message = e.message().to_owned();
        assert!(message.starts_with("unknown field"), "{message}");
        message.split('`').skip(1).step_by(2).skip(1).map(str::to_owned).collect()
    }

    #[test]
    fn the_lists_are_the_raw_types_fields() {
        assert_eq!(serde_keys(""), TOP);
        for table in ["container", "service", "health", "deploy", "update"] {
            assert_eq!(serde_keys(table), of_table(table).expect("a table"), "[{table}]");
        }
    }

    #[test]
    fn keys_are_checked_with_a_hint() {
        for ok in
            ["description", "container", "container.env", "container.env.TZ", "service.restart", "deploy"]
        {
            let path: Vec<&str> = ok.split('.').collect();
            assert_eq!(check(&path), Ok(()), "{ok}");
        }
        let err = |k: &str| check(&k.split('.').collect::<Vec<_>>()).expect_err(k);
        assert!(err("container.imgae").contains("did you mean `image`?"), "{}", err("container.imgae"));
        assert!(err("servce.restart").contains("did you mean `service`?"));
        assert!(err("container.image.x").contains("is not a table"));
        assert!(err("description.x").contains("is not a table"));
        assert!(err("container.env.A.B").contains("is not a table"));
        assert!(err("container.frobnicate").contains("known keys in [container]: image,"));
        assert!(takes_string(&["container", "env", "B"]));
        assert!(takes_string(&["container", "version"]));
        assert!(!takes_string(&["container", "init"]));
        assert!(!takes_string(&["container", "env"]));
    }
}
