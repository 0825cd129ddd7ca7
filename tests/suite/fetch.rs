//! Integration tests of `ldzmask::fetch` against a small HTTP/1.1 server on 127.0.0.1.
//!
//! The server answers one request per connection (`Connection: close`), accepts a bounded
//! number of connections, stops when the test is done (or after a deadline) and records every
//! request so the tests can check the `Range` and `Authorization` headers.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ldzmask::fetch::{
    ChecksumSource, FetchError, HubFile, Progress, download, download_with_outcome,
};
use sha2::{Digest, Sha256};

/// Size of the served file: a few MB, more than one progress/buffer chunk.
const DATA_LEN: usize = 3 * 1024 * 1024 + 12_345;
/// Where the "cut connection" mode stops sending on the first request.
const CUT_AT: usize = 1_234_567;
/// Longest time a test server waits for connections.
const SERVER_DEADLINE: Duration = Duration::from_secs(20);
/// Socket timeouts of the test server.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

const FILE: HubFile = HubFile {
    repo: "test-owner/test-model",
    file: "model.ckpt",
    size: None,
    sha256: None,
};

fn test_data() -> Arc<Vec<u8>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data = (0..DATA_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    Arc::new(data)
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// How the server answers.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Serves the file, honouring `Range` (206, or 416 past the end).
    Normal,
    /// Like `Normal`, but the first connection sends the full `Content-Length` and then only
    /// `CUT_AT` bytes before closing.
    CutFirst,
    /// Always answers 200 with the whole file.
    IgnoreRange,
    /// Answers every request with this status and a short text body.
    Status(u16),
    /// Answers `302 Found` to this URL, with `X-Linked-ETag` / `X-Linked-Size` like the hub.
    Redirect(String),
}

/// Which checksum header the server sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Etag {
    /// `X-Linked-ETag: "<sha256>"` and a non-sha256 `ETag`.
    Linked,
    /// `ETag: "<sha256>"`.
    Plain,
    /// `X-Linked-ETag` with the sha256 of other data.
    Wrong,
    /// `ETag` with a 64-hex value that is not the sha256 (like a storage server's hash).
    Bogus,
    /// No checksum header.
    None,
}

