//! Which peers may speak for a client (`trusted_proxies`), and the client address that follows from it.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// CIDRs of proxies in front of the gateway whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From parsed CIDRs.
    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    /// Whether `ip` is one of them.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client a request comes from: the peer itself, or when the peer is a
    /// trusted proxy, the rightmost `X-Forwarded-For` entry that is not one
    /// (what nginx's `real_ip_recursive on` does). An entry that is not an
    /// address ends the walk at the last hop that was trusted.
    pub(crate) fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        for value in forwarded_for.rev() {
            let Ok(value) = std::str::from_utf8(value) else {
                return client;
            };
            for entry in value.rsplit(',') {
                let Some(ip) = parse_entry(entry) else {
                    return client;
                };
                client = ip;
                if !self.contains(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    e.parse::<IpAddr>()
        .ok()
        .or_else(|| e.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = trusted(&[]);
        let xff: [&[u8]; 1] = [b"1.2.3.4"];
        assert_eq!(t.client_ip(ip("10.0.0.9"), xff.into_iter()), ip("10.0.0.9"));
    }

    #[test]
    fn rightmost_untrusted_entry_behind_trusted_proxies() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        let xff: [&[u8]; 2] = [b"6.6.6.6, 1.2.3.4", b"10.1.1.1"];
        assert_eq!(t.client_ip(ip("127.0.0.1"), xff.into_iter()), ip("1.2.3.4"));
        let none: [&[u8]; 0] = [];
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), none.into_iter()),
            ip("127.0.0.1")
        );
        let garbage: [&[u8]; 1] = [b"1.2.3.4, nonsense, 10.2.2.2"];
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), garbage.into_iter()),
            ip("10.2.2.2")
        );
        let ported: [&[u8]; 1] = [b"[2001:db8::1]:443"];
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), ported.into_iter()),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn mapped_v4_peers_match_v4_nets() {
        let t = trusted(&["127.0.0.0/8"]);
        assert!(t.contains(ip("::ffff:127.0.0.1")));
    }
}
