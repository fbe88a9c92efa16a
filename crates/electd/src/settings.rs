//! The command line checked into [`Settings`]. Anything wrong here is the
//! user's configuration: one clear line, exit status 2.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use crate::cli::{ApiArg, Cli, LogFormat};

/// Exit status for configuration the user must fix.
pub const BAD_CONFIG: u8 = 2;
use crate::app_check::HealthSpec;
use crate::supervise::exec::{ADMIN_TOKEN_VAR, ETCD_PASSWORD_VAR, ExecSpec, OnExit};

/// Where to serve HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// The seed's positional port, on all addresses.
    AllAddresses(u16),
    /// `--listen`.
    Address(SocketAddr),
}

/// A password or token. Its `Debug` hides it, so it stays out of logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The command line, checked.
#[derive(Debug)]
pub struct Settings {
    pub bind: Bind,
    /// The election, checked by the library; the node's id and advertise
    /// URL are set once the port is bound.
    pub election: elect::Config,
    pub advertise: Option<String>,
    pub id: Option<String>,
    pub observe: bool,
    pub no_guardian: bool,
    pub exec: Option<ExecSpec>,
    pub admin_token: Option<Secret>,
    pub resign_cooldown: Duration,
    pub admin_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// `--health-url` and its settings; `None` without it. (`--drained`,
    /// `--priority` and `--preempt` are the election's.)
    pub health: Option<HealthSpec>,
}

