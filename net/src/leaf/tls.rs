//! TLS on leaf links, as nats-server 2.9.10 does it: the hub sends its INFO in the clear (with
//! `tls_required: true`), then both sides upgrade, the hub as TLS server and the leaf as TLS
//! client (Go: leafnode.go createLeafNode → doTLSServerHandshake on the hub;
//! processLeafnodeInfo → leafClientHandshakeIfNeeded on the leaf, which upgrades when its
//! remote has a `tls` block, its URL is `tls://`, or the hub's INFO asks for it).
//!
//! The hub's side reuses the client port's setup ([`TlsSetup`]: a key pair, and with `verify`
//! the leaf's certificate checked against `ca_file`). The leaf's side trusts `ca_file` (there
//! is no system store here) and presents its own key pair when the remote names one.

use std::sync::Arc;
use std::time::Duration;

use natsd_core::options::{TlsConfig, DEFAULT_TLS_TIMEOUT};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server, TlsConnector};

use crate::tls::{certs, key, TlsError, TlsSetup};

/// The hub's side: the leaf-node listener's TLS.
#[derive(Debug)]
pub(crate) struct LeafTlsServer {
    setup: TlsSetup,
    timeout: Duration,
}

impl LeafTlsServer {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            setup: TlsSetup::new(cfg)?,
            timeout: cfg.timeout,
        })
    }

    /// Server side of the handshake, after our INFO went out in the clear.
    pub(crate) async fn accept<S>(&self, tcp: S) -> Result<server::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        crate::tls::accept_within(&self.setup.acceptor(), self.timeout, tcp).await
    }
}

/// The leaf's side: one remote's TLS.
pub(crate) struct LeafTlsClient {
    connector: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for LeafTlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafTlsClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LeafTlsClient {
    /// From a remote's `tls` block; `None` (a `tls://` URL without one, or a hub that asks
    /// for TLS) trusts nothing, so the handshake fails with a clear error.
    pub(crate) fn new(cfg: Option<&TlsConfig>) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = cfg.and_then(|c| c.ca_file.as_ref()) {
            for c in certs(ca)? {
                roots.add(c)?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match cfg.filter(|c| !c.cert_file.as_os_str().is_empty()) {
            Some(c) => builder.with_client_auth_cert(certs(&c.cert_file)?, key(&c.key_file)?)?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            timeout: cfg.map_or(DEFAULT_TLS_TIMEOUT, |c| c.timeout),
        })
    }

    /// Client side of the handshake; the hub's certificate must name `host` (the remote URL's
    /// host, a DNS name or an IP address).
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
