//! What `electd --help` and the man page say beyond the flags: the
//! endpoints, the environment, exit status, signals and files. One source
//! for both, so they cannot drift: `--help` prints [`after_long_help`], and
//! the man page generator renders each [`Section`] as its own section.

/// A titled list of terms and what they mean.
pub struct Section {
    /// The man page's section name, upper case.
    pub title: &'static str,
    /// A paragraph before the list.
    pub intro: &'static str,
    /// Each term (a path, a name, a number) and its meaning.
    pub entries: &'static [(&'static str, &'static str)],
}

/// Where the whole reference lives.
pub const REFERENCE: &str = "The full reference (every JSON field and error code, the metrics, \
the journal, guides for load balancers, Kubernetes and fencing): man electd, and the electd \
book (docs/ in the source tree).";

/// The HTTP endpoints.
pub const ENDPOINTS: Section = Section {
    title: "ENDPOINTS",
    intro: "On PORT (or --listen). With --admin-listen, /metrics and the POST endpoints move \
to that address, which also serves /ui with /v1/status and /v1/watch. The POST endpoints need the admin token (Authorization: Bearer TOKEN); \
without one configured they answer 403.",
    entries: &[
        (
            "GET /",
            "The seed's plain text: \"I am the leader\", or \"I am a follower and the leader is on \
port 8080\".",
        ),
        (
            "GET /v1/status",
            "JSON: this node's role and term, the leader, the candidates in succession order, \
health, drain, priority, and any obstacle in etcd.",
        ),
        (
            "GET /v1/watch",
            "Server-sent events: a leader event on connect and on every change of leader; a status event \
(the /v1/status body) on connect and on every change a list of the election shows \
(?events=leader or ?events=status for one kind).",
        ),
        (
            "GET /ui",
            "The live web view of the election, in a browser: the leader, the candidates, the \
history; resign, hand over, drain and undrain with the admin token.",
        ),
        (
            "GET /v1/history[?limit=N]",
            "JSON: the election's history from etcd, newest first: each leadership's term, \
holder, when it began and ended, why, and to whom (v3; the same on every node).",
        ),
        (
            "GET /healthz",
            "200 while electd works (its loop runs, etcd answers, nothing blocks the election); \
503 with the reason otherwise.",
        ),
        (
            "GET /livez",
            "200 while the election loop runs: the liveness probe.",
        ),
        (
            "GET /health/leader",
            "200 with the term, on the leader only: for load balancers and readiness probes.",
        ),
        (
            "GET /health/follower",
            "200 on a follower that knows a live leader.",
        ),
        ("GET /metrics", "Prometheus (OpenMetrics) exposition."),
        (
            "POST /v1/resign[?to=ID]",
            "The leader hands over, to ID and no other with ?to= (v3).",
        ),
        (
            "POST /v1/drain, POST /v1/undrain",
            "Withdraw this node's candidacy (a leader hands over first), and restore it.",
        ),
    ],
};

/// Variables that no flag stands for; each flag's own is in its help.
pub const ENVIRONMENT: Section = Section {
    title: "ENVIRONMENT",
    intro: "Every flag can be set by the ELECTD_ variable its help names (PORT by ELECTD_PORT). \
Secrets come from files or from the environment, never from flag values.",
    entries: &[
        (
            "ELECTD_ETCD_PASSWORD",
            "The password of --etcd-user, when --etcd-password-file is not given.",
        ),
        (
            "ELECTD_ADMIN_TOKEN",
            "The admin token, when --admin-token-file is not given.",
        ),
        (
            "RUST_LOG",
            "The log level (default info), e.g. RUST_LOG=debug.",
        ),
        (
            "NO_COLOR",
            "Set: no colours in the log, even on a terminal.",
        ),
        (
            "ELECTD_TERM, ELECTD_ID, ELECTD_ELECTION, ELECTD_ADVERTISE",
            "Given to the --exec command: the fencing token, this node's id, the election and \
this node's URL. ELECTD_ETCD_PASSWORD and ELECTD_ADMIN_TOKEN are removed from its environment.",
        ),
    ],
};

