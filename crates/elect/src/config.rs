//! What an election needs to know, validated once, before anything talks to etcd.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::error::ConfigError;
use crate::telemetry::{NoTelemetry, Telemetry};
use crate::tls::Tls;

/// Which etcd API speaks for the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The v2 keys API: one key with a TTL (the seed's protocol; etcd 3.4/3.5 with `--enable-v2`).
    V2,
    /// The v3 API: a lease and a key per candidate, one leader record whose revision is the term.
    V3,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        })
    }
}

impl Api {
    /// The shortest TTL the API can honour: v2 takes whole seconds, and a v3
    /// lease is never granted for less than 2 s.
    pub fn min_ttl(self) -> Duration {
        match self {
            Api::V2 => Duration::from_secs(1),
            Api::V3 => Duration::from_secs(2),
        }
    }
}

/// A validated election configuration. Build it with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) endpoints: Vec<String>,
    pub(crate) election: String,
    pub(crate) id: String,
    pub(crate) advertise: String,
    pub(crate) ttl: Duration,
    pub(crate) margin: Duration,
    pub(crate) api: Api,
    pub(crate) observer: bool,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) telemetry: Arc<dyn Telemetry>,
    pub(crate) tls: Option<Tls>,
    pub(crate) credentials: Option<Credentials>,
}

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
            .field("ttl", &self.ttl)
            .field("margin", &self.margin)
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
        self.ttl
    }
    /// How long before the lease could expire at etcd a leader stops calling itself leader.
    pub fn margin(&self) -> Duration {
        self.margin
    }
    /// The etcd API.
    pub fn api(&self) -> Api {
        self.api
    }
    /// Whether this election only observes.
    pub fn is_observer(&self) -> bool {
        self.observer
    }
    /// How often a claim is renewed: a third of the TTL, so two renewals can
    /// fail before the deadline.
    pub fn renew_interval(&self) -> Duration {
        self.ttl / 3
    }
}

/// The longest TTL accepted: a day. Failover takes about a TTL, so a longer
/// one is a mistake, and it keeps every deadline far from `Instant` overflow.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// The default safety margin: 2 % of the TTL, at least 50 ms.
///
/// The deadline is measured from the *send* time of an acknowledged renewal,
/// so network delay is already on the safe side; what remains is the rate
/// difference between our clock and etcd's. NTP slews a clock by at most
/// 500 ppm (0.05 %), so 2 % is forty times that, and the 50 ms floor also
/// covers the time a `SIGKILL` sent at the deadline takes to land.
pub fn default_margin(ttl: Duration) -> Duration {
    (ttl / 50).max(Duration::from_millis(50))
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
    /// Safety margin subtracted from every deadline (default: [`default_margin`]).
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

    /// Checks the configuration and produces a [`Config`]. TLS files are
    /// read and checked here.
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| normalize_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls_for(
            &endpoints,
            self.ca_file.as_deref(),
            self.client_cert.as_ref(),
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
        let ttl = self.ttl;
        if ttl.subsec_nanos() != 0 {
            return Err(ConfigError::InvalidTtl {
                ttl,
                api: self.api,
                reason: "etcd takes whole seconds",
            });
        }
        if ttl < self.api.min_ttl() {
            return Err(ConfigError::InvalidTtl {
                ttl,
                api: self.api,
                reason: match self.api {
                    Api::V2 => "the TTL must be at least 1 s",
                    Api::V3 => "etcd never grants a lease shorter than 2 s",
                },
            });
        }
        if ttl > MAX_TTL {
            return Err(ConfigError::InvalidTtl {
                ttl,
                api: self.api,
                reason: "the TTL must be at most a day (86400 s)",
            });
        }
        let margin = self.margin.unwrap_or_else(|| default_margin(ttl));
        if margin >= ttl / 3 {
            return Err(ConfigError::MarginTooLarge { margin, ttl });
        }
        Ok(Config {
            endpoints,
            election: self.election,
            id,
            advertise: self.advertise,
            ttl,
            margin,
            api: self.api,
            observer: self.observer,
            journal: self.journal,
            state_file: self.state_file,
            telemetry: self.telemetry,
            tls,
            credentials: self.credentials,
        })
    }
}

/// TLS for all endpoints or for none: both etcd clients use one setting for
/// every endpoint they rotate through.
fn tls_for(
    endpoints: &[String],
    ca_file: Option<&std::path::Path>,
    client_cert: Option<&(PathBuf, PathBuf)>,
) -> Result<Option<Tls>, ConfigError> {
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
            return Err(ConfigError::Tls(
                "TLS files are given but the endpoints are http://: use https:// endpoints",
            ));
        }
        return Ok(None);
    }
    if https < endpoints.len() {
        return Err(ConfigError::Tls(
            "some endpoints are http:// and some https://: use one scheme for all",
        ));
    }
    let Some(ca_file) = ca_file else {
        return Err(ConfigError::Tls(
            "https:// endpoints need the CA that signed etcd's certificate (--etcd-cacert FILE; \
             for a public CA, the system bundle such as /etc/ssl/certs/ca-certificates.crt)",
        ));
    };
    let client = client_cert.map(|(cert, key)| (cert.as_path(), key.as_path()));
    Tls::load(ca_file, client).map(Some)
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
pub(crate) fn normalize_endpoint(raw: &str) -> Result<String, ConfigError> {
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
        return Err(invalid(
            "credentials do not belong in the URL (use --etcd-user)".to_owned(),
        ));
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
            normalize_endpoint("http://127.0.0.1:2379/").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize_endpoint("https://etcd.example").unwrap(),
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
            assert!(normalize_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ttl_and_margin_are_validated_per_api() {
        let v3 = Config::builder().api(Api::V3);
        assert!(v3.clone().ttl(Duration::from_secs(1)).build().is_err());
        assert!(v3.clone().ttl(Duration::from_millis(2500)).build().is_err());
        let cfg = v3.ttl(Duration::from_secs(2)).build().unwrap();
        assert_eq!(cfg.margin(), Duration::from_millis(50));
        let v2 = Config::builder().api(Api::V2);
        assert!(v2.clone().ttl(Duration::ZERO).build().is_err());
        assert!(v2.clone().ttl(MAX_TTL).build().is_ok());
        assert!(v2.clone().ttl(MAX_TTL * 2).build().is_err());
        assert!(v2.clone().ttl(Duration::from_secs(1)).build().is_ok());
        assert!(
            v2.ttl(Duration::from_secs(3))
                .margin(Duration::from_secs(1))
                .build()
                .is_err()
        );
    }

    #[test]
    fn tls_goes_with_https_endpoints_only() {
        let pki = harness::tls::Pki::new();
        let https = Config::builder().endpoints(["https://127.0.0.1:2379"]);
        assert!(matches!(https.clone().build(), Err(ConfigError::Tls(_))));
        let cfg = https.clone().ca_file(&pki.ca).build().unwrap();
        assert!(cfg.tls.is_some());
        let mixed = https
            .clone()
            .endpoints(["https://127.0.0.1:2379", "http://127.0.0.1:2380"])
            .ca_file(&pki.ca);
        assert!(matches!(mixed.build(), Err(ConfigError::Tls(_))));
        let http = Config::builder().client_cert(&pki.client_cert, &pki.client_key);
        assert!(matches!(http.build(), Err(ConfigError::Tls(_))));
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
