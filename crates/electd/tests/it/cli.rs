//! The command line: bad configuration is one clear line and exit status 2;
//! `--help` explains every flag.

use std::process::{Command, Output};

use crate::common;

fn electd(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(common::electd())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("electd runs")
}

/// Arguments, environment, and a word the error must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn bad_configuration_is_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("missing-dir").join("j.jsonl");
    let journal = journal.to_str().unwrap();
    let pki = harness::tls::Pki::new();
    let (ca, cert) = (pki.ca.to_str().unwrap(), pki.client_cert.to_str().unwrap());
    let other_key = pki.server_key.to_str().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let https = "https://127.0.0.1:2379";
    // Held for the whole test: a port in use is bad configuration too.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let cases: &[Case] = &[
        (&["abc"], &[], "PORT"),
        (&["65536"], &[], "PORT"),
        (&["-1"], &[], ""),
        (&["--ttl", "0"], &[], "--ttl"),
        (&["--ttl", "1.5"], &[], "--ttl"),
        (&["--api", "v3", "--ttl", "1"], &[], "2 seconds"),
        (&["8080", "--listen", "127.0.0.1:8080"], &[], "not both"),
        (&["--listen", "localhost"], &[], "--listen"),
        (&["--etcd", "localhost:2379"], &[], "endpoint"),
        (&["--etcd", "http://"], &[], "endpoint"),
        (&["--advertise", "::nonsense"], &[], "--advertise"),
        (&["--api", "v4"], &[], "v4"),
        (&["--election", "a/b"], &[], "election"),
        (&["--no-such-flag"], &[], "no-such-flag"),
        (&[], &[("ELECTD_TTL", "0")], "--ttl"),
        (
            &["--listen", "127.0.0.1:0", "--journal", journal],
            &[],
            "journal",
        ),
        (
            &["--listen", "127.0.0.1:0", "--state-file", garbage],
            &[],
            "not a state file of electd",
        ),
        (
            &["--listen", "127.0.0.1:0", "--state-file", journal],
            &[],
            "state file",
        ),
        (&["--etcd", https], &[], "--etcd-cacert"),
        (
            &["--etcd", https, "--etcd-cacert", "/nonexistent/ca.pem"],
            &[],
            "/nonexistent/ca.pem",
        ),
        (
            &["--etcd", https, "--etcd-cacert", garbage],
            &[],
            "no PEM certificate",
        ),
        (&["--etcd-cacert", ca], &[], "https://"),
        (
            &[
                "--etcd",
                &format!("{https},http://127.0.0.1:2380"),
                "--etcd-cacert",
                ca,
            ],
            &[],
            "one scheme",
        ),
        (
            &["--etcd", https, "--etcd-cacert", ca, "--etcd-cert", cert],
            &[],
            "--etcd-key",
        ),
        (
            &[
                "--etcd",
                https,
                "--etcd-cacert",
                ca,
                "--etcd-cert",
                cert,
                "--etcd-key",
                other_key,
            ],
            &[],
            "does not go with",
        ),
        (&["--etcd-user", "electd"], &[], "--etcd-password-file"),
        (
            &[
                "--etcd-user",
                "electd",
                "--etcd-password-file",
                "/nonexistent/pw",
            ],
            &[],
            "/nonexistent/pw",
        ),
        (&[], &[("ELECTD_ETCD_PASSWORD", "pw")], "--etcd-user"),
        (
            &["8080", "--exec"],
            &[],
            "--exec needs the command to run after `--`",
        ),
        (
            &["--exec-grace", "10s", "--ttl", "3"],
            &[],
            "--exec-grace needs --exec",
        ),
        (
            &[],
            &[("ELECTD_EXEC_ON_EXIT", "restart")],
            "--exec-on-exit needs --exec",
        ),
        (
            &["--etcd-cacert", "/nonexistent/ca.pem"],
            &[],
            "/nonexistent/ca.pem",
        ),
        (
            &[
                "--etcd-cert",
                "/nonexistent/c.pem",
                "--etcd-key",
                "/nonexistent/k.pem",
            ],
            &[],
            "/nonexistent/c.pem",
        ),
        (&["--listen", &busy_addr], &[], &busy_addr),
        (
            &["--etcd-user", "electd"],
            &[("ELECTD_ETCD_PASSWORD", "")],
            "password is empty",
        ),
        // Steering who leads: nothing to steer on an observer, no order on v2.
        (
            &["--observe", "--health-url", "http://127.0.0.1:9000/"],
            &[],
            "--observe never campaigns, so it cannot take --health-url",
        ),
        (
            &["--observe", "--priority", "3"],
            &[],
            "cannot take --priority",
        ),
        (&["--observe", "--preempt"], &[], "cannot take --preempt"),
        (
            &["--observe"],
            &[("ELECTD_DRAINED", "true")],
            "cannot take --drained",
        ),
        (
            &["--api", "v2", "--priority", "-2"],
            &[],
            "--priority needs --api v3",
        ),
        (
            &["--api", "v2"],
            &[("ELECTD_PREEMPT", "true")],
            "--preempt needs --api v3",
        ),
        (
            &["--preempt-after", "5s"],
            &[],
            "--preempt-after needs --preempt",
        ),
        (
            &["--priority", "first"],
            &[],
            "--priority must be a whole number",
        ),
        (
            &["--health-interval", "1s"],
            &[],
            "--health-interval needs --health-url",
        ),
        (
            &[],
            &[("ELECTD_HEALTH_FAILURES", "2")],
            "--health-failures needs --health-url",
        ),
        (&["--health-url", "localhost:9000"], &[], "--health-url"),
        (
            &[],
            &[("ELECTD_HEALTH_URL", "https://127.0.0.1:9000/")],
            "the app beside electd",
        ),
        (
            &["--health-url", "http://a/", "--health-interval", "0ms"],
            &[],
            "longer than zero",
        ),
        (
            &["--health-url", "http://a/", "--health-timeout", "0"],
            &[],
            "longer than zero",
        ),
        (
            &["--health-url", "http://a/", "--health-successes", "0"],
            &[],
            "at least 1",
        ),
        (
            &["--health-url", "http://a/", "--health-failures", "-3"],
            &[],
            "at least 1",
        ),
        (
            &["8080", "--api", "v2", "--shards", "16"],
            &[],
            "--shards needs --api v3",
        ),
        (&[], &[("ELECTD_SHARDS", "0")], "--shards must be 1 to"),
        (
            &["--shards", "4", "--exec", "--", "true"],
            &[],
            "cannot go with --shards",
        ),
    ];
    for (args, env, needle) in cases {
        let out = electd(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("electd: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr} lacks {needle:?}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_explains_every_flag() {
    let out = electd(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "[PORT]",
        "--listen",
        "--etcd",
        "--api",
        "--election",
        "--ttl",
        "--advertise",
        "--id",
        "--journal",
        "--margin",
        "--observe",
        "--log-format",
        "--etcd-cacert",
        "--etcd-cert",
        "--etcd-key",
        "--etcd-user",
        "--etcd-password-file",
        "ELECTD_ETCD_PASSWORD",
        "ELECTD_TTL",
        "--health-url",
        "--health-interval",
        "--health-timeout",
        "--health-failures",
        "--health-successes",
        "ELECTD_HEALTH_URL",
        "--drained",
        "--priority",
        "--preempt",
        "--preempt-after",
        "ELECTD_PRIORITY",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    // The health check is of what runs on every candidate, never of --exec.
    let health = help
        .split("--health-url <URL>")
        .nth(1)
        .and_then(|rest| rest.split("--health-interval <DURATION>").next())
        .unwrap_or_default();
    assert!(
        health.contains("app beside electd") && health.contains("runs only on the leader"),
        "--help --health-url:\n{health}"
    );
}

/// `electd --help | head -1`: a reader that stops early gets what it read,
/// and electd exits 0 without a panic.
#[test]
fn help_to_a_reader_that_stops_early_is_no_failure() {
    let mut child = Command::new(common::electd())
        .arg("--help")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("electd runs");
    // Closed before electd writes: its write meets a broken pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("electd exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
