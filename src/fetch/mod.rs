//! Downloading checkpoints from a model hub (`ldzmask weights fetch`).
//!
//! [`download`] fetches one file of a Hugging Face style hub
//! (`{endpoint}/{repo}/resolve/main/{file}`) into a folder:
//!
//! * the data streams to `<file>.part` through a buffer (the Stable Diffusion checkpoint is
//!   7.7 GB; it is never held in memory);
//! * an interrupted download is **resumed** from the existing `.part` with an HTTP
//!   `Range: bytes=N-` request. A server that ignores `Range` (answers `200`) makes the
//!   download start again from 0; a `416` answer for a `.part` that is already complete is
//!   accepted;
//! * the size is checked against `Content-Length` / `Content-Range` and the **sha256** against
//!   the value pinned in [`HubFile::sha256`], or else the one the hub reports in
//!   `X-Linked-ETag` / `ETag` (Hugging Face sends the sha256 of LFS files there). When no
//!   checksum is known at all the download is accepted and a warning says it is unverified;
//! * only then is `<file>.part` renamed to `<file>`. A checksum mismatch deletes the `.part`.
//!
//! Redirects are followed here (not by the HTTP client) so that the checksum headers of the
//! hub's own answer are seen and the `HF_TOKEN` bearer token is only sent to the hub's host,
//! never to the storage server it redirects to.
//!
//! The LD-ZNet checkpoint is not on a hub; [`LDZNET_MANUAL_STEP`] tells users how to get it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ureq::http::StatusCode;

mod http;

use http::{
    Client, Method, ServerInfo, header_str, header_u64, parse_content_range,
    parse_unsatisfied_range,
};

/// One file of a model-hub repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubFile {
    /// Repository id, `owner/name`.
    pub repo: &'static str,
    /// File name inside the repository (on the `main` revision); also the local file name.
    pub file: &'static str,
    /// Expected size in bytes, when known for certain.
    pub size: Option<u64>,
    /// Expected sha256 (64 lowercase hex digits), when known for certain. When `None`, the
    /// checksum the hub reports (`X-Linked-ETag` / `ETag`) is used.
    pub sha256: Option<&'static str>,
}

impl HubFile {
    /// The download URL of this file: `{endpoint}/{repo}/resolve/main/{file}`.
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/main/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.file
        )
    }

    /// The repository's page on the hub, `{endpoint}/{repo}` (where a gated model's licence
    /// is accepted).
    pub fn model_page(&self, endpoint: &str) -> String {
        format!("{}/{}", endpoint.trim_end_matches('/'), self.repo)
    }
}

/// Stable Diffusion v1.4 with the full (raw + EMA) weights: the checkpoint LD-ZNet was trained
/// with. Gated on Hugging Face (accept the licence on the model page, then set `HF_TOKEN`).
///
/// Size and sha256 are not pinned here; the sha256 the hub reports is checked instead.
pub const SD_V1_4_FULL_EMA: HubFile = HubFile {
    repo: "CompVis/stable-diffusion-v-1-4-original",
    file: "sd-v1-4-full-ema.ckpt",
    size: None,
    sha256: None,
};

/// Environment variable that overrides the hub endpoint (a mirror, or a local test server).
pub const ENDPOINT_ENV: &str = "LDZMASK_HUB_ENDPOINT";

/// The hub used when neither `--endpoint` nor [`ENDPOINT_ENV`] is given.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Environment variable holding a Hugging Face access token, sent as
/// `Authorization: Bearer <token>` (needed for gated models such as SD v1.4).
pub const TOKEN_ENV: &str = "HF_TOKEN";

/// What to tell users about the LD-ZNet checkpoint, which cannot be fetched automatically.
pub const LDZNET_MANUAL_STEP: &str = "\
LDZNet_txt2mask.ckpt (the LD-ZNet segmentation network) is not on a model hub, so \
`ldzmask weights fetch` cannot download it. Download it yourself from the link (Google Drive) \
in the README of the official repository, https://github.com/koutilya-pnvr/LD-ZNet, and put \
the file, named LDZNet_txt2mask.ckpt, in the same weights folder as sd-v1-4-full-ema.ckpt. \
Then run `ldzmask weights check` to confirm that both checkpoints are found and usable.";

/// Size of the streaming buffers (network reads, file writes, hashing).
const BUF_SIZE: usize = 1 << 20;
/// Least time between two progress reports.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Download progress, passed to the callback of [`download`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes in the `.part` file so far, including the ones kept from an earlier attempt.
    pub downloaded: u64,
    /// Size of the whole file, when the server (or the [`HubFile`]) says it.
    pub total: Option<u64>,
    /// Bytes that were already on disk when this download started (0 for a fresh download).
    pub resumed_from: u64,
}

