//! Errors: one enum per layer, each saying which layer failed and why.

use std::time::Duration;

/// A configuration that cannot work. Reported before anything talks to etcd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No etcd endpoint was given.
    #[error("no etcd endpoint given")]
    NoEndpoints,
    /// An etcd endpoint is not an `http://` or `https://` URL with a host.
    #[error("etcd endpoint {url:?} is not usable: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The election name is empty or contains characters that do not belong in an etcd key.
    #[error("election name {0:?} must be non-empty and use only letters, digits and . _ -")]
    InvalidElection(String),
    /// The candidate id is empty.
    #[error("the candidate id must not be empty")]
    EmptyId,
    /// The TTL is not a whole number of seconds, or outside what the API allows.
    #[error("TTL {ttl:?} is not usable with etcd {api}: {problem}")]
    InvalidTtl {
        /// The TTL asked for.
        ttl: Duration,
        /// The API in use.
        api: crate::api::Api,
        /// What is wrong with it.
        problem: TtlProblem,
    },
    /// The safety margin leaves no usable leadership between renewals.
    #[error("margin {margin:?} must be shorter than a third of the TTL ({ttl:?})")]
    MarginTooLarge {
        /// The margin asked for.
        margin: Duration,
        /// The TTL it must fit in.
        ttl: Duration,
    },
    /// A TLS file cannot be read, or does not hold what it should (PEM
    /// certificates; a private key that matches the certificate).
    #[error("cannot use TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The endpoints' schemes and the TLS settings do not fit together.
    #[error("etcd TLS settings do not fit: {}", misfit.describe(ca_file))]
    Tls {
        /// How they do not fit.
        misfit: TlsMisfit,
        /// Where the CA file is set, for the message.
        ca_file: String,
    },
    /// The etcd user name or password cannot be used.
    #[error("etcd credentials: {0}")]
    Credentials(&'static str),
    /// The state file cannot be read, or does not hold electd's state.
    #[error("cannot use state file {path}: {reason}")]
    StateFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A history size of none, or past the most a history may keep.
    #[error("an election's history keeps 1 to {max} leaderships; {size} is not that")]
    HistorySize {
        /// The size asked for.
        size: usize,
        /// [`crate::MAX_HISTORY_SIZE`].
        max: usize,
    },
    /// A shard count of none, or past the most an election may have.
    #[error("an election is split into 1 to {max} shards; {count} is not that")]
    Shards {
        /// The count asked for.
        count: u32,
        /// [`crate::MAX_SHARDS`].
        max: u32,
    },
    /// A setting that only etcd's v3 API can honour.
    #[error("{what} need etcd's v3 API")]
    NeedsV3 {
        /// What was asked for.
        what: &'static str,
    },
    /// The journal file cannot be opened for appending.
    #[error("cannot open journal {path}: {source}")]
    Journal {
        /// The journal path.
        path: std::path::PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// How TLS settings and endpoints do not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMisfit {
    /// TLS files are given for `http://` endpoints.
    FilesWithoutHttps,
    /// Some endpoints are `http://`, some `https://`.
    MixedSchemes,
    /// `https://` endpoints without a CA.
    NoCa,
}

impl TlsMisfit {
    fn describe(self, ca_file: &str) -> String {
        match self {
            TlsMisfit::FilesWithoutHttps => {
                "TLS files are given but the endpoints are http://: use https:// endpoints"
                    .to_owned()
            }
            TlsMisfit::MixedSchemes => {
                "some endpoints are http:// and some https://: use one scheme for all".to_owned()
            }
            TlsMisfit::NoCa => format!(
                "https:// endpoints need the CA that signed etcd's certificate ({ca_file}; for a \
                 public CA, the system bundle such as /etc/ssl/certs/ca-certificates.crt)"
            ),
        }
    }
}

/// What is wrong with a TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TtlProblem {
    /// etcd takes whole seconds.
    #[error("etcd takes whole seconds")]
    NotWholeSeconds,
    /// Below what the API honours.
    #[error("the TTL must be at least {} s", min.as_secs())]
    TooShort {
        /// The shortest the API honours.
        min: Duration,
    },
    /// Longer than [`crate::MAX_TTL`].
    #[error("the TTL must be at most a day ({} s)", max.as_secs())]
    TooLong {
        /// The longest accepted.
        max: Duration,
    },
}

