//! Which destinations a webhook may reach (SSRF protection). A URL's host
//! is resolved and every address must be public, unless the operator's
//! allowlist (`webhook_allowed_hosts`: host names and CIDRs, comma
//! separated) names the host or covers the address. The delivery then
//! connects to exactly the addresses checked (no second lookup an attacker
//! could answer differently) and follows no redirects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// What kind of address an IP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// Cloud instance metadata (169.254.169.254, fd00:ec2::254).
    Metadata,
    /// 100.64.0.0/10, carrier-grade NAT.
    SharedAddressSpace,
    /// fc00::/7.
    UniqueLocal,
    Unspecified,
    Multicast,
    /// Documentation, benchmarking, reserved and broadcast ranges.
    Reserved,
}

/// Classifies an address, looking through IPv4-mapped, IPv4-compatible,
/// IPv4-translated, NAT64 (64:ff9b::/96) and 6to4 IPv6 forms at the IPv4
/// address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match () {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => AddressClass::Metadata,
        _ if ip.is_unspecified() || a == 0 => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        _ if ip.is_private() => AddressClass::Private,
        _ if ip.is_link_local() => AddressClass::LinkLocal,
        _ if a == 100 && (64..128).contains(&b) => AddressClass::SharedAddressSpace,
        _ if ip.is_multicast() => AddressClass::Multicast,
        _ if ip.is_broadcast() || a >= 240 => AddressClass::Reserved,
        // 192.0.0.0/24 (IETF), 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24
        // (documentation), 198.18.0.0/15 (benchmarking).
        _ if (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) => {
            AddressClass::Reserved
        }
        _ if (a, b, c) == (203, 0, 113) || (a == 198 && (b == 18 || b == 19)) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified()
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        let [.., a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // 6to4 (2002::/16) carries an IPv4 address in bits 16-48.
    if segments[0] == 0x2002 {
        let [_, _, a, b, c, d, ..] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // IPv4-translated (SIIT, ::ffff:0:a.b.c.d).
    if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        let [.., a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    match () {
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => AddressClass::Metadata,
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        _ if (segments[0] & 0xfe00) == 0xfc00 => AddressClass::UniqueLocal,
        // fe80::/10 link-local; fec0::/10 site-local (deprecated, private).
        _ if (segments[0] & 0xffc0) == 0xfe80 => AddressClass::LinkLocal,
        _ if (segments[0] & 0xffc0) == 0xfec0 => AddressClass::Private,
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): translates to the
        // operator's own network, with the IPv4 address at a place of its
        // choosing, so it is never public.
        _ if segments[..3] == [0x64, 0xff9b, 1] => AddressClass::Private,
        _ if ip.is_multicast() => AddressClass::Multicast,
        // 2001:db8::/32 and 3fff::/20 documentation; 100::/64 discard;
        // 5f00::/16 SRv6 segment identifiers (RFC 9602).
        _ if segments[0] == 0x2001 && segments[1] == 0x0db8 => AddressClass::Reserved,
        _ if segments[0] == 0x3fff && segments[1] < 0x1000 => AddressClass::Reserved,
        _ if segments[..4] == [0x100, 0, 0, 0] => AddressClass::Reserved,
        _ if segments[0] == 0x5f00 => AddressClass::Reserved,
        _ if in_ietf_protocol_assignments(segments) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// 2001::/23, IETF protocol assignments, is not globally reachable (IANA
/// special-purpose registry) but for the assignments that are: 2001:1::1,
/// 2001:1::2 and 2001:1::3 (PCP, TURN and DNS-SD SRP anycast), 2001:3::/32
/// (AMT), 2001:4:112::/48 (AS112), 2001:20::/28 (ORCHIDv2) and 2001:30::/28
/// (drone remote ID tags). Teredo (2001::/32) is among the rest: its
/// addresses stand for tunnels through NATs, not for a service.
fn in_ietf_protocol_assignments(segments: [u16; 8]) -> bool {
    if segments[0] != 0x2001 || segments[1] >= 0x200 {
        return false;
    }
    let anycast = segments[1] == 1 && segments[2..7] == [0; 5] && (1..=3).contains(&segments[7]);
    let reachable = anycast
        || segments[1] == 3
        || (segments[1] == 4 && segments[2] == 0x112)
        || (0x20..0x40).contains(&segments[1]);
    !reachable
}

/// The operator's exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    networks: Vec<IpNet>,
}

impl Allowlist {
    /// `localhost, 127.0.0.1, 10.0.0.0/8, ::1` (a bare IP is a /32 or /128).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allow = Self::default();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                allow.networks.push(net);
            } else if let Ok(ip) = item.trim_matches(['[', ']']).parse::<IpAddr>() {
                allow.networks.push(IpNet::from(ip));
            } else if item.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                allow.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!("{item:?} is neither a host name nor an IP network"));
            }
        }
        Ok(allow)
    }

    fn allows(&self, host: &str, ip: IpAddr) -> bool {
        self.allows_host(host) || self.networks.iter().any(|n| n.contains(&ip))
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// How a destination is named: by a host name of two or more DNS labels whose
/// last starts with a letter (`hooks.example.com`). An address (`10.0.0.1`)
/// or a one-label name (`localhost`) only where the operator allows it:
/// a webhook endpoint is a public service with a name.
pub fn check_name(url: &url::Url, allow: &Allowlist) -> Result<(), DestinationError> {
    match url.host() {
        None => Err(DestinationError::BadUrl),
        Some(url::Host::Ipv4(ip)) if allow.allows(&ip.to_string(), ip.into()) => Ok(()),
        Some(url::Host::Ipv6(ip)) if allow.allows(&ip.to_string(), ip.into()) => Ok(()),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => Err(DestinationError::AddressLiteral),
        Some(url::Host::Domain(name)) if allow.allows_host(name) => Ok(()),
        Some(url::Host::Domain(name)) => {
            let labels: Vec<&str> = name.split('.').collect();
            let label_ok = |l: &&str| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            let last_is_a_name = labels.last().is_some_and(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()));
            if labels.len() >= 2 && labels.iter().all(label_ok) && last_is_a_name {
                Ok(())
            } else {
                Err(DestinationError::BadHost(name.to_owned()))
            }
        }
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("the URL must be http or https with a host")]
    BadUrl,
    #[error("cannot resolve {0}")]
    Unresolvable(String),
    #[error("{0:?} is not a host name (labels of letters, digits and hyphens, the last starting with a letter)")]
    BadHost(String),
    #[error("name the destination by its host name; addresses are only for hosts the operator allows")]
    AddressLiteral,
    /// The message names the host only: which address an internal name
    /// resolves to is the operator's to know (`ip` and `class` are for the
    /// logs), not the caller's.
    #[error(
        "{host}: not a public address; only public addresses may be called (unless webhook_allowed_hosts allows the host)"
    )]
    Forbidden { host: String, ip: IpAddr, class: AddressClass },
}

