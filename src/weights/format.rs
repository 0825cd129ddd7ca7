//! Reading checkpoint files: the container format sniffed from the first bytes, safetensors
//! files (huggingface/safetensors: 8-byte header length, JSON header, data) validated and then
//! indexed over one memory map, PyTorch pickles through burn-store's `PytorchStore`, and
//! [`Checkpoint`], one opened file whose tensors are read lazily.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleStore, PytorchStore};
use burn::tensor::DType;

use super::LoadError;
use super::keys::{CheckpointKind, identify};

/// Metadata key that marks an ldzmask bundle (`weights convert`), value [`BUNDLE_FORMAT`].
pub const BUNDLE_FORMAT_KEY: &str = "ldzmask.format";
/// Format tag of ldzmask bundles. v2 stores tensors in burn's layout (Linear weights
/// `[in, out]`), so loading copies each tensor once, without transposing; v1 (PyTorch layout)
/// bundles are refused with a request to convert again.
pub const BUNDLE_FORMAT: &str = "ldzmask-bundle-v2";

/// Whether a safetensors `__metadata__` marks a bundle ldzmask can load; a bundle of another
/// format is an error that says how to rebuild it.
fn is_current_bundle<'a>(
    mut meta: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<bool, String> {
    match meta.find(|(k, _)| *k == BUNDLE_FORMAT_KEY) {
        None => Ok(false),
        Some((_, format)) if format == BUNDLE_FORMAT => Ok(true),
        Some((_, format)) => Err(format!(
            "an ldzmask bundle in an older format ({format}); rebuild it from the original files with `ldzmask weights convert --overwrite`"
        )),
    }
}

/// The container format of a checkpoint file, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// safetensors.
    Safetensors,
    /// PyTorch zip (`torch.save` since 1.6).
    TorchZip,
    /// PyTorch legacy pickle.
    TorchLegacy,
}

