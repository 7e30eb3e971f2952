//! rustls configurations for both sides, always with the `ring` provider (the only one
//! the crate builds) and rustls' safe default protocol versions.
//!
//! * [`server_config`]: the certificate the proxy presents (the CAS host's own, in a
//!   full-front deployment), ALPN `h2` then `http/1.1`.
//! * [`client_config`]: how the upstream is verified: against the webpki roots, or
//!   against only the CAs of `--upstream-ca`. There is no way to disable verification.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ProxyError;

/// ALPN protocol ids offered to clients, preferred first.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: a PEM certificate chain and its PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ProxyError> {
    let chain = read_certificates("certificate", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| ProxyError::Pem {
        what: "private key",
        path: key.to_owned(),
        source,
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// The client side: verified against `upstream_ca` alone when given, else the webpki
/// roots. No ALPN here: the upstream connector sets it (HTTP/1.1 only).
pub fn client_config(upstream_ca: Option<&Path>) -> Result<ClientConfig, ProxyError> {
    let mut roots = RootCertStore::empty();
    match upstream_ca {
        Some(path) => {
            for cert in read_certificates("upstream CA", path)? {
                roots.add(cert)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ProxyError> {
    let pem_error = |source| ProxyError::Pem {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(pem_error(rustls_pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}
