//! The terminal edge of the CLI: writing results to stdout, errors to stderr, and asking questions.
//!
//! Colour is used on a stream only when it is a terminal and `NO_COLOR` is unset or empty
//! (no-color.org); questions are asked only when stdin and stderr are both terminals, so scripts
//! never hang on a prompt.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};

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

/// Prompts on stderr and reads one line from the terminal on stdin with echo off (a password, a
/// secret's value), with its newline.
pub fn read_hidden(prompt: &str) -> Result<String, Error> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    read_hidden_from(fd, &mut stdin.lock(), prompt, &mut io::stderr())
}

/// Reads one line from `input`, the terminal `tty`, after writing `prompt` to `out`, with the
/// terminal's echo off (a newline is still echoed); echo comes back even when the read fails.
fn read_hidden_from(
    tty: BorrowedFd<'_>,
    input: &mut impl BufRead,
    prompt: &str,
    out: &mut impl Write,
) -> Result<String, Error> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let saved = tcgetattr(tty).map_err(|e| Error::io("cannot read the terminal's settings", e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // TCSAFLUSH, as getpass(3): what was typed ahead (and echoed) is not taken as the password.
    tcsetattr(tty, SetArg::TCSAFLUSH, &quiet)
        .map_err(|e| Error::io("cannot turn the terminal's echo off", e.into()))?;
    let _ = write!(out, "{prompt}").and_then(|()| out.flush());
    let mut line = String::new();
    let read = input.read_line(&mut line);
    let restored = tcsetattr(tty, SetArg::TCSANOW, &saved);
    read.map_err(|e| Error::io("cannot read from the terminal", e))?;
    restored.map_err(|e| Error::io("cannot turn the terminal's echo back on", e.into()))?;
    Ok(line)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_typed_at_a_terminal_is_not_echoed() {
        use nix::sys::termios::{tcgetattr, LocalFlags};
        use std::io::Read;
        use std::time::{Duration, Instant};
        let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
        let mut master = std::fs::File::from(pty.master);
        let slave = std::fs::File::from(pty.slave);
        let echo_on = |f: &std::fs::File| tcgetattr(f).map(|t| t.local_flags.contains(LocalFlags::ECHO)).ok();
        assert_eq!(echo_on(&slave), Some(true));
        let probe = slave.try_clone().expect("a second descriptor of the terminal");
        let reader = slave.try_clone().expect("a third descriptor of the terminal");
        let typing = std::thread::spawn(move || {
            let mut input = io::BufReader::new(reader);
            let mut prompt = Vec::new();
            let line = read_hidden_from(slave.as_fd(), &mut input, "Password: ", &mut prompt);
            (line.map_err(|e| e.to_string()), prompt)
        });
        // Type once echo is off, as a person does after the prompt.
        let deadline = Instant::now() + Duration::from_secs(10);
        while echo_on(&probe) != Some(false) {
            assert!(Instant::now() < deadline, "echo was not turned off within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        master.write_all(b"hunter2\n").expect("typing");
        let (line, prompt) = typing.join().expect("the reader ends");
        assert_eq!(line.as_deref(), Ok("hunter2\n"));
        assert_eq!(prompt, b"Password: ");
        assert_eq!(echo_on(&probe), Some(true), "echo is back on");
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .expect("non-blocking");
        let mut shown = Vec::new();
        let _ = master.read_to_end(&mut shown);
        assert!(!String::from_utf8_lossy(&shown).contains("hunter2"), "echoed: {shown:?}");
        assert!(shown.ends_with(b"\r\n"), "the newline is echoed: {shown:?}");
    }
}
