//! `containerctl web login`: a one-time link that logs this browser in as admin.

use serde::Deserialize;

use super::{Ctx, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: WebCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum WebCommand {
    /// Print a login link for the web page; it works once, for 5 minutes.
    Login,
}

#[derive(Deserialize)]
struct Link {
    url: String,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        WebCommand::Login => {
            let link: Link = ctx.client.send(hyper::Method::POST, "/login-link", None::<&()>)?;
            ctx.term.println(&link.url)?;
            eprintln!("open it in a browser on this machine within 5 minutes; it works once");
            Ok(())
        }
    }
}
