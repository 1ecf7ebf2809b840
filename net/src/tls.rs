//! TLS on the client port (rustls): INFO first then upgrade, or handshake first.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::conn::ClientConn;
use natsd_core::options::TlsConfig;
use natsd_core::rng::SplitMix64;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;

use crate::prefixed::Prefixed;
use tokio_rustls::TlsAcceptor;

use crate::client;
use crate::server::Shared;

pub(crate) mod peer;

/// Why TLS could not be set up or a handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file held no usable certificate or key.
    #[error("{0}")]
    Material(String),
    /// rustls refused the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The handshake failed or timed out.
    #[error("handshake: {0}")]
    Handshake(String),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(&pem[..])).collect();
    let certs = certs.map_err(|e| TlsError::Material(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Material(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut BufReader::new(&pem[..]))
        .map_err(|e| TlsError::Material(format!("{}: {e}", path.display())))?
        .ok_or_else(|| TlsError::Material(format!("{}: no private key found", path.display())))
}

/// Server side of a handshake on a server-to-server link, bounded by `timeout`.
pub(crate) async fn accept_within<S>(
    acceptor: &TlsAcceptor,
    timeout: Duration,
    tcp: S,
) -> Result<TlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| TlsError::Handshake("timeout".to_owned()))?
        .map_err(|e| TlsError::Handshake(e.to_string()))
}

/// Client side of a handshake on a dialed server-to-server link, bounded by `timeout`; the
/// peer's certificate must name `host` (the URL's host, a DNS name or an IP address) as Go's
/// dialers check.
pub(crate) async fn connect_within<S>(
    connector: &tokio_rustls::TlsConnector,
    timeout: Duration,
    host: &str,
    tcp: S,
) -> Result<tokio_rustls::client::TlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Handshake(format!("server name {host:?}: {e}")))?;
    tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| TlsError::Handshake("timeout".to_owned()))?
        .map_err(|e| TlsError::Handshake(e.to_string()))
}

/// A listener's TLS setup.
pub(crate) struct TlsSetup {
    acceptor: TlsAcceptor,
    timeout: Duration,
    handshake_first: Option<Duration>,
    map_identities: bool,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("timeout", &self.timeout)
            .field("handshake_first", &self.handshake_first)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = if cfg.verify || cfg.verify_and_map {
            let ca = cfg
                .ca_file
                .as_ref()
                .ok_or_else(|| TlsError::Material("verify requires ca_file".to_owned()))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Material(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs(&cfg.cert_file)?, key(&cfg.key_file)?)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            timeout: cfg.timeout,
            handshake_first: cfg.handshake_first,
            map_identities: cfg.verify_and_map,
        })
    }

    /// The rustls acceptor, for listeners that speak TLS from the first byte (HTTPS monitoring).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Runs the handshake (before or after INFO, as configured) and returns the stream with its
    /// connection machine.
    pub(crate) async fn accept<S>(
        &self,
        srv: &Shared,
        tcp: S,
        peer: SocketAddr,
        id: u64,
        rng: &mut SplitMix64,
    ) -> Result<(TlsStream<Prefixed<S>>, ClientConn), TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut tcp = Prefixed::new(tcp);
        let tls_first = match self.handshake_first {
            None => false,
            Some(d) if d.is_zero() => true,
            // Go: the server waits this long for a TLS ClientHello before falling back to
            // sending INFO in the clear first. The byte read is replayed to the TLS layer.
            Some(d) => {
                let mut b = [0u8; 1];
                match tokio::time::timeout(d, tcp.read(&mut b)).await {
                    Ok(Ok(1)) => {
                        tcp.push_front(b[0]);
                        true
                    }
                    Ok(_) => return Err(TlsError::Handshake("closed before handshake".to_owned())),
                    Err(_) => false,
                }
            }
        };
        let mut conn = None;
        if !tls_first {
            let mut c = client::new_conn(srv, peer, id, rng);
            if let Some(info) = c.poll_transmit() {
                tcp.write_all(&info)
                    .await
                    .map_err(|e| TlsError::Handshake(e.to_string()))?;
            }
            conn = Some(c);
        }
        let stream = tokio::time::timeout(self.timeout, self.acceptor.accept(tcp))
            .await
            .map_err(|_| TlsError::Handshake("timeout".to_owned()))?
            .map_err(|e| TlsError::Handshake(e.to_string()))?;
        let mut conn = conn.unwrap_or_else(|| client::new_conn(srv, peer, id, rng));
        if self.map_identities {
            let ids = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| cert_identities(c.as_ref()))
                .unwrap_or_default();
            conn.set_tls_identities(ids);
        }
        Ok((stream, conn))
    }
}

/// Identities a client certificate can map to a user by (`verify_and_map`): SAN e-mails,
/// SAN DNS names, and the subject DN in RFC 4514 order ("CN=..,O=..").
fn cert_identities(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::RFC822Name(e) => ids.push((*e).to_owned()),
                GeneralName::DNSName(d) => ids.push((*d).to_owned()),
                _ => {}
            }
        }
    }
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter() {
        for atv in rdn.iter() {
            let key = match atv.attr_type().to_id_string().as_str() {
                "2.5.4.3" => "CN".to_owned(),
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.7" => "L".to_owned(),
                "2.5.4.8" => "ST".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "2.5.4.9" => "STREET".to_owned(),
                "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                other => other.to_owned(),
            };
            let val = atv.as_str().map(str::to_owned).unwrap_or_default();
            rdns.push(format!("{key}={val}"));
        }
    }
    if !rdns.is_empty() {
        rdns.reverse();
        ids.push(rdns.join(","));
    }
    ids
}
