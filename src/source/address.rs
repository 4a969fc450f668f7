//! Address text → canonical `IpAddr`, and the table of non-public ranges that are never sent
//! to an upstream API. (Stub: being written.)

use std::net::IpAddr;

/// True for addresses that may be sent to AbuseIPDB and geolocation providers.
pub fn is_public(addr: IpAddr) -> bool {
    let _ = addr;
    todo!()
}
