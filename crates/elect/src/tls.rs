//! TLS to etcd: the certificate files, read and checked once when the
//! configuration is built, and what a failed handshake means in words a
//! user can act on.
//!
//! One TLS stack and one crypto provider serve both APIs: rustls with
//! *ring*. The v3 client (tonic, through etcd-client's `tls` feature) is
//! given the PEM files; the v2 client (reqwest, built without a provider of
//! its own) is given the [`rustls::ClientConfig`] built here. Neither relies
//! on a process-wide default provider, so a program embedding this library
//! keeps whatever default it installs.

use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::{Host, Url};

use crate::error::{ConfigError, EtcdError};

/// The certificate authorities to trust and, for mutual TLS, our certificate.
#[derive(Clone)]
pub(crate) struct Tls {
    ca_path: PathBuf,
    ca_pem: Vec<u8>,
    client: Option<ClientCert>,
    config: Arc<rustls::ClientConfig>,
    /// Where the client certificate is set, for the message that none is.
    client_cert_setting: String,
}

#[derive(Clone)]
struct ClientCert {
    cert_path: PathBuf,
    cert_pem: Vec<u8>,
    /// The private key. Never printed: [`Tls`]'s `Debug` shows paths only.
    key_pem: Vec<u8>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca_path)
            .field("cert", &self.client.as_ref().map(|c| &c.cert_path))
            .finish_non_exhaustive()
    }
}

/// A configuration builder with the provider every TLS connection to etcd uses.
fn builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring's default provider supports the default TLS versions")
}

/// For a client that never speaks TLS: reqwest builds a TLS configuration
/// for every client, and has no crypto provider of its own to build it with.
pub(crate) fn unused_config() -> rustls::ClientConfig {
    builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| tls_file(path, e.to_string()))
}

