//! The fuzz loop: each harness runs in a child process (this test binary again, with
//! `LDZMASK_FUZZ_CHILD` set) whose address space is capped with `RLIMIT_AS`, so a loader that
//! allocates from a giant declared size dies there instead of taking the machine down. In the
//! child every execution runs under `catch_unwind`, and a watchdog thread aborts the process
//! when one execution takes longer than [`HANG_SECS`]. The input under test is always on disk
//! (`current-<pid>.<ext>`), so whatever kills the child, the parent saves the input that did it.
//!
//! Environment: `LDZMASK_FUZZ_SECS=N` runs each harness for N seconds instead of the short
//! fixed run, `LDZMASK_FUZZ_SEED=S` picks the seed (random by default in long runs, fixed in
//! short ones), `LDZMASK_FUZZ_OUT=DIR` is where crashing inputs are saved (default
//! `$TMPDIR/ldzmask-fuzz/<target>/`).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::mutate::{self, Rng};

/// An execution longer than this is a hang.
pub const HANG_SECS: u64 = 3;
/// Address-space cap of a fuzzing child: the largest image the loaders accept (1 GiB decoded,
/// plus its RGB/RGBA copies) fits; a loader trusting a declared 2^32 × 2^32 size does not.
const ADDRESS_SPACE_BYTES: u64 = 6 << 30;
/// A child stops after this many crashing inputs (they are usually the same bug).
const MAX_CRASHES: usize = 10;
/// Seed of the short runs in `cargo test`.
const DEFAULT_SEED: u64 = 0x1d2_5eed;

/// Which structure-aware mutations suit a target's inputs.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// PNG, JPEG and WebP files.
    Image,
    /// JSON documents.
    Json,
    /// safetensors files, PyTorch zips and legacy pickles.
    Checkpoint,
}

/// A fuzz harness.
pub struct Target {
    /// Folder under `tests/fixtures/fuzz/` holding its seeds and regression inputs, and the
    /// suffix of its test function (`fuzz_<name>`).
    pub name: &'static str,
    /// File extension of the input file (some loaders take paths).
    pub extension: &'static str,
    pub shape: Shape,
    /// Executions of the short run.
    pub short_execs: u64,
    /// Runs the loader on `bytes`, also written at `path`. Errors are expected; panics,
    /// hangs and aborts are what the fuzzer looks for.
    pub run: fn(bytes: &[u8], path: &Path) -> Result<(), String>,
}

/// Entry point of a `#[test]`: in the parent, spawns and checks the child; in the child, fuzzes.
pub fn fuzz(target: &Target) {
    if std::env::var("LDZMASK_FUZZ_CHILD").as_deref() == Ok(target.name) {
        child(target);
    } else {
        parent(target);
    }
}

fn crash_dir(target: &Target) -> PathBuf {
    std::env::var_os("LDZMASK_FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ldzmask-fuzz"))
        .join(target.name)
}

/// The input under test in the child with process id `pid`.
fn current_path(target: &Target, pid: u32) -> PathBuf {
    crash_dir(target).join(format!("current-{pid}.{}", target.extension))
}

/// Saves an input that crashed, named by its hash; returns the path.
fn save_crash(target: &Target, kind: &str, bytes: &[u8]) -> PathBuf {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = crash_dir(target).join(format!("{kind}-{hash:016x}.{}", target.extension));
    std::fs::write(&path, bytes).expect("save crashing input");
    path
}

fn parent(target: &Target) {
    let dir = crash_dir(target);
    std::fs::create_dir_all(&dir).expect("crash dir");
    let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            // The harness tests live in the suite's `fuzz` module (tests/suite/fuzz.rs).
            &format!("fuzz::fuzz_{}", target.name),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LDZMASK_FUZZ_CHILD", target.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the fuzzing child");
    let current = current_path(target, child.id());
    let out = child
        .wait_with_output()
        .expect("wait for the fuzzing child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    if out.status.success() {
        assert!(
            text.contains("1 passed"),
            "fuzz {}: the child ran no harness (test name?)\n{text}",
            target.name
        );
        return;
    }
    // Killed or aborted (out of memory, hang, stack overflow): the input is still on disk.
    let culprit = std::fs::read(&current)
        .map(|bytes| {
            let _ = std::fs::remove_file(&current);
            save_crash(target, "killed", &bytes).display().to_string()
        })
        .unwrap_or_else(|_| "(no input on disk)".into());
    let tail: String = text
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    panic!(
        "fuzz {}: the child failed ({}); last input: {culprit}\n{tail}",
        target.name, out.status
    );
}

/// Caps the process's address space (see [`ADDRESS_SPACE_BYTES`]).
#[allow(unsafe_code)]
fn cap_address_space() {
    let limit = libc::rlimit {
        rlim_cur: ADDRESS_SPACE_BYTES,
        rlim_max: ADDRESS_SPACE_BYTES,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_AS) failed");
}

