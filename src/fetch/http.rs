//! HTTP for [`super::download`]: one agent per file, redirects followed by hand so the token
//! goes to the hub's own host only, checksum and size headers read from the hub's answers,
//! `Content-Range` parsing for resumed downloads.

use std::time::Duration;

use ureq::http::{StatusCode, Uri};

use super::FetchError;

/// Time allowed to establish a connection (including the TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence allowed while waiting for bytes from the server.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// A sha256 from an `ETag`-style header value (`"abc…"`, `W/"abc…"`), if it is one.
pub(super) fn etag_sha256(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

/// `bytes START-END/TOTAL` → `(START, Some(TOTAL))` (`TOTAL` may be `*`).
pub(super) fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

/// `bytes */TOTAL` (the `Content-Range` of a `416` answer) → `TOTAL`.
pub(super) fn parse_unsatisfied_range(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    rest.strip_prefix("*/")?.trim().parse().ok()
}

pub(super) fn header_str<'a>(
    response: &'a ureq::http::Response<ureq::Body>,
    name: &str,
) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn header_u64(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<u64> {
    header_str(response, name).and_then(|v| v.trim().parse().ok())
}

/// What the hub itself (not a storage server it redirects to) said about the file.
#[derive(Debug, Default)]
pub(super) struct ServerInfo {
    /// sha256 from `X-Linked-ETag`.
    pub(super) linked_etag: Option<String>,
    /// sha256 from `ETag`.
    pub(super) etag: Option<String>,
    /// `X-Linked-Size`.
    pub(super) linked_size: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Method {
    Get,
    Head,
}

/// An HTTP agent bound to one file's URL.
pub(super) struct Client {
    pub(super) agent: ureq::Agent,
    pub(super) url: String,
    /// Host of `url`: the only one the token is sent to and whose checksum headers count.
    pub(super) host: Option<String>,
    pub(super) token: Option<String>,
    pub(super) model_page: String,
}

impl Client {
    pub(super) fn new(url: &str, token: Option<&str>, model_page: String) -> Self {
        let host = url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_ascii_lowercase));
        let loopback = host
            .as_deref()
            .is_some_and(|h| matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1"));
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ldzmask/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A local mirror or test server: never through a proxy from the environment.
            config = config.proxy(None);
        }
        Self {
            agent: config.build().new_agent(),
            url: url.to_owned(),
            host,
            token: token.map(str::to_owned),
            model_page,
        }
    }

    /// Sends a request, following redirects, and returns the final answer (whatever its
    /// status) with what the hub's own answers said about the file.
    pub(super) fn send(
        &self,
        method: Method,
        range: Option<u64>,
    ) -> Result<(ureq::http::Response<ureq::Body>, ServerInfo), FetchError> {
        let mut info = ServerInfo::default();
        let mut current = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = current.parse().map_err(|e| FetchError::Protocol {
                url: current.clone(),
                message: format!("invalid URL: {e}"),
            })?;
            let same_host =
                uri.host().map(str::to_ascii_lowercase) == self.host && self.host.is_some();
            let mut request = match method {
                Method::Get => self.agent.get(&current),
                Method::Head => self.agent.head(&current),
            }
            // Byte ranges and sizes refer to the stored bytes: no transfer compression.
            .header("Accept-Encoding", "identity");
            if let Some(offset) = range {
                request = request.header("Range", format!("bytes={offset}-"));
            }
            if same_host && let Some(token) = &self.token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = request.call().map_err(|e| FetchError::Network {
                url: current.clone(),
                source: e.into_io(),
            })?;
            if same_host {
                if info.linked_etag.is_none() {
                    info.linked_etag = header_str(&response, "x-linked-etag").and_then(etag_sha256);
                }
                if info.etag.is_none() {
                    info.etag = header_str(&response, "etag").and_then(etag_sha256);
                }
                if info.linked_size.is_none() {
                    info.linked_size = header_u64(&response, "x-linked-size");
                }
            }
            let location = header_str(&response, "location");
            match (response.status().is_redirection(), location) {
                (true, Some(location)) => {
                    let next = resolve_location(&uri, location);
                    log::debug!("{current} redirects to {next}");
                    current = next;
                }
                _ => return Ok((response, info)),
            }
        }
        Err(self.protocol(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Asks (`HEAD`) for the hub's checksum and size of the file.
    pub(super) fn head_info(&self) -> Result<(ServerInfo, Option<u64>), FetchError> {
        let (response, info) = self.send(Method::Head, None)?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(status));
        }
        let size = info
            .linked_size
            .or_else(|| header_u64(&response, "content-length"));
        Ok((info, size))
    }

    pub(super) fn status_error(&self, status: StatusCode) -> FetchError {
        let url = self.url.clone();
        match status.as_u16() {
            code @ (401 | 403) => FetchError::Gated {
                url,
                status: code,
                model_page: self.model_page.clone(),
                token_sent: self.token.is_some(),
            },
            404 => FetchError::NotFound { url },
            code => FetchError::Status {
                url,
                status: code,
                reason: status.canonical_reason().unwrap_or("").to_owned(),
            },
        }
    }

    pub(super) fn protocol(&self, message: String) -> FetchError {
        FetchError::Protocol {
            url: self.url.clone(),
            message,
        }
    }
}

/// Resolves a `Location` header against the URL it came from.
pub(super) fn resolve_location(base: &Uri, location: &str) -> String {
    let location = location.trim();
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let scheme = base.scheme_str().unwrap_or("https");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{authority}{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_values_are_accepted_only_when_they_are_sha256() {
        let sha = "a".repeat(64);
        assert_eq!(etag_sha256(&format!("\"{sha}\"")), Some(sha.clone()));
        assert_eq!(
            etag_sha256(&format!("W/\"{}\"", sha.to_uppercase())),
            Some(sha)
        );
        assert_eq!(etag_sha256("\"d41d8cd98f00b204e9800998ecf8427e\""), None);
        assert_eq!(etag_sha256("\"abc-12\""), None);
    }

    #[test]
    fn content_ranges_are_parsed() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("items 0-9/10"), None);
        assert_eq!(parse_unsatisfied_range("bytes */100"), Some(100));
        assert_eq!(parse_unsatisfied_range("bytes 0-1/100"), None);
    }

    #[test]
    fn relative_redirects_are_resolved() {
        let base: Uri = "https://hub.example/a/resolve/main/f.ckpt"
            .parse()
            .expect("valid uri");
        assert_eq!(
            resolve_location(&base, "https://cdn.example/x"),
            "https://cdn.example/x"
        );
        assert_eq!(
            resolve_location(&base, "//cdn.example/x"),
            "https://cdn.example/x"
        );
        assert_eq!(
            resolve_location(&base, "/api/x"),
            "https://hub.example/api/x"
        );
        assert_eq!(
            resolve_location(&base, "g.ckpt"),
            "https://hub.example/a/resolve/main/g.ckpt"
        );
    }
}
