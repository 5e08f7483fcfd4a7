//! `containerctl edit NAME [--restart]`: edit a unit's file the way `systemctl edit` and `visudo` do.
//!
//! The text goes to a private temporary copy (mode 0600 in $TMPDIR) opened in $VISUAL, $EDITOR,
//! `editor` or `vi`. An unchanged or empty copy changes nothing. Otherwise the daemon validates it,
//! checks the policy and writes it atomically; a refused text is shown with every diagnostic and,
//! on a terminal, the user may edit their own text again. A text that was not saved is never lost:
//! its temporary copy is kept and its path printed.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{term, ui, Ctx, Error};
use crate::client::{ApiError, ClientError, Job};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Restart the unit after saving if it is active, without asking.
    #[arg(long)]
    pub restart: bool,
}

/// The temporary copy; removed on drop unless kept.
struct TempCopy {
    path: PathBuf,
    keep: bool,
}

impl TempCopy {
    fn create(name: &str, text: &str) -> Result<TempCopy, Error> {
        let dir = std::env::var_os("TMPDIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut last_err = None;
        for attempt in 0..64u128 {
            let tag = (seed ^ (u128::from(std::process::id()) << 32))
                .wrapping_add(attempt.wrapping_mul(0x9e37_79b9));
            let path = dir.join(format!("containerctl-{name}-{:08x}.toml", tag & 0xffff_ffff));
            match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(mut f) => {
                    let copy = TempCopy { path, keep: false };
                    f.write_all(text.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| Error::io(format!("cannot write {}", copy.path.display()), e))?;
                    return Ok(copy);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => {
                    return Err(Error::io(format!("cannot create a temporary file in {}", dir.display()), e))
                }
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(Error::io(format!("cannot create a temporary file in {}", dir.display()), e))
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Runs the user's editor on `path` and waits for it.
fn run_editor(path: &Path) -> Result<(), Error> {
    let configured =
        ["VISUAL", "EDITOR"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    let (what, status) = match configured {
        // Through the shell, as git does, so that "code --wait" or "emacs -nw" work.
        Some(editor) => {
            let status =
                Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(path).status();
            (editor, status.map_err(|e| Error::io("cannot run sh for the editor", e))?)
        }
        None => {
            let mut found = None;
            for candidate in ["editor", "vi"] {
                match Command::new(candidate).arg(path).status() {
                    Ok(status) => {
                        found = Some((candidate.to_owned(), status));
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(format!("cannot run {candidate}"), e)),
                }
            }
            found.ok_or_else(|| Error::Failed("no editor found: set $EDITOR (or $VISUAL)".into()))?
        }
    };
    if status.success() {
        Ok(())
    } else {
        let how = status
            .code()
            .map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited with status {c}"));
        Err(Error::Failed(format!("editor `{what}` {how}; nothing was changed")))
    }
}

/// Refusals the user can fix by editing: invalid text, or a policy rule about the content (any rule
/// but `roles`, which refuses the caller whatever the text).
fn editable(api: &ApiError) -> bool {
    api.status == 422 || (api.status == 403 && api.violations.iter().any(|v| v.rule != "roles"))
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let name = args.name.as_str();
    let original = ctx.client.file(name)?;
    let mut copy = TempCopy::create(name, &original.text)?;
    loop {
        if let Err(e) = run_editor(&copy.path) {
            let edited =
                fs::read_to_string(&copy.path).is_ok_and(|t| t != original.text && !t.trim().is_empty());
            if edited {
                copy.keep = true;
                term::report(&e, None, ctx.term.err);
                ctx.term.note(&format!("{name}: your text is kept in {}", copy.path.display()));
                return Err(Error::Reported(e.exit_code()));
            }
            return Err(e);
        }
        let text = fs::read_to_string(&copy.path)
            .map_err(|e| Error::io(format!("cannot read {}", copy.path.display()), e))?;
        if text.trim().is_empty() || text == original.text {
            return ctx.term.println(&format!("{name}: no change"));
        }
        let err = match ctx.client.put_file(name, &text, args.restart) {
            Ok(applied) => {
                ctx.term.println(&super::ui::describe_applied(name, &applied, args.restart))?;
                super::note_warnings(ctx, &applied);
                if applied.changed && !args.restart && !applied.restarted {
                    return offer_restart(name, ctx, ui::only_enabled_differs(&original.text, &text));
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let error = Error::Client(name_the_copy(err, &copy.path));
        term::report(&error, Some(&text), ctx.term.err);
        let fixable = matches!(&error, Error::Client(ClientError::Api(api)) if editable(api));
        copy.keep = true;
        if fixable && ctx.term.interactive && ctx.term.ask("edit again?", true)? {
            copy.keep = false;
            continue;
        }
        ctx.term.note(&format!("{name}: nothing was changed; your text is kept in {}", copy.path.display()));
        return Err(Error::Reported(error.exit_code()));
    }
}

/// The daemon's diagnostics and policy locations name the unit file, but the refused text is in
/// the temporary copy (and stays there): name that, so that the positions lead to the text.
fn name_the_copy(mut err: ClientError, copy: &Path) -> ClientError {
    if let ClientError::Api(api) = &mut err {
        let path = copy.display().to_string();
        for d in &mut api.diagnostics {
            d.file = Some(path.clone());
        }
        api.rendered.clear();
        for v in &mut api.violations {
            let Some(at) = v.location.as_deref() else { continue };
            let mut parts = at.rsplitn(3, ':');
            if let (Some(col), Some(line), Some(_)) = (parts.next(), parts.next(), parts.next()) {
                v.location = Some(format!("{path}:{line}:{col}"));
            }
        }
    }
    err
}

/// After a save without --restart: on a terminal, offer to restart a unit that is running.
/// Not after a change of `service.enabled` alone, which changes nothing in what runs.
fn offer_restart(name: &str, ctx: &Ctx, only_enabled: bool) -> Result<(), Error> {
    if !ctx.term.interactive || only_enabled {
        super::note_next_start(ctx, name, only_enabled);
        return Ok(());
    }
    let state = ctx.client.unit(name).ok().map(|d| d.unit.active_state);
    let Some(hint) = ui::next_start_note(name, state.as_deref(), false) else {
        return Ok(());
    };
    if ctx.term.ask(&format!("restart containerctl@{name}.service now?"), false)? {
        if let Err(e) = ctx.client.job(name, Job::Restart) {
            let err = Error::Client(e);
            term::report(&err, None, ctx.term.err);
            ctx.term.note(&format!(
                "see `containerctl status {name}` and `containerctl logs {name}` for details"
            ));
            return Err(Error::Reported(err.exit_code()));
        }
        ctx.term.println(&format!("{name}: restarted containerctl@{name}.service"))?;
    } else {
        ctx.term.note(&hint);
    }
    Ok(())
}
