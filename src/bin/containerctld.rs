//! containerctld: the containerctl daemon. See containerctld(8) and ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::prelude::*;

fn init_logging() {
    // The journal when systemd runs us, stderr otherwise; a journal that cannot be reached is
    // never fatal.
    let journald = std::env::var_os("JOURNAL_STREAM").and_then(|_| tracing_journald::layer().ok());
    let registry = tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
    match journald {
        Some(layer) => registry.with(layer.with_syslog_identifier("containerctld".into())).init(),
        None => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init(),
    }
}

fn main() -> ExitCode {
    let mut config = PathBuf::from(containerctl::config::DEFAULT_PATH);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(p) => config = PathBuf::from(p),
                None => {
                    eprintln!("containerctld: --config needs a path");
                    return ExitCode::from(2);
                }
            },
            "--help" | "-h" => {
                println!("usage: containerctld [--config PATH] [--version]\nThe containerctl daemon; see containerctld(8).");
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("containerctld {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("containerctld: unknown argument `{other}`\nusage: containerctld [--config PATH] [--version]");
                return ExitCode::from(2);
            }
        }
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("containerctld: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(containerctl::daemon::run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("containerctld: {e}");
            ExitCode::FAILURE
        }
    }
}