impl Progress {
    /// Fraction done, in `0.0..=1.0`, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total
            .filter(|&t| t > 0)
            .map(|t| (self.downloaded as f64 / t as f64).clamp(0.0, 1.0))
    }
}

impl fmt::Display for Progress {
    /// A one-line text progress bar, e.g. `[#########-----------]  45.1%  3.47 GB / 7.70 GB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WIDTH: usize = 30;
        match (self.fraction(), self.total) {
            (Some(frac), Some(total)) => {
                let filled = ((frac * WIDTH as f64).round() as usize).min(WIDTH);
                write!(
                    f,
                    "[{}{}] {:5.1}%  {} / {}",
                    "#".repeat(filled),
                    "-".repeat(WIDTH - filled),
                    frac * 100.0,
                    human_bytes(self.downloaded),
                    human_bytes(total)
                )
            }
            _ => write!(f, "{} downloaded", human_bytes(self.downloaded)),
        }
    }
}

/// Formats a byte count with a decimal unit (`7.70 GB`).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.2} {unit}")
}

/// Where the expected sha256 of a download came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumSource {
    /// Pinned in [`HubFile::sha256`].
    Pinned,
    /// The hub's `X-Linked-ETag` header.
    LinkedEtag,
    /// The hub's `ETag` header.
    Etag,
}

impl fmt::Display for ChecksumSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pinned => "pinned in ldzmask",
            Self::LinkedEtag => "reported by the server in X-Linked-ETag",
            Self::Etag => "reported by the server in ETag",
        })
    }
}

/// What [`download_with_outcome`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The final file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its sha256 (lowercase hex), when it was computed. It is computed for every download;
    /// for an already present file only when an expected checksum is known.
    pub sha256: Option<String>,
    /// Where the checksum it was verified against came from; `None` means it is unverified
    /// (no checksum was known).
    pub verified: Option<ChecksumSource>,
    /// `true` when the final file existed already and nothing was downloaded.
    pub already_present: bool,
    /// Bytes reused from an earlier, interrupted download.
    pub resumed_from: u64,
}

/// Errors of [`download`]. Each names the URL or the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server could not be reached, or the request failed before an answer came.
    #[error("network error requesting {url}: {source}")]
    Network {
        /// The URL requested.
        url: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The connection broke while the file was streaming; the `.part` file is kept.
    #[error(
        "download of {url} interrupted after {downloaded} bytes: {source}; the partial file {} \
         is kept: run the command again to resume",
        part.display()
    )]
    Interrupted {
        /// The URL requested.
        url: String,
        /// The partial file kept for resuming.
        part: PathBuf,
        /// Bytes in the partial file.
        downloaded: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `401` / `403`: the model is gated (or the token is wrong).
    #[error(
        "HTTP {status} for {url}: access denied. This model is gated: open {model_page}, log in, \
         accept the licence, then create an access token (https://huggingface.co/settings/tokens) \
         and set it in the {TOKEN_ENV} environment variable{}",
        if *token_sent { " (a token was sent: check that it is valid and that its account has accepted the licence)" } else { " (no token was sent)" }
    )]
    Gated {
        /// The URL requested.
        url: String,
        /// `401` or `403`.
        status: u16,
        /// The model page where the licence is accepted.
        model_page: String,
        /// Whether an `Authorization` header was sent.
        token_sent: bool,
    },
    /// `404`.
    #[error("{url} not found (HTTP 404): check the repository, the file name and the endpoint")]
    NotFound {
        /// The URL requested.
        url: String,
    },
    /// Any other unsuccessful HTTP status.
    #[error("HTTP {status} {reason} for {url}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The server's answer could not be used (bad `Content-Range`, too many redirects, …).
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The data does not have the expected sha256.
    #[error(
        "checksum mismatch for {}: expected sha256 {expected} ({expected_from}), got {actual}; {note}",
        path.display()
    )]
    ChecksumMismatch {
        /// The file checked.
        path: PathBuf,
        /// The expected sha256.
        expected: String,
        /// Where `expected` came from.
        expected_from: ChecksumSource,
        /// The sha256 of the data.
        actual: String,
        /// What happened to the file.
        note: &'static str,
    },
    /// The data does not have the expected size.
    #[error(
        "size mismatch for {}: expected {expected} bytes, got {actual} bytes; {note}",
        path.display()
    )]
    SizeMismatch {
        /// The file checked.
        path: PathBuf,
        /// The expected size.
        expected: u64,
        /// The actual size.
        actual: u64,
        /// What happened to the file.
        note: &'static str,
    },
    /// Reading or writing a local file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The endpoint from [`ENDPOINT_ENV`], or [`DEFAULT_ENDPOINT`].
