//! Test certificates, made fresh for each test with rcgen (on *ring*, the
//! provider electd uses: a second provider in a test binary makes rustls
//! refuse to pick one), written as PEM files into a temporary directory.
//!
//! etcd's certificate names only `127.0.0.1`, so `https://localhost:PORT`
//! is the "wrong host name" case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

use crate::node::NodeArgs;

/// A CA, etcd's certificate and a client certificate it signed, and a
/// second CA that signed nothing here.
#[derive(Debug)]
pub struct Pki {
    /// Holds the files: they go when the `Pki` does.
    _dir: TempDir,
    /// The CA that signed etcd's and the client's certificates.
    pub ca: PathBuf,
    /// etcd's certificate (for `127.0.0.1` only) and key.
    pub server_cert: PathBuf,
    /// The key of `server_cert`.
    pub server_key: PathBuf,
    /// A client certificate etcd accepts, and its key.
    pub client_cert: PathBuf,
    /// The key of `client_cert`.
    pub client_key: PathBuf,
    /// A CA unrelated to etcd's certificate.
    pub other_ca: PathBuf,
    /// A client certificate signed by `other_ca`, which etcd refuses.
    pub stranger_cert: PathBuf,
    /// The key of `stranger_cert`.
    pub stranger_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, key)
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usages: Vec<ExtendedKeyUsagePurpose>,
    issuer: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = usages;
    let cert = params
        .signed_by(&key, issuer)
        .expect("a signed certificate");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Makes the certificates and writes them out.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("electd-pki-")
            .tempdir()
            .expect("a temporary directory");
        let write = |name: &str, pem: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("a PEM file");
            path
        };
        let (ca_params, ca_key) = ca("electd test CA");
        let ca_pem = ca_params.self_signed(&ca_key).expect("the CA").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        // etcd's grpc-gateway dials etcd itself with the server certificate
        // as its client certificate, so it needs both usages.
        let (server_cert, server_key) = leaf(
            &["127.0.0.1"],
            "etcd",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            &issuer,
        );
        let (client_cert, client_key) = leaf(
            &[],
            "electd",
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            &issuer,
        );
        let (other_params, other_key) = ca("another CA");
        let other_pem = other_params.self_signed(&other_key).expect("a CA").pem();
        let (stranger_cert, stranger_key) = leaf(
            &[],
            "stranger",
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            &Issuer::new(other_params, other_key),
        );
        Pki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("etcd.pem", &server_cert),
            server_key: write("etcd-key.pem", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
            other_ca: write("other-ca.pem", &other_pem),
            stranger_cert: write("stranger.pem", &stranger_cert),
            stranger_key: write("stranger-key.pem", &stranger_key),
            _dir: dir,
        }
    }

    /// etcd's flags: serve clients with TLS and require a client certificate.
    pub fn etcd_flags(&self) -> Vec<String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "--cert-file".into(),
            path(&self.server_cert),
            "--key-file".into(),
            path(&self.server_key),
            "--trusted-ca-file".into(),
            path(&self.ca),
            "--client-cert-auth".into(),
        ]
    }

    /// `args` with the flags of a node etcd accepts: this CA, the client
    /// certificate and its key.
    pub fn electd_args(&self, args: NodeArgs) -> NodeArgs {
        args.etcd_cacert(&self.ca)
            .etcd_client_cert(&self.client_cert, &self.client_key)
    }

    /// A rustls configuration that trusts the CA and presents the client certificate.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("the CA file") {
            roots
                .add(cert.expect("a CA certificate"))
                .expect("a usable CA");
        }
        let chain = CertificateDer::pem_file_iter(&self.client_cert)
            .expect("the client certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("a client certificate");
        let key = PrivateKeyDer::from_pem_file(&self.client_key).expect("the client key");
        crate::rustls_builder()
            .with_root_certificates(Arc::new(roots))
            .with_client_auth_cert(chain, key)
            .expect("a client configuration")
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}
