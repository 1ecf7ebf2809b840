//! Route URLs: `nats-route://[user:pass@]host:port[/]` (also `nats://`).

use std::fmt;
use std::net::SocketAddr;

/// A parsed route URL. The password never shows in Debug or Display.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RouteUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<String>,
}

impl RouteUrl {
    /// Parses a route URL; the scheme is optional, a trailing `/` is ignored.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid route URL {:?}: {why}", redact(s));
        let rest = s.split_once("://").map_or(s, |(_, r)| r);
        let rest = rest.split('/').next().unwrap_or_default();
        let (user, pass, hostport) = match rest.rsplit_once('@') {
            Some((cred, hp)) => {
                let (u, p) = match cred.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_owned())),
                    None => (cred, None),
                };
                (Some(percent_decode(u)), p.map(|p| percent_decode(&p)), hp)
            }
            None => (None, None, rest),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            user,
            pass,
        })
    }

    /// `host:port`, lower-cased, to compare with a peer's INFO (Go: hasThisRouteConfigured).
    pub(crate) fn host_port(&self) -> String {
        format!("{}:{}", self.host.to_ascii_lowercase(), self.port)
    }

    /// Resolves the host: an IP literal directly, a name through the system resolver.
    pub(crate) async fn resolve(&self) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
    }
}

impl fmt::Display for RouteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(f, "nats-route://{u}:[REDACTED]@{}:{}", self.host, self.port),
            None => write!(f, "nats-route://{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for RouteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn redact(s: &str) -> String {
    match s.rsplit_once('@') {
        Some((_, hp)) => format!("[REDACTED]@{hp}"),
        None => s.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = RouteUrl::parse("nats-route://ruser:p%40ss@127.0.0.1:6222/").expect("url");
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 6222));
        assert_eq!(u.user.as_deref(), Some("ruser"));
        assert_eq!(u.pass.as_deref(), Some("p@ss"));
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = RouteUrl::parse("nats://[::1]:7000").expect("v6");
        assert_eq!((u.host.as_str(), u.port, u.user), ("::1", 7000, None));
        assert_eq!(RouteUrl::parse("h:1").expect("bare").host_port(), "h:1");
        assert!(RouteUrl::parse("nats://host").is_err());
        assert!(RouteUrl::parse("nats://:5").is_err());
        assert!(RouteUrl::parse("nats://u:secret@h:x")
            .expect_err("port")
            .contains("REDACTED"));
    }
}