pub fn endpoint_from_env() -> String {
    std::env::var(ENDPOINT_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

/// The access token from [`TOKEN_ENV`] (`HF_TOKEN`), if set and not empty.
pub fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Downloads `file` from `endpoint` into `dest_dir` and returns the path of the final file.
///
/// Uses the token in `HF_TOKEN` when set. See [`download_with_outcome`] for the details, and
/// for a result that also says whether the file was verified or already present.
pub fn download(
    file: &HubFile,
    endpoint: &str,
    dest_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, FetchError> {
    download_with_outcome(
        file,
        endpoint,
        token_from_env().as_deref(),
        dest_dir,
        progress,
    )
    .map(|outcome| outcome.path)
}

/// Downloads `file` from `endpoint` into `dest_dir`, with an explicit access `token`.
///
/// * An existing `dest_dir/<file>` is not downloaded again: its size is checked against
///   [`HubFile::size`] and its sha256 against [`HubFile::sha256`] or, when that is not
///   pinned, against the checksum the server reports for a `HEAD` request (if the server
///   cannot be asked, the file is accepted unverified, with a warning).
/// * Otherwise the data goes to `dest_dir/<file>.part`, resuming an existing one, is checked
///   (size, sha256) and renamed to `dest_dir/<file>`.
/// * `progress` is called when the transfer starts, at most every 0.5 s while it runs, and
///   once at the end.
pub fn download_with_outcome(
    file: &HubFile,
    endpoint: &str,
    token: Option<&str>,
    dest_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<FetchOutcome, FetchError> {
    let url = file.url(endpoint);
    fs::create_dir_all(dest_dir).map_err(|e| io_err(dest_dir, e))?;
    let final_path = dest_dir.join(file.file);
    let part_path = dest_dir.join(format!("{}.part", file.file));
    let client = Client::new(&url, token, file.model_page(endpoint));

    if final_path.is_file() {
        return verify_existing(file, &client, &final_path);
    }

    let mut restarted = false;
    loop {
        match try_download(file, &client, &part_path, progress)? {
            Transfer::Done(done) => return finish(file, &part_path, &final_path, done),
            Transfer::Restart if !restarted => {
                restarted = true;
                remove_if_exists(&part_path)?;
            }
            Transfer::Restart => {
                return Err(FetchError::Protocol {
                    url: client.url.clone(),
                    message: "the server refused the range request twice".into(),
                });
            }
        }
    }
}

/// Result of one transfer attempt.
enum Transfer {
    /// The `.part` file holds the whole data.
    Done(Done),
    /// The `.part` file does not fit the server's file: delete it and start from 0.
    Restart,
}

/// A completed transfer into the `.part` file.
struct Done {
    sha256: String,
    bytes: u64,
    total: Option<u64>,
    expected: Option<(String, ChecksumSource)>,
    resumed_from: u64,
}

/// Downloads into `part_path`, resuming it if it exists.
fn try_download(
    file: &HubFile,
    client: &Client,
    part_path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Transfer, FetchError> {
    let mut offset = match fs::metadata(part_path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_err(part_path, e)),
    };
    if let Some(size) = file.size
        && offset > size
    {
        log::warn!(
            "{} is larger than the expected {size} bytes; starting again",
            part_path.display()
        );
        return Ok(Transfer::Restart);
    }

    let mut hasher = Sha256::new();
    if offset > 0 {
        log::info!(
            "resuming {} from {offset} bytes (hashing the bytes already downloaded)",
            part_path.display()
        );
        hash_prefix(part_path, offset, &mut hasher)?;
    }

    let range = (offset > 0).then_some(offset);
    let (mut response, info) = client.send(Method::Get, range)?;
    let status = response.status();
    let total = match status {
        StatusCode::OK => {
            if offset > 0 {
                log::warn!(
                    "{} ignored the range request; downloading from the start",
                    client.url
                );
                offset = 0;
                hasher = Sha256::new();
            }
            header_u64(&response, "content-length").or(info.linked_size)
        }
        StatusCode::PARTIAL_CONTENT => {
            let content_range = header_str(&response, "content-range").unwrap_or_default();
            let Some((start, total)) = parse_content_range(content_range) else {
                return Err(client.protocol(format!(
                    "206 answer with an unusable Content-Range {content_range:?}"
                )));
            };
            if start != offset {
                return Err(client.protocol(format!(
                    "asked for bytes from {offset}, got a range starting at {start}"
                )));
            }
            total.or(info.linked_size)
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = header_str(&response, "content-range").and_then(parse_unsatisfied_range);
            if total == Some(offset) {
                log::info!("{} is already complete", part_path.display());
                let expected = expected_checksum(file, &info);
                check_expected_size(file, Some(offset), part_path)?;
                return Ok(Transfer::Done(Done {
                    sha256: hex(hasher),
                    bytes: offset,
                    total,
                    expected,
                    resumed_from: offset,
                }));
            }
            log::warn!(
                "{} refused to resume at byte {offset} (file size {total:?}); starting again",
                client.url
            );
            return Ok(Transfer::Restart);
        }
        _ => return Err(client.status_error(status)),
    };
    check_expected_size(file, total, part_path)?;
    let expected = expected_checksum(file, &info);

    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part_path)
        .map_err(|e| io_err(part_path, e))?;
    // Drop anything past `offset` (nothing, or all of it when the server restarts at 0).
    out.set_len(offset).map_err(|e| io_err(part_path, e))?;
    let mut out = BufWriter::with_capacity(BUF_SIZE, out);
    out.seek(SeekFrom::Start(offset))
        .map_err(|e| io_err(part_path, e))?;

    let resumed_from = offset;
    let mut downloaded = offset;
    let mut report = |downloaded: u64| {
        progress(Progress {
            downloaded,
            total,
            resumed_from,
        });
    };
    report(downloaded);
    let mut last_report = Instant::now();

    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.flush().map_err(|e| io_err(part_path, e))?;
                return Err(FetchError::Interrupted {
                    url: client.url.clone(),
                    part: part_path.to_owned(),
                    downloaded,
                    source: e,
                });
            }
        };
        let chunk = &buf[..n];
        out.write_all(chunk).map_err(|e| io_err(part_path, e))?;
        hasher.update(chunk);
        downloaded += n as u64;
        if last_report.elapsed() >= PROGRESS_EVERY {
            report(downloaded);
            last_report = Instant::now();
        }
    }
    let out = out
        .into_inner()
        .map_err(|e| io_err(part_path, e.into_error()))?;
    out.sync_all().map_err(|e| io_err(part_path, e))?;
    drop(out);
    report(downloaded);

    if let Some(total) = total
        && downloaded < total
    {
        return Err(FetchError::Interrupted {
            url: client.url.clone(),
            part: part_path.to_owned(),
            downloaded,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the server closed the connection before byte {total}"),
            ),
        });
    }
    Ok(Transfer::Done(Done {
        sha256: hex(hasher),
        bytes: downloaded,
        total,
        expected,
        resumed_from,
    }))
}

