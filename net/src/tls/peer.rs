//! TLS between servers of a super-cluster — routes and gateways — as nats-server 2.9.10 does
//! it: both sides start the handshake as soon as the TCP connection is up (no INFO in the
//! clear), the dialer as TLS client and the acceptor as TLS server, and each side presents
//! its certificate and verifies the other's against `ca_file` whatever `verify` says. Go:
//! server/opts.go getTLSConfig forces RequireAndVerifyClientCert for cluster and gateway TLS
//! and uses the CA pool for both directions; route.go createRoute and gateway.go
//! createGateway → doTLSHandshake.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::options::TlsConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use super::{certs, key, TlsError};

/// One listener's and its dialers' TLS setup, or a dialer's alone.
pub(crate) struct PeerTls {
    /// `None` for a dialer-only setup (a gateway remote's own `tls` block).
    acceptor: Option<TlsAcceptor>,
    connector: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("timeout", &self.timeout)
            .field("accepts", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

fn roots(ca: Option<&Path>) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    // There is no system store here: the peers verify each other against `ca_file`.
    let ca = ca.ok_or_else(|| {
        TlsError::Material("ca_file is required (servers verify each other)".to_owned())
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c)?;
    }
    Ok(Arc::new(roots))
}

impl PeerTls {
    /// Both sides: a key pair and `ca_file` are required.
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let roots = roots(cfg.ca_file.as_deref())?;
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
            acceptor: Some(TlsAcceptor::from(Arc::new(server))),
            connector: TlsConnector::from(Arc::new(client)),
            timeout: cfg.timeout,
        })
    }

    /// The dialer's side only: `ca_file` is required, the key pair is presented when named
    /// (a peer that verifies, as every nats-server gateway or route does, wants one).
    pub(crate) fn dialer(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let roots = roots(cfg.ca_file.as_deref())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let client = if cfg.cert_file.as_os_str().is_empty() {
            builder.with_no_client_auth()
        } else {
            builder.with_client_auth_cert(certs(&cfg.cert_file)?, key(&cfg.key_file)?)?
        };
        Ok(Self {
            acceptor: None,
            connector: TlsConnector::from(Arc::new(client)),
            timeout: cfg.timeout,
        })
    }

    /// Server side of the handshake on an accepted connection.
    pub(crate) async fn accept<S>(&self, tcp: S) -> Result<server::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(acceptor) = &self.acceptor else {
            return Err(TlsError::Material("no listener TLS configured".to_owned()));
        };
        super::accept_within(acceptor, self.timeout, tcp).await
    }

    /// Client side of the handshake on a dialed connection; the peer's certificate must name
    /// `host` (the URL's host, a DNS name or an IP address) as Go's dialer checks.
    pub(crate) async fn connect<S>(
        &self,
        host: &str,
        tcp: S,
    ) -> Result<client::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        super::connect_within(&self.connector, self.timeout, host, tcp).await
    }
}