impl Cli {
    /// Checks what clap cannot: ports, URLs, TTL, durations, and flags
    /// that only make sense together. Rules the election itself has (the
    /// time model, what v2 cannot do, the TLS files) are the library's,
    /// checked once when the configuration is built.
    pub fn validate(self) -> Result<Settings, String> {
        let bind = bind(self.port.as_deref(), self.listen.as_deref())?;
        let (api, ttl, margin) = self.timing()?;
        // The library's time model checks the TTL and the margin together.
        let timing = elect::Timing::new(api, ttl, margin).map_err(|e| config_error(&e))?;
        if let Some(advertise) = &self.advertise {
            check_advertise(advertise)?;
        }
        if self.etcd.iter().all(|e| e.trim().is_empty()) {
            return Err("--etcd needs at least one URL".to_owned());
        }
        let exec = exec_spec(
            self.exec,
            self.command,
            self.exec_grace.as_deref(),
            self.exec_on_exit,
            &timing,
        )?;
        if self.observe && exec.is_some() {
            return Err("--observe never leads, so it cannot --exec".to_owned());
        }
        let health = health_spec(HealthArgs {
            url: self.health_url,
            interval: self.health_interval,
            timeout: self.health_timeout,
            failures: self.health_failures,
            successes: self.health_successes,
        })?;
        let priority = parse_priority(self.priority.as_deref())?;
        let history_size = parse_history_size(self.history_size.as_deref())?;
        let shards = parse_shards(self.shards.as_deref())?;
        if shards.is_some() && exec.is_some() {
            return Err(
                "--exec runs one command while this node leads the election, not one per shard: \
                 it cannot go with --shards (a command per shard is not built yet)"
                    .to_owned(),
            );
        }
        let preempt = preempt_after(self.preempt, self.preempt_after.as_deref(), &timing)?;
        if shards.is_some() && preempt.is_some() {
            return Err(
                "--preempt hands the election on by giving up this node's lease, which every \
                 shard it leads is bound to: it cannot go with --shards"
                    .to_owned(),
            );
        }
        if self.observe {
            // Each of these steers this node's own candidacy, and an
            // observer has none: a setting that would do nothing is a mistake.
            let steering = [
                (priority != 0, "--priority"),
                (preempt.is_some(), "--preempt"),
                (health.is_some(), "--health-url"),
                (self.drained, "--drained"),
            ];
            if let Some((_, flag)) = steering.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "--observe never campaigns, so it cannot take {flag}"
                ));
            }
        }
        let admin_token = admin_token(self.admin_token_file.as_deref())?;
        let etcd_client_cert = match (self.etcd_cert, self.etcd_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--etcd-cert and --etcd-key go together".to_owned()),
        };
        let etcd_credentials =
            etcd_credentials(self.etcd_user, self.etcd_password_file.as_deref())?;
        let resign_cooldown = match self.resign_cooldown.as_deref() {
            Some(raw) => parse_duration(raw).map_err(|e| format!("--resign-cooldown: {e}"))?,
            None => timing.ttl(),
        };
        let admin_listen = self
            .admin_listen
            .map(|raw| {
                raw.parse().map_err(|_| {
                    format!("--admin-listen must be ADDR:PORT, like 127.0.0.1:9090; got {raw:?}")
                })
            })
            .transpose()?;
        let mut builder = elect::Config::builder()
            .endpoints(self.etcd.iter().map(|e| e.trim().to_owned()))
            .election(&self.election)
            .ttl(ttl)
            .api(api)
            .observer(self.observe)
            .priority(priority)
            .drained(self.drained)
            // With a check, a candidate only from its first success.
            .healthy(health.is_none())
            .names(flag_names());
        if let Some(after) = preempt {
            builder = builder.preempt_after(after);
        }
        if let Some(size) = history_size {
            builder = builder.history_size(size);
        }
        if let Some(count) = shards {
            builder = builder.shards(count);
        }
        if let Some(margin) = margin {
            builder = builder.margin(margin);
        }
        if let Some(journal) = &self.journal {
            builder = builder.journal(journal);
        }
        if let Some(state_file) = &self.state_file {
            builder = builder.state_file(state_file);
        }
        if let Some(ca) = &self.etcd_cacert {
            builder = builder.ca_file(ca);
        }
        if let Some((cert, key)) = &etcd_client_cert {
            builder = builder.client_cert(cert, key);
        }
        if let Some((user, password)) = &etcd_credentials {
            builder = builder.credentials(user, password.expose());
        }
        // The library checks endpoints, the election name, what only v3
        // can do, and the TLS files (reading them): before anything is bound.
        let election = builder.build().map_err(|e| config_error(&e))?;
        Ok(Settings {
            bind,
            election,
            advertise: self.advertise,
            id: self.id,
            observe: self.observe,
            no_guardian: self.no_guardian,
            exec,
            admin_token,
            resign_cooldown,
            admin_listen,
            log_format: self.log_format,
            health,
        })
    }

    /// `--api`, `--ttl` and `--margin`, parsed (the time model checks them).
    fn timing(&self) -> Result<(elect::Api, Duration, Option<Duration>), String> {
        let ttl_secs: u64 = self.ttl.trim().parse().map_err(|_| {
            format!(
                "--ttl must be a whole number of seconds; got {:?}",
                self.ttl
            )
        })?;
        let api = match self.api {
            ApiArg::V2 => elect::Api::V2,
            ApiArg::V3 => elect::Api::V3,
        };
        let margin = self
            .margin
            .as_deref()
            .map(|m| parse_duration(m).map_err(|e| format!("--margin: {e}")))
            .transpose()?;
        Ok((api, Duration::from_secs(ttl_secs), margin))
    }
}

/// `PORT` or `--listen`.
fn bind(port: Option<&str>, listen: Option<&str>) -> Result<Bind, String> {
    Ok(match (port, listen) {
        (Some(_), Some(_)) => {
            return Err("give either PORT or --listen, not both".to_owned());
        }
        (Some(port), None) => Bind::AllAddresses(parse_port(port)?),
        (None, Some(listen)) => Bind::Address(listen.parse().map_err(|_| {
            format!("--listen must be ADDR:PORT, like 127.0.0.1:8080 or [::1]:8080; got {listen:?}")
        })?),
        (None, None) => Bind::AllAddresses(8080),
    })
}

