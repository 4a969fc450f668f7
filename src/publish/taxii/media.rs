//! TAXII media types: Accept negotiation (lenient, see the rules on [`acceptable`]) and the
//! one `Content-Type` every TAXII response carries, errors and fallbacks included.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::TaxiiError;

/// The exact media type of every TAXII response.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The STIX media type of the collections' objects.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

/// A response with the TAXII media type and a JSON body.
pub fn taxii_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    stamp(&mut response);
    response
}

fn stamp(response: &mut Response) {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TAXII_MEDIA_TYPE),
    );
}

/// Middleware: refuses requests whose `Accept` allows nothing we can send (406).
/// `Content-Type` of requests is never looked at: some clients send it on GET.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let accept = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if acceptable(&accept) {
        next.run(request).await
    } else {
        TaxiiError::NotAcceptable(format!(
            "none of the accepted media types ({accept}) can be served; \
             this server speaks {TAXII_MEDIA_TYPE}"
        ))
        .into_response()
    }
}

/// Middleware: gives every response leaving the TAXII routes the TAXII media type, so
/// framework-made answers (e.g. a 405) carry it too.
pub async fn stamp_content_type(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    stamp(&mut response);
    response
}

/// Whether an `Accept` value (RFC 9110 media ranges, comma-separated) allows a TAXII 2.1
/// response. Accepted ranges: `*/*`, `application/*`, `application/json`,
/// `application/taxii+json` without a version or with `version=2.1`, the same for
/// `application/stix+json` and the old `application/vnd.oasis.taxii+json`. A range with
/// `q=0` allows nothing. An empty or missing header means `*/*`.
pub fn acceptable(accept: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(range_acceptable)
}

fn range_acceptable(range: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
    let mut version = None;
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" if value.parse::<f32>().is_ok_and(|q| q <= 0.0) => return false,
            "version" => version = Some(value.to_string()),
            _ => {}
        }
    }
    match kind.as_str() {
        "*/*" | "application/*" | "application/json" => true,
        "application/taxii+json" | "application/stix+json" | "application/vnd.oasis.taxii+json" => {
            version.is_none_or(|v| v == "2.1")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn lenient_accept_rules() {
        for ok in [
            "",
            "*/*",
            "application/taxii+json;version=2.1",
            "application/taxii+json",
            "Application/TAXII+json; version=2.1",
            "application/json, text/plain, */*",
            "application/stix+json;version=2.1",
            "text/html, application/taxii+json;version=2.1;q=0.5",
        ] {
            assert!(acceptable(ok), "{ok}");
        }
        for refused in [
            "application/taxii+json;version=2.0",
            "text/html",
            "application/taxii+json;q=0",
            "application/stix+json;version=2.0",
        ] {
            assert!(!acceptable(refused), "{refused}");
        }
    }
}
