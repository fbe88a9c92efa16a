//! What is generated from electd's and electctl's command-line definitions
//! ([`electd::command`], [`electctl::command`]) rather than written by
//! hand, so that it cannot drift from their `--help`: the man pages
//! `electd(1)` and `electctl(1)`, the shell completions, and electd's flags
//! reference of the book. And [`modules`]: each
//! crate's module graph, which must have no cycle.

pub mod modules;

use std::fmt::Write as _;

use clap::Command;
use clap_mangen::roff::{Roff, bold, italic, roman};
use electd::manual::{self, Section};

/// A program whose man page and completions are generated here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// The daemon.
    Electd,
    /// The command-line client.
    Electctl,
}

impl Program {
    pub const ALL: [Program; 2] = [Program::Electd, Program::Electctl];

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Program::Electd => "electd",
            Program::Electctl => "electctl",
        }
    }

    /// Its clap definition, the one its binary parses.
    fn command(self) -> Command {
        match self {
            Program::Electd => electd::command(),
            Program::Electctl => electctl::command(),
        }
    }

    /// The man page's sections beyond the options, in order.
    fn sections(self) -> Vec<ManSection> {
        match self {
            Program::Electd => manual::SECTIONS
                .iter()
                .map(|s| (s.title, s.intro, s.entries))
                .collect(),
            Program::Electctl => vec![
                ("EXIT STATUS", "", electctl::manual::EXIT_STATUS),
                (
                    manual::ENVIRONMENT.title,
                    "Every option with a variable in its help can be set by it.",
                    electctl::manual::ENVIRONMENT,
                ),
            ],
        }
    }

    /// Where the whole reference is.
    fn reference(self) -> &'static str {
        match self {
            Program::Electd => manual::REFERENCE,
            Program::Electctl => electctl::manual::REFERENCE,
        }
    }
}

/// A section of a man page beyond the options: its title, a paragraph,
/// then each term and what it means.
type ManSection = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The man page `electd(1)` or `electctl(1)`, in roff.
pub fn man_page(program: Program) -> std::io::Result<Vec<u8>> {
    let command = program.command();
    let man = clap_mangen::Man::new(command.clone()).date(release_date());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if command.has_subcommands() {
        commands_section(&command).to_writer(&mut out)?;
    }
    for (title, intro, entries) in program.sections() {
        let mut roff = Roff::new();
        roff.control("SH", [title]);
        if !intro.is_empty() {
            roff.text([roman(intro)]);
        }
        for (term, meaning) in entries {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*meaning)]);
        }
        if title == manual::ENVIRONMENT.title {
            for (variable, flag) in flag_variables(&command) {
                roff.control("TP", []);
                roff.text([bold(variable)]);
                roff.text([roman("Sets "), italic(flag), roman(".")]);
            }
        }
        roff.to_writer(&mut out)?;
    }
    let mut see_also = Roff::new();
    see_also.control("SH", ["SEE ALSO"]);
    see_also.text([roman(program.reference())]);
    see_also.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// COMMANDS: each subcommand with its arguments and what each does, on
/// the one page (clap_mangen's own section points to a page per command).
fn commands_section(command: &Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut usage = sub.get_name().to_owned();
        let arguments: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version"))
            .collect();
        for arg in &arguments {
            let _ = write!(usage, " [{}]", argument_synopsis(arg));
        }
        roff.control("TP", []);
        roff.text([bold(usage)]);
        let about = sub.get_long_about().or_else(|| sub.get_about());
        roff.text([roman(about.map(ToString::to_string).unwrap_or_default())]);
        for arg in arguments {
            let help = arg.get_long_help().or_else(|| arg.get_help());
            roff.control("IP", []);
            roff.text([
                italic(argument_synopsis(arg)),
                roman(": "),
                roman(help.map(ToString::to_string).unwrap_or_default()),
            ]);
        }
    }
    roff
}

/// `-w|--watch`, `--to ID`, `ID`: how an argument is written.
fn argument_synopsis(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(ToString::to_string)
        .unwrap_or_else(|| arg.get_id().to_string());
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    match (names.is_empty(), arg.get_action().takes_values()) {
        (true, _) => value,
        (false, true) => format!("{} {value}", names.join("|")),
        (false, false) => names.join("|"),
    }
}

/// The date on the man page: the time of the build that made it, fixed by
/// `SOURCE_DATE_EPOCH` for reproducible packages, else empty.
fn release_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(electd::wallclock::date)
        .unwrap_or_default()
}

/// Each flag's environment variable, with the flag it sets.
fn flag_variables(command: &Command) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter_map(|arg| {
            let variable = arg.get_env()?.to_string_lossy().into_owned();
            Some((variable, flag_name(arg)))
        })
        .collect()
}

/// `--ttl`, or `PORT` for a positional.
fn flag_name(arg: &clap::Arg) -> String {
    match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string),
    }
}

/// The shells completions are generated for.
pub const SHELLS: [clap_complete::Shell; 3] = [
    clap_complete::Shell::Bash,
    clap_complete::Shell::Zsh,
    clap_complete::Shell::Fish,
];