/// `--exec` with its command, grace and exit policy.
fn exec_spec(
    exec: bool,
    command: Vec<String>,
    grace: Option<&str>,
    on_exit: Option<OnExit>,
    timing: &elect::Timing,
) -> Result<Option<ExecSpec>, String> {
    match (exec, command.is_empty()) {
        (false, false) => Err("a command after `--` needs --exec".to_owned()),
        (false, true) => {
            // Like a command without --exec: a setting that would do
            // nothing is a mistake to point out, not to ignore.
            if grace.is_some() {
                return Err("--exec-grace needs --exec".to_owned());
            }
            if on_exit.is_some() {
                return Err("--exec-on-exit needs --exec".to_owned());
            }
            Ok(None)
        }
        (true, true) => {
            Err("--exec needs the command to run after `--`, like: --exec -- CMD ARGS".to_owned())
        }
        (true, false) => {
            let grace = match grace {
                Some(raw) => parse_duration(raw).map_err(|e| format!("--exec-grace: {e}"))?,
                None => timing.default_grace(),
            };
            if grace >= timing.max_grace() {
                return Err(format!(
                    "--exec-grace {grace:?} does not fit a TTL of {:?}: it must be shorter than \
                     a third of the TTL ({:?}), or the command would be stopped between renewals",
                    timing.ttl(),
                    timing.max_grace()
                ));
            }
            Ok(Some(ExecSpec {
                command,
                grace,
                on_exit: on_exit.unwrap_or(OnExit::Resign),
            }))
        }
    }
}

/// `--priority`.
fn parse_priority(raw: Option<&str>) -> Result<i64, String> {
    match raw {
        Some(raw) => raw.trim().parse::<i64>().map_err(|_| {
            format!("--priority must be a whole number (higher is preferred); got {raw:?}")
        }),
        None => Ok(0),
    }
}

/// `--history-size`: a whole number; the library checks its range.
fn parse_history_size(raw: Option<&str>) -> Result<Option<usize>, String> {
    raw.map(|raw| {
        raw.trim().parse::<usize>().map_err(|_| {
            format!(
                "--history-size must be a whole number of leaderships, 1 to {}; got {raw:?}",
                elect::MAX_HISTORY_SIZE
            )
        })
    })
    .transpose()
}

/// `--shards`: a whole number; the library checks its range.
fn parse_shards(raw: Option<&str>) -> Result<Option<u32>, String> {
    raw.map(|raw| {
        raw.trim().parse::<u32>().map_err(|_| {
            format!(
                "--shards must be a whole number of shards, 1 to {}; got {raw:?}",
                elect::MAX_SHARDS
            )
        })
    })
    .transpose()
}

/// `--preempt` and `--preempt-after`: how long to be eligible before asking.
fn preempt_after(
    preempt: bool,
    after: Option<&str>,
    timing: &elect::Timing,
) -> Result<Option<Duration>, String> {
    match (preempt, after) {
        (false, Some(_)) => Err("--preempt-after needs --preempt".to_owned()),
        (false, None) => Ok(None),
        (true, Some(raw)) => Ok(Some(
            parse_duration(raw).map_err(|e| format!("--preempt-after: {e}"))?,
        )),
        (true, None) => Ok(Some(timing.ttl())),
    }
}

/// The `--health-*` flags as given.
struct HealthArgs {
    url: Option<String>,
    interval: Option<String>,
    timeout: Option<String>,
    failures: Option<String>,
    successes: Option<String>,
}

/// `--health-failures` and `--health-successes` when not given.
const HEALTH_FAILURES: NonZeroU32 = NonZeroU32::new(3).unwrap();
const HEALTH_SUCCESSES: NonZeroU32 = NonZeroU32::MIN;

