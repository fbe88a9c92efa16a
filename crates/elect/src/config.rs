//! What an election needs to know, validated once, before anything talks to etcd.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::api::Api;
use crate::claim::{Claim, ClaimHook};
use crate::error::{ConfigError, TlsMisfit};
use crate::names::Names;
use crate::telemetry::{NoTelemetry, Telemetry};
use crate::timing::Timing;
use crate::tls::Tls;
use crate::value::Candidacy;

/// A validated election configuration. Build it with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) endpoints: Vec<String>,
    pub(crate) election: String,
    pub(crate) id: String,
    pub(crate) advertise: String,
    pub(crate) timing: Timing,
    pub(crate) api: Api,
    pub(crate) observer: bool,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) telemetry: Arc<dyn Telemetry>,
    pub(crate) tls: Option<Tls>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) names: Names,
    /// What this candidate offers at start (health, drain, priority).
    pub(crate) candidacy: Candidacy,
    /// v3: ask a leader of lower priority for leadership once eligible this long.
    pub(crate) preempt_after: Option<Duration>,
    /// Told of each claim before the request that makes it.
    pub(crate) on_claim: Option<ClaimHook>,
    /// v3: how many leaderships the election's history keeps.
    pub(crate) history_size: usize,
    /// v3: how many shards the election is split into, each with a leader.
    pub(crate) shards: Option<u32>,
}

/// How many leaderships an election's history keeps by default.
pub const DEFAULT_HISTORY_SIZE: usize = 100;

/// The most leaderships a history may keep: a read of all of them stays
/// well under etcd's (and gRPC's) message limits even with the longest ids
/// and addresses a value may hold (about 2 KiB an entry).
pub const MAX_HISTORY_SIZE: usize = 1000;

/// The most shards an election may be split into: every node reads and
/// keeps a record per shard, and places them all after every change.
pub const MAX_SHARDS: u32 = 100_000;

/// A user of etcd's authentication and its password.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of every log line and error message.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoints", &self.endpoints)
            .field("election", &self.election)
            .field("id", &self.id)
            .field("advertise", &self.advertise)
            .field("ttl", &self.timing.ttl())
            .field("margin", &self.timing.margin())
            .field("api", &self.api)
            .field("observer", &self.observer)
            .field("journal", &self.journal)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Config {
    /// Starts a configuration with the defaults: `http://127.0.0.1:2379`,
    /// election `leader`, TTL 10 s, API v3.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The etcd endpoints, in the order they are tried.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
    /// The election name.
    pub fn election(&self) -> &str {
        &self.election
    }
    /// This candidate's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// How other nodes reach this candidate.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }
    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.timing.ttl()
    }
    /// How long before the lease could expire at etcd a leader stops calling itself leader.
    pub fn margin(&self) -> Duration {
        self.timing.margin()
    }
    /// Every interval of the election, from the TTL and the margin.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }
    /// The etcd API.
    pub fn api(&self) -> Api {
        self.api
    }
    /// Whether this election only observes.
    pub fn is_observer(&self) -> bool {
        self.observer
    }
    /// The etcd user, when etcd's authentication is used.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user.as_str())
    }
    /// What this candidate offers at start.
    pub fn candidacy(&self) -> Candidacy {
        self.candidacy
    }
    /// How long this candidate is eligible before it asks a leader of lower
    /// priority for leadership; `None`: it never preempts.
    pub fn preempt_after(&self) -> Option<Duration> {
        self.preempt_after
    }
    /// How many leaderships the election's history keeps (v3).
    pub fn history_size(&self) -> usize {
        self.history_size
    }
    /// How many shards the election is split into (v3), if it is.
    pub fn shards(&self) -> Option<u32> {
        self.shards
    }
    /// Whether etcd is reached over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same configuration for a candidate known only now, such as a
    /// program that names itself after the port it was given: its id and
    /// how others reach it.
    pub fn with_identity(
        mut self,
        id: impl Into<String>,
        advertise: impl Into<String>,
    ) -> Result<Config, ConfigError> {
        let id = id.into();
        if id.trim().is_empty() {
            return Err(ConfigError::EmptyId);
        }
        self.id = id;
        self.advertise = advertise.into();
        Ok(self)
    }

    /// The same configuration, reporting counters and timings to `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Config {
        self.telemetry = telemetry;
        self
    }

    /// The same configuration, telling `hook` of each claim first (see
    /// [`ConfigBuilder::on_claim`]).
    pub fn with_on_claim(mut self, hook: impl Fn(&Claim) + Send + Sync + 'static) -> Config {
        self.on_claim = Some(Arc::new(hook));
        self
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] validates it.
#[derive(Clone)]
pub struct ConfigBuilder {
    endpoints: Vec<String>,
    election: String,
    id: Option<String>,
    advertise: String,
    ttl: Duration,
    margin: Option<Duration>,
    api: Api,
    observer: bool,
    journal: Option<PathBuf>,
    state_file: Option<PathBuf>,
    telemetry: Arc<dyn Telemetry>,
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    credentials: Option<Credentials>,
    names: Names,
    candidacy: Candidacy,
    preempt_after: Option<Duration>,
    on_claim: Option<ClaimHook>,
    history_size: Option<usize>,
    shards: Option<u32>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            election: "leader".to_owned(),
            id: None,
            advertise: String::new(),
            ttl: Duration::from_secs(10),
            margin: None,
            api: Api::V3,
            observer: false,
            journal: None,
            state_file: None,
            telemetry: Arc::new(NoTelemetry),
            ca_file: None,
            client_cert: None,
            credentials: None,
            names: Names::default(),
            candidacy: Candidacy::default(),
            preempt_after: None,
            on_claim: None,
            history_size: None,
            shards: None,
        }
    }
}

