//! Where a request comes from: the peer address, or, when the peer is a
//! proxy the installation trusts (`trusted_proxies`), the client that proxy
//! names in `X-Forwarded-For`. Throttling and the access audit key on it.
//!
//! `X-Forwarded-For` is read from the right: each trusted proxy appends the
//! address it received the request from, so the rightmost entry that is not
//! itself a trusted proxy is the client. Entries to its left were written by
//! the client and are never believed. With no trusted proxies (the default)
//! the header is ignored.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// `10.0.0.0/8, 192.0.2.7, ::1` (a bare address is a /32 or /128). Empty: none.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                networks.push(net.trunc());
            } else if let Ok(ip) = item.trim_matches(['[', ']']).parse::<IpAddr>() {
                networks.push(IpNet::from(ip));
            } else {
                return Err(format!("{item:?} is not an IP address or CIDR network"));
            }
        }
        Ok(Self { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with these
    /// `X-Forwarded-For` header values (in the order received).
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> ClientSource {
        let Some(peer) = peer.map(canonical) else { return ClientSource { ip: None } };
        if !self.contains(peer) {
            return ClientSource { ip: Some(peer) };
        }
        // Every hop appended the address it heard from; walk back from the
        // nearest while the hop is one of ours.
        let mut client = peer;
        let hops = forwarded_for.iter().flat_map(|v| v.split(',')).collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        ClientSource { ip: Some(client) }
    }
}

/// One `X-Forwarded-For` entry: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`,
/// or either with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.trim_matches(['[', ']']).parse::<IpAddr>().ok())?;
    Some(canonical(ip))
}

/// An IPv4 address seen through a dual-stack socket (`::ffff:192.0.2.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client a request is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSource {
    /// `None` when the listener did not say (no connection info).
    pub ip: Option<IpAddr>,
}

impl ClientSource {
    /// The address, for the audit log of an individual event.
    pub fn address(&self) -> String {
        self.ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    /// The source for throttling and for aggregated refusals: an IPv4
    /// address, or an IPv6 /64 (one subscriber's network: an attacker holds
    /// a whole /64, so single IPv6 addresses would be free to vary).
    pub fn bucket(&self) -> String {
        match self.ip {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("198.51.100.7"), &["203.0.113.9"]).ip, ip("198.51.100.7"), "no proxies: the peer");

        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").expect("parse");
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &["203.0.113.9"]).ip,
            ip("198.51.100.7"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(proxies.client(ip("10.1.2.3"), &["203.0.113.9"]).ip, ip("203.0.113.9"));
        // The client wrote the leftmost entries itself: only the one our proxies appended counts.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["1.1.1.1, 203.0.113.9", "192.0.2.1"]).ip,
            ip("203.0.113.9"),
            "through two of our proxies"
        );
        assert_eq!(proxies.client(ip("10.1.2.3"), &[]).ip, ip("10.1.2.3"), "no header: the proxy itself");
        assert_eq!(proxies.client(ip("10.1.2.3"), &["garbage"]).ip, ip("10.1.2.3"), "unparsable: stop at the proxy");
        assert_eq!(proxies.client(ip("::ffff:10.0.0.1"), &["[2001:db8::1]:443"]).ip, ip("2001:db8::1"));
        assert!(TrustedProxies::parse("10.0.0.0/8, nonsense").is_err());
    }

    #[test]
    fn ipv6_sources_are_their_slash_64() {
        let a = ClientSource { ip: ip("2001:db8:1:2:aaaa::1") };
        let b = ClientSource { ip: ip("2001:db8:1:2:bbbb::9") };
        assert_eq!(a.bucket(), "2001:db8:1:2::/64");
        assert_eq!(a.bucket(), b.bucket());
        assert_eq!(ClientSource { ip: ip("192.0.2.5") }.bucket(), "192.0.2.5");
        assert_eq!(a.address(), "2001:db8:1:2:aaaa::1");
    }
}