/// One recorded request.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    headers: Vec<(String, String)>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct TestServer {
    endpoint: String,
    port: u16,
    log: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server that accepts at most `max_connections` connections.
    fn start(data: Arc<Vec<u8>>, mode: Mode, etag: Etag, max_connections: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_log, thread_stop) = (Arc::clone(&log), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name(format!("fetch-test-server-{port}"))
            .spawn(move || {
                let deadline = Instant::now() + SERVER_DEADLINE;
                let mut served = 0;
                while served < max_connections
                    && !thread_stop.load(Ordering::SeqCst)
                    && Instant::now() < deadline
                {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            handle_connection(stream, served, &data, &mode, etag, &thread_log);
                            served += 1;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
            .expect("spawn test server");
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            log,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the server and returns the requests it received.
    fn finish(mut self) -> Vec<Recorded> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("test server thread panicked");
        }
        self.log.lock().expect("request log").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn handle_connection(
    stream: TcpStream,
    index: usize,
    data: &[u8],
    mode: &Mode,
    etag: Etag,
    log: &Mutex<Vec<Recorded>>,
) {
    // Errors only end this connection: the client sees them as network errors.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(SOCKET_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SOCKET_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let method = request_line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let request = Recorded { method, headers };
    let range_start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let is_head = request.method == "HEAD";
    log.lock().expect("request log").push(request);

    let sha = sha256_hex(data);
    let mut extra = String::new();
    match etag {
        Etag::Linked => {
            extra += &format!("X-Linked-ETag: \"{sha}\"\r\nETag: \"cdn-1234\"\r\n");
        }
        Etag::Plain => extra += &format!("ETag: \"{sha}\"\r\n"),
        Etag::Wrong => {
            extra += &format!("X-Linked-ETag: \"{}\"\r\n", sha256_hex(b"other data"));
        }
        Etag::Bogus => extra += &format!("ETag: \"{}\"\r\n", sha256_hex(b"xet hash")),
        Etag::None => {}
    }
    let len = data.len();
    let mut out = stream;
    let (head, body): (String, &[u8]) = match mode {
        Mode::Status(code) => {
            let body: &[u8] = b"error\n";
            (
                format!(
                    "HTTP/1.1 {code} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ),
                body,
            )
        }
        Mode::Redirect(location) => (
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nX-Linked-Size: {len}\r\n{extra}\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            &[],
        ),
        Mode::CutFirst if index == 0 => (
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"),
            &data[..CUT_AT],
        ),
        Mode::Normal | Mode::CutFirst if range_start.is_some_and(|s| s >= len) => (
            format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n{extra}\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            &[],
        ),
        Mode::Normal | Mode::CutFirst if range_start.is_some() => {
            let start = range_start.unwrap_or_default();
            (
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\n\
                     Content-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    len - 1,
                    len - start
                ),
                &data[start..],
            )
        }
        Mode::Normal | Mode::CutFirst | Mode::IgnoreRange => (
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"),
            data,
        ),
    };
    let _ = out.write_all(head.as_bytes());
    if !is_head {
        let _ = out.write_all(body);
    }
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Write);
}

/// A fresh, empty folder for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fetch-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

fn part_path(dir: &Path) -> PathBuf {
    dir.join(format!("{}.part", FILE.file))
}

/// Runs `download_with_outcome` without a token, collecting the progress reports.
fn fetch(
    file: &HubFile,
    endpoint: &str,
    dir: &Path,
) -> (
    Result<ldzmask::fetch::FetchOutcome, FetchError>,
    Vec<Progress>,
) {
    let mut reports = Vec::new();
    let result = download_with_outcome(file, endpoint, None, dir, &mut |p| reports.push(p));
    (result, reports)
}

#[test]
fn downloads_whole_file_and_verifies_sha256_from_x_linked_etag() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Linked, 1);
    let dir = test_dir("whole");
    let mut reports = Vec::new();
    let path = download(&FILE, &server.endpoint, &dir, &mut |p| reports.push(p))
        .expect("download succeeds");
    let requests = server.finish();

    assert_eq!(path, dir.join("model.ckpt"));
    assert_eq!(std::fs::read(&path).expect("final file"), *data);
    assert!(!part_path(&dir).exists(), ".part must be renamed away");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("range"), None);
    let last = reports.last().expect("progress reported");
    assert_eq!(last.downloaded, DATA_LEN as u64);
    assert_eq!(last.total, Some(DATA_LEN as u64));
    assert_eq!(last.resumed_from, 0);
    assert!(reports.len() <= 4, "progress is throttled: {reports:?}");
}

#[test]
fn sha256_in_plain_etag_is_used_when_no_linked_etag() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Plain, 1);
    let dir = test_dir("plain-etag");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    server.finish();
    let outcome = result.expect("download succeeds");
    assert_eq!(outcome.verified, Some(ChecksumSource::Etag));
    assert_eq!(outcome.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    assert!(!outcome.already_present);
}

#[test]
fn resumes_after_cut_connection_with_range_request() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::CutFirst, Etag::Linked, 2);
    let dir = test_dir("resume");

    let (first, _) = fetch(&FILE, &server.endpoint, &dir);
    let err = first.expect_err("first attempt is cut");
    assert!(matches!(err, FetchError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("resume"), "{err}");
    let part_len = std::fs::metadata(part_path(&dir))
        .expect(".part kept")
        .len();
    assert_eq!(part_len, CUT_AT as u64);
    assert!(!dir.join(FILE.file).exists());

    let (second, reports) = fetch(&FILE, &server.endpoint, &dir);
    let requests = server.finish();
    let outcome = second.expect("second attempt resumes");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("range"), None);
    assert_eq!(
        requests[1].header("range"),
        Some(format!("bytes={CUT_AT}-").as_str())
    );
    assert_eq!(outcome.resumed_from, CUT_AT as u64);
    assert_eq!(outcome.verified, Some(ChecksumSource::LinkedEtag));
    assert_eq!(std::fs::read(&outcome.path).expect("final file"), *data);
    assert!(!part_path(&dir).exists());
    let first_report = reports.first().expect("progress reported");
    assert_eq!(first_report.resumed_from, CUT_AT as u64);
    assert_eq!(first_report.downloaded, CUT_AT as u64);
}

