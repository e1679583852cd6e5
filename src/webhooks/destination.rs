//! Where a webhook may be sent. A tenant admin chooses the URL, so without a check the gateway
//! would call into the network it runs in (its database, a cloud metadata service) for them.
//! Unless `webhooks.allow_private_destinations` is on, a URL is refused when registered if it
//! names a non-public address, and refused again at every delivery if its name resolves to one
//! — a name that resolved to a public address yesterday may not today.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL cannot be an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("url is not a valid absolute URL")]
    Invalid,
    #[error("url must be http or https")]
    Scheme,
    #[error(
        "url points at a private, loopback or otherwise non-public address \
         (allowed only with webhooks.allow_private_destinations = true)"
    )]
    Private,
}

/// Checks a URL an admin registers.
pub fn check(url: &str, allow_private: bool) -> Result<Url, DestinationError> {
    let parsed = Url::parse(url).map_err(|_| DestinationError::Invalid)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DestinationError::Scheme);
    }
    let host = parsed.host().ok_or(DestinationError::Invalid)?;
    if allow_private {
        return Ok(parsed);
    }
    let public = match host {
        url::Host::Ipv4(ip) => is_public(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_public(IpAddr::V6(ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost")
        }
    };
    if public {
        Ok(parsed)
    } else {
        Err(DestinationError::Private)
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared,
/// documentation, benchmarking, multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)) // NAT64, reaches IPv4 behind it
}

/// A resolver for the delivery client that drops every non-public address a name resolves
/// to, and fails when none is left: the check at registration, repeated at each connection.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|addr| is_public(addr.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_urls_are_refused_by_default() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://api.localhost/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(check(url, false), Err(DestinationError::Private), "{url}");
            assert!(
                check(url, true).is_ok(),
                "{url} with private destinations allowed"
            );
        }
    }

    #[test]
    fn public_urls_pass_and_other_schemes_do_not() {
        assert!(check("https://hooks.example.com/tollgate", false).is_ok());
        assert!(check("http://93.184.216.34/x", false).is_ok());
        assert!(check("https://[2606:4700::1111]/x", false).is_ok());
        assert_eq!(
            check("ftp://example.com/", true),
            Err(DestinationError::Scheme)
        );
        assert_eq!(
            check("file:///etc/passwd", true),
            Err(DestinationError::Scheme)
        );
        assert_eq!(check("not a url", true), Err(DestinationError::Invalid));
    }
}
