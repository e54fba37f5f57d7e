//! Which addresses a callback may reach under [`super::callbacks::CallbackTargets::Public`]:
//! only globally reachable unicast ones. Every block of IANA's IPv4 and IPv6
//! special-purpose address registries is refused (even those the registry marks
//! globally reachable, such as anycast services: no callback has reason to go
//! there), and so are multicast and the reserved space. The forms that carry an
//! IPv4 address inside an IPv6 one are judged by the IPv4 address they reach
//! (IPv4-mapped, NAT64's well-known prefix) or refused outright (IPv4-compatible,
//! 6to4, Teredo, local-use NAT64). IPv6 must be global unicast (`2000::/3`). Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks no callback may reach: the special-purpose registry, then multicast
/// and the reserved space.
const V4_REFUSED: [(Ipv4Addr, u8); 19] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),       // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),       // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 31, 196, 0), 24),    // AS112-v4
    (Ipv4Addr::new(192, 52, 193, 0), 24),    // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),     // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),     // private
    (Ipv4Addr::new(192, 175, 48, 0), 24),    // direct delegation AS112 service
    (Ipv4Addr::new(198, 18, 0, 0), 15),      // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24),    // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),     // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),        // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),        // reserved
    (Ipv4Addr::new(255, 255, 255, 255), 32), // limited broadcast
];

/// IPv6 blocks inside global unicast (`2000::/3`) that no callback may reach.
const V6_REFUSED: [(Ipv6Addr, u8); 5] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments (Teredo, ORCHID, AMT, ...)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4: reaches the IPv4 address inside it
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48), // direct delegation AS112 service
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Whether a callback may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_REFUSED.iter().any(|block| in_v4(v4, *block)),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and NAT64's well-known prefix
            // (64:ff9b::/96) reach the IPv4 address in their last 32 bits.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if in_v6(v6, (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)) {
                let [.., a, b, c, d] = v6.octets();
                return is_public(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            // Only global unicast; everything outside it (::/96 IPv4-compatible,
            // 64:ff9b:1::/48, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8,
            // loopback, unspecified, ...) is refused.
            in_v6(v6, (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3))
                && !V6_REFUSED.iter().any(|block| in_v6(v6, *block))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_purpose_form_is_refused() {
        for refused in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1.2.3.4",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:db8::1",
            "2001:2::1",
            "2001:10::1",
            "100::1",
            "3fff::1",
            "2620:4f:8000::1",
            "5f00::1",
        ] {
            assert!(!is_public(refused.parse().unwrap()), "{refused} is not public");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }
}