/// Sniffs the container format from the first bytes of `path`.
pub fn sniff_format(path: &Path) -> Result<FileFormat, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 9];
    let n = read_up_to(&mut file, &mut head).map_err(io)?;
    let head = &head[..n];
    // safetensors first: its 8-byte header length can itself start with 0x80 (a header of
    // 128 bytes), the first byte of a pickle.
    if n == 9 && head[8] == b'{' {
        Ok(FileFormat::Safetensors)
    } else if head.starts_with(b"PK\x03\x04") {
        Ok(FileFormat::TorchZip)
    } else if head.first() == Some(&0x80) {
        Ok(FileFormat::TorchLegacy)
    } else {
        Err(LoadError::Format {
            path: path.to_path_buf(),
            reason: if n < 9 {
                format!("the file has only {n} bytes")
            } else {
                "neither safetensors nor a PyTorch checkpoint (unknown first bytes)".to_string()
            },
        })
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads and checks a safetensors header: it parses, and every tensor's byte range lies inside
/// the file (burn-store memory-maps the file, so this must hold before it reads). Returns the
/// header JSON. Reads only the header, however large the file.
pub fn read_safetensors_header(
    path: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>, LoadError> {
    let format = |reason: String| LoadError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_len = std::fs::metadata(path).map_err(io)?.len();
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len_bytes = [0u8; 8];
    if read_up_to(&mut file, &mut len_bytes).map_err(io)? < 8 {
        return Err(format("truncated safetensors file (no header)".into()));
    }
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(format(format!(
            "truncated or corrupt safetensors file: the header claims {header_len} bytes but the file has {file_len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| format(format!("corrupt safetensors header: {e}")))?;
    let data_len = file_len - 8 - header_len;
    let serde_json::Value::Object(entries) = header else {
        return Err(format("corrupt safetensors header: not an object".into()));
    };
    for (name, entry) in &entries {
        if name == "__metadata__" {
            continue;
        }
        let end = entry["data_offsets"][1]
            .as_u64()
            .ok_or_else(|| format(format!("corrupt safetensors header entry `{name}`")))?;
        if end > data_len {
            return Err(format(format!(
                "truncated safetensors file: tensor `{name}` ends at byte {end} of the data section but only {data_len} bytes are present"
            )));
        }
    }
    Ok(entries)
}

/// Indexes a (validated) safetensors file: one read-only memory map shared by all its tensors
/// and the header parsed once. f32 and f16 tensors are produced as they are stored, borrowing
/// their bytes from the map without a copy ([`MappedRange`]; a copy only where a tensor is not
/// aligned to its element size); bf16 tensors are widened to f32. The loader then keeps or
/// converts each tensor for its parameter (`weights::storage`), one tensor at a time.
///
/// This replaces burn-store's `SafetensorsStore`, which parses the whole header again for every
/// tensor it reads (quadratic in the tensor count) and widens f16 through a generic cast with
/// extra copies: an f16 bundle loaded in 28 s that way, see weights/README.md for the numbers now.
///
/// Returns the tensors and the file's `__metadata__`.
fn index_safetensors(path: &Path) -> Result<SafetensorsIndex, LoadError> {
    use safetensors::Dtype as St;
    let format = |reason: String| LoadError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the map is only read. As with any memory-mapped loader (burn-store's included), a
    // file truncated by another process while mapped would fault; ldzmask never writes a file it
    // has mapped (bundles are written to a temporary file and renamed).
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let map = std::sync::Arc::new(map);
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map[..])
        .map_err(|e| format(format!("corrupt safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let mut tensors = BTreeMap::new();
    for (name, info) in metadata.tensors() {
        use burn::tensor::Bytes;
        let (start, end) = (
            data_start + info.data_offsets.0,
            data_start + info.data_offsets.1,
        );
        let stored = match info.dtype {
            St::F32 => DType::F32,
            St::F16 => DType::F16,
            St::BF16 => DType::BF16,
            St::F64 => DType::F64,
            St::I64 => DType::I64,
            St::I32 => DType::I32,
            St::I16 => DType::I16,
            St::I8 => DType::I8,
            _ => DType::U8,
        };
        // bf16 tensors are produced as f32; other dtypes as they are stored (the non-float
        // ones are position ids and EMA counters, never loaded into a network).
        let widen = stored == DType::BF16;
        let (dtype, byte_len) = if widen {
            (DType::F32, info.shape.iter().product::<usize>() * 4)
        } else {
            (stored, end - start)
        };
        let map = map.clone();
        let provider = move || {
            let range = MappedRange {
                map: map.clone(),
                start,
                end,
            };
            let aligned = (range.as_ref().as_ptr() as usize).is_multiple_of(stored.size());
            Ok(if widen {
                Bytes::from_elems(float_values(range.as_ref(), stored).unwrap_or_default())
            } else if aligned && matches!(stored, DType::F32 | DType::F16) {
                let shared = bytes::Bytes::from_owner(range);
                Bytes::from_shared(shared, burn::tensor::AllocationProperty::File)
            } else {
                Bytes::from_bytes_vec(range.as_ref().to_vec())
            })
        };
        let shape = info.shape.clone();
        tensors.insert(
            name.clone(),
            PackTensor::deferred(name, dtype, shape, None, byte_len, provider),
        );
    }
    Ok((tensors, metadata.metadata().clone()))
}

/// The bytes of one tensor in a file's memory map; a zero-copy tensor keeps it (and with it the
/// map) alive. When the last user is gone its whole pages are handed back to the OS
/// (`MADV_DONTNEED`): a tensor copied or converted at load then stops counting in the process's
/// resident memory at once, instead of when the whole file is closed, so loading never holds
/// the mapped file and the converted tensors at the same time.
struct MappedRange {
    map: std::sync::Arc<memmap2::Mmap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // Only the pages wholly inside this tensor: a neighbour may still be using the
            // pages it shares with it.
            let page = page_size();
            let base = self.map.as_ptr() as usize;
            let first = (base + self.start).next_multiple_of(page) - base;
            let last = (base + self.end) / page * page - base;
            if last > first {
                #[allow(unsafe_code)]
                // SAFETY: the map is read-only and private, so MADV_DONTNEED only drops pages
                // from this process's resident set: a later read faults the same file contents
                // back in, and no reference can observe a change. The range lies inside the map.
                let _ = unsafe {
                    self.map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        first,
                        last - first,
                    )
                };
            }
        }
    }
}

/// The OS page size (4 KiB when it cannot be read).
#[cfg(unix)]
fn page_size() -> usize {
    #[allow(unsafe_code)]
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// The tensors of a safetensors file and its `__metadata__`.
type SafetensorsIndex = (
    BTreeMap<String, PackTensor>,
    Option<std::collections::HashMap<String, String>>,
);

/// Little-endian floats of `dtype` as f32 values; `None` for a non-float dtype.
pub(super) fn float_values(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
        DType::F16 => widen_16_bit::<half::f16>(bytes),
        DType::BF16 => widen_16_bit::<half::bf16>(bytes),
        DType::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(bytes)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => return None,
    })
}

/// Little-endian 16-bit floats (`f16` or `bf16`) widened to f32 — with `half`'s SIMD slice
/// conversion when the bytes are 2-byte aligned, as they are in every safetensors file.
fn widen_16_bit<H>(bytes: &[u8]) -> Vec<f32>
where
    H: bytemuck::Pod + Into<f32>,
    [H]: half::slice::HalfFloatSliceExt,
{
    use half::slice::HalfFloatSliceExt;
    let mut out = vec![0f32; bytes.len() / 2];
    match bytemuck::try_cast_slice::<u8, H>(bytes) {
        Ok(halves) => halves.convert_to_f32_slice(&mut out),
        Err(_) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bytemuck::pod_read_unaligned::<H>(c).into();
            }
        }
    }
    out
}

/// One checkpoint file, opened: its tensors by key, readable lazily.
pub struct Checkpoint {
    path: PathBuf,
    tensors: BTreeMap<String, PackTensor>,
    kind: CheckpointKind,
    /// An ldzmask bundle (`weights convert`): its LD-ZNet UNet already holds the EMA weights,
    /// and its tensors are in burn's layout (Linear weights `[in, out]`).
    bundle: bool,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .field("kind", &self.kind)
            .finish()
    }
}

impl Checkpoint {
    /// Opens a checkpoint (safetensors or PyTorch pickle) and indexes its tensors without
    /// reading their data.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let format_err = |reason: String| LoadError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let (tensors, bundle) = match sniff_format(path)? {
            FileFormat::Safetensors => {
                read_safetensors_header(path)?;
                let (tensors, meta) = index_safetensors(path)?;
                let bundle = is_current_bundle(meta.iter().flatten()).map_err(format_err)?;
                (tensors, bundle)
            }
            FileFormat::TorchZip | FileFormat::TorchLegacy => {
                let read = |key: Option<&str>| {
                    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
                    if let Some(key) = key {
                        store = store.with_top_level_key(key);
                    }
                    store.get_all_tensors().cloned()
                };
                let tensors = match read(Some("state_dict")) {
                    Ok(tensors) if !tensors.is_empty() => tensors,
                    _ => read(None)
                        .map_err(|e| format_err(format!("cannot read PyTorch checkpoint: {e}")))?,
                };
                (tensors, false)
            }
        };
        if tensors.is_empty() {
            return Err(format_err("the file contains no tensors".into()));
        }
        let kind = identify(tensors.keys().map(String::as_str));
        log::info!(
            "opened {} ({} tensors): {kind}{}",
            path.display(),
            tensors.len(),
            if bundle { " (ldzmask bundle)" } else { "" }
        );
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            kind,
            bundle,
        })
    }

    /// A checkpoint known only by its layout (key, shape, dtype) — no tensor data; used to
    /// check key plans against the full-size manifests without multi-GB files.
    pub fn from_layout(
        path: impl Into<PathBuf>,
        entries: impl IntoIterator<Item = (String, Vec<usize>, DType)>,
    ) -> Self {
        let path = path.into();
        let tensors: BTreeMap<String, PackTensor> = entries
            .into_iter()
            .map(|(name, shape, dtype)| {
                let len = shape.iter().product::<usize>() * dtype.size();
                let missing = name.clone();
                let tensor =
                    PackTensor::deferred(name.clone(), dtype, shape, None, len, move || {
                        Err(burn::store::burn_pack::Error::TensorNotFound(format!(
                            "`{missing}` is a layout entry without data"
                        )))
                    });
                (name, tensor)
            })
            .collect();
        let kind = identify(tensors.keys().map(String::as_str));
        Self {
            path,
            tensors,
            kind,
            bundle: false,
        }
    }

    /// File path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file was identified as.
    pub fn kind(&self) -> CheckpointKind {
        self.kind
    }

    /// Whether this is an ldzmask bundle.
    pub fn is_bundle(&self) -> bool {
        self.bundle
    }

    /// All keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|t| t.shape.to_vec())
    }

    /// A tensor (lazy), if present.
    pub fn tensor(&self, key: &str) -> Option<&PackTensor> {
        self.tensors.get(key)
    }

    pub(super) fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_values_widen_every_float_dtype() {
        let values = [1.5f32, -2.0, 0.25];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let f64_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| f64::from(*v).to_le_bytes())
            .collect();
        assert_eq!(float_values(&f32_bytes, DType::F32), Some(values.to_vec()));
        assert_eq!(float_values(&f16_bytes, DType::F16), Some(values.to_vec()));
        assert_eq!(
            float_values(&bf16_bytes, DType::BF16),
            Some(values.to_vec())
        );
        assert_eq!(float_values(&f64_bytes, DType::F64), Some(values.to_vec()));
        assert_eq!(float_values(&f32_bytes, DType::I32), None);
        // Bytes at an odd address take the unaligned path with the same result.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&f16_bytes);
        assert_eq!(
            float_values(&shifted[1..], DType::F16),
            Some(values.to_vec())
        );
    }
}