fn tls_file(path: &Path, reason: String) -> ConfigError {
    ConfigError::TlsFile {
        path: path.to_owned(),
        reason,
    }
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_file(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_file(path, "holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

impl Tls {
    /// Reads and checks the files: the CA bundle must hold certificates, the
    /// key must be one *ring* can sign with and must match the certificate.
    pub(crate) fn load(
        ca: &Path,
        client: Option<(&Path, &Path)>,
        names: &crate::Names,
    ) -> Result<Tls, ConfigError> {
        let ca_pem = read(ca)?;
        let mut roots = rustls::RootCertStore::empty();
        // Like tonic: a system bundle may hold a certificate webpki cannot
        // use; the others still count.
        let (added, _) = roots.add_parsable_certificates(certificates(ca, &ca_pem)?);
        if added == 0 {
            return Err(tls_file(ca, "holds no usable CA certificate".to_owned()));
        }
        let builder = builder().with_root_certificates(roots);
        let (config, client) = match client {
            None => (builder.with_no_client_auth(), None),
            Some((cert_path, key_path)) => {
                let cert_pem = read(cert_path)?;
                let chain = certificates(cert_path, &cert_pem)?;
                let key_pem = read(key_path)?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|e| tls_file(key_path, format!("not a PEM private key: {e}")))?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    tls_file(
                        key_path,
                        format!("does not go with certificate {}: {e}", cert_path.display()),
                    )
                })?;
                let client = ClientCert {
                    cert_path: cert_path.to_owned(),
                    cert_pem,
                    key_pem,
                };
                (config, Some(client))
            }
        };
        Ok(Tls {
            ca_path: ca.to_owned(),
            ca_pem,
            client,
            config: Arc::new(config),
            client_cert_setting: names.client_cert.clone(),
        })
    }

    /// The rustls configuration, for the v2 client.
    pub(crate) fn rustls_config(&self) -> rustls::ClientConfig {
        (*self.config).clone()
    }

    /// The same trust and identity, for the v3 client. The host name checked
    /// is the endpoint's.
    pub(crate) fn tonic_config(&self) -> etcd_client::TlsOptions {
        let options = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&self.ca_pem));
        match &self.client {
            Some(c) => options.identity(etcd_client::Identity::from_pem(&c.cert_pem, &c.key_pem)),
            None => options,
        }
    }

    /// Asks etcd itself why a TLS connection to `endpoint` broke, when the
    /// transport could not say. A TLS 1.3 server judges our certificate (or
    /// its absence) only after the handshake, and its alert races the
    /// client's first write: h2 writes at once and may see nothing but a
    /// broken pipe. Here nothing is written: the handshake, then one read,
    /// which brings the alert, or nothing within `limit` from a server that
    /// accepted us.
    async fn diagnose(&self, endpoint: &str, limit: Duration) -> Option<rustls::Error> {
        let url = Url::parse(endpoint).ok()?;
        let port = url.port_or_known_default()?;
        let (name, addr): (ServerName<'static>, String) = match url.host()? {
            Host::Domain(d) => (
                ServerName::try_from(d.to_owned()).ok()?,
                format!("{d}:{port}"),
            ),
            Host::Ipv4(ip) => (IpAddr::V4(ip).into(), format!("{ip}:{port}")),
            Host::Ipv6(ip) => (IpAddr::V6(ip).into(), format!("[{ip}]:{port}")),
        };
        let tcp = timeout(limit, TcpStream::connect(addr)).await.ok()?.ok()?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let mut stream = match timeout(limit, connector.connect(name, tcp)).await.ok()? {
            Ok(stream) => stream,
            Err(err) => return rustls_error(&err),
        };
        let mut byte = [0u8; 1];
        match timeout(limit, stream.read(&mut byte)).await {
            Ok(Err(err)) => rustls_error(&err),
            _ => None,
        }
    }

    /// Says what a failed handshake means, naming the file involved.
    pub(crate) fn explain(&self, err: &rustls::Error) -> String {
        let ca = self.ca_path.display();
        match err {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "unknown certificate authority: etcd's certificate is not signed by a CA in {ca} ({err})"
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!(
                        "wrong host name: etcd's certificate does not name the host in the endpoint URL \
                         ({err}); use a name the certificate holds, or reissue it"
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("expired certificate: etcd's certificate has expired ({err})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!(
                        "certificate not yet valid: etcd's certificate starts later ({err}); check this host's clock"
                    )
                }
                _ => format!("etcd's certificate was refused, checked against {ca}: {err}"),
            },
            rustls::Error::AlertReceived(alert) if REFUSALS.contains(alert) => match &self.client {
                None => format!(
                    "missing client certificate: etcd requires one and none is configured ({})",
                    self.client_cert_setting
                ),
                Some(client) => format!(
                    "client certificate refused: etcd does not accept {} (expired, or not signed \
                     by a CA etcd trusts; etcd sent the alert {alert:?})",
                    client.cert_path.display()
                ),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                format!("etcd did not answer with TLS (is the endpoint http://?): {err}")
            }
            _ => err.to_string(),
        }
    }
}

/// `err`, or the TLS problem behind it when the connection to a TLS
/// endpoint broke without saying why (see [`Tls::diagnose`]).
pub(crate) async fn diagnosed(tls: Option<&Tls>, err: EtcdError, limit: Duration) -> EtcdError {
    if let (Some(tls), EtcdError::Unreachable { endpoint, .. }) = (tls, &err)
        && let Some(cause) = tls.diagnose(endpoint, limit).await
    {
        return EtcdError::Tls {
            endpoint: endpoint.clone(),
            detail: tls.explain(&cause),
        };
    }
    err
}