/// Checks size and checksum of a complete `.part` file and renames it to its final name.
fn finish(
    file: &HubFile,
    part_path: &Path,
    final_path: &Path,
    done: Done,
) -> Result<FetchOutcome, FetchError> {
    if let Some(expected) = file.size.or(done.total)
        && done.bytes != expected
    {
        remove_if_exists(part_path)?;
        return Err(FetchError::SizeMismatch {
            path: part_path.to_owned(),
            expected,
            actual: done.bytes,
            note: "the partial download was deleted",
        });
    }
    let verified = match &done.expected {
        Some((expected, from)) if *expected != done.sha256 => {
            remove_if_exists(part_path)?;
            return Err(FetchError::ChecksumMismatch {
                path: part_path.to_owned(),
                expected: expected.clone(),
                expected_from: *from,
                actual: done.sha256,
                note: "the download was deleted",
            });
        }
        Some((_, from)) => {
            log::info!("sha256 of {} verified ({from})", final_path.display());
            Some(*from)
        }
        None => {
            log::warn!(
                "no checksum known for {}: the download is NOT verified (sha256 {})",
                final_path.display(),
                done.sha256
            );
            None
        }
    };
    // Synced, renamed, the folder synced: a power cut leaves the `.part` or the whole file.
    crate::fsutil::rename_durably(part_path, final_path)
        .map_err(|e| io_err(final_path, e.into()))?;
    Ok(FetchOutcome {
        path: final_path.to_owned(),
        bytes: done.bytes,
        sha256: Some(done.sha256),
        verified,
        already_present: false,
        resumed_from: done.resumed_from,
    })
}