impl ConfigBuilder {
    /// etcd client URLs; on a connection failure the next one is tried.
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }
    /// The election name (v2 key `/v2/keys/<name>`, v3 prefix `/electd/<name>/`).
    pub fn election(mut self, name: impl Into<String>) -> Self {
        self.election = name.into();
        self
    }
    /// This candidate's id (default: a random one).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// The value others see for this candidate: how to reach it (e.g. its URL).
    pub fn advertise(mut self, advertise: impl Into<String>) -> Self {
        self.advertise = advertise.into();
        self
    }
    /// The lease TTL, in whole seconds (v3: at least 2 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Safety margin subtracted from every deadline (default: [`crate::default_margin`]).
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }
    /// The etcd API (default v3).
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }
    /// Only observe: never campaign.
    pub fn observer(mut self, observer: bool) -> Self {
        self.observer = observer;
        self
    }
    /// Append leadership events to this JSON-lines journal.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }
    /// Keep the term floor and the highest etcd revision seen in this file
    /// (JSON, written atomically), so that a restart still refuses a term at
    /// or below one this node saw, and still notices that etcd's history
    /// went backwards while it was down. A missing file starts afresh.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }
    /// Calls `hook` with each claim (v3: each lease; v2: the value) before
    /// the request that makes it, so that a guardian process holding them
    /// can release them with a [`crate::Releaser`] once this process is
    /// certainly dead. It runs on the election's task: keep it short and
    /// never blocking (e.g. a write of a line to a pipe).
    ///
    /// ```
    /// let config = elect::Config::builder()
    ///     .id("a")
    ///     .on_claim(|claim| eprintln!("about to claim {claim:?}"))
    ///     .build()?;
    /// # Ok::<(), elect::Error>(())
    /// ```
    pub fn on_claim(mut self, hook: impl Fn(&Claim) + Send + Sync + 'static) -> Self {
        self.on_claim = Some(Arc::new(hook));
        self
    }
    /// Receive counters and timings (for metrics).
    pub fn telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Trust the certificate authorities in this PEM file for `https://`
    /// endpoints (required with them). etcd's certificate must also name the
    /// endpoint's host.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// Present this certificate (PEM, optionally followed by its chain) and
    /// private key (PEM) to etcd: mutual TLS, for etcd started with
    /// `--client-cert-auth`.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }
    /// Authenticate to etcd as `user`: v3 with a token (renewed when etcd
    /// says it expired), v2 with HTTP basic authentication against etcd's
    /// separate v2 user store.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// The candidate's priority (v3; default 0): whenever leadership changes,
    /// the next leader is the live, healthy, undrained candidate of the
    /// highest priority (ties: queue order).
    pub fn priority(mut self, priority: i64) -> Self {
        self.candidacy.priority = priority;
        self
    }
    /// Whether the candidate starts healthy (default yes). One that starts
    /// unhealthy stays out of the running (visible, never chosen) until
    /// [`Election::set_healthy`](crate::Election::set_healthy).
    pub fn healthy(mut self, healthy: bool) -> Self {
        self.candidacy.healthy = healthy;
        self
    }
    /// Whether the candidate starts drained (default no): out of the running
    /// until [`Election::set_drained`](crate::Election::set_drained).
    pub fn drained(mut self, drained: bool) -> Self {
        self.candidacy.drained = drained;
        self
    }
    /// v3: once this candidate has been eligible for `after`, ask a leader of
    /// lower priority for leadership, through etcd; that leader hands over
    /// (see [`Leadership::preempted`](crate::Leadership::preempted)).
    pub fn preempt_after(mut self, after: Duration) -> Self {
        self.preempt_after = Some(after);
        self
    }
    /// v3: how many ended leaderships the election's history in etcd keeps,
    /// and how many leaderships [`Election::history`](crate::Election::history)
    /// lists at most (default [`DEFAULT_HISTORY_SIZE`], at most
    /// [`MAX_HISTORY_SIZE`]). A leader trims older entries, off every
    /// hand-over's path, once there are an eighth more than this.
    pub fn history_size(mut self, size: usize) -> Self {
        self.history_size = Some(size);
        self
    }
    /// v3: split the election into `count` shards, numbered from 0, each
    /// with a leader of its own among the candidates (see [`crate::shards`];
    /// 1 to [`MAX_SHARDS`]). The election itself still has its one leader.
    pub fn shards(mut self, count: u32) -> Self {
        self.shards = Some(count);
        self
    }
    /// How messages name settings (default: this builder's methods). A
    /// program with its own flags gives their names, so its users read what
    /// they can type.
    pub fn names(mut self, names: Names) -> Self {
        self.names = names;
        self
    }

    /// Checks the configuration and produces a [`Config`]. TLS files are
    /// read and checked here.
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| normalize_endpoint(e, &self.names))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls_for(
            &endpoints,
            self.ca_file.as_deref(),
            self.client_cert.as_ref(),
            &self.names,
        )?;
        if let Some(credentials) = &self.credentials {
            check_credentials(credentials, self.api)?;
        }
        if !valid_election_name(&self.election) {
            return Err(ConfigError::InvalidElection(self.election));
        }
        let id = match self.id {
            Some(id) if id.trim().is_empty() => return Err(ConfigError::EmptyId),
            Some(id) => id,
            None => format!("elect-{:016x}", rand::random::<u64>()),
        };
        let timing = Timing::new(self.api, self.ttl, self.margin)?;
        if self.api == Api::V2 {
            // One key: nobody can be chosen, only the first to claim leads.
            if self.candidacy.priority != 0 {
                return Err(ConfigError::NeedsV3 { what: "priorities" });
            }
            if self.preempt_after.is_some() {
                return Err(ConfigError::NeedsV3 { what: "preemption" });
            }
            if self.history_size.is_some() {
                return Err(ConfigError::NeedsV3 {
                    what: "election histories",
                });
            }
            if self.shards.is_some() {
                return Err(ConfigError::NeedsV3 { what: "shards" });
            }
        }
        if let Some(count) = self.shards
            && !(1..=MAX_SHARDS).contains(&count)
        {
            return Err(ConfigError::Shards {
                count,
                max: MAX_SHARDS,
            });
        }
        let history_size = self.history_size.unwrap_or(DEFAULT_HISTORY_SIZE);
        if !(1..=MAX_HISTORY_SIZE).contains(&history_size) {
            return Err(ConfigError::HistorySize {
                size: history_size,
                max: MAX_HISTORY_SIZE,
            });
        }
        Ok(Config {
            endpoints,
            election: self.election,
            id,
            advertise: self.advertise,
            timing,
            api: self.api,
            observer: self.observer,
            journal: self.journal,
            state_file: self.state_file,
            telemetry: self.telemetry,
            tls,
            credentials: self.credentials,
            names: self.names,
            candidacy: self.candidacy,
            preempt_after: self.preempt_after,
            on_claim: self.on_claim,
            history_size,
            shards: self.shards,
        })
    }
}

