//! What etcd's errors mean for us. etcd's gRPC codes alone are ambiguous
//! (a wrong password is `InvalidArgument`), so its messages
//! (api/v3rpc/rpctypes) are matched here, and only here.

use std::time::Duration;

use crate::error::EtcdError;
use crate::tls::{self, Tls};

pub(super) const AUTH_NOT_ENABLED: &str = "authentication is not enabled";
const WRONG_PASSWORD: &str = "authentication failed, invalid user ID or password";
pub(super) const USER_EMPTY: &str = "user name is empty";
const OLD_AUTH_REVISION: &str = "revision of auth store is old";
pub(super) const PERMISSION_DENIED: &str = "permission denied";
const LEASE_NOT_FOUND: &str = "lease not found";
const NO_LEADER: &str = "no leader";

/// Why etcd cancelled a watch, as an error.
pub(super) fn watch_cancelled(endpoint: &str, reason: &str, denied: &str) -> EtcdError {
    let endpoint = endpoint.to_owned();
    if reason.contains(NO_LEADER) {
        EtcdError::NoLeader { endpoint }
    } else if reason.contains(PERMISSION_DENIED) {
        EtcdError::PermissionDenied {
            endpoint,
            detail: format!("watch cancelled: {reason}: {denied}"),
        }
    } else {
        EtcdError::Rejected {
            endpoint,
            detail: format!("watch cancelled: {reason}"),
        }
    }
}

/// Sorts an etcd-client error into what it means for us. `tls` names the
/// files when the handshake failed; `user_setting` is where a user is set.
pub(super) fn client_error(
    endpoint: &str,
    err: etcd_client::Error,
    tls: Option<&Tls>,
    user_setting: &str,
) -> EtcdError {
    use etcd_client::Error as E;
    use tonic::Code;
    let endpoint = endpoint.to_owned();
    let handshake = match &err {
        E::GRpcStatus(status) => tls::rustls_error(status),
        E::TransportError(e) => tls::rustls_error(e),
        E::IoError(e) => tls::rustls_error(e),
        _ => None,
    };
    if let (Some(tls), Some(cause)) = (tls, handshake) {
        return EtcdError::Tls {
            endpoint,
            detail: tls.explain(&cause),
        };
    }
    match err {
        E::GRpcStatus(status) => {
            let message = status.message().to_owned();
            match status.code() {
                _ if message.contains(LEASE_NOT_FOUND) => EtcdError::LeaseNotFound { endpoint },
                _ if message.contains(NO_LEADER) => EtcdError::NoLeader { endpoint },
                _ if message.contains(WRONG_PASSWORD) => EtcdError::AuthFailed {
                    endpoint,
                    detail: format!("{message} (wrong user name or password)"),
                },
                _ if message.contains(USER_EMPTY) => EtcdError::AuthFailed {
                    endpoint,
                    detail: format!(
                        "{message}: etcd has authentication enabled and no user is configured \
                         ({user_setting})"
                    ),
                },
                // Tokens issued before a change to etcd's users and roles.
                _ if message.contains(OLD_AUTH_REVISION) => EtcdError::AuthFailed {
                    endpoint,
                    detail: message,
                },
                Code::Unavailable | Code::Cancelled | Code::Unknown => {
                    EtcdError::unreachable_by(endpoint, status)
                }
                Code::DeadlineExceeded => EtcdError::Timeout {
                    endpoint,
                    timeout: Duration::ZERO,
                },
                Code::Unauthenticated => EtcdError::AuthFailed {
                    endpoint,
                    detail: message,
                },
                Code::PermissionDenied => EtcdError::PermissionDenied {
                    endpoint,
                    detail: message,
                },
                code => EtcdError::Rejected {
                    endpoint,
                    detail: format!("{code:?}: {message}"),
                },
            }
        }
        E::TransportError(err) => EtcdError::unreachable_by(endpoint, err),
        E::IoError(err) => EtcdError::unreachable_by(endpoint, err),
        // etcd-client's word when a keep-alive stream opens on a lease with no TTL left.
        E::LeaseKeepAliveError(detail) if detail.contains(LEASE_NOT_FOUND) => {
            EtcdError::LeaseNotFound { endpoint }
        }
        E::LeaseKeepAliveError(detail) => EtcdError::Rejected { endpoint, detail },
        other => EtcdError::Rejected {
            endpoint,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    /// The variant's name: what the table compares.
    fn kind(err: &EtcdError) -> &'static str {
        match err {
            EtcdError::Unreachable { .. } => "unreachable",
            EtcdError::LeaseNotFound { .. } => "lease not found",
            EtcdError::Timeout { .. } => "timeout",
            EtcdError::NoLeader { .. } => "no leader",
            EtcdError::AuthFailed { .. } => "auth failed",
            EtcdError::PermissionDenied { .. } => "permission denied",
            EtcdError::Tls { .. } => "tls",
            EtcdError::Malformed { .. } => "malformed",
            EtcdError::Rejected { .. } => "rejected",
            EtcdError::V2Disabled { .. } => "v2 disabled",
        }
    }

    #[test]
    fn each_grpc_answer_means_one_thing() {
        // (code, etcd's message, what it means), as etcd 3.4/3.5 send them.
        let table = [
            (
                Code::NotFound,
                "etcdserver: requested lease not found",
                "lease not found",
            ),
            (Code::Unavailable, "etcdserver: no leader", "no leader"),
            (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
                "auth failed",
            ),
            (
                Code::InvalidArgument,
                "etcdserver: user name is empty",
                "auth failed",
            ),
            (
                Code::Unauthenticated,
                "etcdserver: revision of auth store is old",
                "auth failed",
            ),
            (
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
                "auth failed",
            ),
            (
                Code::PermissionDenied,
                "etcdserver: permission denied",
                "permission denied",
            ),
            (Code::Unavailable, "transport is closing", "unreachable"),
            (Code::Cancelled, "context canceled", "unreachable"),
            (Code::Unknown, "", "unreachable"),
            (
                Code::DeadlineExceeded,
                "context deadline exceeded",
                "timeout",
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: key is not provided",
                "rejected",
            ),
        ];
        for (code, message, means) in table {
            let err = etcd_client::Error::GRpcStatus(Status::new(code, message));
            let got = client_error("http://e:2379", err, None, "--etcd-user");
            assert_eq!(kind(&got), means, "{code:?} {message:?}");
        }
    }

    #[test]
    fn a_keep_alive_on_a_gone_lease_is_a_lost_lease() {
        let gone = etcd_client::Error::LeaseKeepAliveError("lease not found".into());
        assert_eq!(kind(&client_error("e", gone, None, "u")), "lease not found");
        let other = etcd_client::Error::LeaseKeepAliveError("stream closed".into());
        assert_eq!(kind(&client_error("e", other, None, "u")), "rejected");
    }

    #[test]
    fn each_watch_cancellation_means_one_thing() {
        let table = [
            ("etcdserver: no leader", "no leader"),
            ("etcdserver: permission denied", "permission denied"),
            ("something else", "rejected"),
        ];
        for (reason, means) in table {
            assert_eq!(
                kind(&watch_cancelled("e", reason, "a role")),
                means,
                "{reason}"
            );
        }
    }
}
