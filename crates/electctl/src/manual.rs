//! What `electctl --help` and the man page say beyond the options: the
//! exit statuses and the environment. One source for both: `--help`
//! prints [`after_long_help`], and the man page generator (crates/xtask)
//! renders each list as a section of its own.

/// What the process's exit status means: `(status, meaning)`.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Done; also --help and --version."),
    (
        "1",
        "Refused: a node said no (the sentence says why and what to do), or answered what \
electctl cannot read.",
    ),
    (
        "2",
        "Usage: a bad option or value, a URL that is not one, an unreadable token file.",
    ),
    (
        "3",
        "No answer or timed out: a node did not answer (or is shutting down, or cannot read \
etcd now), a watch stream stayed broken for --timeout, or a switchover's new leader did not \
lead in time.",
    ),
];

/// Variables that no option stands for; each option's own is in its help.
pub const ENVIRONMENT: &[(&str, &str)] = &[(
    "ELECTD_ADMIN_TOKEN",
    "The admin token, when --token-file is not given: the same variable electd reads.",
)];

/// Where the whole reference lives.
pub const REFERENCE: &str = "The full reference, with each command's output and JSON schema: the \
electctl page of the electd book (docs/ in the source tree); electd(1).";

/// The text `--help` prints after the options.
pub fn after_long_help() -> String {
    let mut text = String::from("Exit status:\n");
    for (status, meaning) in EXIT_STATUS {
        text.push_str(&format!("  {status}  {meaning}\n"));
    }
    text.push_str("\nEnvironment:\n");
    for (variable, meaning) in ENVIRONMENT {
        text.push_str(&format!("  {variable}  {meaning}\n"));
    }
    text.push('\n');
    text.push_str(REFERENCE);
    text
}