fn health_spec(args: HealthArgs) -> Result<Option<HealthSpec>, String> {
    let Some(raw) = args.url else {
        let given = [
            (args.interval.is_some(), "--health-interval"),
            (args.timeout.is_some(), "--health-timeout"),
            (args.failures.is_some(), "--health-failures"),
            (args.successes.is_some(), "--health-successes"),
        ];
        return match given.iter().find(|(given, _)| *given) {
            Some((_, flag)) => Err(format!("{flag} needs --health-url")),
            None => Ok(None),
        };
    };
    let url = check_health_url(&raw)?;
    let positive = |flag: &str, raw: Option<&str>, default: Duration| {
        let value = match raw {
            Some(raw) => parse_duration(raw).map_err(|e| format!("{flag}: {e}"))?,
            None => default,
        };
        if value.is_zero() {
            return Err(format!("{flag} must be longer than zero"));
        }
        Ok(value)
    };
    let count = |flag: &str, raw: Option<&str>, default: NonZeroU32| match raw {
        Some(raw) => raw
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| format!("{flag} must be a whole number, at least 1; got {raw:?}")),
        None => Ok(default),
    };
    // A timeout longer than the interval is fine: checks never overlap, a
    // slow one only delays the next.
    Ok(Some(HealthSpec {
        url,
        interval: positive(
            "--health-interval",
            args.interval.as_deref(),
            Duration::from_secs(1),
        )?,
        timeout: positive(
            "--health-timeout",
            args.timeout.as_deref(),
            Duration::from_secs(1),
        )?,
        failures: count(
            "--health-failures",
            args.failures.as_deref(),
            HEALTH_FAILURES,
        )?,
        successes: count(
            "--health-successes",
            args.successes.as_deref(),
            HEALTH_SUCCESSES,
        )?,
    }))
}

/// An `http://` URL with a host, no credentials.
fn check_health_url(raw: &str) -> Result<url::Url, String> {
    let url =
        url::Url::parse(raw).map_err(|e| format!("--health-url {raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "--health-url {raw:?} must be http://: the check is meant for the app beside \
                 electd, not for a service elsewhere"
            ));
        }
        _ => {
            return Err(format!(
                "--health-url {raw:?} must be an http:// URL with a host"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "--health-url {raw:?} must be an http:// URL with a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // A flag value shows in `ps`, and the URL in every failed check's log line.
        return Err(
            "--health-url must not hold a user or password: flag values show in `ps`, and \
             the URL in the log"
                .to_owned(),
        );
    }
    Ok(url)
}

/// How the library's messages name electd's settings: by its flags.
fn flag_names() -> elect::Names {
    let mut names = elect::Names::for_program("electd");
    names.ca_file = "--etcd-cacert FILE".to_owned();
    names.client_cert = "--etcd-cert and --etcd-key".to_owned();
    names.user = "--etcd-user".to_owned();
    names.id = "--id".to_owned();
    names.api_v3 = "--api v3".to_owned();
    names
}

/// A configuration the library refused, in the words of the flags.
pub fn config_error(err: &elect::ConfigError) -> String {
    use elect::{ConfigError, TtlProblem};
    match err {
        ConfigError::InvalidTtl { ttl, api, problem } => {
            let secs = ttl.as_secs();
            match problem {
                _ if secs == 0 => "--ttl must be at least 1 second".to_owned(),
                TtlProblem::TooShort { min } => format!(
                    "--ttl {secs} is too short for --api {api}: etcd never grants a lease shorter \
                     than {} seconds",
                    min.as_secs()
                ),
                TtlProblem::TooLong { max } => format!(
                    "--ttl {secs} is too long: at most {} seconds (a day)",
                    max.as_secs()
                ),
                _ => format!("--ttl: {err}"),
            }
        }
        // v2 is one key that the fastest writer takes: no queue to order,
        // and no room for a history beside it.
        ConfigError::NeedsV3 { what } => match *what {
            "election histories" => {
                "--history-size needs --api v3: v2's one key keeps no history".to_owned()
            }
            "shards" => "--shards needs --api v3: v2's one key has one leader".to_owned(),
            what => {
                let flag = match what {
                    "priorities" => "--priority",
                    "preemption" => "--preempt",
                    other => other,
                };
                format!("{flag} needs --api v3: with v2 the first to write the key leads")
            }
        },
        ConfigError::HistorySize { size, max } => {
            format!("--history-size must be 1 to {max} leaderships; got {size}")
        }
        ConfigError::Shards { count, max } => {
            format!("--shards must be 1 to {max} shards; got {count}")
        }
        err => err.to_string(),
    }
}

/// The etcd user and password: the password from the file or from
/// `ELECTD_ETCD_PASSWORD` (read here, not by clap, so `--help` never shows
/// it); never a flag value, which `ps` would show.
fn etcd_credentials(
    user: Option<String>,
    file: Option<&Path>,
) -> Result<Option<(String, Secret)>, String> {
    let from_env = std::env::var(ETCD_PASSWORD_VAR).ok();
    let password = match (file, from_env) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "give the etcd password once: --etcd-password-file or {ETCD_PASSWORD_VAR}"
            ));
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --etcd-password-file {}: {e}", path.display()))?;
            // `echo pw > file` adds a newline; anything else is the password.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Some(text.strip_suffix('\r').unwrap_or(text).to_owned())
        }
        (None, from_env) => from_env,
    };
    match (user, password) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!(
            "--etcd-user needs a password: --etcd-password-file FILE or {ETCD_PASSWORD_VAR}"
        )),
        (None, Some(_)) => Err("an etcd password is given without --etcd-user".to_owned()),
        (Some(_), Some(password)) if password.is_empty() => {
            Err("the etcd password is empty".to_owned())
        }
        (Some(user), Some(password)) => Ok(Some((user, Secret(password)))),
    }
}

