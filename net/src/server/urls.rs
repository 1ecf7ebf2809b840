//! The client URLs this server offers in `connect_urls` (and gossips to its routes).

use std::net::IpAddr;

/// `host:port` strings for a client listener on `host`, as nats-server builds them
/// (Go: server/server.go getConnectURLs): `advertise` when set; else, for an unspecified
/// host (0.0.0.0 or ::), one URL per global unicast address of the machine's interfaces;
/// else the host itself.
pub(crate) fn client_connect_urls(advertise: Option<&str>, host: &str, port: u16) -> Vec<String> {
    if let Some(a) = advertise {
        let hp = a.split_once("://").map_or(a, |(_, r)| r);
        // Go: parseHostPort — an advertised host without a port takes the listen port.
        let has_port = hp.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        });
        return vec![if has_port {
            hp.to_owned()
        } else {
            join_host_port_str(hp, port)
        }];
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            let urls: Vec<String> = interface_ips()
                .into_iter()
                .map(|ip| join_host_port(&ip, port))
                .collect();
            if urls.is_empty() {
                // Go: never offer 0.0.0.0 to clients; it says so and offers nothing.
                tracing::error!("Address {host:?} can not be resolved properly");
            }
            urls
        }
        _ => vec![join_host_port_str(host, port)],
    }
}

/// The machine's global unicast addresses, interface by interface, IPv4 before IPv6 within
/// one, like Go's net.Interfaces + Addrs with its IsGlobalUnicast filter (which keeps private
/// ranges and drops loopback, link-local and multicast).
fn interface_ips() -> Vec<IpAddr> {
    let Ok(mut ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    ifaces.sort_by_key(|i| (i.index.unwrap_or(u32::MAX), i.ip().is_ipv6()));
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ifaces.iter().map(if_addrs::Interface::ip) {
        if is_global_unicast(&ip) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Go: net.IP.IsGlobalUnicast.
fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() || link_local)
        }
    }
}

fn join_host_port(ip: &IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Go: net.JoinHostPort — brackets a host that holds a colon.
fn join_host_port_str(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_wins_and_drops_the_scheme() {
        assert_eq!(
            client_connect_urls(Some("nats://a.example:4333"), "0.0.0.0", 4222),
            ["a.example:4333"]
        );
        assert_eq!(
            client_connect_urls(Some("a.example"), "0.0.0.0", 4222),
            ["a.example:4222"]
        );
        assert_eq!(
            client_connect_urls(Some("[fd00::1]:5"), "0.0.0.0", 4222),
            ["[fd00::1]:5"]
        );
    }

    #[test]
    fn a_specific_host_is_offered_as_is() {
        assert_eq!(
            client_connect_urls(None, "127.0.0.1", 4222),
            ["127.0.0.1:4222"]
        );
        assert_eq!(client_connect_urls(None, "::1", 4222), ["[::1]:4222"]);
    }

    #[test]
    fn an_unspecified_host_is_never_offered() {
        for host in ["0.0.0.0", "::"] {
            let urls = client_connect_urls(None, host, 4222);
            assert!(
                urls.iter()
                    .all(|u| !u.starts_with("0.0.0.0") && !u.starts_with("[::]")),
                "{urls:?}"
            );
        }
    }

    #[test]
    fn global_unicast_follows_go() {
        let yes = [
            "10.1.2.3",
            "192.168.0.1",
            "8.8.8.8",
            "fd00::2",
            "2001:db8::1",
        ];
        let no = [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
        ];
        for ip in yes {
            assert!(is_global_unicast(&ip.parse().unwrap()), "{ip}");
        }
        for ip in no {
            assert!(!is_global_unicast(&ip.parse().unwrap()), "{ip}");
        }
    }
}
