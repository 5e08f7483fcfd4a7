//! The terminal edge of the CLI: writing results to stdout, errors to stderr, and asking questions.
//!
//! Colour is used on a stream only when it is a terminal and `NO_COLOR` is unset or empty
//! (no-color.org); questions are asked only when stdin and stderr are both terminals, so scripts
//! never hang on a prompt.

use std::io::{self, BufRead, IsTerminal, Write};

use super::ui::{self, Color, Style};
use super::Error;

#[derive(Debug, Clone, Copy)]
pub struct Term {
    /// Style for stdout.
    pub out: Style,
    /// Style for stderr.
    pub err: Style,
    pub stdout_tty: bool,
    /// stdin and stderr are terminals: prompts are allowed.
    pub interactive: bool,
}

impl Term {
    pub fn detect() -> Term {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        Term {
            out: Style { color: stdout_tty && !no_color },
            err: Style { color: stderr_tty && !no_color },
            stdout_tty,
            interactive: stderr_tty && io::stdin().is_terminal(),
        }
    }

    /// Writes `text` to stdout as is.
    pub fn print(&self, text: &str) -> Result<(), Error> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(Error::Output)
    }

    pub fn println(&self, line: &str) -> Result<(), Error> {
        self.print(&format!("{line}\n"))
    }

    /// The API's JSON exactly as the daemon sent it, ending with a newline.
    pub fn print_raw_json(&self, body: &[u8]) -> Result<(), Error> {
        let mut out = io::stdout().lock();
        out.write_all(body)
            .and_then(|()| if body.ends_with(b"\n") { Ok(()) } else { out.write_all(b"\n") })
            .and_then(|()| out.flush())
            .map_err(Error::Output)
    }

    /// A remark on stderr (hints, warnings) that must not mix with the output.
    pub fn note(&self, line: &str) {
        eprintln!("{line}");
    }

    /// Asks a yes/no question on stderr. An empty answer is `default`; end of input is "no".
    pub fn ask(&self, question: &str, default: bool) -> Result<bool, Error> {
        let choices = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            eprint!("{question} {choices} ");
            let _ = io::stderr().flush();
            let mut answer = String::new();
            let n = io::stdin()
                .lock()
                .read_line(&mut answer)
                .map_err(|e| Error::io("cannot read the answer", e))?;
            if n == 0 {
                eprintln!();
                return Ok(false);
            }
            match answer.trim().to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("please answer y or n"),
            }
        }
    }
}

/// Prints `containerctl: MESSAGE` and the API error's details on stderr. `text` is the unit file
/// the user just wrote, so that diagnostics can quote it.
pub fn report(error: &Error, text: Option<&str>, style: Style) {
    match error {
        Error::Reported(_) => {}
        Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Error::Client(c) => {
            eprintln!("{}: {c}", style.paint(Some(Color::Red), "containerctl"));
            if let Some(api) = c.api() {
                eprint!("{}", ui::render_error_details(api, text, style));
            }
        }
        other => eprintln!("{}: {other}", style.paint(Some(Color::Red), "containerctl")),
    }
}
