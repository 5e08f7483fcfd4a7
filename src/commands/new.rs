//! `containerctl new NAME --image IMAGE --version VERSION [-- ARGS...]`: create a unit file.
//! It is neither enabled nor started here unless the defaults say so; edit it with `edit` or `set`.

use super::{Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Image repository without a tag, e.g. registry.example:5002/camera.
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The pinned tag of the image.
    #[arg(long = "version", value_name = "VERSION")]
    pub image_version: String,
    /// Arguments passed to the image's entrypoint (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let name = args.name.as_str();
    let applied = ctx.client.create(name, &args.image, &args.image_version, &args.args)?;
    let path = Some(applied.path)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("/etc/containerctl/units/{name}.toml"));
    let rev = applied.revision.map(|r| format!(" (revision {r})")).unwrap_or_default();
    ctx.term.println(&format!("{name}: created {path}{rev}"))?;
    ctx.term.note(&format!(
        "start it with `containerctl start {name}`; change it with `containerctl edit {name}`"
    ));
    Ok(())
}