/// What the process's exit status means.
pub const EXIT_STATUS: Section = Section {
    title: "EXIT STATUS",
    intro: "",
    entries: &[
        (
            "0",
            "Stopped by SIGTERM or SIGINT, after handing over; also --help and --version.",
        ),
        (
            "1",
            "electd could not run: it could not start a runtime or a thread, or become a \
child subreaper for --exec.",
        ),
        (
            "2",
            "Bad configuration (a flag, a file, a port in use): one line on stderr.",
        ),
        (
            "130",
            "A second SIGTERM or SIGINT during shutdown: exit at once (with --exec, after \
SIGKILL to the command and everything it started).",
        ),
        (
            "128+N",
            "electd was killed by signal N; the guardian exits with its child's status.",
        ),
        (
            "the command's",
            "With --exec-on-exit exit: the status the --exec command exited with, whatever it \
is (2 included).",
        ),
    ],
};

/// What each signal does.
pub const SIGNALS: Section = Section {
    title: "SIGNALS",
    intro: "electd runs as two processes: a guardian, the process you start, and electd itself, \
its only child. Signals sent to the guardian are passed on to electd.",
    entries: &[
        (
            "SIGTERM, SIGINT",
            "Stop the --exec command, hand over (the next node leads within milliseconds), \
stop serving, exit 0; bounded in time, also when etcd is unreachable. A second one exits \
at once (130).",
        ),
        (
            "SIGHUP",
            "Passed on to electd, which ends at once; the guardian then releases the election as \
after a crash.",
        ),
        (
            "SIGKILL",
            "Of electd alone: its guardian kills what it left and releases the election within \
milliseconds. Of the guardian (or the host dying): electd dies with it, and the lease expires \
after the TTL.",
        ),
    ],
};

/// The files electd reads and writes.
pub const FILES: Section = Section {
    title: "FILES",
    intro: "",
    entries: &[
        (
            "--journal FILE",
            "Leadership events (acquired, renewed, ended) appended as JSON lines.",
        ),
        (
            "--state-file FILE",
            "The term floor and etcd's highest revision, kept across restarts.",
        ),
        (
            "--admin-token-file FILE",
            "The admin token, read once at start; leading and trailing whitespace is removed. \
Keep it mode 0600, readable by electd's user only.",
        ),
        (
            "--etcd-password-file FILE",
            "The etcd password, read once at start; one trailing newline (\\n or \\r\\n) is \
removed. Keep it mode 0600.",
        ),
        (
            "/etc/electd/NAME.env",
            "With the Debian package: the ELECTD_ settings of the systemd unit electd@NAME.",
        ),
        (
            "/var/lib/electd/NAME/",
            "With the Debian package: the state directory of electd@NAME (--state-file).",
        ),
    ],
};

/// Every section, in the man page's order.
pub const SECTIONS: [&Section; 5] = [&ENDPOINTS, &ENVIRONMENT, &EXIT_STATUS, &SIGNALS, &FILES];

/// The text `--help` prints after the flags.
pub fn after_long_help() -> String {
    let mut text = String::new();
    for section in SECTIONS {
        text.push_str(&title_case(section.title));
        text.push_str(":\n");
        if !section.intro.is_empty() {
            text.push_str(&indent(section.intro, "  ", "  "));
        }
        for (term, meaning) in section.entries {
            text.push_str("  ");
            text.push_str(term);
            text.push('\n');
            text.push_str(&indent(meaning, "      ", "      "));
        }
        text.push('\n');
    }
    text.push_str(&indent(REFERENCE, "", ""));
    text
}

/// "EXIT STATUS" as "Exit status".
fn title_case(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Wraps a paragraph at 80 columns.
fn indent(paragraph: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in paragraph.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > 80 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    if !empty {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_endpoint_and_the_reference() {
        let help = after_long_help();
        for (path, _) in ENDPOINTS.entries {
            assert!(help.contains(path), "{path} missing from --help");
        }
        assert!(help.contains("man electd"));
        assert!(help.lines().all(|line| line.len() <= 80), "{help}");
    }

    #[test]
    fn paragraphs_wrap_at_80_columns_without_losing_words() {
        let text = "word ".repeat(50);
        let wrapped = indent(&text, "  ", "    ");
        assert!(wrapped.lines().all(|l| l.len() <= 80));
        assert_eq!(wrapped.split_whitespace().count(), 50);
        assert_eq!(title_case("EXIT STATUS"), "Exit status");
    }
}
