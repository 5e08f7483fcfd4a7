//! `containerctl set NAME [KEY=VALUE...] [--unset KEY...] [--restart]`: a scripted edit that keeps
//! comments and layout. VALUE is read by the daemon as a TOML value (`3`, `true`, `["a", "b"]`)
//! or else as a string; values of string keys (environment values included) are always strings.

use super::{ui, Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// TABLE.KEY=VALUE, e.g. container.version=1.5 or service.restart=always.
    #[arg(value_name = "KEY=VALUE", required_unless_present = "unset")]
    pub assignments: Vec<String>,
    /// Remove these keys (or tables), e.g. --unset container.env.TZ health.
    #[arg(long, value_name = "KEY", num_args = 1..)]
    pub unset: Vec<String>,
    /// Restart the unit afterwards if it is active.
    #[arg(long)]
    pub restart: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    for a in &args.assignments {
        ui::check_assignment(a).map_err(Error::Usage)?;
    }
    for k in &args.unset {
        if k.contains('=') {
            return Err(Error::Usage(format!(
                "`{k}` after --unset is a key, not KEY=VALUE: put assignments before --unset"
            )));
        }
        ui::check_assignment(&format!("{k}=")).map_err(Error::Usage)?;
    }
    let name = args.name.as_str();
    let applied = ctx.client.set(name, &args.assignments, &args.unset, args.restart)?;
    ctx.term.println(&ui::describe_applied(name, &applied, args.restart))?;
    super::note_warnings(ctx, &applied);
    if applied.changed && !args.restart && !applied.restarted {
        super::note_next_start(ctx, name, ui::assigns_enabled_only(&args.assignments));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::client::ApiError;
    use crate::commands::ui::{render_error_details, Style};
    use crate::config::Policy;
    use crate::policy::{self, Role};

    /// What `set` prints when the policy refuses the text it would have written: the daemon
    /// made that text, so the CLI quotes the line the daemon sends with the violation.
    #[test]
    fn a_policy_refusal_quotes_the_line_of_the_text_set_would_write() {
        let file = "/etc/containerctl/units/web.toml";
        let before = "# web\n[container]\nimage = \"a\"\nversion = \"1\"\n";
        let text = crate::daemon::ops::apply_assignments(
            before,
            &["container.ports=[\"8080:80\", \"22:22\"]".into()],
            &[],
        )
        .expect("applies");
        let after = crate::unit::parse("web", file, &text).expect("valid");
        let policy = Policy { file: "/etc/containerctl/containerctl.toml".into(), ..Policy::default() };
        let mut violations =
            policy::check_definition(Role::Operator, &policy, None, &after, &[]).expect_err("refused");
        policy::locate(&mut violations, file, &text);
        // As the daemon answers (api::error) and the client reads it.
        let body = serde_json::json!({"error": {"kind": "forbidden", "message": "refused", "violations": violations}});
        let e = ApiError::from_response(403, body.to_string().as_bytes());
        let out = render_error_details(&e, None, Style::PLAIN);
        assert!(
            out.contains(concat!(
                "    at /etc/containerctl/units/web.toml:5:21 (container.ports[1])\n",
                "      |\n",
                "    5 | ports = [\"8080:80\", \"22:22\"]\n",
                "      |                     ^\n",
            )),
            "{out}"
        );
    }
}
