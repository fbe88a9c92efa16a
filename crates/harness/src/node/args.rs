//! electd's command line, built in one place for everything that starts
//! electd: the tests, the container tests, `electd-bench`, `electd-chaos`
//! and `electd-demo`.
//!
//! Each flag is a method with the type of its value; [`NodeArgs::argv`]
//! writes them in one fixed order, `--exec -- COMMAND…` last (everything
//! after `--` is the command's). electd's parser does not care about the
//! order of the flags before it, and a flag set twice here is written once,
//! with its last value.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// electd's flags for one process. Unset flags are not written: electd's
/// defaults (and its `ELECTD_*` environment) apply.
#[derive(Clone, Debug, Default)]
pub struct NodeArgs {
    listen: Option<String>,
    id: Option<String>,
    journal: Option<PathBuf>,
    api: Option<String>,
    ttl: Option<u64>,
    etcd: Option<String>,
    etcd_cacert: Option<PathBuf>,
    etcd_cert: Option<PathBuf>,
    etcd_key: Option<PathBuf>,
    etcd_user: Option<String>,
    etcd_password_file: Option<PathBuf>,
    election: Option<String>,
    advertise: Option<String>,
    state_file: Option<PathBuf>,
    observe: bool,
    no_guardian: bool,
    health_url: Option<String>,
    health_interval: Option<Duration>,
    health_timeout: Option<Duration>,
    health_failures: Option<u32>,
    health_successes: Option<u32>,
    drained: bool,
    priority: Option<i64>,
    preempt: bool,
    preempt_after: Option<Duration>,
    exec_grace: Option<Duration>,
    exec_on_exit: Option<String>,
    admin_listen: Option<String>,
    resign_cooldown: Option<Duration>,
    history_size: Option<usize>,
    shards: Option<u32>,
    exec: Option<Vec<String>>,
}

impl NodeArgs {
    /// No flags at all.
    pub fn new() -> NodeArgs {
        NodeArgs::default()
    }

    /// `--listen ADDR:PORT`.
    fn listen(mut self, addr: impl Into<String>) -> NodeArgs {
        self.listen = Some(addr.into());
        self
    }

    /// `--id ID`.
    pub fn id(mut self, id: impl Into<String>) -> NodeArgs {
        self.id = Some(id.into());
        self
    }

    /// `--journal FILE`.
    fn journal(mut self, file: impl Into<PathBuf>) -> NodeArgs {
        self.journal = Some(file.into());
        self
    }

    /// `--api v2|v3`.
    pub fn api(mut self, api: impl Into<String>) -> NodeArgs {
        self.api = Some(api.into());
        self
    }

    /// `--ttl SECONDS`.
    pub fn ttl(mut self, seconds: u64) -> NodeArgs {
        self.ttl = Some(seconds);
        self
    }