/// TLS for all endpoints or for none: both etcd clients use one setting for
/// every endpoint they rotate through.
fn tls_for(
    endpoints: &[String],
    ca_file: Option<&std::path::Path>,
    client_cert: Option<&(PathBuf, PathBuf)>,
    names: &Names,
) -> Result<Option<Tls>, ConfigError> {
    let misfit = |misfit| ConfigError::Tls {
        misfit,
        ca_file: names.ca_file.clone(),
    };
    // A file that is not there is the first thing to fix, whatever the scheme.
    let client_files = client_cert.into_iter().flat_map(|(c, k)| [c, k]);
    for file in ca_file
        .into_iter()
        .chain(client_files.map(PathBuf::as_path))
    {
        std::fs::File::open(file).map_err(|e| ConfigError::TlsFile {
            path: file.to_owned(),
            reason: e.to_string(),
        })?;
    }
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if https == 0 {
        if ca_file.is_some() || client_cert.is_some() {
            return Err(misfit(TlsMisfit::FilesWithoutHttps));
        }
        return Ok(None);
    }
    if https < endpoints.len() {
        return Err(misfit(TlsMisfit::MixedSchemes));
    }
    let Some(ca_file) = ca_file else {
        return Err(misfit(TlsMisfit::NoCa));
    };
    let client = client_cert.map(|(cert, key)| (cert.as_path(), key.as_path()));
    Tls::load(ca_file, client, names).map(Some)
}

