//! TLS material, for both sides: PEM certificate and key files, the client configuration for
//! `rediss://` nodes (the `--tls-*` flags) and the server configuration of the web-config file.
//! Config and the web layer both use it; it uses neither.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A TLS file or setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or used; `what` is the flag or field that named it.
    #[error("{what} {path}: {why}")]
    File {
        /// The flag or web-config field.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The settings do not make a configuration.
    #[error("TLS: {0}")]
    Invalid(String),
}

fn file_error(what: &'static str, path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        what,
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Every certificate of a PEM file; a file without one is an error.
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn read_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(what, path, e))
}

/// The client-side files and switches (the `--tls-*` flags).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientFiles<'a> {
    /// `--tls-ca-cert-file`; the system roots when absent.
    pub ca_cert: Option<&'a Path>,
    /// `--tls-client-cert-file`.
    pub client_cert: Option<&'a Path>,
    /// `--tls-client-key-file`.
    pub client_key: Option<&'a Path>,
    /// `--skip-tls-verification`.
    pub skip_verification: bool,
}

/// The TLS client configuration for `rediss://` nodes.
pub fn client_connector(files: &ClientFiles<'_>) -> Result<TlsConnector, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let builder = if files.skip_verification {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(files.ca_cert)?)
    };
    let config = match (files.client_cert, files.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let certs = read_certs("--tls-client-cert-file", cert_path)?;
            let key = read_key("--tls-client-key-file", key_path)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| file_error("--tls-client-key-file", key_path, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Invalid(
                "--tls-client-cert-file and --tls-client-key-file go together".into(),
            ));
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The trusted roots: the CA file's certificates, else the system's.
fn roots(ca_cert: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            for cert in read_certs("--tls-ca-cert-file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("--tls-ca-cert-file", path, e))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(TlsError::Invalid(
                    "no system CA certificates found; give --tls-ca-cert-file".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// The TLS server configuration of the exporter's own listener (`tls_server_config` of the
/// web-config file).
pub fn server_acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs("cert_file", cert_path)?;
    let key = read_key("key_file", key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Invalid(format!("tls_server_config: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts any server certificate (`--skip-tls-verification`); handshake signatures are still
/// checked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
