//! What a viewer reads of unit files: the values of credential-like environment variables
//! redacted (`unit::redact`), wherever unit text reaches an answer (file, detail, revisions,
//! diffs, errors in the unit list and the event stream). `policy::reads_plain_values` decides who
//! reads files as they are written.

use super::Caller;
use crate::daemon::{Daemon, UnitView};
use crate::policy;
use crate::unit::{self, UnitName};

/// `text` as `caller` may read it.
pub(super) fn text(caller: &Caller, text: String) -> String {
    if policy::reads_plain_values(caller.role) {
        text
    } else {
        unit::redact::redact(&text)
    }
}

/// The unit list entries as `caller` may read them: a unit file's errors quote its lines, so a
/// viewer gets the errors of the redacted file instead.
pub(super) fn views(d: &Daemon, caller: &Caller, mut views: Vec<UnitView>) -> Vec<UnitView> {
    if !policy::reads_plain_values(caller.role) {
        for v in views.iter_mut().filter(|v| v.error.is_some()) {
            v.error = Some(error(d, &v.name).unwrap_or_else(|| v.error.take().unwrap_or_default()));
        }
    }
    views
}

/// The errors of unit `name`'s redacted file, when redaction changes it.
fn error(d: &Daemon, name: &str) -> Option<String> {
    let name = UnitName::new(name).ok()?;
    crate::daemon::listing::viewer_error(&name, &d.definition(&name)?)
}