/// Checks a final file that exists already (nothing is downloaded).
fn verify_existing(
    file: &HubFile,
    client: &Client,
    path: &Path,
) -> Result<FetchOutcome, FetchError> {
    const NOTE: &str = "the existing file was left alone: delete it to download it again";
    let bytes = fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let (expected, server_size) = if let Some(sha) = file.sha256 {
        (
            Some((sha.to_ascii_lowercase(), ChecksumSource::Pinned)),
            None,
        )
    } else {
        match client.head_info() {
            Ok((info, size)) => (expected_checksum(file, &info), size),
            Err(e) => {
                log::warn!(
                    "could not ask the server for the checksum of {}: {e}",
                    path.display()
                );
                (None, None)
            }
        }
    };
    if let Some(expected) = file.size.or(server_size)
        && bytes != expected
    {
        return Err(FetchError::SizeMismatch {
            path: path.to_owned(),
            expected,
            actual: bytes,
            note: NOTE,
        });
    }
    let Some((expected, from)) = expected else {
        log::warn!(
            "{} is already present; no checksum is known, so it is NOT verified",
            path.display()
        );
        return Ok(FetchOutcome {
            path: path.to_owned(),
            bytes,
            sha256: None,
            verified: None,
            already_present: true,
            resumed_from: 0,
        });
    };
    log::info!(
        "{} is already present; verifying its sha256",
        path.display()
    );
    let mut hasher = Sha256::new();
    hash_prefix(path, bytes, &mut hasher)?;
    let actual = hex(hasher);
    if actual != expected {
        return Err(FetchError::ChecksumMismatch {
            path: path.to_owned(),
            expected,
            expected_from: from,
            actual,
            note: NOTE,
        });
    }
    Ok(FetchOutcome {
        path: path.to_owned(),
        bytes,
        sha256: Some(actual),
        verified: Some(from),
        already_present: true,
        resumed_from: 0,
    })
}

/// Fails when the server's size differs from the pinned one.
fn check_expected_size(
    file: &HubFile,
    server_total: Option<u64>,
    part_path: &Path,
) -> Result<(), FetchError> {
    match (file.size, server_total) {
        (Some(expected), Some(actual)) if expected != actual => Err(FetchError::SizeMismatch {
            path: part_path.to_owned(),
            expected,
            actual,
            note: "that is the size the server reports; nothing more was downloaded",
        }),
        _ => Ok(()),
    }
}

/// The expected sha256: pinned, else from the hub's headers.
fn expected_checksum(file: &HubFile, info: &ServerInfo) -> Option<(String, ChecksumSource)> {
    if let Some(sha) = file.sha256 {
        return Some((sha.to_ascii_lowercase(), ChecksumSource::Pinned));
    }
    if let Some(sha) = &info.linked_etag {
        return Some((sha.clone(), ChecksumSource::LinkedEtag));
    }
    info.etag.clone().map(|sha| (sha, ChecksumSource::Etag))
}

/// Feeds the first `len` bytes of `path` to `hasher`.
fn hash_prefix(path: &Path, len: u64, hasher: &mut Sha256) -> Result<(), FetchError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut reader = file.take(len);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut read = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, e)),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != len {
        return Err(io_err(
            path,
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("expected {len} bytes, read {read}"),
            ),
        ));
    }
    Ok(())
}

fn hex(hasher: Sha256) -> String {
    format!("{:x}", hasher.finalize())
}

fn remove_if_exists(path: &Path) -> Result<(), FetchError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, e)),
        _ => Ok(()),
    }
}

fn io_err(path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_url_and_model_page() {
        assert_eq!(
            SD_V1_4_FULL_EMA.url("https://huggingface.co/"),
            "https://huggingface.co/CompVis/stable-diffusion-v-1-4-original/resolve/main/sd-v1-4-full-ema.ckpt"
        );
        assert_eq!(
            SD_V1_4_FULL_EMA.model_page("https://huggingface.co"),
            "https://huggingface.co/CompVis/stable-diffusion-v-1-4-original"
        );
    }

    #[test]
    fn progress_renders_a_bar() {
        let p = Progress {
            downloaded: 3_850_000_000,
            total: Some(7_700_000_000),
            resumed_from: 0,
        };
        let s = p.to_string();
        assert!(s.contains(" 50.0%"), "{s}");
        assert!(s.contains("3.85 GB / 7.70 GB"), "{s}");
        let unknown = Progress {
            downloaded: 1500,
            total: None,
            resumed_from: 0,
        };
        assert_eq!(unknown.to_string(), "1.50 kB downloaded");
    }

    #[test]
    fn manual_step_names_the_file_repository_and_check_command() {
        for needle in [
            "LDZNet_txt2mask.ckpt",
            "koutilya-pnvr/LD-ZNet",
            "Google Drive",
            "ldzmask weights check",
        ] {
            assert!(LDZNET_MANUAL_STEP.contains(needle), "{needle}");
        }
    }
}