fn check_credentials(credentials: &Credentials, api: Api) -> Result<(), ConfigError> {
    if credentials.user.trim().is_empty() {
        return Err(ConfigError::Credentials("the etcd user name is empty"));
    }
    if api == Api::V2 && credentials.user.contains(':') {
        return Err(ConfigError::Credentials(
            "an etcd v2 user name cannot contain ':' (HTTP basic authentication)",
        ));
    }
    if credentials.password.is_empty() {
        return Err(ConfigError::Credentials("the etcd password is empty"));
    }
    Ok(())
}

fn valid_election_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Accepts `http://host:port` or `https://host:port` (a trailing `/` is fine)
/// and returns it without the trailing slash.
pub(crate) fn normalize_endpoint(raw: &str, names: &Names) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidEndpoint {
        url: raw.to_owned(),
        reason,
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid("no host".to_owned()));
    };
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "an endpoint has no path, query or fragment".to_owned(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "credentials do not belong in the URL (use {})",
            names.user
        )));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid("no port".to_owned()))?;
    Ok(format!("{}://{}:{}", url.scheme(), host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalized_and_checked() {
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:2379/", &Names::default()).unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize_endpoint("https://etcd.example", &Names::default()).unwrap(),
            "https://etcd.example:443"
        );
        for bad in [
            "127.0.0.1:2379",
            "ftp://x:1",
            "http://",
            "http://h:1/v2",
            "http://u:p@h:1",
            "not a url",
        ] {
            assert!(
                normalize_endpoint(bad, &Names::default()).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn tls_goes_with_https_endpoints_only() {
        let pki = harness::tls::Pki::new();
        let https = Config::builder().endpoints(["https://127.0.0.1:2379"]);
        assert!(matches!(
            https.clone().build(),
            Err(ConfigError::Tls { .. })
        ));
        let cfg = https.clone().ca_file(&pki.ca).build().unwrap();
        assert!(cfg.tls.is_some());
        let mixed = https
            .clone()
            .endpoints(["https://127.0.0.1:2379", "http://127.0.0.1:2380"])
            .ca_file(&pki.ca);
        assert!(matches!(mixed.build(), Err(ConfigError::Tls { .. })));
        let http = Config::builder().client_cert(&pki.client_cert, &pki.client_key);
        assert!(matches!(http.build(), Err(ConfigError::Tls { .. })));
    }

    #[test]
    fn the_password_is_checked_and_never_shown() {
        let cfg = Config::builder()
            .credentials("electd", "pa55word")
            .build()
            .unwrap();
        let shown = format!("{cfg:?}");
        assert!(shown.contains("electd"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
        for (api, user, password) in [
            (Api::V3, "", "pw"),
            (Api::V3, "electd", ""),
            (Api::V2, "a:b", "pw"),
        ] {
            let built = Config::builder()
                .api(api)
                .credentials(user, password)
                .build();
            assert!(
                matches!(built, Err(ConfigError::Credentials(_))),
                "{user:?}"
            );
        }
    }

    #[test]
    fn election_names_stay_inside_their_key() {
        for good in ["leader", "jobs.backup-1", "a_b"] {
            assert!(valid_election_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "x?y"] {
            assert!(!valid_election_name(bad), "{bad}");
        }
    }
}