/// The admin token: from the file, or from `ELECTD_ADMIN_TOKEN`; never a flag value.
fn admin_token(file: Option<&Path>) -> Result<Option<Secret>, String> {
    let from_env = std::env::var(ADMIN_TOKEN_VAR).ok();
    let token = match (file, from_env) {
        (Some(_), Some(_)) => {
            return Err(
                "give the admin token once: --admin-token-file or ELECTD_ADMIN_TOKEN".to_owned(),
            );
        }
        (Some(path), None) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --admin-token-file {}: {e}", path.display()))?,
        ),
        (None, from_env) => from_env,
    };
    match token.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => Err("the admin token is empty".to_owned()),
        token => Ok(token.map(Secret)),
    }
}

fn parse_port(raw: &str) -> Result<u16, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("PORT must be a number from 0 to 65535; got {raw:?}"))
}

fn check_advertise(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("--advertise {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "--advertise {raw:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(())
}

/// Reads `250ms`, `2s`, `1.5s`, `1m`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 500ms, 2s or 1m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("{raw:?} is not a duration like 500ms, 2s or 1m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{raw:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["electd"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn the_seed_command_line_works() {
        let s = settings(&["8080"]).unwrap();
        assert_eq!(s.bind, Bind::AllAddresses(8080));
        assert_eq!(s.election.api(), elect::Api::V3);
        assert_eq!(s.election.ttl(), Duration::from_secs(10));
        assert_eq!(s.election.election(), "leader");
        let s = settings(&["--listen", "127.0.0.1:9000", "--api", "v2", "--ttl", "1"]).unwrap();
        assert_eq!(s.bind, Bind::Address("127.0.0.1:9000".parse().unwrap()));
        let s = settings(&["--etcd", "http://a:1,http://b:2"]).unwrap();
        assert_eq!(s.election.endpoints(), ["http://a:1", "http://b:2"]);
        let s = settings(&["8080", "--exec", "--", "sh", "-c", "echo $ELECTD_TERM"]).unwrap();
        let exec = s.exec.unwrap();
        assert_eq!(exec.command, vec!["sh", "-c", "echo $ELECTD_TERM"]);
        assert_eq!(exec.grace, Duration::from_secs(2));
        assert_eq!(exec.on_exit, OnExit::Resign);
        assert_eq!(s.resign_cooldown, Duration::from_secs(10));
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        for (args, needle) in [
            (&["abc"][..], "PORT"),
            (&["70000"], "PORT"),
            (&["--ttl", "0"], "--ttl"),
            (&["--ttl", "1"], "v3"),
            (&["--ttl", "x"], "--ttl"),
            (&["--ttl", "86401"], "--ttl"),
            (&["--ttl", "18446744073709551615"], "--ttl"),
            (&["8080", "--listen", "127.0.0.1:1"], "not both"),
            (&["--listen", "nowhere"], "--listen"),
            (&["--advertise", "not a url"], "--advertise"),
            (&["--margin", "5 parsecs"], "--margin"),
            (&["--margin", "5s", "--ttl", "10"], "margin"),
            (&["--etcd", "127.0.0.1:2379"], "endpoint"),
            (&["--election", "a/b"], "election"),
            (&["--exec"], "CMD"),
            (&["8080", "--exec"], "--exec needs the command"),
            (&["--", "sh"], "--exec"),
            (
                &["--exec-grace", "10s", "--ttl", "3"],
                "--exec-grace needs --exec",
            ),
            (
                &["--exec-on-exit", "restart"],
                "--exec-on-exit needs --exec",
            ),
            (
                &["--exec", "--exec-grace", "4s", "--", "sh"],
                "--exec-grace",
            ),
            (&["--exec", "--observe", "--", "sh"], "--observe"),
            (&["--admin-listen", "x"], "--admin-listen"),
            (
                &["--admin-token-file", "/nonexistent/token"],
                "--admin-token-file",
            ),
            (
                &["--observe", "--health-url", "http://127.0.0.1:9000/"],
                "--observe never campaigns, so it cannot take --health-url",
            ),
            (&["--observe", "--priority", "1"], "cannot take --priority"),
            (&["--observe", "--preempt"], "cannot take --preempt"),
            (&["--observe", "--drained"], "cannot take --drained"),
            (
                &["--api", "v2", "--priority", "-1"],
                "--priority needs --api v3",
            ),
            (&["--api", "v2", "--preempt"], "--preempt needs --api v3"),
            (
                &["--preempt-after", "5s"],
                "--preempt-after needs --preempt",
            ),
            (&["--preempt", "--preempt-after", "soon"], "--preempt-after"),
            (
                &["--history-size", "0"],
                "--history-size must be 1 to 1000 leaderships; got 0",
            ),
            (&["--api", "v2", "--shards", "8"], "--shards needs --api v3"),
            (
                &["--shards", "0"],
                "--shards must be 1 to 100000 shards; got 0",
            ),
            (&["--shards", "100001"], "--shards must be 1 to 100000"),
            (&["--shards", "-3"], "--shards must be a whole number"),
            (&["--shards", "lots"], "--shards must be a whole number"),
            (
                &["--shards", "8", "--exec", "--", "sh"],
                "cannot go with --shards",
            ),
            (&["--shards", "8", "--preempt"], "cannot go with --shards"),
            (
                &["--history-size", "1001"],
                "--history-size must be 1 to 1000 leaderships; got 1001",
            ),
            (
                &["--history-size", "-1"],
                "--history-size must be a whole number of leaderships",
            ),
            (
                &["--history-size", "lots"],
                "--history-size must be a whole number of leaderships",
            ),
            (
                &["--api", "v2", "--history-size", "10"],
                "--history-size needs --api v3",
            ),
            (&["--priority", "high"], "--priority must be a whole number"),
            (&["--priority", "1.5"], "--priority must be a whole number"),
            (
                &["--health-interval", "1s"],
                "--health-interval needs --health-url",
            ),
            (
                &["--health-timeout", "1s"],
                "--health-timeout needs --health-url",
            ),
            (
                &["--health-failures", "2"],
                "--health-failures needs --health-url",
            ),
            (
                &["--health-successes", "2"],
                "--health-successes needs --health-url",
            ),
            (&["--health-url", "not a url"], "is not a URL"),
            (
                &["--health-url", "https://127.0.0.1:9000/"],
                "the app beside electd",
            ),
            (
                &["--health-url", "ftp://127.0.0.1/"],
                "must be an http:// URL",
            ),
            (
                &["--health-url", "http://u:pw@127.0.0.1/"],
                "user or password",
            ),
            (
                &["--health-url", "http://a/", "--health-interval", "0s"],
                "--health-interval must be longer than zero",
            ),
            (
                &["--health-url", "http://a/", "--health-timeout", "0"],
                "--health-timeout must be longer than zero",
            ),
            (
                &["--health-url", "http://a/", "--health-interval", "often"],
                "--health-interval",
            ),
            (
                &["--health-url", "http://a/", "--health-failures", "0"],
                "--health-failures must be a whole number, at least 1",
            ),
            (
                &["--health-url", "http://a/", "--health-successes", "-1"],
                "--health-successes must be a whole number, at least 1",
            ),
        ] {
            let err = settings(args).expect_err(&format!("{args:?} accepted"));
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn steering_flags_default_to_changing_nothing() {
        let s = settings(&["8080"]).unwrap();
        assert_eq!(s.health, None);
        assert!(!s.election.candidacy().drained);
        assert!(s.election.candidacy().healthy);
        assert_eq!(s.election.candidacy().priority, 0);
        assert_eq!(s.election.preempt_after(), None);
        assert_eq!(s.election.history_size(), elect::DEFAULT_HISTORY_SIZE);
        let s = settings(&["--history-size", " 1000 "]).unwrap();
        assert_eq!(s.election.history_size(), 1000);
        // A priority of 0 is no priority: fine on an observer and on v2.
        assert!(settings(&["--observe", "--priority", "0"]).is_ok());
        assert!(settings(&["--api", "v2", "--ttl", "1", "--priority", "0"]).is_ok());
        // Health checks and drain work on v2 too.
        let s = settings(&[
            "--api",
            "v2",
            "--ttl",
            "1",
            "--drained",
            "--health-url",
            "http://127.0.0.1:9000/",
        ])
        .unwrap();
        assert!(s.election.candidacy().drained && s.health.is_some());
        // A checked node starts unhealthy, until its first success.
        assert!(!s.election.candidacy().healthy);
    }

    #[test]
    fn health_settings() {
        let s = settings(&["--health-url", "http://127.0.0.1:9000/ready"]).unwrap();
        assert_eq!(
            s.health.unwrap(),
            HealthSpec {
                url: url::Url::parse("http://127.0.0.1:9000/ready").unwrap(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                failures: NonZeroU32::new(3).unwrap(),
                successes: NonZeroU32::new(1).unwrap(),
            }
        );
        // A timeout longer than the interval is fine: checks never overlap.
        let s = settings(&[
            "--health-url",
            "http://localhost:9000",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "2s",
            "--health-failures",
            "2",
            "--health-successes",
            " 4",
        ])
        .unwrap();
        let health = s.health.unwrap();
        assert_eq!(health.url.as_str(), "http://localhost:9000/");
        assert_eq!(
            (health.interval, health.timeout),
            (Duration::from_millis(200), Duration::from_secs(2))
        );
        assert_eq!((health.failures.get(), health.successes.get()), (2, 4));
    }

    #[test]
    fn priorities_and_preemption() {
        for args in [&["--priority", "-5"][..], &["--priority=-5"]] {
            assert_eq!(
                settings(args).unwrap().election.candidacy().priority,
                -5,
                "{args:?}"
            );
        }
        assert_eq!(
            settings(&["--priority", "7"])
                .unwrap()
                .election
                .candidacy()
                .priority,
            7
        );
        // --preempt waits the TTL by default.
        let s = settings(&["--ttl", "4", "--preempt"]).unwrap();
        assert_eq!(s.election.preempt_after(), Some(Duration::from_secs(4)));
        let s = settings(&["--preempt", "--preempt-after", "1500ms"]).unwrap();
        assert_eq!(
            s.election.preempt_after(),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn the_etcd_password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        for (written, password) in [("pw\n", "pw"), ("pw\r\n", "pw"), (" pw \n\n", " pw \n")] {
            let file = dir.path().join("pw");
            std::fs::write(&file, written).unwrap();
            let (user, secret) = etcd_credentials(Some("u".into()), Some(&file))
                .unwrap()
                .unwrap();
            assert_eq!((user.as_str(), secret.expose()), ("u", password));
            assert!(!format!("{secret:?}").contains("pw"));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }
}
