//! The command line: every flag, each also read from an `ELECTD_…`
//! variable, with the help texts that `--help`, the man page, the
//! completions and the book's flags reference all come from. Checked into
//! settings by `settings.rs`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::supervise::exec::OnExit;

/// Leader election on etcd: exactly one node leads at any instant, and every
/// node can say who it is.
///
/// `electd 8080` campaigns in etcd (v3 by default; --api v2 speaks the
/// seed's protocol) and serves HTTP on port 8080: the seed's plain-text
/// answer on / ("I am the leader" or "I am a follower and the leader is on
/// port 8081"), JSON status on /v1/status, health checks for load balancers
/// on /health/leader, Prometheus metrics on /metrics. A leader stops calling
/// itself leader before its lease could expire, every leadership carries a
/// fencing token (the term), and SIGTERM hands over in milliseconds.
///
/// Three ways to tie an application to the election: --exec runs a command
/// only while this node leads; a load balancer or readiness probe sends
/// traffic to the node whose /health/leader answers 200; or a Rust program
/// embeds the elect library.
#[derive(Debug, Parser)]
#[command(
    name = "electd",
    version,
    about,
    after_long_help = crate::manual::after_long_help()
)]
pub struct Cli {
    /// HTTP port, bound on all addresses (default 8080). Not together with --listen.
    #[arg(value_name = "PORT", env = "ELECTD_PORT")]
    pub port: Option<String>,

    /// Bind HTTP to this address instead of all addresses, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT", env = "ELECTD_LISTEN")]
    pub listen: Option<String>,

    /// etcd client URLs, comma-separated; on a connection failure the next one is used.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "ELECTD_ETCD",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd: Vec<String>,

    /// CA certificates (PEM) that etcd's certificate must be signed by; needed
    /// with https:// endpoints. etcd's certificate must also name the host
    /// in the endpoint URL.
    #[arg(long, value_name = "FILE", env = "ELECTD_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS, for etcd started with
    /// --client-cert-auth. Goes with --etcd-key.
    #[arg(long, value_name = "FILE", env = "ELECTD_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,

    /// Private key (PEM) of --etcd-cert.
    #[arg(long, value_name = "FILE", env = "ELECTD_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,

    /// etcd user, for etcd with authentication enabled (v3 users, or with
    /// --api v2 the separate v2 users). The password comes from
    /// --etcd-password-file or ELECTD_ETCD_PASSWORD, never from a flag.
    #[arg(long, value_name = "NAME", env = "ELECTD_ETCD_USER")]
    pub etcd_user: Option<String>,

    /// File holding the password of --etcd-user, read once at start: one
    /// trailing newline (\n or \r\n) is removed, everything else is the
    /// password. Keep it mode 0600.
    #[arg(long, value_name = "FILE", env = "ELECTD_ETCD_PASSWORD_FILE")]
    pub etcd_password_file: Option<PathBuf>,

    /// etcd API: v3 (leases, a queue of candidates; etcd 3.4+) or v2 (the seed's
    /// single key with a TTL; etcd 3.4/3.5 started with --enable-v2=true).
    #[arg(long, value_enum, default_value_t = ApiArg::V3, env = "ELECTD_API")]
    pub api: ApiArg,

