//! Authentication of HTTP clients, shared by TAXII and the REST API: owns the configured
//! credentials (`API_KEYS`, `TAXII_USERS`), the accepted ways of presenting them and the 401
//! answer. The body of that answer is rendered by the caller, so each API keeps its own
//! error format.
//!
//! Accepted: `Authorization: Bearer <key>`, `Authorization: Token <key>`, `X-API-Key: <key>`,
//! and HTTP Basic with any user name and a key as the password, or a `TAXII_USERS` pair.
//! Without any configured credential every request passes (reads are open; start-up warns).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::HttpSettings;

/// The challenge sent with every 401.
pub const CHALLENGE: &str = r#"Basic realm="taxii", Bearer realm="taxii""#;

/// Why a request was refused. The messages never contain the presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials were presented")]
    Missing,
    #[error("the Authorization header is malformed or uses an unsupported scheme")]
    Malformed,
    #[error("the presented credentials are not valid")]
    Invalid,
}

impl AuthError {
    /// Short machine-readable reason for the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::Invalid => "invalid",
        }
    }
}

/// Renders the body of a 401; status and challenge header are set by [`require`].
pub type ErrorRenderer = fn(AuthError) -> Response;

/// A credential as presented by the client.
enum Presented {
    Key(String),
    Basic { user: String, password: String },
}

/// The configured credentials, stored as SHA-256 digests so every comparison has the same
/// length and runs in constant time.
#[derive(Clone)]
pub struct Guard {
    keys: Arc<Vec<[u8; 32]>>,
    users: Arc<Vec<([u8; 32], [u8; 32])>>,
    render: ErrorRenderer,
}

impl Guard {
    pub fn new(http: &HttpSettings, render: ErrorRenderer) -> Guard {
        let keys = http.api_keys.iter().map(|k| digest(k.expose())).collect();
        let users = http
            .taxii_users
            .iter()
            .map(|(user, password)| (digest(user), digest(password.expose())))
            .collect();
        Guard {
            keys: Arc::new(keys),
            users: Arc::new(users),
            render,
        }
    }

    /// True when no credential is configured: every request passes.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.users.is_empty()
    }

    /// Checks the credential carried by `headers`.
    ///
    /// # Errors
    /// [`AuthError`] saying why the request is refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        if self.is_open() {
            return Ok(());
        }
        let accepted = match presented(headers)? {
            Presented::Key(key) => self.key_matches(&key),
            Presented::Basic { user, password } => {
                self.key_matches(&password) | self.user_matches(&user, &password)
            }
        };
        if bool::from(accepted) {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// Compares with every configured key, without stopping at the first match, so the
    /// time taken says nothing about which key (if any) matched.
    fn key_matches(&self, candidate: &str) -> Choice {
        let candidate = digest(candidate);
        self.keys
            .iter()
            .fold(Choice::from(0), |acc, key| acc | key.ct_eq(&candidate))
    }

    fn user_matches(&self, user: &str, password: &str) -> Choice {
        let (user, password) = (digest(user), digest(password));
        self.users.iter().fold(Choice::from(0), |acc, (u, p)| {
            acc | (u.ct_eq(&user) & p.ct_eq(&password))
        })
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Extracts the presented credential; `X-API-Key` wins over `Authorization`.
fn presented(headers: &HeaderMap) -> Result<Presented, AuthError> {
    if let Some(key) = headers.get("x-api-key") {
        let key = key.to_str().map_err(|_| AuthError::Malformed)?.trim();
        return Ok(Presented::Key(key.to_string()));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => Ok(Presented::Key(rest.to_string())),
        "basic" => basic(rest),
        _ => Err(AuthError::Malformed),
    }
}

fn basic(encoded: &str) -> Result<Presented, AuthError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok(Presented::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Middleware: passes authenticated requests on; answers others with 401, the challenge and
/// the caller's error body, and logs an audit event.
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            audit(&request, err);
            unauthorized(&guard, err)
        }
    }
}

fn unauthorized(guard: &Guard, err: AuthError) -> Response {
    let mut response = (guard.render)(err);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

fn audit(request: &Request, err: AuthError) {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string());
    tracing::warn!(
        target: "audit",
        client = %client,
        method = %request.method(),
        path = request.uri().path(),
        reason = err.reason(),
        "authentication failed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, Settings};
    use axum::response::IntoResponse;

    fn guard() -> Guard {
        let dir = tempfile::tempdir().unwrap();
        let mut http = Settings::for_data_dir(dir.path()).http;
        http.api_keys = vec![Secret::new("k1"), Secret::new("key-two")];
        http.taxii_users = vec![("alice".into(), Secret::new("wonder"))];
        Guard::new(&http, |_| StatusCode::UNAUTHORIZED.into_response())
    }

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    fn basic_header(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn every_presentation_is_accepted() {
        let g = guard();
        assert_eq!(g.check(&with("authorization", "Bearer key-two")), Ok(()));
        assert_eq!(g.check(&with("authorization", "Token k1")), Ok(()));
        assert_eq!(g.check(&with("x-api-key", "k1")), Ok(()));
        let any_user = basic_header("whoever", "k1");
        assert_eq!(g.check(&with("authorization", &any_user)), Ok(()));
        let pair = basic_header("alice", "wonder");
        assert_eq!(g.check(&with("authorization", &pair)), Ok(()));
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        let g = guard();
        assert_eq!(g.check(&HeaderMap::new()), Err(AuthError::Missing));
        let wrong = with("authorization", "Bearer nope");
        assert_eq!(g.check(&wrong), Err(AuthError::Invalid));
        let other_user = basic_header("bob", "wonder");
        assert_eq!(
            g.check(&with("authorization", &other_user)),
            Err(AuthError::Invalid)
        );
        let digest = with("authorization", "Digest abc");
        assert_eq!(g.check(&digest), Err(AuthError::Malformed));
        let junk = with("authorization", "Basic !!!");
        assert_eq!(g.check(&junk), Err(AuthError::Malformed));
    }
}
