//! `containerctl completions SHELL`: a completion script for bash, zsh or fish on stdout.
//!
//! clap_complete's scripts know the subcommands and options. The bash script also completes the
//! NAME arguments with the units containerctld knows, asked through the hidden
//! `containerctl __complete-units`, which prints nothing when the daemon cannot be reached or the
//! caller may not list units.

use std::fmt::Write as _;

use clap::CommandFactory;

use super::{Cli, Ctx, Error};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> Result<(), Error> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "containerctl", &mut script);
    if matches!(args.shell, Shell::Bash) {
        script.extend_from_slice(bash_unit_names(&Cli::command()).as_bytes());
    }
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, &script).map_err(Error::Output)
}

/// `containerctl __complete-units`: the units' names, one a line; quiet on any failure.
pub fn run_units(ctx: &Ctx) -> Result<(), Error> {
    let units = ctx.client.units().map_err(|e| Error::Reported(Error::Client(e).exit_code()))?;
    let names: String = units.iter().map(|u| format!("{}\n", u.name)).collect();
    ctx.term.print(&names)
}

/// A bash function in front of clap's `_containerctl`: where a subcommand expects an existing
/// unit's NAME it offers the daemon's unit names, elsewhere it hands over to clap's completion.
fn bash_unit_names(cli: &clap::Command) -> String {
    // `sub:N` patterns: the Nth word after the subcommand (N from 0; `*` for NAME...) is a NAME.
    let mut patterns = Vec::new();
    let mut value_options = std::collections::BTreeSet::new();
    for sub in cli.get_subcommands() {
        // `new` names a unit that does not exist yet.
        if sub.get_name() == "new" {
            continue;
        }
        let Some((index, many)) = sub.get_positionals().enumerate().find_map(|(i, a)| {
            let is_name = a.get_value_names().is_some_and(|n| n.iter().any(|n| n.as_str() == "NAME"));
            is_name.then(|| (i, a.get_num_args().is_some_and(|r| r.max_values() > 1)))
        }) else {
            continue;
        };
        let at = if many { "*".to_owned() } else { index.to_string() };
        for name in std::iter::once(sub.get_name()).chain(sub.get_visible_aliases()) {
            patterns.push(format!("{name}:{at}"));
        }
        for opt in sub.get_opts() {
            if opt.get_action().takes_values() {
                value_options.extend(opt.get_long().map(|l| format!("--{l}")));
                value_options.extend(opt.get_short().map(|s| format!("-{s}")));
            }
        }
    }
    let mut s = String::from(
        "\n# Unit names for NAME arguments, from containerctld (nothing when it cannot be reached).\n\
         _containerctl_units() {\n\
         \x20   local cur=${COMP_WORDS[COMP_CWORD]} sub= n=0 i skip=\n\
         \x20   for ((i = 1; i < COMP_CWORD; i++)); do\n\
         \x20       if [[ -n $skip ]]; then skip=; continue; fi\n\
         \x20       case ${COMP_WORDS[i]} in\n",
    );
    if !value_options.is_empty() {
        let opts: Vec<String> = value_options.into_iter().collect();
        let _ = writeln!(s, "        {}) skip=1 ;;", opts.join(" | "));
    }
    let _ = write!(
        s,
        "        -*) ;;\n\
         \x20       *) if [[ -z $sub ]]; then sub=${{COMP_WORDS[i]}}; else n=$((n + 1)); fi ;;\n\
         \x20       esac\n\
         \x20   done\n\
         \x20   if [[ -z $skip && $cur != -* ]]; then\n\
         \x20       case $sub:$n in\n\
         \x20       {})\n\
         \x20           local names\n\
         \x20           names=$(containerctl __complete-units 2>/dev/null) || names=\n\
         \x20           mapfile -t COMPREPLY < <(compgen -W \"$names\" -- \"$cur\")\n\
         \x20           return 0\n\
         \x20           ;;\n\
         \x20       esac\n\
         \x20   fi\n\
         \x20   _containerctl \"$@\"\n\
         }}\n\
         complete -F _containerctl_units -o bashdefault -o default containerctl\n",
        patterns.join(" | ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completes_names_of_existing_units_only() {
        let s = bash_unit_names(&Cli::command());
        for p in
            ["status:0", "start:*", "restart:*", "edit:0", "set:0", "rm:0", "remove:0", "revert:0", "logs:0"]
        {
            assert!(s.contains(p), "{p} missing in\n{s}");
        }
        assert!(!s.contains("new:"), "{s}");
        assert!(!s.contains("list:"), "{s}");
        assert!(s.contains("containerctl __complete-units 2>/dev/null"), "{s}");
        assert!(s.ends_with("complete -F _containerctl_units -o bashdefault -o default containerctl\n"));
    }
}