    /// Election name: the v2 key /v2/keys/NAME, or the v3 prefix /electd/NAME/.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "leader",
        env = "ELECTD_ELECTION"
    )]
    pub election: String,

    /// Lease TTL in whole seconds: how long the election can stay with a
    /// leader whose whole host died or froze (a crash of electd on a live
    /// host is released within milliseconds). Renewals run every TTL/3. v3:
    /// at least 2; at most a day.
    #[arg(long, value_name = "SECONDS", default_value = "10", env = "ELECTD_TTL")]
    pub ttl: String,

    /// How other nodes and clients reach this one. Set it on every node of
    /// an election that spans hosts: the default names the loopback
    /// interface, which other hosts cannot reach [default: http://127.0.0.1:PORT
    /// when bound on all addresses, else http://LISTEN-ADDRESS].
    #[arg(long, value_name = "URL", env = "ELECTD_ADVERTISE")]
    pub advertise: Option<String>,

    /// This node's id; give every node its own (POST /v1/resign?to=ID names
    /// nodes by it) [default: HOSTNAME-PORT, PORT being the one bound].
    #[arg(long, value_name = "ID", env = "ELECTD_ID")]
    pub id: Option<String>,

    /// Append leadership events (acquired, renewed, ended) to this JSON-lines file.
    #[arg(long, value_name = "FILE", env = "ELECTD_JOURNAL")]
    pub journal: Option<PathBuf>,

    /// Keep the term floor (the highest fencing token seen) and etcd's
    /// highest revision in this file, so that a restart never leads with a
    /// term at or below one this node saw, and still notices etcd restored
    /// from an older snapshot while it was down. Created if missing.
    #[arg(long, value_name = "FILE", env = "ELECTD_STATE_FILE")]
    pub state_file: Option<PathBuf>,

    /// Stop calling itself leader this long before the lease could expire at
    /// etcd, to cover clock-rate drift [default: 2% of the TTL, at least 50ms].
    #[arg(long, value_name = "DURATION", env = "ELECTD_MARGIN")]
    pub margin: Option<String>,

    /// Never campaign: only follow the election and answer who leads.
    #[arg(long, env = "ELECTD_OBSERVE")]
    pub observe: bool,

    /// Run without the guardian, electd's parent process that releases the
    /// election within milliseconds when electd dies on a live host (a
    /// crash, an OOM kill, kill -9); without it the lease runs out (the TTL).
    #[arg(long, env = "ELECTD_NO_GUARDIAN")]
    pub no_guardian: bool,

    /// Be a candidate only while this http:// URL answers 2xx (anything
    /// else, a redirect too, is a failed check): GET every --health-interval.
    /// It must check a service that runs on every candidate, such as the app
    /// beside electd, not the --exec command, which runs only on the leader.
    /// The node counts as unhealthy until a check passes.
    #[arg(long, value_name = "URL", env = "ELECTD_HEALTH_URL")]
    pub health_url: Option<String>,

    /// Time from the start of one health check to the start of the next
    /// [default: 1s]. Only with --health-url.
    #[arg(long, value_name = "DURATION", env = "ELECTD_HEALTH_INTERVAL")]
    pub health_interval: Option<String>,

    /// How long one health check may take before it counts as failed
    /// [default: 1s]. Only with --health-url.
    #[arg(long, value_name = "DURATION", env = "ELECTD_HEALTH_TIMEOUT")]
    pub health_timeout: Option<String>,

    /// Failed health checks in a row that make a healthy node unhealthy
    /// [default: 3]. Only with --health-url.
    #[arg(
        long,
        value_name = "N",
        env = "ELECTD_HEALTH_FAILURES",
        allow_negative_numbers = true
    )]
    pub health_failures: Option<String>,

    /// Passed health checks in a row that make an unhealthy node healthy
    /// [default: 1]. Only with --health-url.
    #[arg(
        long,
        value_name = "N",
        env = "ELECTD_HEALTH_SUCCESSES",
        allow_negative_numbers = true
    )]
    pub health_successes: Option<String>,

    /// Start drained: follow the election and answer as usual, but do not
    /// campaign until POST /v1/undrain.
    #[arg(long, env = "ELECTD_DRAINED")]
    pub drained: bool,

    /// This node's priority, a whole number (negative too): when the next
    /// leader is chosen, a higher priority is preferred [default: 0]. Needs
    /// --api v3.
    #[arg(
        long,
        value_name = "N",
        env = "ELECTD_PRIORITY",
        allow_negative_numbers = true
    )]
    pub priority: Option<String>,

    /// Take over from a leader whose priority is below this node's, once this
    /// node has been a healthy candidate for --preempt-after. Needs --api v3.
    #[arg(long, env = "ELECTD_PREEMPT")]
    pub preempt: bool,

    /// How long this node must have been a healthy candidate before it
    /// preempts a leader [default: the TTL]. Only with --preempt.
    #[arg(long, value_name = "DURATION", env = "ELECTD_PREEMPT_AFTER")]
    pub preempt_after: Option<String>,

    /// How many leaderships the election's history in etcd keeps, and GET
    /// /v1/history lists at most: 1 to 1000 [default: 100]. The leader
    /// trims older entries once there are an eighth more. Needs --api v3.
    #[arg(
        long,
        value_name = "N",
        env = "ELECTD_HISTORY_SIZE",
        allow_negative_numbers = true
    )]
    pub history_size: Option<String>,

    /// Split the election into N shards, numbered 0 to N-1, each led by one
    /// node at a time with its own term, spread evenly over the live,
    /// healthy, undrained nodes: 1 to 100000. GET /v1/shards lists them.
    /// Needs --api v3; not with --exec or --preempt.
    #[arg(
        long,
        value_name = "N",
        env = "ELECTD_SHARDS",
        allow_negative_numbers = true
    )]
    pub shards: Option<String>,

    /// Run the command after `--` only while this node leads: started when it
    /// becomes leader, SIGTERM when leadership ends (or at deadline − grace),
    /// SIGKILL by the deadline. It gets ELECTD_TERM (the fencing token),
    /// ELECTD_ID, ELECTD_ELECTION and ELECTD_ADVERTISE, without electd's
    /// secrets.
    #[arg(long, env = "ELECTD_EXEC")]
    pub exec: bool,

    /// How long the command has between SIGTERM and SIGKILL [default: TTL/5;
    /// must be shorter than a third of the TTL]. Only with --exec.
    #[arg(long, value_name = "DURATION", env = "ELECTD_EXEC_GRACE")]
    pub exec_grace: Option<String>,

    /// When the command exits on its own: resign (another node runs it),
    /// restart it, or exit (hand over, then exit electd with the command's
    /// status, whatever it is) [default: resign]. Only with --exec.
    #[arg(long, value_enum, value_name = "ACTION", env = "ELECTD_EXEC_ON_EXIT")]
    pub exec_on_exit: Option<OnExit>,

    /// The command for --exec, after `--`.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,

    /// File holding the bearer token for the admin endpoints (POST /v1/resign,
    /// /v1/drain and /v1/undrain), read once at start: leading and trailing
    /// whitespace (a trailing newline) is removed. Keep it mode 0600. The
    /// token may instead come from ELECTD_ADMIN_TOKEN, never from a flag.
    /// Without one, admin endpoints answer 403.
    #[arg(long, value_name = "FILE", env = "ELECTD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// After resigning (POST /v1/resign without ?to=, or a command that
    /// exited with --exec-on-exit resign), wait this long before
    /// campaigning again, so that leadership moves [default: the TTL].
    #[arg(long, value_name = "DURATION", env = "ELECTD_RESIGN_COOLDOWN")]
    pub resign_cooldown: Option<String>,

    /// Serve /metrics, POST /v1/resign, /v1/drain and /v1/undrain on this
    /// address instead of the main port, e.g. 127.0.0.1:9090. The web view
    /// (/ui) is served on both.
    #[arg(long, value_name = "ADDR:PORT", env = "ELECTD_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,

    /// Log format, on stderr; RUST_LOG sets the level (default info).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = "ELECTD_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// `--api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// etcd's v2 keys API.
    V2,
    /// etcd's v3 API.
    V3,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
