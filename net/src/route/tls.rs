//! TLS on routes: both sides handshake from the first byte and verify each other against
//! `ca_file` (Go: route.go createRoute → doTLSHandshake). The setup is shared with gateways,
//! which nats-server secures the same way: see [`crate::tls::peer`].

pub(crate) use crate::tls::peer::PeerTls as RouteTls;