/// The file name `shell` looks for `program`'s completions under:
/// `electd` (bash), `_electd` (zsh), `electd.fish`.
pub fn completions_file(shell: clap_complete::Shell, program: Program) -> String {
    let name = program.name();
    match shell {
        clap_complete::Shell::Zsh => format!("_{name}"),
        clap_complete::Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// The completion script of `program` for one shell.
pub fn completions(shell: clap_complete::Shell, program: Program) -> Vec<u8> {
    let mut command = program.command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, program.name(), &mut out);
    out
}

/// Where the book's generated flags reference lives, from the workspace root.
pub const FLAGS_REFERENCE: &str = "docs/src/reference/flags.md";

/// The workspace's root directory.
pub fn workspace_root() -> std::path::PathBuf {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crates
        .ancestors()
        .nth(2)
        .map_or_else(|| crates.to_path_buf(), std::path::Path::to_path_buf)
}

/// The book's flags reference ([`FLAGS_REFERENCE`]), in Markdown.
pub fn flags_reference() -> String {
    let command = electd::command();
    let mut md = String::from(
        "# Flags\n\n\
         <!-- Generated by `cargo xtask flags` from electd's clap definition; do not edit. \
         A test fails when it differs from `electd --help`. -->\n\n\
         Every flag can also be set by its environment variable; a switch such as \
         `--observe` by `true` or `false` (any other value is refused). Durations are \
         written like `500ms`, `2s` or `1m`.\n\n",
    );
    for arg in command.get_arguments() {
        if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let mut heading = flag_name(arg);
        // A switch (--observe) takes no value: its heading names none.
        if arg.get_long().is_some()
            && arg.get_action().takes_values()
            && let Some(names) = arg.get_value_names()
        {
            let names: Vec<String> = names.iter().map(ToString::to_string).collect();
            let _ = write!(heading, " {}", names.join(" "));
        }
        if arg.is_last_set() {
            heading = format!("-- {heading}");
        }
        let _ = writeln!(md, "## `{heading}`\n");
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let _ = writeln!(md, "{}\n", help.trim());
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !possible.is_empty() && arg.get_action().takes_values() {
            let _ = writeln!(md, "- values: {}", possible.join(", "));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            let _ = writeln!(md, "- default: `{}`", defaults.join(","));
        }
        if let Some(variable) = arg.get_env() {
            let _ = writeln!(md, "- environment: `{}`", variable.to_string_lossy());
        }
        md.push('\n');
    }
    md.push_str("## Beyond the flags\n\n");
    for section in [&manual::EXIT_STATUS, &manual::SIGNALS, &manual::ENVIRONMENT] {
        md.push_str(&section_markdown(section));
    }
    md.truncate(md.trim_end().len());
    md.push('\n');
    md
}

fn section_markdown(section: &Section) -> String {
    let mut md = format!("### {}\n\n", title_case(section.title));
    if !section.intro.is_empty() {
        let _ = writeln!(md, "{}\n", section.intro);
    }
    md.push_str("| | |\n|---|---|\n");
    for (term, meaning) in section.entries {
        let _ = writeln!(md, "| `{term}` | {meaning} |");
    }
    md.push('\n');
    md
}

fn title_case(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_has_every_section() {
        let page = String::from_utf8(man_page(Program::Electd).expect("renders")).expect("utf-8");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENDPOINTS",
            "ENVIRONMENT",
            "EXIT STATUS",
            "SIGNALS",
            "FILES",
        ] {
            assert!(
                page.contains(&format!(".SH {section}"))
                    || page.contains(&format!(".SH \"{section}\"")),
                "no {section} section"
            );
        }
        assert!(page.contains("ELECTD_TTL"));
    }

    #[test]
    fn electctls_man_page_has_every_section() {
        let page = String::from_utf8(man_page(Program::Electctl).expect("renders")).expect("utf-8");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "EXIT STATUS",
            "ENVIRONMENT",
        ] {
            assert!(
                page.contains(&format!(".SH {section}"))
                    || page.contains(&format!(".SH \"{section}\"")),
                "no {section} section"
            );
        }
        for variable in [
            "ELECTCTL_NODE",
            "ELECTD_ADMIN_TOKEN_FILE",
            "ELECTD_ADMIN_TOKEN",
        ] {
            assert!(page.contains(variable), "no {variable}");
        }
    }

    #[test]
    fn the_books_flags_reference_is_current() {
        let path = workspace_root().join(FLAGS_REFERENCE);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            committed == flags_reference(),
            "{} differs from electd's flags: run `cargo xtask flags` and commit it",
            path.display()
        );
    }

    #[test]
    fn every_electctl_command_and_option_is_in_the_book() {
        let path = workspace_root().join("docs/src/reference/electctl.md");
        let book = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for command in electctl::command().get_subcommands() {
            let name = command.get_name();
            assert!(
                book.contains(&format!("## `electctl {name}"))
                    || book.contains(&format!(", `electctl {name}")),
                "electctl {name} has no section in {}",
                path.display()
            );
            for arg in command.get_arguments().filter(|arg| !arg.is_positional()) {
                let long = arg.get_long().map(|long| format!("--{long}"));
                let short = arg.get_short().map(|short| format!("-{short}"));
                assert!(
                    long.iter()
                        .chain(&short)
                        .any(|flag| book.contains(flag.as_str())),
                    "electctl {name} {long:?} is not in {}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn every_flag_is_in_the_reference() {
        let reference = flags_reference();
        for arg in electd::command().get_arguments() {
            if let Some(long) = arg.get_long()
                && !matches!(long, "help" | "version")
            {
                assert!(
                    reference.contains(&format!("`--{long}")),
                    "--{long} missing"
                );
            }
        }
    }
}
