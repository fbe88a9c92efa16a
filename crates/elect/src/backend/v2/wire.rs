//! The v2 keys API's wire: etcd's JSON answers and error codes, one HTTP
//! answer and what it means, and the form encoding of requests. Everything
//! here parses what etcd (or anyone in its place) sent: it never panics.

use std::sync::Arc;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::error::EtcdError;

/// etcd's answer to a v2 keys request.
#[derive(Debug, Deserialize)]
pub(super) struct KeysResponse {
    pub(super) action: String,
    pub(super) node: Option<Node>,
}

/// A v2 node. Only the fields electd reads; etcd sends more.
#[derive(Debug, Deserialize)]
pub(super) struct Node {
    pub(super) value: Option<String>,
    /// Seconds left (absent when under a second, as etcd omits zero).
    #[serde(default)]
    pub(super) ttl: Option<i64>,
    /// When the key expires; absent on a key without a TTL.
    #[serde(default)]
    pub(super) expiration: Option<String>,
    #[serde(rename = "createdIndex")]
    pub(super) created_index: u64,
    #[serde(rename = "modifiedIndex")]
    pub(super) modified_index: u64,
}

/// etcd's v2 error body.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(rename = "errorCode")]
    pub(super) error_code: u64,
    pub(super) message: String,
    #[serde(default)]
    pub(super) cause: Option<String>,
    #[serde(default)]
    pub(super) index: Option<u64>,
}

pub(super) const KEY_NOT_FOUND: u64 = 100;
pub(super) const COMPARE_FAILED: u64 = 101;
pub(super) const NODE_EXISTS: u64 = 105;
pub(super) const INDEX_CLEARED: u64 = 401;
pub(super) const ACCESS_DENIED: u64 = 110;

/// One HTTP answer from etcd.
pub(super) struct Reply {
    pub(super) endpoint: String,
    pub(super) status: StatusCode,
    /// `X-Etcd-Index`: the store's index when the request was served.
    pub(super) index: Option<u64>,
    pub(super) body: Vec<u8>,
    /// What this client's errors say beyond etcd's words.
    pub(super) words: Arc<Words>,
}

/// What a v2 client says about etcd's refusals, in its configuration's terms.
#[derive(Debug)]
pub(super) struct Words {
    /// What a refusal (errorCode 110) means: etcd's v2 API answers a wrong
    /// password and a missing permission alike, so say both.
    pub(super) denied: String,
    /// How to choose the v3 API, for "v2 disabled".
    pub(super) use_v3: String,
}

impl Reply {
    pub(super) fn keys(&self, what: &'static str) -> Result<KeysResponse, EtcdError> {
        serde_json::from_slice(&self.body).map_err(|e| self.malformed(what, e.to_string()))
    }

    /// The etcd error in the body, or the right error when there is none.
    pub(super) fn error(&self, what: &'static str) -> Result<ErrorBody, EtcdError> {
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(&self.body) {
            return Ok(body);
        }
        if self.status == StatusCode::NOT_FOUND && self.index.is_none() {
            // etcd 3.4+ without --enable-v2: a plain "404 page not found".
            return Err(EtcdError::V2Disabled {
                endpoint: self.endpoint.clone(),
                use_v3: self.words.use_v3.clone(),
            });
        }
        Err(self.unexpected(what))
    }

    pub(super) fn unexpected(&self, what: &'static str) -> EtcdError {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.trim().chars().take(200).collect();
        match self.status {
            StatusCode::UNAUTHORIZED => EtcdError::AuthFailed {
                endpoint: self.endpoint.clone(),
                detail: text,
            },
            StatusCode::FORBIDDEN => EtcdError::PermissionDenied {
                endpoint: self.endpoint.clone(),
                detail: text,
            },
            status if status.is_success() => {
                self.malformed(what, format!("unexpected status {status}: {text}"))
            }
            status => EtcdError::Rejected {
                endpoint: self.endpoint.clone(),
                detail: format!("{what}: HTTP {status}: {text}"),
            },
        }
    }

    pub(super) fn etcd_error(&self, what: &'static str, err: &ErrorBody) -> EtcdError {
        match err.error_code {
            ACCESS_DENIED => EtcdError::AuthFailed {
                endpoint: self.endpoint.clone(),
                detail: format!("{}: {}", err.message, self.words.denied),
            },
            _ => EtcdError::Rejected {
                endpoint: self.endpoint.clone(),
                detail: format!(
                    "{what}: error {} {}{}",
                    err.error_code,
                    err.message,
                    err.cause
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default()
                ),
            },
        }
    }

    pub(super) fn malformed(&self, what: &'static str, detail: String) -> EtcdError {
        EtcdError::Malformed {
            endpoint: self.endpoint.clone(),
            what,
            detail,
        }
    }
}

pub(super) fn etcd_index(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("X-Etcd-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) fn encode_form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply(status: u16, index: Option<u64>, body: &[u8]) -> Reply {
        Reply {
            endpoint: "http://e:1".into(),
            status: StatusCode::from_u16(status).unwrap(),
            index,
            body: body.to_vec(),
            words: Arc::new(Words {
                denied: "no access".into(),
                use_v3: "--api v3".into(),
            }),
        }
    }

    #[test]
    fn v2_disabled_is_recognised() {
        let r = reply(404, None, b"404 page not found\n");
        assert!(matches!(r.error("read"), Err(EtcdError::V2Disabled { .. })));
        let r = reply(
            404,
            Some(7),
            br#"{"errorCode":100,"message":"Key not found","cause":"/leader","index":7}"#,
        );
        assert_eq!(r.error("read").unwrap().error_code, KEY_NOT_FOUND);
    }

    #[test]
    fn index_cleared_comes_as_http_400() {
        let r = reply(
            400,
            Some(1030),
            br#"{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [1030/7]","index":1030}"#,
        );
        assert_eq!(r.error("watch").unwrap().error_code, INDEX_CLEARED);
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            encode_form(&[("value", r#"{"id":"a b"}"#), ("ttl", "5")]),
            "value=%7B%22id%22%3A%22a+b%22%7D&ttl=5"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let r = reply(status, None, &body);
            let _ = r.keys("x");
            let _ = r.error("x");
        }
    }
}
