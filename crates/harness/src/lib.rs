//! Test support for electd: real processes, owned and reaped.
//!
//! * [`etcd`]: etcd members on free loopback ports with temporary data dirs;
//! * [`node`]: `electd` processes, with signals and HTTP helpers, and
//!   [`node::NodeArgs`], electd's command line for every caller;
//! * [`container`]: electd's container image run by podman;
//! * [`checker`]: proves the safety invariant over the journals of a run;
//! * [`proxy`]: a TCP fault proxy (delay, silent and loud partitions);
//! * [`app`]: a switchable health endpoint for `--health-url`;
//! * [`prometheus`]: a Prometheus server scraping nodes and evaluating rules;
//! * `store.rs`: what can happen to etcd's store (wipe, restore from a
//!   snapshot, a member replaced, someone else's keys and leases), as
//!   methods of [`etcd::Etcd`];
//! * [`ticks`]: what `--exec` commands under test record, read back;
//! * [`tls`]: test certificates for etcd with TLS;
//! * [`eventually`]: polls a condition with a deadline instead of sleeping;
//! * [`http`]: HTTP clients for tests;
//! * [`workspace_binary`], [`workspace_example`]: programs of other packages
//!   of the workspace (`electd`, for a test outside its package);
//! * [`keep_if_failing`]: a failing run's files kept, with `ELECTD_TEST_KEEP=1`.
//!
//! Every process started here is a child owned by a guard whose `Drop` kills
//! it (SIGKILL, by PID) and reaps it, also when a test fails; a test's own
//! processes can be given to the same guard, [`process::Owned`].

pub mod app;
pub mod checker;
pub mod container;
pub mod etcd;
pub mod node;
pub mod process;
pub mod procs;
pub mod prometheus;
pub mod proxy;
mod store;
pub mod ticks;
pub mod tls;
pub mod wire;

use std::collections::HashSet;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Raises this process's open-file limit to its hard maximum, for runs that
/// open hundreds or thousands of sockets; best effort.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    if let Some(max) = getrlimit(Resource::Nofile).maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

/// A loopback port nobody listens on, never handed out twice by this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("the loopback interface accepts binds");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// A configuration builder on *ring*, the one crypto provider in electd.
fn rustls_builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
}

/// An HTTP client builder for loopback tests, without proxies.
///
/// reqwest is built without a crypto provider of its own (electd brings
/// *ring*), so every client needs a TLS configuration, even one that only
/// speaks `http://`: this one trusts nothing. Use it instead of
/// `reqwest::Client::new()`, which panics for want of a provider.
pub fn http() -> reqwest::ClientBuilder {
    http_with_tls(
        rustls_builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

fn http_with_tls(config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
}

/// Polls `check` every 10 ms until it yields a value or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// `CLOCK_MONOTONIC` nanoseconds: the clock of every journal.
pub fn now_ns() -> u64 {
    elect::monotonic_ns()
}

/// With `ELECTD_TEST_KEEP=1`, a failing test (one that is panicking) keeps
/// the files of `dir` (journals, logs) in a new directory it names, for
/// reading afterwards. For the `Drop` of what owns `dir`.
pub fn keep_if_failing(dir: &Path) {
    if !std::thread::panicking() || std::env::var_os("ELECTD_TEST_KEEP").is_none() {
        return;
    }
    let Ok(kept) = tempfile::Builder::new().prefix("electd-failed-").tempdir() else {
        return;
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), kept.path().join(entry.file_name()));
        }
    }
    eprintln!("the run's files are kept in {}", kept.keep().display());
}

/// A binary of this workspace, `target/<profile>/<name>`, for a test of
/// another package: `cargo test` gives a test the binaries of its own
/// package (`CARGO_BIN_EXE_<name>`) and builds the others only when it tests
/// their packages too. When it is missing (`cargo test -p <this package>`),
/// it is built here, with the cargo that built the test; one already there
/// is used as it is.
pub fn workspace_binary(package: &str, name: &str) -> PathBuf {
    built(package, "--bin", name, &profile_dir().join(name))
}

/// An example of this workspace, `target/<profile>/examples/<name>`. A plain
/// `cargo test` builds the tested packages' examples; a run of one test
/// target (`--test NAME`) does not, so it is built here then, as
/// [`workspace_binary`] does.
pub fn workspace_example(package: &str, name: &str) -> PathBuf {
    built(
        package,
        "--example",
        name,
        &profile_dir().join("examples").join(name),
    )
}

/// `target`, where a test leaves what a person looks at afterwards
/// (screenshots): the running test is `target/<profile>/deps/<test>`.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("target/<profile> is in target")
        .to_owned()
}

/// `target/<profile>`: the running test is `target/<profile>/deps/<test>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_owned()
}

fn built(package: &str, kind: &str, name: &str, path: &Path) -> PathBuf {
    if !path.exists() {
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--locked", "-p", package, kind, name])
            .args(["--profile", profile])
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo could not build {kind} {name} of {package}"
        );
    }
    path.to_owned()
}