/// Checks a destination and returns the addresses to connect to.
pub async fn check(url: &url::Url, allow: &Allowlist) -> Result<Vec<SocketAddr>, DestinationError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::BadUrl);
    }
    let host = url.host_str().ok_or(DestinationError::BadUrl)?.trim_matches(['[', ']']).to_owned();
    let port = url.port_or_known_default().ok_or(DestinationError::BadUrl)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| DestinationError::Unresolvable(host.clone()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(DestinationError::Unresolvable(host));
    }
    for addr in &addrs {
        let class = classify(addr.ip());
        if class != AddressClass::Public && !allow.allows(&host, addr.ip()) {
            return Err(DestinationError::Forbidden { host, ip: addr.ip(), class });
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::{AddressClass as C, *};

    fn class(ip: &str) -> AddressClass {
        classify(ip.parse().expect("ip"))
    }

    #[test]
    fn addresses_are_classified_without_any_network_io() {
        for (ip, expected) in [
            ("8.8.8.8", C::Public),
            ("1.1.1.1", C::Public),
            ("127.0.0.1", C::Loopback),
            ("127.8.9.10", C::Loopback),
            ("10.1.2.3", C::Private),
            ("172.16.0.1", C::Private),
            ("172.31.255.255", C::Private),
            ("172.32.0.1", C::Public),
            ("192.168.1.1", C::Private),
            ("169.254.1.1", C::LinkLocal),
            ("169.254.169.254", C::Metadata),
            ("100.64.0.1", C::SharedAddressSpace),
            ("0.0.0.0", C::Unspecified),
            ("0.1.2.3", C::Unspecified),
            ("224.0.0.1", C::Multicast),
            ("255.255.255.255", C::Reserved),
            ("240.0.0.1", C::Reserved),
            ("192.0.2.10", C::Reserved),
            ("198.18.0.1", C::Reserved),
            ("::1", C::Loopback),
            ("::", C::Unspecified),
            ("fc00::1", C::UniqueLocal),
            ("fd12:3456::1", C::UniqueLocal),
            ("fe80::1", C::LinkLocal),
            ("fec0::1", C::Private),
            ("ff02::1", C::Multicast),
            ("fd00:ec2::254", C::Metadata),
            ("2001:db8::1", C::Reserved),
            ("2606:4700:4700::1111", C::Public),
            // IPv4 inside IPv6 is judged by the IPv4 address.
            ("::ffff:127.0.0.1", C::Loopback),
            ("::ffff:169.254.169.254", C::Metadata),
            ("::ffff:8.8.8.8", C::Public),
            ("::127.0.0.1", C::Loopback),
            ("64:ff9b::a00:1", C::Private),
            ("2002:7f00:1::", C::Loopback),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn local_nat64_teredo_and_the_ietf_assignments_are_not_public() {
        for (ip, expected) in [
            // Local-use NAT64 (RFC 8215), whatever it carries.
            ("64:ff9b:1::a00:1", C::Private),
            ("64:ff9b:1:ffff::808:808", C::Private),
            ("64:ff9b::808:808", C::Public),
            // Teredo, and the rest of 2001::/23 that is not globally reachable.
            ("2001::1", C::Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", C::Reserved),
            ("2001:2::1", C::Reserved),
            ("2001:10::1", C::Reserved),
            ("2001:1ff::1", C::Reserved),
            ("2001:1::4", C::Reserved),
            // ... but for the assignments that are.
            ("2001:1::1", C::Public),
            ("2001:1::3", C::Public),
            ("2001:3::1", C::Public),
            ("2001:4:112::1", C::Public),
            ("2001:20::1", C::Public),
            ("2001:3f::1", C::Public),
            ("2001:200::1", C::Public),
            // IPv4-translated (SIIT), documentation (3fff::/20), SRv6 SIDs.
            ("::ffff:0:7f00:1", C::Loopback),
            ("::ffff:0:808:808", C::Public),
            ("3fff::1", C::Reserved),
            ("3fff:fff::1", C::Reserved),
            ("3fff:1000::1", C::Public),
            ("5f00::1", C::Reserved),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_refusal_names_the_host_but_not_the_address_it_resolves_to() {
        let none = Allowlist::default();
        let err = check(&url::Url::parse("http://localhost:9/hook").expect("url"), &none).await.expect_err("refused");
        let DestinationError::Forbidden { ip, .. } = &err else { panic!("{err}") };
        let message = err.to_string();
        assert!(message.contains("localhost") && message.contains("not a public address"), "{message}");
        for leak in [ip.to_string(), "127.0.0.1".to_owned(), "::1".to_owned(), "Loopback".to_owned()] {
            assert!(!message.contains(&leak), "{message} names {leak}");
        }
    }

    #[test]
    fn the_allowlist_takes_hosts_and_networks() {
        let allow = Allowlist::parse("localhost, 127.0.0.1, 10.0.0.0/8, [::1]").expect("parse");
        assert!(allow.allows("localhost", "127.0.0.1".parse().expect("ip")));
        assert!(allow.allows("hooks.internal", "10.9.8.7".parse().expect("ip")));
        assert!(allow.allows("x", "::1".parse().expect("ip")));
        assert!(!allow.allows("x", "192.168.0.1".parse().expect("ip")));
        assert!(Allowlist::parse("not a host!").is_err());
        assert_eq!(Allowlist::parse("").expect("empty"), Allowlist::default());
    }

    #[tokio::test]
    async fn loopback_destinations_are_refused_before_any_connection_unless_allowed() {
        let none = Allowlist::default();
        for url in
            ["http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook", "http://169.254.169.254/"]
        {
            let url = url::Url::parse(url).expect("url");
            let err = check(&url, &none).await.expect_err("refused");
            assert!(matches!(err, DestinationError::Forbidden { .. }), "{url}: {err}");
        }
        let allow = Allowlist::parse("127.0.0.1, ::1, localhost").expect("parse");
        let addrs = check(&url::Url::parse("http://127.0.0.1:9/hook").expect("url"), &allow).await.expect("allowed");
        assert_eq!(addrs, ["127.0.0.1:9".parse::<SocketAddr>().expect("addr")]);
        assert!(check(&url::Url::parse("http://localhost:9/").expect("url"), &allow).await.is_ok());
        assert_eq!(
            check(&url::Url::parse("ftp://example.com/").expect("url"), &allow).await,
            Err(DestinationError::BadUrl)
        );
    }
}