#[test]
fn restarts_from_zero_when_server_ignores_range() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::IgnoreRange, Etag::Linked, 1);
    let dir = test_dir("ignore-range");
    // A .part whose bytes are wrong: only a restart from 0 gives the right checksum.
    std::fs::write(part_path(&dir), vec![0xAA; 500_000]).expect("write .part");

    let (result, reports) = fetch(&FILE, &server.endpoint, &dir);
    let requests = server.finish();
    let outcome = result.expect("download succeeds");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("range"), Some("bytes=500000-"));
    assert_eq!(outcome.resumed_from, 0);
    assert_eq!(reports.first().map(|p| p.resumed_from), Some(0));
    assert_eq!(std::fs::read(&outcome.path).expect("final file"), *data);
}

#[test]
fn complete_part_file_answered_416_is_verified_and_renamed() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Linked, 1);
    let dir = test_dir("complete-part");
    std::fs::write(part_path(&dir), &*data).expect("write .part");

    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    let requests = server.finish();
    let outcome = result.expect("complete .part is accepted");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("range"),
        Some(format!("bytes={DATA_LEN}-").as_str())
    );
    assert_eq!(outcome.verified, Some(ChecksumSource::LinkedEtag));
    assert_eq!(outcome.bytes, DATA_LEN as u64);
    assert!(!part_path(&dir).exists());
    assert_eq!(std::fs::read(&outcome.path).expect("final file"), *data);
}

#[test]
fn wrong_checksum_errors_with_both_hashes_and_leaves_no_file() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Wrong, 1);
    let dir = test_dir("wrong-checksum");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    server.finish();
    let err = result.expect_err("checksum mismatch");
    let msg = err.to_string();
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{msg}");
    assert!(msg.contains(&sha256_hex(&data)), "{msg}");
    assert!(msg.contains(&sha256_hex(b"other data")), "{msg}");
    assert!(!dir.join(FILE.file).exists(), "no final file");
    assert!(!part_path(&dir).exists(), "no .part left");
}

#[test]
fn missing_file_404_error_says_not_found_and_names_url() {
    let server = TestServer::start(test_data(), Mode::Status(404), Etag::None, 1);
    let dir = test_dir("not-found");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    let endpoint = server.endpoint.clone();
    server.finish();
    let err = result.expect_err("404");
    let msg = err.to_string();
    assert!(matches!(err, FetchError::NotFound { .. }), "{msg}");
    assert!(msg.contains("not found"), "{msg}");
    assert!(msg.contains(&FILE.url(&endpoint)), "{msg}");
    assert!(!dir.join(FILE.file).exists());
}

#[test]
fn gated_401_error_tells_to_accept_licence_and_set_hf_token() {
    let server = TestServer::start(test_data(), Mode::Status(401), Etag::None, 1);
    let dir = test_dir("gated");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    let endpoint = server.endpoint.clone();
    let requests = server.finish();
    let err = result.expect_err("401");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            FetchError::Gated {
                status: 401,
                token_sent: false,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("accept the licence"), "{msg}");
    assert!(msg.contains("HF_TOKEN"), "{msg}");
    assert!(msg.contains(&FILE.model_page(&endpoint)), "{msg}");
    assert_eq!(requests[0].header("authorization"), None);
}

