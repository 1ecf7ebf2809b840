//! TLS on routes, as nats-server 2.9.10 does it: both sides start the handshake as soon as the
//! TCP connection is up (no INFO in the clear), the dialer as TLS client and the acceptor as
//! TLS server, and each side presents its certificate and verifies the other's against
//! `ca_file`. Go: server/opts.go getTLSConfig forces RequireAndVerifyClientCert for cluster
//! TLS and uses the CA pool for both directions; route.go createRoute → doTLSHandshake.

use std::sync::Arc;
use std::time::Duration;

use natsd_core::options::TlsConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::tls::{certs, key, TlsError};

/// The route listener's and dialers' TLS setup.
pub(crate) struct RouteTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RouteTls {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let ca = cfg.ca_file.as_ref().ok_or_else(|| {
            TlsError::Material("cluster tls requires ca_file (routes verify each other)".to_owned())
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c)?;
        }
        let roots = Arc::new(roots);
        let chain = certs(&cfg.cert_file)?;
        let private = key(&cfg.key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Material(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private.clone_key())?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            timeout: cfg.timeout,
        })
    }

    /// Server side of the handshake on an accepted route connection.
    pub(crate) async fn accept<S>(&self, tcp: S) -> Result<server::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        crate::tls::accept_within(&self.acceptor, self.timeout, tcp).await
    }

    /// Client side of the handshake on a dialed route; the peer's certificate must name `host`
    /// (the route URL's host, a DNS name or an IP address) as Go's dialer checks.
    pub(crate) async fn connect<S>(
        &self,
        host: &str,
        tcp: S,
    ) -> Result<client::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        crate::tls::connect_within(&self.connector, self.timeout, host, tcp).await
    }
}
