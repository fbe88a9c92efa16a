//! What the library's test files share.

use std::time::Duration;

use elect::{Api, Config};
use harness::etcd::Etcd;

/// A bound, never a wait: a first campaign on a fresh etcd once took over
/// 10 s here in the full suite on 2 loaded cores.
pub const LIMIT: Duration = Duration::from_secs(30);

/// An election `lib` against `etcd` for candidate `id`, TTL 2 s.
pub fn config(etcd: &Etcd, api: Api, id: &str) -> elect::ConfigBuilder {
    Config::builder()
        .endpoints(etcd.endpoints())
        .election("lib")
        .id(id)
        .advertise(format!("http://127.0.0.1/{id}"))
        .ttl(Duration::from_secs(2))
        .api(api)
}