#[test]
fn token_goes_to_hub_only_and_hub_checksum_survives_redirect() {
    let data = test_data();
    // The storage server sends a 64-hex ETag that is not the sha256: it must be ignored.
    let cdn = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Bogus, 1);
    let location = format!("http://localhost:{}/blob/xyz?signature=abc", cdn.port);
    let hub = TestServer::start(Arc::clone(&data), Mode::Redirect(location), Etag::Linked, 1);
    let dir = test_dir("redirect");

    let result = download_with_outcome(&FILE, &hub.endpoint, Some("secret"), &dir, &mut |_| {});
    let hub_requests = hub.finish();
    let cdn_requests = cdn.finish();
    let outcome = result.expect("download through redirect");
    assert_eq!(outcome.verified, Some(ChecksumSource::LinkedEtag));
    assert_eq!(std::fs::read(&outcome.path).expect("final file"), *data);
    assert_eq!(hub_requests.len(), 1);
    assert_eq!(cdn_requests.len(), 1);
    assert_eq!(
        hub_requests[0].header("authorization"),
        Some("Bearer secret")
    );
    assert_eq!(cdn_requests[0].header("authorization"), None);
}

#[test]
fn download_without_any_checksum_succeeds_unverified() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::None, 1);
    let dir = test_dir("no-checksum");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    server.finish();
    let outcome = result.expect("download succeeds");
    assert_eq!(outcome.verified, None);
    assert_eq!(outcome.sha256.as_deref(), Some(sha256_hex(&data).as_str()));
    assert_eq!(std::fs::read(&outcome.path).expect("final file"), *data);
}

#[test]
fn pinned_size_differing_from_server_size_is_a_size_mismatch() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Linked, 1);
    let dir = test_dir("size-mismatch");
    let file = HubFile {
        size: Some(DATA_LEN as u64 + 1),
        ..FILE
    };
    let (result, _) = fetch(&file, &server.endpoint, &dir);
    server.finish();
    let err = result.expect_err("size mismatch");
    assert!(matches!(err, FetchError::SizeMismatch { .. }), "{err}");
    assert!(!dir.join(FILE.file).exists());
}

#[test]
fn existing_file_with_pinned_sha256_is_verified_without_network() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Linked, 1);
    let dir = test_dir("present-pinned");
    std::fs::write(dir.join(FILE.file), &*data).expect("write final file");
    let file = HubFile {
        sha256: Some(sha256_hex(&data).leak()),
        size: Some(DATA_LEN as u64),
        ..FILE
    };
    let (result, reports) = fetch(&file, &server.endpoint, &dir);
    let requests = server.finish();
    let outcome = result.expect("already present");
    assert!(outcome.already_present);
    assert_eq!(outcome.verified, Some(ChecksumSource::Pinned));
    assert!(requests.is_empty(), "nothing is requested: {requests:?}");
    assert!(reports.is_empty());
}

#[test]
fn existing_file_is_checked_against_server_checksum_with_one_head_request() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Linked, 2);
    let dir = test_dir("present-head");
    std::fs::write(dir.join(FILE.file), &*data).expect("write final file");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    let requests = server.finish();
    let outcome = result.expect("already present");
    assert!(outcome.already_present);
    assert_eq!(outcome.verified, Some(ChecksumSource::LinkedEtag));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "HEAD");
}

#[test]
fn existing_file_with_wrong_checksum_is_an_error_and_is_kept() {
    let data = test_data();
    let server = TestServer::start(Arc::clone(&data), Mode::Normal, Etag::Wrong, 1);
    let dir = test_dir("present-wrong");
    std::fs::write(dir.join(FILE.file), &*data).expect("write final file");
    let (result, _) = fetch(&FILE, &server.endpoint, &dir);
    server.finish();
    let err = result.expect_err("checksum mismatch");
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{err}");
    assert!(
        dir.join(FILE.file).exists(),
        "the user's file is not deleted"
    );
}