/// The rustls error behind `err`, if the failure was the TLS handshake.
///
/// Transports wrap it in `io::Error`, whose `source()` skips the wrapped
/// error itself, so each `io::Error` in the chain is opened by hand. And
/// h2 keeps only the text of an I/O error: an alert that arrives after the
/// handshake (TLS 1.3 servers refuse a client certificate that way) reaches
/// a v3 client as rustls's words for it, which are matched here.
pub(crate) fn rustls_error(err: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(found) = rustls_error(inner) {
                return Some(found);
            }
            let text = inner.to_string();
            if let Some(alert) = REFUSALS
                .iter()
                .map(|a| rustls::Error::AlertReceived(*a))
                .find(|a| a.to_string() == text)
            {
                return Some(alert);
            }
        }
        next = e.source();
    }
    None
}

/// The alerts a TLS server sends when it refuses a client certificate (or
/// the lack of one).
const REFUSALS: &[AlertDescription] = &[
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnknownCA,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateRevoked,
    AlertDescription::CertificateUnknown,
    AlertDescription::UnsupportedCertificate,
];

#[cfg(test)]
mod tests {
    use super::*;
    use harness::tls::Pki;

    fn tls(pki: &Pki, client: bool) -> Tls {
        let client = client.then_some((pki.client_cert.as_path(), pki.client_key.as_path()));
        let names = crate::Names {
            client_cert: "--etcd-cert and --etcd-key".to_owned(),
            ..crate::Names::default()
        };
        Tls::load(&pki.ca, client, &names).unwrap()
    }

    #[test]
    fn bad_files_are_configuration_errors_naming_the_file() {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (ca, client, file) in [
            (&missing, None, &missing),
            (&garbage, None, &garbage),
            (&pki.ca, Some((&pki.client_cert, &missing)), &missing),
            (&pki.ca, Some((&pki.client_cert, &pki.ca)), &pki.ca),
            // A key that belongs to another certificate.
            (
                &pki.ca,
                Some((&pki.client_cert, &pki.server_key)),
                &pki.server_key,
            ),
        ] {
            let client = client.map(|(c, k)| (c.as_path(), k.as_path()));
            match Tls::load(ca, client, &crate::Names::default()) {
                Err(ConfigError::TlsFile { path, reason }) => assert_eq!(&path, file, "{reason}"),
                other => panic!("{ca:?} {client:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_paths_not_keys() {
        let pki = Pki::new();
        let shown = format!("{:?}", tls(&pki, true));
        assert!(shown.contains("client.pem"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn each_certificate_problem_has_its_own_words() {
        let pki = Pki::new();
        let without = tls(&pki, false);
        let with = tls(&pki, true);
        let ca = pki.ca.display().to_string();
        let cert = pki.client_cert.display().to_string();
        let invalid = |e| rustls::Error::InvalidCertificate(e);
        for (tls, err, words) in [
            (
                &with,
                invalid(CertificateError::UnknownIssuer),
                vec!["unknown certificate authority", &ca],
            ),
            (
                &with,
                invalid(CertificateError::NotValidForName),
                vec!["wrong host name"],
            ),
            (
                &with,
                invalid(CertificateError::Expired),
                vec!["expired certificate"],
            ),
            (
                &with,
                invalid(CertificateError::NotValidYet),
                vec!["not yet valid", "clock"],
            ),
            (
                &without,
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                vec!["missing client certificate", "--etcd-cert"],
            ),
            (
                &with,
                rustls::Error::AlertReceived(AlertDescription::BadCertificate),
                vec!["client certificate refused", &cert],
            ),
        ] {
            let text = tls.explain(&err);
            for word in words {
                assert!(text.contains(word), "{err:?}: {text}");
            }
        }
    }

    #[test]
    fn rustls_errors_are_found_inside_io_errors_and_their_text() {
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        // As tokio-rustls reports it: the rustls error inside an io::Error.
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, alert.clone());
        assert_eq!(rustls_error(&wrapped), Some(alert.clone()));
        // As h2 reports it: an io::Error rebuilt from the text alone.
        let rebuilt = std::io::Error::new(std::io::ErrorKind::InvalidData, alert.to_string());
        assert_eq!(rustls_error(&rebuilt), Some(alert));
        let other = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        assert_eq!(rustls_error(&other), None);
    }
}