    /// `--etcd URL,URL,…`: the endpoints, comma-separated.
    pub fn etcd<S: AsRef<str>>(mut self, endpoints: impl IntoIterator<Item = S>) -> NodeArgs {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.as_ref().to_owned())
            .collect();
        self.etcd = Some(endpoints.join(","));
        self
    }

    /// `--etcd-cacert FILE`.
    pub fn etcd_cacert(mut self, file: impl Into<PathBuf>) -> NodeArgs {
        self.etcd_cacert = Some(file.into());
        self
    }

    /// `--etcd-cert FILE --etcd-key FILE`: a client certificate and its key.
    pub fn etcd_client_cert(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NodeArgs {
        self.etcd_cert = Some(cert.into());
        self.etcd_key = Some(key.into());
        self
    }

    /// `--etcd-user NAME`.
    pub fn etcd_user(mut self, name: impl Into<String>) -> NodeArgs {
        self.etcd_user = Some(name.into());
        self
    }

    /// `--etcd-password-file FILE`.
    pub fn etcd_password_file(mut self, file: impl Into<PathBuf>) -> NodeArgs {
        self.etcd_password_file = Some(file.into());
        self
    }

    /// `--election NAME`.
    pub fn election(mut self, name: impl Into<String>) -> NodeArgs {
        self.election = Some(name.into());
        self
    }

    /// `--advertise URL`.
    pub fn advertise(mut self, url: impl Into<String>) -> NodeArgs {
        self.advertise = Some(url.into());
        self
    }

    /// `--state-file FILE`.
    pub fn state_file(mut self, file: impl Into<PathBuf>) -> NodeArgs {
        self.state_file = Some(file.into());
        self
    }

    /// `--observe`: never campaigns (and runs without a guardian).
    pub fn observe(mut self) -> NodeArgs {
        self.observe = true;
        self
    }

    /// `--no-guardian`.
    pub fn no_guardian(mut self) -> NodeArgs {
        self.no_guardian = true;
        self
    }

    /// `--health-url URL`.
    pub fn health_url(mut self, url: impl Into<String>) -> NodeArgs {
        self.health_url = Some(url.into());
        self
    }

    /// `--health-interval DURATION`.
    pub fn health_interval(mut self, every: Duration) -> NodeArgs {
        self.health_interval = Some(every);
        self
    }

    /// `--health-timeout DURATION`.
    pub fn health_timeout(mut self, within: Duration) -> NodeArgs {
        self.health_timeout = Some(within);
        self
    }

    /// `--health-failures N`.
    pub fn health_failures(mut self, n: u32) -> NodeArgs {
        self.health_failures = Some(n);
        self
    }

    /// `--health-successes N`.
    pub fn health_successes(mut self, n: u32) -> NodeArgs {
        self.health_successes = Some(n);
        self
    }

    /// `--drained`.
    pub fn drained(mut self) -> NodeArgs {
        self.drained = true;
        self
    }

    /// `--priority=N` (written with `=`, so that a negative one reads as
    /// a value).
    pub fn priority(mut self, priority: i64) -> NodeArgs {
        self.priority = Some(priority);
        self
    }

    /// `--preempt --preempt-after DURATION`.
    pub fn preempt(mut self, after: Duration) -> NodeArgs {
        self.preempt = true;
        self.preempt_after = Some(after);
        self
    }

    /// `--exec-grace DURATION`.
    pub fn exec_grace(mut self, grace: Duration) -> NodeArgs {
        self.exec_grace = Some(grace);
        self
    }

    /// `--exec-on-exit ACTION` (`restart`, `resign`, `exit`).
    pub fn exec_on_exit(mut self, action: impl Into<String>) -> NodeArgs {
        self.exec_on_exit = Some(action.into());
        self
    }

    /// `--admin-listen ADDR:PORT`.
    pub fn admin_listen(mut self, addr: impl Into<String>) -> NodeArgs {
        self.admin_listen = Some(addr.into());
        self
    }

    /// `--resign-cooldown DURATION`.
    pub fn resign_cooldown(mut self, cooldown: Duration) -> NodeArgs {
        self.resign_cooldown = Some(cooldown);
        self
    }

    /// `--history-size N`.
    pub fn history_size(mut self, size: usize) -> NodeArgs {
        self.history_size = Some(size);
        self
    }

    /// `--shards N`.
    pub fn shards(mut self, count: u32) -> NodeArgs {
        self.shards = Some(count);
        self
    }

    /// `--exec -- COMMAND ARGS…`.
    pub fn exec<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>) -> NodeArgs {
        self.exec = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// The flags every node under test has: `--listen`, `--journal`, and
    /// `--id name` unless it was given another id.
    pub(crate) fn for_node(self, name: &str, listen: String, journal: &Path) -> NodeArgs {
        let id = self.id.clone().unwrap_or_else(|| name.to_owned());
        self.listen(listen).id(id).journal(journal)
    }

    /// Whether electd runs without a guardian (`--observe`, `--no-guardian`).
    pub fn unguarded(&self) -> bool {
        self.observe || self.no_guardian
    }

    /// The command line, without the program's name.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = Vec::new();
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                argv.push(format!("--{name}"));
                argv.push(value);
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        flag("listen", self.listen.clone());
        flag("id", self.id.clone());
        flag("journal", path(&self.journal));
        flag("api", self.api.clone());
        flag("ttl", self.ttl.map(|t| t.to_string()));
        flag("etcd", self.etcd.clone());
        flag("etcd-cacert", path(&self.etcd_cacert));
        flag("etcd-cert", path(&self.etcd_cert));
        flag("etcd-key", path(&self.etcd_key));
        flag("etcd-user", self.etcd_user.clone());
        flag("etcd-password-file", path(&self.etcd_password_file));
        flag("election", self.election.clone());
        flag("advertise", self.advertise.clone());
        flag("state-file", path(&self.state_file));
        flag("health-url", self.health_url.clone());
        flag("health-interval", self.health_interval.map(duration));
        flag("health-timeout", self.health_timeout.map(duration));
        flag(
            "health-failures",
            self.health_failures.map(|n| n.to_string()),
        );
        flag(
            "health-successes",
            self.health_successes.map(|n| n.to_string()),
        );
        flag("preempt-after", self.preempt_after.map(duration));
        flag("exec-grace", self.exec_grace.map(duration));
        flag("exec-on-exit", self.exec_on_exit.clone());
        flag("admin-listen", self.admin_listen.clone());
        flag("resign-cooldown", self.resign_cooldown.map(duration));
        flag("history-size", self.history_size.map(|n| n.to_string()));
        flag("shards", self.shards.map(|n| n.to_string()));
        for (name, set) in [
            ("observe", self.observe),
            ("no-guardian", self.no_guardian),
            ("drained", self.drained),
            ("preempt", self.preempt),
        ] {
            if set {
                argv.push(format!("--{name}"));
            }
        }
        if let Some(priority) = self.priority {
            argv.push(format!("--priority={priority}"));
        }
        if let Some(command) = &self.exec {
            argv.push("--exec".to_owned());
            argv.push("--".to_owned());
            argv.extend(command.iter().cloned());
        }
        argv
    }
}

