//! The mutations of the fuzzer: byte-level edits that any input gets, and format-aware edits
//! (PNG chunks re-CRC'd, JPEG frame sizes, JSON structure, safetensors headers, the pickle
//! inside a PyTorch zip) so that mutated inputs get past checksums and parsers to the code
//! behind them. The byte-level set follows AFL's havoc stage (bit flips, "interesting" values,
//! block insert/delete/duplicate, splicing between corpus files).

use std::io::{Read, Write};

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, well-mixed, seedable PRNG; the same seed
/// always gives the same inputs, whatever crate versions are in the tree.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values that sit on boundaries (AFL's interesting_8/16/32 plus the 64-bit ones): sign
/// changes, all ones, powers of two around common buffer sizes.
const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    16_384,
    16_385,
    65_535,
    1 << 20,
    1 << 30,
];

/// Writes the low `width` bytes of `value` at `at`, little- or big-endian.
fn put(data: &mut [u8], at: usize, value: u64, width: usize, big_endian: bool) {
    let bytes = value.to_le_bytes();
    for i in 0..width {
        if let Some(slot) = data.get_mut(at + i) {
            *slot = if big_endian {
                bytes[width - 1 - i]
            } else {
                bytes[i]
            };
        }
    }
}

/// One to four havoc edits; `corpus` provides splice material.
pub fn havoc(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        havoc_once(rng, &mut data, corpus);
    }
    data
}

fn havoc_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(11) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.below(len);
            data[at] ^= 1 << rng.below(8);
        }
        // Set a byte to an interesting value.
        1 if len > 0 => {
            let at = rng.below(len);
            data[at] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, 1, 0x40]);
        }
        // Set 2, 4 or 8 bytes to an interesting value, either endianness.
        2 if len > 0 => {
            let width = *rng.pick(&[2usize, 4, 8]);
            let at = rng.below(len);
            let value = *rng.pick(INTERESTING);
            put(data, at, value, width, rng.chance(50));
        }
        // Add or subtract a small amount to a byte.
        3 if len > 0 => {
            let at = rng.below(len);
            let delta = 1 + rng.below(35) as u8;
            data[at] = if rng.chance(50) {
                data[at].wrapping_add(delta)
            } else {
                data[at].wrapping_sub(delta)
            };
        }
        // Delete a range.
        4 if len > 1 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            data.drain(at..at + n);
        }
        // Insert random bytes.
        5 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Duplicate a chunk of the input elsewhere.
        6 if len > 1 => {
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(512));
            let chunk = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        // Splice: overwrite or insert a chunk of another corpus file.
        7 if !corpus.is_empty() => {
            let other = rng.pick(corpus);
            if other.is_empty() {
                return;
            }
            let from = rng.below(other.len());
            let n = 1 + rng.below((other.len() - from).min(1024));
            let chunk = &other[from..from + n];
            let at = rng.below(len + 1);
            if rng.chance(50) {
                data.splice(at..at, chunk.iter().copied());
            } else {
                let end = (at + n).min(len);
                data.splice(at..end, chunk.iter().copied());
            }
        }
        // Truncate.
        8 if len > 0 => data.truncate(rng.below(len)),
        // Overwrite a range with one repeated byte.
        9 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(128));
            let b = *rng.pick(&[0u8, 0xff, 0x41]);
            data[at..at + n].fill(b);
        }
        // Splice the head of one corpus file onto the tail of this one.
        10 if !corpus.is_empty() && len > 0 => {
            let other = rng.pick(corpus);
            let cut = rng.below(other.len() + 1);
            let keep = rng.below(len);
            let mut out = other[..cut].to_vec();
            out.extend_from_slice(&data[keep..]);
            *data = out;
        }
        _ => {}
    }
}

/// One mutation of an image file: half of them format-aware ([`png`] for PNGs, [`jpeg`] frame
/// sizes for some JPEGs), the rest (and any input those cannot parse) [`havoc`].
pub fn image_file(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let aware = if !rng.chance(50) {
        None
    } else if input.starts_with(PNG_SIGNATURE) {
        png(rng, input, corpus)
    } else if input.starts_with(b"\xff\xd8") && rng.chance(30) {
        jpeg(rng, input)
    } else {
        None
    };
    aware.unwrap_or_else(|| havoc(rng, input, corpus))
}

// ---------------------------------------------------------------------------------------------
// PNG

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A PNG chunk: type and data (length and CRC are recomputed when written).
struct Chunk {
    kind: [u8; 4],
    data: Vec<u8>,
}

/// Splits a PNG into chunks; `None` if it is not a well-formed chunk list.
fn png_chunks(bytes: &[u8]) -> Option<Vec<Chunk>> {
    let mut rest = bytes.strip_prefix(PNG_SIGNATURE)?;
    let mut chunks = Vec::new();
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        if rest.len() < 12 + len {
            return None;
        }
        chunks.push(Chunk {
            kind: rest[4..8].try_into().ok()?,
            data: rest[8..8 + len].to_vec(),
        });
        rest = &rest[12 + len..];
    }
    Some(chunks)
}

