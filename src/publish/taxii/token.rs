//! `next` tokens: self-contained, signed page cursors. A token is
//! `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`, the payload being the
//! JSON of a [`Cursor`]. The server keeps no state per token; the signature is what makes
//! the cursor trustworthy, and the request is still checked against it (collection,
//! endpoint, filters) before it is used.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::query::Filters;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the next token is malformed")]
    Malformed,
    #[error("the next token's signature does not verify")]
    Signature,
}

/// Which paginated endpoint a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    #[serde(rename = "o")]
    Objects,
    #[serde(rename = "m")]
    Manifest,
    #[serde(rename = "i")]
    Object,
    #[serde(rename = "v")]
    Versions,
}

/// Where the next page starts and which query it continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Collection code.
    pub c: u8,
    pub e: Endpoint,
    /// The object id of the object and versions endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<String>,
    pub f: Filters,
    /// `date_added` (µs) of the last object already delivered.
    pub a: u64,
    /// The page size, used when the request carrying the token gives no `limit`.
    pub l: u64,
}

/// Signs a cursor into a URL-safe token.
pub fn mint(key: &[u8], cursor: &Cursor) -> String {
    let payload = serde_json::to_vec(cursor).expect("a cursor always serialises");
    let signature = mac(key, &payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Verifies (in constant time) and decodes a token.
///
/// # Errors
/// [`TokenError`] for anything but an intact token minted with `key`.
pub fn open(key: &[u8], token: &str) -> Result<Cursor, TokenError> {
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    mac(key, &payload)
        .verify_slice(&signature)
        .map_err(|_| TokenError::Signature)?;
    serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)
}

fn mac(key: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            c: 1,
            e: Endpoint::Objects,
            o: None,
            f: Filters {
                types: vec!["indicator".into()],
                ..Filters::default()
            },
            a: 1_700_000_000_000_001,
            l: 10,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let token = mint(b"key", &cursor());
        assert!(!token.contains(['+', '/', '=']));
        assert_eq!(open(b"key", &token), Ok(cursor()));
        assert_eq!(open(b"other", &token), Err(TokenError::Signature));
        assert_eq!(
            open(b"key", &token[..token.len() - 3]),
            Err(TokenError::Signature)
        );
        assert_eq!(open(b"key", "garbage"), Err(TokenError::Malformed));
        let (payload, signature) = token.split_once('.').unwrap();
        let mut forged = cursor();
        forged.a += 1;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_ne!(forged_payload, payload);
        let forged_token = format!("{forged_payload}.{signature}");
        assert_eq!(open(b"key", &forged_token), Err(TokenError::Signature));
    }
}