/// A duration as electd reads it: whole seconds as `Ns`, else `Nms`.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_flag_once_and_the_command_last() {
        let argv = NodeArgs::new()
            .api("v3")
            .ttl(2)
            .etcd(["http://a:1", "http://b:2"])
            .priority(-2)
            .preempt(Duration::from_millis(1500))
            .exec(["sh", "-c", "sleep 1"])
            .ttl(4)
            .drained()
            .health_url("http://127.0.0.1:9/")
            .health_interval(Duration::from_millis(100))
            .resign_cooldown(Duration::from_secs(600))
            .history_size(7)
            .for_node("n0", "127.0.0.1:80".to_owned(), Path::new("/j/n0.jsonl"))
            .argv();
        assert_eq!(
            argv.join(" "),
            "--listen 127.0.0.1:80 --id n0 --journal /j/n0.jsonl --api v3 --ttl 4 \
             --etcd http://a:1,http://b:2 --health-url http://127.0.0.1:9/ \
             --health-interval 100ms --preempt-after 1500ms --resign-cooldown 600s \
             --history-size 7 --drained --preempt --priority=-2 --exec -- sh -c sleep 1"
        );
    }

    #[test]
    fn a_node_keeps_the_id_it_was_given() {
        let argv = NodeArgs::new()
            .id("twin")
            .for_node(
                "twin-a",
                "127.0.0.1:80".to_owned(),
                Path::new("/j/twin-a.jsonl"),
            )
            .argv();
        assert_eq!(
            argv.join(" "),
            "--listen 127.0.0.1:80 --id twin --journal /j/twin-a.jsonl"
        );
    }

    #[test]
    fn observers_run_without_a_guardian() {
        assert!(NodeArgs::new().observe().unguarded());
        assert!(NodeArgs::new().no_guardian().unguarded());
        assert!(!NodeArgs::new().drained().unguarded());
    }
}