/// Writes chunks with correct lengths and CRCs.
fn png_write(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();
    for c in chunks {
        out.extend_from_slice(&(c.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&c.kind);
        out.extend_from_slice(&c.data);
        let mut crc = flate2::Crc::new();
        crc.update(&c.kind);
        crc.update(&c.data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

/// PNG-aware mutation: edits chunk contents, the header fields or the decompressed image data,
/// or reorders/duplicates/drops chunks, then writes every CRC correctly so the decoder gets
/// past its checksum test. `None` if `input` is not a parsable PNG.
pub fn png(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut chunks = png_chunks(input)?;
    if chunks.is_empty() {
        return None;
    }
    match rng.below(6) {
        // IHDR fields: width, height (u32 BE), bit depth, colour type, interlace.
        0 => {
            let ihdr = chunks.iter_mut().find(|c| &c.kind == b"IHDR")?;
            match rng.below(3) {
                0 => {
                    let at = *rng.pick(&[0usize, 4]);
                    put(&mut ihdr.data, at, *rng.pick(INTERESTING), 4, true);
                }
                1 => {
                    let at = 8 + rng.below(5);
                    if let Some(b) = ihdr.data.get_mut(at) {
                        *b = *rng.pick(&[0u8, 1, 2, 3, 4, 6, 8, 16, 0xff]);
                    }
                }
                _ => ihdr.data = havoc(rng, &ihdr.data, &[]),
            }
        }
        // The image data, decompressed, mutated and recompressed: reaches the unfiltering and
        // pixel conversion code with a valid zlib stream.
        1 => {
            let mut idat = Vec::new();
            for c in chunks.iter().filter(|c| &c.kind == b"IDAT") {
                idat.extend_from_slice(&c.data);
            }
            let mut raw = Vec::new();
            flate2::read::ZlibDecoder::new(&idat[..])
                .read_to_end(&mut raw)
                .ok()?;
            let raw = havoc(rng, &raw, &[]);
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&raw).ok()?;
            let packed = z.finish().ok()?;
            let first = chunks.iter().position(|c| &c.kind == b"IDAT")?;
            chunks.retain(|c| &c.kind != b"IDAT");
            chunks.insert(
                first,
                Chunk {
                    kind: *b"IDAT",
                    data: packed,
                },
            );
        }
        // Any chunk's data.
        2 => {
            let i = rng.below(chunks.len());
            chunks[i].data = havoc(rng, &chunks[i].data, corpus);
        }
        // Duplicate a chunk.
        3 => {
            let i = rng.below(chunks.len());
            let copy = Chunk {
                kind: chunks[i].kind,
                data: chunks[i].data.clone(),
            };
            let at = rng.below(chunks.len() + 1);
            chunks.insert(at, copy);
        }
        // Drop a chunk.
        4 => {
            chunks.remove(rng.below(chunks.len()));
        }
        // Swap two chunks.
        _ => {
            let (a, b) = (rng.below(chunks.len()), rng.below(chunks.len()));
            chunks.swap(a, b);
        }
    }
    Some(png_write(&chunks))
}

// ---------------------------------------------------------------------------------------------
// JPEG

/// Sets a JPEG frame header's height or width (SOF0/1/2 markers) to an interesting value:
/// decoders allocate from these. `None` if no frame header is found.
pub fn jpeg(rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let sof = input
        .windows(2)
        .position(|w| w[0] == 0xff && matches!(w[1], 0xc0..=0xc2))?;
    let mut data = input.to_vec();
    // Marker, length (2), precision (1), then height and width (u16 BE).
    let at = sof + 5 + 2 * rng.below(2);
    put(&mut data, at, *rng.pick(INTERESTING), 2, true);
    Some(data)
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Values a field might be replaced with: huge and negative numbers, wrong types.
fn nasty_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(14) {
        0 => json!(u64::MAX),
        1 => json!(-1),
        2 => json!(i64::MIN),
        3 => json!(4_294_967_296u64),
        4 => json!(1e300),
        5 => json!(0),
        6 => json!(16_385),
        7 => json!(65_536),
        8 => json!("a string"),
        9 => json!(null),
        10 => json!([1, 2, 3]),
        11 => json!({"x": 1}),
        12 => json!(true),
        _ => json!(0.5),
    }
}

/// All paths (as index lists into objects/arrays) of a JSON value, depth first.
fn json_paths(value: &serde_json::Value, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(path.clone());
    let children: Vec<&serde_json::Value> = match value {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(o) => o.values().collect(),
        _ => return,
    };
    for (i, child) in children.into_iter().enumerate() {
        path.push(i);
        json_paths(child, path, out);
        path.pop();
    }
}

fn json_at<'a>(
    value: &'a mut serde_json::Value,
    path: &[usize],
) -> Option<&'a mut serde_json::Value> {
    let Some((&first, rest)) = path.split_first() else {
        return Some(value);
    };
    let child = match value {
        serde_json::Value::Array(a) => a.get_mut(first)?,
        serde_json::Value::Object(o) => o.values_mut().nth(first)?,
        _ => return None,
    };
    json_at(child, rest)
}

/// Structure-aware JSON mutation: one to three edits on random nodes (nasty values, deleted
/// keys, duplicated array items, deep nesting, long strings, the `width`/`height` fields set to
/// huge or negative sizes, embedded base64 PNGs mutated with [`png`]), sometimes followed by a
/// byte-level edit of the text. `None` if `input` is not JSON.
pub fn json(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut root: serde_json::Value = serde_json::from_slice(input).ok()?;
    for _ in 0..1 + rng.below(3) {
        let mut paths = Vec::new();
        json_paths(&root, &mut Vec::new(), &mut paths);
        let path = rng.pick(&paths).clone();
        let node = json_at(&mut root, &path)?;
        match rng.below(9) {
            0 | 1 => *node = nasty_value(rng),
            2 => {
                if let serde_json::Value::Object(o) = node
                    && !o.is_empty()
                {
                    let key = o.keys().nth(rng.below(o.len()))?.clone();
                    o.remove(&key);
                }
            }
            3 => {
                if let serde_json::Value::Array(a) = node
                    && !a.is_empty()
                {
                    let item = a[rng.below(a.len())].clone();
                    for _ in 0..1 + rng.below(8) {
                        a.push(item.clone());
                    }
                }
            }
            // Deep nesting, spliced in as text below: a 10 000-deep `Value` would overflow
            // the fuzzer's own stack when serialized or dropped.
            4 => *node = serde_json::Value::String(DEEP_MARKER.into()),
            5 => *node = serde_json::Value::String("x".repeat(1 << rng.below(20))),
            6 => {
                if let serde_json::Value::Object(o) = node {
                    for key in ["width", "height", "id", "next_layer_id", "version"] {
                        if o.contains_key(key) && rng.chance(50) {
                            o.insert(key.into(), nasty_value(rng));
                        }
                    }
                }
            }
            7 => {
                if let serde_json::Value::String(s) = node
                    && let Some(png_bytes) = base64_decode(s)
                {
                    let mutated =
                        png(rng, &png_bytes, corpus).unwrap_or_else(|| havoc(rng, &png_bytes, &[]));
                    *s = base64_encode(&mutated);
                }
            }
            _ => {
                if let serde_json::Value::Number(_) = node {
                    *node = nasty_value(rng);
                }
            }
        }
    }
    let mut text = serde_json::to_vec(&root).ok()?;
    let marker = format!("\"{DEEP_MARKER}\"");
    if let Some(at) = text
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
    {
        // Deeper than serde_json's recursion limit (128) in half the cases.
        let depth = if rng.chance(50) { 100 } else { 10_000 };
        let nested = format!("{}0{}", "[".repeat(depth), "]".repeat(depth));
        text.splice(at..at + marker.len(), nested.into_bytes());
    }
    Some(if rng.chance(20) {
        havoc(rng, &text, &[])
    } else {
        text
    })
}

/// Placeholder for a deeply nested array, replaced in the serialized text.
const DEEP_MARKER: &str = "@@deep@@";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(B64[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() < 16 {
        return None; // not an embedded image
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        acc = (acc << 6) | B64.iter().position(|&b| b == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// safetensors-aware mutation: the JSON header edited with [`json`] (dtype, shape,
/// data_offsets) and its length prefix rewritten, or the length prefix itself set to a
/// boundary value. `None` if `input` is not safetensors.
pub fn safetensors(rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let header_len = u64::from_le_bytes(input.get(..8)?.try_into().ok()?) as usize;
    let header = input.get(8..8usize.checked_add(header_len)?)?;
    let data = &input[8 + header_len..];
    if rng.chance(15) {
        let mut out = input.to_vec();
        put(&mut out, 0, *rng.pick(INTERESTING), 8, false);
        return Some(out);
    }
    let header = json(rng, header, &[])?;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    Some(out)
}

/// Zip-aware mutation of a PyTorch checkpoint: one entry (usually `data.pkl`) mutated and the
/// archive rewritten with valid CRCs, so the pickle reader sees the mutation. `None` if
/// `input` is not a readable zip.
pub fn torch_zip(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(input)).ok()?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        entries.push((file.name().ok()?.to_string(), bytes));
    }
    if entries.is_empty() {
        return None;
    }
    let target = match entries.iter().position(|(n, _)| n.ends_with("data.pkl")) {
        Some(pkl) if rng.chance(75) => pkl,
        _ => rng.below(entries.len()),
    };
    entries[target].1 = havoc(rng, &entries[target].1, corpus);
    if rng.chance(10) {
        entries.remove(rng.below(entries.len()));
    }
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in &entries {
        writer.start_file(name.as_str(), options).ok()?;
        writer.write_all(bytes).ok()?;
    }
    Some(writer.finish().ok()?.into_inner())
}
