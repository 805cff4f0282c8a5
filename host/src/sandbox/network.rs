//! Which addresses an instance's outbound connections may reach. On a shared host a tenant's
//! locations reach public addresses only (not loopback, private, link-local or metadata
//! addresses) unless the operator allows more. The check is made on the address actually
//! connected to, after DNS, on every connection, so a name that resolves (or re-resolves) to
//! an inner address gets nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpStream;
use wasmtime_wasi_http::Error as HttpError;

/// An operator's exception to [`Reach::Public`]: a host name, or an address or network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    /// A host name (as the location's URL names it), any address it resolves to.
    Host(String),
    /// An address or network (`10.0.0.0/8`, `127.0.0.1`).
    Net(IpNet),
}

impl FromStr for Allowance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Allowance::Net(net));
        }
        if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Ok(Allowance::Net(IpNet::from(ip)));
        }
        let valid = !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if valid {
            Ok(Allowance::Host(s.to_ascii_lowercase()))
        } else {
            Err(format!("{s:?} is neither a host name nor an address or CIDR network"))
        }
    }
}

/// Where an instance's connections may go (besides the per-location allow-list of origins,
/// which always applies).
#[derive(Debug, Clone, Default)]
pub enum Reach {
    /// Any address: a single user's host, whose locations are the user's own.
    #[default]
    Any,
    /// Public addresses only, and what the operator allows.
    Public(Arc<[Allowance]>),
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (where cloud
/// metadata services live), carrier-grade NAT, unique-local, multicast, documentation or
/// unspecified. IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT (and Alibaba's metadata)
        || (a == 192 && b == 0)                  // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))  // benchmarking
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (AWS's fd00:ec2::254 metadata)
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 of IPv4 (could reach anything)
}

impl Reach {
    /// Whether a connection to `addr`, resolved from `host`, is allowed.
    pub fn permits(&self, host: &str, addr: IpAddr) -> bool {
        match self {
            Reach::Any => true,
            Reach::Public(allowed) => {
                is_public(addr)
                    || allowed.iter().any(|a| match a {
                        Allowance::Host(h) => h.eq_ignore_ascii_case(host),
                        Allowance::Net(net) => net.contains(&addr),
                    })
            }
        }
    }
}

/// Connects to `host:port` on the first resolved address that `reach` permits, within
/// `timeout`. Addresses it does not permit are never connected to; when none is left the
/// request is denied (and logged for the operator, naming the location).
pub(crate) async fn connect(reach: &Reach, location: &str, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, HttpError> {
    let work = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(HttpError::Connect)?.collect();
        let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.into_iter().partition(|a| reach.permits(host, a.ip()));
        if permitted.is_empty() {
            tracing::warn!(
                location,
                host,
                addresses = ?refused,
                "denied an outbound connection to a non-public address; the operator can allow it with --allow-endpoint"
            );
            return Err(HttpError::HttpRequestDenied);
        }
        let mut last = None;
        for addr in permitted {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(HttpError::Connect(last.expect("at least one address was tried")))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| HttpError::ConnectionTimeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn inner_addresses_are_not_public() {
        for inner in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200", "0.0.0.0",
            "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "::",
        ] {
            assert!(!is_public(ip(inner)), "{inner}");
        }
        for public in ["8.8.8.8", "52.216.1.1", "2600:1f18::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn the_operator_allows_hosts_and_networks() {
        let reach = Reach::Public(
            ["minio.internal", "10.0.0.0/8", "127.0.0.1"].iter().map(|s| s.parse().unwrap()).collect::<Vec<Allowance>>().into(),
        );
        assert!(reach.permits("minio.internal", ip("192.168.1.5")));
        assert!(reach.permits("x", ip("10.9.9.9")));
        assert!(reach.permits("localhost", ip("127.0.0.1")));
        assert!(!reach.permits("localhost", ip("127.0.0.2")));
        assert!(!reach.permits("metadata", ip("169.254.169.254")));
        assert!(reach.permits("s3.amazonaws.com", ip("52.216.1.1")));
        assert!(Reach::Any.permits("x", ip("127.0.0.1")));
        assert!("http://x".parse::<Allowance>().is_err());
    }
}