/// The transport's own error, kept as the source of an [`EtcdError`]
/// (shared, so the error stays cheap to clone into every status reader).
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why an etcd operation failed. Backends return these; the election loop
/// retries, and reports the latest one on its status (and so on `/healthz`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The endpoint could not be reached (connection refused, reset, DNS).
    #[error("etcd unreachable at {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// What the transport said, its causes included.
        detail: String,
        /// The transport's error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// etcd does not know the lease (it expired or was revoked).
    #[error("etcd at {endpoint} has no such lease")]
    LeaseNotFound {
        /// The endpoint tried.
        endpoint: String,
    },
    /// The endpoint did not answer in time.
    #[error("etcd at {endpoint} did not answer within {timeout:?}")]
    Timeout {
        /// The endpoint tried.
        endpoint: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// etcd answers but its v2 API is switched off.
    #[error(
        "v2 API disabled on etcd at {endpoint}: start etcd 3.4/3.5 with --enable-v2=true \
         (etcd 3.6 has no v2 API: use {use_v3})"
    )]
    V2Disabled {
        /// The endpoint tried.
        endpoint: String,
        /// How to choose the v3 API instead ([`crate::Names::api_v3`]).
        use_v3: String,
    },
    /// The etcd member has no raft leader (it is cut off from the majority).
    #[error("etcd member {endpoint} has no leader (cut off from its cluster's majority?)")]
    NoLeader {
        /// The endpoint tried.
        endpoint: String,
    },
    /// etcd refused our credentials.
    #[error("etcd at {endpoint} rejected the credentials: {detail}")]
    AuthFailed {
        /// The endpoint tried.
        endpoint: String,
        /// What etcd said.
        detail: String,
    },
    /// The credentials are valid but lack permission on the election's keys.
    #[error("etcd at {endpoint} denied permission: {detail}")]
    PermissionDenied {
        /// The endpoint tried.
        endpoint: String,
        /// What etcd said.
        detail: String,
    },
    /// The TLS handshake failed: unknown CA, wrong host name, expired or missing certificate.
    #[error("TLS with etcd at {endpoint} failed: {detail}")]
    Tls {
        /// The endpoint tried.
        endpoint: String,
        /// What the TLS layer said, with the file involved where known.
        detail: String,
    },
    /// etcd answered with something that does not parse as its protocol.
    #[error("etcd at {endpoint} sent a malformed {what}: {detail}")]
    Malformed {
        /// The endpoint tried.
        endpoint: String,
        /// Which response it was.
        what: &'static str,
        /// Why it does not parse.
        detail: String,
    },
    /// etcd answered with an error this client does not expect.
    #[error("etcd at {endpoint} refused the request: {detail}")]
    Rejected {
        /// The endpoint tried.
        endpoint: String,
        /// What etcd said.
        detail: String,
    },
}