/// The seeds and regression inputs of a target.
fn corpus(target: &Target) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target.name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    let corpus: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            (name, std::fs::read(p).expect("read corpus file"))
        })
        .collect();
    assert!(!corpus.is_empty(), "{} holds no seeds", dir.display());
    corpus
}

fn mutate(target: &Target, rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    // Half the mutations are format-aware (falling back to havoc when the input does not parse).
    if let Shape::Image = target.shape {
        return mutate::image_file(rng, input, corpus);
    }
    let aware = if rng.chance(50) {
        match target.shape {
            Shape::Json => mutate::json(rng, input, corpus),
            Shape::Checkpoint if input.starts_with(b"PK") => mutate::torch_zip(rng, input, corpus),
            Shape::Checkpoint if input.get(8) == Some(&b'{') => mutate::safetensors(rng, input),
            _ => None,
        }
    } else {
        None
    };
    aware.unwrap_or_else(|| mutate::havoc(rng, input, corpus))
}

fn child(target: &Target) {
    cap_address_space();
    let long_secs: Option<u64> = std::env::var("LDZMASK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed = std::env::var("LDZMASK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| match long_secs {
            Some(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            None => DEFAULT_SEED,
        });
    let corpus = corpus(target);
    let current = current_path(target, std::process::id());

    // Watchdog: the start time (ms since `epoch`, 0 = idle) of the running execution.
    let epoch = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    {
        let started = started.clone();
        let current = current.clone();
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let s = started.load(Ordering::Relaxed);
                    let now = epoch.elapsed().as_millis() as u64;
                    if s != 0 && now.saturating_sub(s) > HANG_SECS * 1000 {
                        eprintln!(
                            "HANG: one execution ran over {HANG_SECS} s; input: {}",
                            current.display()
                        );
                        std::process::abort();
                    }
                }
            })
            .expect("spawn watchdog");
    }

    let mut crashes: Vec<(PathBuf, String)> = Vec::new();
    let last_panic = Arc::new(std::sync::Mutex::new(String::new()));
    {
        // Panics of the loader are recorded and reported with their input; any other panic
        // (the harness itself, e.g. a full disk) is printed as usual.
        let last_panic = last_panic.clone();
        let started = started.clone();
        std::panic::set_hook(Box::new(move |info| {
            if started.load(Ordering::Relaxed) == 0 {
                eprintln!("{info}");
            } else if let Ok(mut m) = last_panic.lock() {
                *m = info.to_string();
            }
        }));
    }
    let execute = |bytes: &[u8], ok: &mut u64, crashes: &mut Vec<(PathBuf, String)>| {
        std::fs::write(&current, bytes).expect("write current input");
        started.store(epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(bytes, &current)));
        started.store(0, Ordering::Relaxed);
        match result {
            Ok(Ok(())) => *ok += 1,
            Ok(Err(_)) => {}
            Err(_) => {
                let message = last_panic.lock().map(|m| m.clone()).unwrap_or_default();
                let path = save_crash(target, "panic", bytes);
                eprintln!("PANIC on {}: {message}", path.display());
                crashes.push((path, message));
            }
        }
    };

    // Every corpus file as it is first: the seeds must load (or fail cleanly), and
    // regression inputs must stay fixed.
    let (mut execs, mut ok) = (0u64, 0u64);
    for (_, bytes) in &corpus {
        execute(bytes, &mut ok, &mut crashes);
        execs += 1;
    }
    let seeds_ok = ok;
    let inputs: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.clone()).collect();
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    loop {
        let done = match long_secs {
            Some(secs) => start.elapsed().as_secs() >= secs,
            None => execs >= target.short_execs,
        };
        if done || crashes.len() >= MAX_CRASHES {
            break;
        }
        let base = rng.pick(&inputs).clone();
        // Stacked mutations now and then: a mutated input mutated again.
        let mut input = mutate(target, &mut rng, &base, &inputs);
        if rng.chance(20) {
            input = mutate(target, &mut rng, &input, &inputs);
        }
        execute(&input, &mut ok, &mut crashes);
        execs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz {}: {execs} executions in {secs:.1} s ({:.0}/s), seed {seed}, {ok} loaded \
         ({seeds_ok} of {} corpus files), {} crash(es)",
        target.name,
        execs as f64 / secs.max(1e-9),
        corpus.len(),
        crashes.len()
    );
    let _ = std::fs::remove_file(&current);
    drop(std::panic::take_hook()); // the default hook again, to report the failure below
    assert!(
        crashes.is_empty(),
        "fuzz {}: {} panicking input(s):\n{}",
        target.name,
        crashes.len(),
        crashes
            .iter()
            .map(|(p, m)| format!("  {}: {m}", p.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
