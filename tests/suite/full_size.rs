//! Full-size random checkpoints for measuring `weights convert` and loading on realistic sizes.
//!
//! The real checkpoints cannot be downloaded here, so this writes files with the exact key
//! names, shapes and dtypes of the full-size manifests, random values, and the container the
//! real files use: a PyTorch Lightning checkpoint saved by `torch.save` (zip, pickle protocol 2,
//! `{"global_step": …, "state_dict": OrderedDict}`), written without PyTorch.
//!
//! The writer is checked by a normal test (a small checkpoint read back through
//! [`Checkpoint::open`]); the full-size files (about 15 GB) are written only on request:
//!
//! ```sh
//! LDZMASK_FULL_SIZE_DIR=/tmp/full cargo test --test suite full_size:: -- --ignored --nocapture
//! tests/tools/measure_full_size.sh /tmp/full      # convert + load, time and peak RSS
//! ```

use crate::common;

use std::io::Write;
use std::path::Path;

use burn::tensor::DType;
use common::manifest_entries;
use ldzmask::weights::{Checkpoint, CheckpointKind};

/// A minimal pickle (protocol 2) writer: just the opcodes `torch.save` uses for a state dict.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) {
        self.0.push(op);
    }
    fn mark(&mut self) {
        self.op(b'(');
    }
    /// TUPLE: everything since the last mark.
    fn tuple(&mut self) {
        self.op(b't');
    }
    /// GLOBAL `module.name`.
    fn global(&mut self, module: &str, name: &str) {
        self.op(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    /// BINUNICODE.
    fn str(&mut self, s: &str) {
        self.op(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    /// BININT, or LONG1 with 8 bytes beyond the i32 range.
    fn int(&mut self, v: i64) {
        match i32::try_from(v) {
            Ok(v) => {
                self.op(b'J');
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            Err(_) => {
                self.op(0x8a);
                self.op(8);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    /// `collections.OrderedDict()`.
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(b')'); // EMPTY_TUPLE
        self.op(b'R'); // REDUCE
    }
    /// `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())` with
    /// the storage as persistent id `("storage", <type>, key, "cpu", numel)`.
    fn tensor(&mut self, storage_key: usize, shape: &[usize], dtype: DType) {
        let storage = match dtype {
            DType::F32 => "FloatStorage",
            DType::F16 => "HalfStorage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
            other => panic!("no storage type for {other:?}"),
        };
        let numel: usize = shape.iter().product();
        let mut strides = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.mark();
        self.mark();
        self.str("storage");
        self.global("torch", storage);
        self.str(&storage_key.to_string());
        self.str("cpu");
        self.int(numel as i64);
        self.tuple();
        self.op(b'Q'); // BINPERSID
        self.int(0);
        self.mark();
        shape.iter().for_each(|&d| self.int(d as i64));
        self.tuple();
        self.mark();
        strides.iter().for_each(|&s| self.int(s as i64));
        self.tuple();
        self.op(0x89); // NEWFALSE: requires_grad
        self.ordered_dict(); // backward hooks
        self.tuple();
        self.op(b'R');
    }
}

/// Deterministic values: xorshift64* mapped to uniform [-0.05, 0.05) for floats, a counter
/// for integers (position ids).
struct Values(u64);

impl Values {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn f32(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
    }

    /// Writes `numel` values of `dtype` to `out` in chunks.
    fn write(&mut self, out: &mut impl Write, numel: usize, dtype: DType) -> std::io::Result<()> {
        const CHUNK: usize = 1 << 20;
        let mut buf = Vec::with_capacity(CHUNK * 8);
        let mut done = 0;
        while done < numel {
            let n = CHUNK.min(numel - done);
            buf.clear();
            for i in done..done + n {
                match dtype {
                    DType::F32 => buf.extend_from_slice(&self.f32().to_le_bytes()),
                    DType::F16 => {
                        buf.extend_from_slice(&half::f16::from_f32(self.f32()).to_le_bytes())
                    }
                    DType::I64 => buf.extend_from_slice(&(i as i64).to_le_bytes()),
                    DType::I32 => buf.extend_from_slice(&(i as i32).to_le_bytes()),
                    other => panic!("no values for {other:?}"),
                }
            }
            out.write_all(&buf)?;
            done += n;
        }
        Ok(())
    }
}

/// Writes `entries` as a PyTorch Lightning checkpoint in `torch.save`'s zip container.
fn write_torch_checkpoint(
    path: &Path,
    entries: &[(String, Vec<usize>, DType)],
    seed: u64,
) -> std::io::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut pickle = Pickle::default();
    pickle.op(0x80); // PROTO 2
    pickle.op(2);
    pickle.op(b'}'); // EMPTY_DICT
    pickle.mark();
    pickle.str("global_step");
    pickle.int(470_000);
    pickle.str("state_dict");
    pickle.ordered_dict();
    pickle.mark();
    for (i, (name, shape, dtype)) in entries.iter().enumerate() {
        pickle.str(name);
        pickle.tensor(i, shape, *dtype);
    }
    pickle.op(b'u'); // SETITEMS into the state dict
    pickle.op(b'u'); // SETITEMS into the top-level dict
    pickle.op(b'.'); // STOP

    let file = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(path)?);
    let mut zip = zip::ZipWriter::new(file);
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    zip.start_file("archive/data.pkl", stored)?;
    zip.write_all(&pickle.0)?;
    zip.start_file("archive/byteorder", stored)?;
    zip.write_all(b"little")?;
    let mut values = Values(seed | 1);
    for (i, (_, shape, dtype)) in entries.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), stored)?;
        values.write(&mut zip, shape.iter().product(), *dtype)?;
    }
    zip.start_file("archive/version", stored)?;
    zip.write_all(b"3\n")?;
    zip.finish()?.flush()
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn torch_checkpoint_writer_round_trips() {
    let dir = std::env::temp_dir().join(format!("ldzmask-torch-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("small.ckpt");
    let entries = vec![
        ("scalar".to_string(), vec![], DType::F32),
        ("model.w".to_string(), vec![3, 4, 5], DType::F32),
        ("model.h".to_string(), vec![7], DType::F16),
        ("position_ids".to_string(), vec![1, 77], DType::I64),
    ];
    write_torch_checkpoint(&path, &entries, 42).expect("write");
    let ckpt = Checkpoint::open(&path).expect("the written checkpoint opens");
    assert_eq!(ckpt.keys().count(), entries.len());
    let mut values = Values(42 | 1);
    for (name, shape, dtype) in &entries {
        assert_eq!(
            ckpt.shape(name).as_deref(),
            Some(shape.as_slice()),
            "{name}"
        );
        let tensor = ckpt.tensor(name).expect("present");
        assert_eq!(tensor.dtype, *dtype, "{name}");
        let bytes = tensor.to_bytes().expect("readable");
        let mut expected = Vec::new();
        values
            .write(&mut expected, shape.iter().product(), *dtype)
            .expect("in memory");
        assert_eq!(bytes.to_vec(), expected, "{name}: bytes as written");
    }
    let w = f32_values(&ckpt.tensor("model.w").expect("w").to_bytes().expect("w"));
    assert!(w.iter().all(|v| (-0.05..0.05).contains(v)), "{w:?}");
    assert!(w.windows(2).any(|p| p[0] != p[1]), "values vary");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "writes about 15 GB; run with LDZMASK_FULL_SIZE_DIR set"]
fn write_full_size_random_checkpoints() {
    let dir = std::env::var_os("LDZMASK_FULL_SIZE_DIR")
        .map(std::path::PathBuf::from)
        .expect("set LDZMASK_FULL_SIZE_DIR to the folder to write into");
    std::fs::create_dir_all(&dir).expect("output folder");
    // The released LD-ZNet file most likely holds the segmentation UNet only (raw + EMA, see
    // the spec §3); LDZMASK_FULL_SIZE_UNPRUNED=1 writes the whole LatentSeg (≈11.7 GB) instead.
    let unpruned = std::env::var_os("LDZMASK_FULL_SIZE_UNPRUNED").is_some();
    let ldznet: Vec<_> = manifest_entries("ldznet_checkpoint_keys.txt")
        .into_iter()
        .filter(|(k, _, _)| {
            unpruned || k.starts_with("model.diffusion_model.") || k.starts_with("model_ema.")
        })
        .collect();
    let files = [
        (
            "sd-v1-4-full-ema.ckpt",
            manifest_entries("sd_v1_full_ema_checkpoint_keys.txt"),
            CheckpointKind::SdV1,
        ),
        ("LDZNet_txt2mask.ckpt", ldznet, CheckpointKind::Ldznet),
    ];
    for (seed, (name, entries, kind)) in files.into_iter().enumerate() {
        let path = dir.join(name);
        let start = std::time::Instant::now();
        write_torch_checkpoint(&path, &entries, seed as u64 + 1).expect("write");
        let size = std::fs::metadata(&path).expect("written").len();
        println!(
            "{}: {} tensors, {:.2} GB in {:.1} s",
            path.display(),
            entries.len(),
            size as f64 / 1e9,
            start.elapsed().as_secs_f64()
        );
        let ckpt = Checkpoint::open(&path).expect("opens");
        assert_eq!(ckpt.kind(), kind, "{name}");
        assert_eq!(ckpt.keys().count(), entries.len(), "{name}");
    }
}