impl EtcdError {
    /// Unreachable, for a reason of our own (no transport error behind it).
    pub(crate) fn unreachable(endpoint: impl Into<String>, detail: impl Into<String>) -> EtcdError {
        EtcdError::Unreachable {
            endpoint: endpoint.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// Unreachable, because of the transport's `err`, kept as the source.
    pub(crate) fn unreachable_by(
        endpoint: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> EtcdError {
        EtcdError::Unreachable {
            endpoint: endpoint.into(),
            detail: chain(&err),
            source: Some(std::sync::Arc::new(err)),
        }
    }

    /// A short, stable phrase for health checks and metrics labels.
    pub fn summary(&self) -> &'static str {
        match self {
            EtcdError::Unreachable { .. } => "etcd unreachable",
            EtcdError::LeaseNotFound { .. } => "etcd lease not found",
            EtcdError::Timeout { .. } => "etcd not answering",
            EtcdError::V2Disabled { .. } => "v2 API disabled on etcd",
            EtcdError::NoLeader { .. } => "etcd member has no leader",
            EtcdError::AuthFailed { .. } => "etcd rejected the credentials",
            EtcdError::PermissionDenied { .. } => "etcd denied permission",
            EtcdError::Tls { .. } => "TLS with etcd failed",
            EtcdError::Malformed { .. } => "malformed answer from etcd",
            EtcdError::Rejected { .. } => "etcd refused the request",
        }
    }

    /// Whether a fresh connection (possibly to another endpoint) could help.
    /// A refused v3 token counts: a fresh connection authenticates afresh
    /// (etcd refuses tokens issued before a change to its users and roles).
    pub(crate) fn is_connection_problem(&self) -> bool {
        matches!(
            self,
            EtcdError::Unreachable { .. }
                | EtcdError::Timeout { .. }
                | EtcdError::NoLeader { .. }
                | EtcdError::Tls { .. }
                | EtcdError::AuthFailed { .. }
        )
    }
}

/// Why a hand-over to a named candidate did not happen. Unless it says
/// otherwise ([`TransferError::TimedOut`], [`TransferError::Etcd`]), nothing
/// changed: the leader still leads.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// This node does not lead (any more).
    #[error("not the leader")]
    NotLeader,
    /// No live candidate has this id.
    #[error("no live candidate of this election has the id {id:?}")]
    NoSuchCandidate {
        /// The id asked for.
        id: String,
    },
    /// More than one live candidate has this id.
    #[error("{count} live candidates have the id {id:?}: a hand-over needs exactly one")]
    Ambiguous {
        /// The id asked for.
        id: String,
        /// How many have it.
        count: usize,
    },
    /// The candidate may not lead now.
    #[error("the candidate {id:?} may not lead now ({})", if *healthy { "drained" } else { "unhealthy" })]
    Ineligible {
        /// The id asked for.
        id: String,
        /// Whether it is healthy (if so, it is drained).
        healthy: bool,
    },
    /// The candidate is this node.
    #[error("{id:?} is this node, which already leads")]
    ToSelf {
        /// The id asked for.
        id: String,
    },
    /// Hand-overs to a named node need etcd's v3 API.
    #[error("a hand-over to a named node needs etcd's v3 API")]
    NeedsV3,
    /// Nodes of an electd release without the leader record are still in
    /// the election: until they are gone only the oldest key may lead.
    #[error(
        "electd releases without the leader record (or etcd election clients) are still in \
         the election: until they are gone, only the oldest candidate may lead"
    )]
    OldRule,
    /// The leader stepped down and made the hand-over, but the target did
    /// not take it in time: the hand-over was withdrawn and the ordinary
    /// succession goes on.
    #[error("the candidate did not take over in time; the ordinary succession goes on")]
    TimedOut {
        /// Who leads now, if anyone is known.
        leader: Option<crate::status::Leader>,
    },
    /// etcd failed the hand-over. The leader stepped down; if the record
    /// could not be released it expires with its lease.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// Errors of the library API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// etcd could not complete the operation.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// This election was configured as an observer, which never campaigns.
    #[error("an observer never campaigns")]
    Observer,
    /// The election task has stopped (it was shut down).
    #[error("the election has been shut down")]
    Stopped,
    /// A claim of the other etcd API than this election's.
    #[error("a claim of the other etcd API: {0:?}")]
    OtherApi(crate::claim::Claim),
    /// What only etcd's v3 API can do, asked of an election on v2.
    #[error("{what} needs etcd's v3 API")]
    NeedsV3 {
        /// What was asked for.
        what: &'static str,
    },
}

/// Flattens an error and its sources into one line, for errors that only
/// reach us as foreign types (transport errors hide the useful part in `source()`).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
