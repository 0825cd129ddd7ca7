//! Killed writers and failing disks never cost a file: processes killed (`SIGKILL`) in the
//! middle of an export and of a session save leave the old file intact, and the next write
//! removes the temp file the killed one left; an export into a read-only folder or onto a
//! disk that refuses the bytes fails with the path named and nothing half-written; and the
//! issue's end-to-end case: the app killed 25 s after a phrase layer was added leaves an
//! autosave that `ldzmask FILE` reopens with its layers (under Xvfb).
//!
//! Killing mid-write is made deterministic by the `LDZMASK_TEST_PAUSE_BEFORE_RENAME` hook of
//! `fsutil::write_atomic`: the writer stops after its temp file is written and synced,
//! creates a marker file, and waits; the test kills it then.
//!
//! Also: `weights convert` killed mid-write leaves nothing named like a bundle, and a batch
//! `segment` killed half-way finishes with `--skip-existing`, writing each image once.
//!
//! Run: `cargo test --test suite kill::` (the window test needs `Xvfb`; it fails instead of skipping
//! when it is missing and `LDZMASK_REQUIRE_GPU` or `CI` is set, as on CI).

#![cfg(unix)]
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldzmask::fsutil::{PAUSE_AFTER_WRITES_ENV, PAUSE_BEFORE_RENAME_ENV};
use ldzmask::mask::MaskDocument;

use common::{Io, fixtures_dir, tiny_weights_dir, write_png_from_tensor};

/// Set in the re-executed test binary: the child saves a session to this path.
const CHILD_SESSION_ENV: &str = "LDZMASK_KILL_TEST_SESSION";

/// A scratch folder per test.
fn scratch(name: &str) -> PathBuf {
    let dir = common::scratch(&format!("kill-{name}"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

use common::ldzmask_bin as bin;

fn ldzmask() -> Command {
    let mut cmd = common::ldzmask();
    cmd.env_remove(PAUSE_BEFORE_RENAME_ENV)
        .env_remove(PAUSE_AFTER_WRITES_ENV);
    cmd
}

/// A noisy image and a mask of the left half, for `ldzmask refine`.
fn refine_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let image = image::RgbImage::from_fn(96, 64, |x, y| {
        let v = ((x * 7 + y * 13) % 251) as u8;
        image::Rgb([v, 255 - v, (x * 2) as u8])
    });
    let mask =
        image::GrayImage::from_fn(96, 64, |x, _| image::Luma([if x < 48 { 255 } else { 0 }]));
    let (image_path, mask_path) = (dir.join("image.png"), dir.join("mask.png"));
    image.save(&image_path).unwrap();
    mask.save(&mask_path).unwrap();
    (image_path, mask_path)
}

/// `ldzmask refine --image I --mask M --out O --overwrite`.
fn refine(image: &Path, mask: &Path, out: &Path) -> Command {
    let mut cmd = ldzmask();
    cmd.arg("refine")
        .arg("--image")
        .arg(image)
        .arg("--mask")
        .arg(mask)
        .arg("--out")
        .arg(out)
        .arg("--overwrite");
    cmd
}

/// Runs to the end; returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let (code, text) = common::run(cmd);
    (code == 0, text)
}

/// Temp files of atomic writes (`.NAME.PID-N.tmp`) in a folder.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect()
}

/// Starts `cmd` with the pause hook, waits until it is mid-write (its temp file written and
/// synced, not yet renamed), kills it with SIGKILL and returns the temp file it left.
fn kill_mid_write(mut cmd: Command, dir: &Path) -> PathBuf {
    let marker = dir.join("paused-at");
    let _ = std::fs::remove_file(&marker);
    let mut child = cmd
        .env(PAUSE_BEFORE_RENAME_ENV, &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the writer exited ({status}) before pausing mid-write");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the writer never paused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The marker is written after the temp file is synced: the writer is between write and
    // rename, and stays there for a minute.
    let temp = PathBuf::from(std::fs::read_to_string(&marker).unwrap());
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    std::fs::remove_file(&marker).unwrap();
    assert!(
        temp.exists(),
        "the killed writer's temp file {}",
        temp.display()
    );
    assert!(std::fs::metadata(&temp).unwrap().len() > 0);
    temp
}

#[test]
fn export_killed_mid_write_leaves_the_old_file() {
    let dir = scratch("export");
    let (image, mask) = refine_inputs(&dir);
    let out = dir.join("refined.png");
    std::fs::write(&out, b"the previous export").unwrap();

    let temp = kill_mid_write(refine(&image, &mask, &out), &dir);
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous export");
    assert_eq!(temp_files(&dir), vec![temp.clone()]);

    // The next export into the folder completes and removes the killed writer's temp file.
    let (ok, text) = run(&mut refine(&image, &mask, &out));
    assert!(ok, "{text}");
    assert_eq!(image::open(&out).unwrap().to_luma8().dimensions(), (96, 64));
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Parent: runs this same test in a child process that saves a session, kills the child
/// mid-write, and checks the old session; then lets a second child save to the end. Child
/// (with [`CHILD_SESSION_ENV`]): saves a two-layer session there, as the app's save task does
/// (`SessionSnapshot::write`).
#[test]
fn session_save_killed_mid_write_leaves_the_old_file() {
    if let Some(path) = std::env::var_os(CHILD_SESSION_ENV) {
        let mut doc = MaskDocument::new(64, 48, None);
        doc.add_layer("sky");
        doc.add_layer("tree");
        doc.session_snapshot().write(Path::new(&path)).unwrap();
        return;
    }
    let dir = scratch("session");
    let session = dir.join("work.ldzmask.json");
    let mut old = MaskDocument::new(64, 48, None);
    old.add_layer("old layer");
    old.save_session(&session).unwrap();
    let old_bytes = std::fs::read(&session).unwrap();
    let child = || {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "kill::session_save_killed_mid_write_leaves_the_old_file",
                "--test-threads=1",
            ])
            .env(CHILD_SESSION_ENV, &session)
            .env_remove(PAUSE_BEFORE_RENAME_ENV);
        child
    };

    let temp = kill_mid_write(child(), &dir);
    assert_eq!(std::fs::read(&session).unwrap(), old_bytes);
    let back = MaskDocument::load_session(&session).unwrap();
    assert_eq!(back.layers().len(), 1);
    assert_eq!(back.layers()[0].props.name, "old layer");
    assert!(
        temp.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".work.ldzmask.json.")
    );
    assert_eq!(temp_files(&dir), vec![temp]);

    // The next save completes and clears the killed one's temp file.
    let (ok, text) = run(&mut child());
    assert!(ok, "{text}");
    let names: Vec<String> = MaskDocument::load_session(&session)
        .unwrap()
        .layers()
        .iter()
        .map(|e| e.props.name.clone())
        .collect();
    assert_eq!(names, ["sky", "tree"]);
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    std::fs::remove_dir_all(dir).unwrap();
}

/// True if this process can create files in a folder without write permission (root): the
/// read-only test then runs the export as an unprivileged user.
fn permissions_are_bypassed(dir: &Path) -> bool {
    let probe_dir = dir.join("probe");
    std::fs::create_dir_all(&probe_dir).unwrap();
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let bypassed = std::fs::write(probe_dir.join("x"), b"x").is_ok();
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(&probe_dir).unwrap();
    bypassed
}

#[test]
fn export_into_a_read_only_folder_names_the_path_and_writes_nothing() {
    use std::os::unix::process::CommandExt;
    let dir = scratch("readonly");
    let (image, mask) = refine_inputs(&dir);
    let folder = dir.join("read-only");
    std::fs::create_dir_all(&folder).unwrap();
    let out = folder.join("refined.png");
    let mut cmd = if permissions_are_bypassed(&dir) {
        // Root ignores folder permissions: export as `nobody`, from a link to the binary in
        // the scratch folder (the build folder may be private to root).
        let bin = dir.join("ldzmask");
        std::fs::hard_link(self::bin(), &bin)
            .or_else(|_| std::fs::copy(self::bin(), &bin).map(|_| ()))
            .unwrap();
        let mut cmd = Command::new(&bin);
        cmd.env_remove(PAUSE_BEFORE_RENAME_ENV)
            .env("HOME", &dir)
            .uid(65534)
            .gid(65534);
        cmd.arg("refine")
            .arg("--image")
            .arg(&image)
            .arg("--mask")
            .arg(&mask)
            .arg("--out")
            .arg(&out)
            .arg("--overwrite");
        cmd
    } else {
        refine(&image, &mask, &out)
    };
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (ok, text) = run(&mut cmd);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("cannot write {}", out.display())),
        "the error names the file: {text}"
    );
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(
        std::fs::read_dir(&folder).unwrap().count(),
        0,
        "nothing written"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A disk that refuses the bytes: the export runs with a file-size limit of 0 (`ulimit -f 0`,
/// `SIGXFSZ` ignored), so its first write fails as on a full disk (`EFBIG` instead of
/// `ENOSPC`: the same failing `write`, not a real full file system).
#[test]
fn export_onto_a_disk_that_refuses_the_bytes_keeps_the_old_file() {
    let dir = scratch("full");
    let (image, mask) = refine_inputs(&dir);
    let out = dir.join("refined.png");
    std::fs::write(&out, b"the previous export").unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"")
        .arg(bin())
        .args(["refine", "--overwrite", "--image"])
        .arg(&image)
        .arg("--mask")
        .arg(&mask)
        .arg("--out")
        .arg(&out)
        .env("LDZMASK_DEVICE", "cpu")
        .env_remove(PAUSE_BEFORE_RENAME_ENV);
    let (ok, text) = run(&mut cmd);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("cannot write {}", out.display())),
        "the error names the file: {text}"
    );
    assert!(text.contains("File too large"), "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous export");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- the app under Xvfb -----------------------------------------------------------------

/// An X server on a free display; killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb, or explains why not: `None` skips, unless `LDZMASK_REQUIRE_GPU` or `CI`
    /// is set (CI installs Xvfb), where a missing Xvfb fails the test.
    fn start(log: &Path) -> Option<Self> {
        let found = Command::new("Xvfb")
            .arg("-help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            let required = ["LDZMASK_REQUIRE_GPU", "CI"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"));
            assert!(!required, "Xvfb is missing (.ci/run installs it)");
            eprintln!("skipped: Xvfb is not installed");
            return None;
        }
        let mut n = 99;
        while Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            n += 1;
        }
        let child = Command::new("Xvfb")
            .args([
                format!(":{n}"),
                "-screen".into(),
                "0".into(),
                "1280x900x24".into(),
                "-nolisten".into(),
                "tcp".into(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "Xvfb did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self {
            child,
            display: format!(":{n}"),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ldzmask ARGS` in a window on `display`, settings and autosaves in `dir`, log in `log`.
fn start_app(display: &str, dir: &Path, log: &Path, args: &[&std::ffi::OsStr]) -> Child {
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = std::fs::File::create(log).unwrap();
    ldzmask()
        .args(args)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("LDZMASK_CONFIG_DIR", dir.join("config"))
        .env("LDZMASK_AUTOSAVE_DIR", dir.join("autosave"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Autosaves (`*.ldzmask.json`) in the test's autosave folder.
fn autosaves(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("autosave")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".ldzmask.json"))
        .collect()
}

#[test]
fn app_killed_after_a_phrase_layer_leaves_an_autosave_that_reopens() {
    let dir = scratch("app");
    let Some(x) = Xvfb::start(&dir.join("xvfb.log")) else {
        return;
    };
    let weights = tiny_weights_dir("kill-app");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let image = dir.join("photo.png");
    write_png_from_tensor(io.get("case0.image"), &image);
    let phrase = "a photo of a cat";

    // `ldzmask IMAGE --phrase P`: the phrase layer is added once the image is open.
    let log = dir.join("app.log");
    let launched = Instant::now();
    let mut app = start_app(
        &x.display,
        &dir,
        &log,
        &[
            image.as_os_str(),
            "--phrase".as_ref(),
            phrase.as_ref(),
            "--weights".as_ref(),
            weights.as_os_str(),
        ],
    );
    // Killed 25 s after the start, so at most 25 s after the layer was added.
    while launched.elapsed() < Duration::from_secs(25) {
        if let Some(status) = app.try_wait().unwrap() {
            panic!(
                "the app exited early ({status}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    app.kill().unwrap(); // SIGKILL
    app.wait().unwrap();
    let app_log = std::fs::read_to_string(&log).unwrap_or_default();

    let found = autosaves(&dir);
    assert_eq!(
        found.len(),
        1,
        "one autosave: {found:?}; app log:\n{app_log}"
    );
    let autosave = found[0].clone();
    // Reopened headless, as `ldzmask FILE` reads it: a session (by content) with the image
    // and the phrase layer, its model result included.
    assert!(ldzmask::mask::session::is_session_file(&autosave));
    let (doc, opened) = ldzmask::app::tasks::open_session(&autosave).unwrap();
    assert_eq!(doc.image_path(), Some(image.as_path()));
    assert_eq!((opened.rgb.width, opened.rgb.height), doc.size());
    let layers = doc.layers();
    assert_eq!(layers.len(), 1, "{app_log}");
    assert_eq!(layers[0].props.phrase, phrase);
    assert!(
        layers[0].layer.probabilities().is_some(),
        "the model result was autosaved; app log:\n{app_log}"
    );

    // `ldzmask FILE` on the leftover: the new app restores it, autosaves it as its own and
    // removes the leftover.
    let log2 = dir.join("app2.log");
    let mut app2 = start_app(&x.display, &dir, &log2, &[autosave.as_os_str()]);
    let start = Instant::now();
    let reopened = loop {
        let now = autosaves(&dir);
        if !now.contains(&autosave) && now.len() == 1 {
            break now[0].clone();
        }
        if let Some(status) = app2.try_wait().unwrap() {
            panic!(
                "the second app exited ({status}); its log:\n{}",
                std::fs::read_to_string(&log2).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the second app did not take the autosave over; autosaves {now:?}; log:\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = app2.kill();
    let _ = app2.wait();
    let back = MaskDocument::load_session(&reopened).unwrap();
    assert_eq!(back.layers(), doc.layers());
    drop(x);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}

/// Files in `dir` whose name ends in `.safetensors` (what discovery could take for a bundle).
fn safetensors_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    names.sort();
    names
}

#[test]
fn weights_convert_killed_mid_write_leaves_nothing_named_like_a_bundle() {
    let weights = tiny_weights_dir("kill-convert");
    let before = safetensors_files(&weights);
    let bundle = weights.join("ldzmask-bundle.safetensors");
    let mut cmd = ldzmask();
    cmd.args(["weights", "convert", "--out"])
        .arg(&bundle)
        .arg("--weights")
        .arg(&weights);
    let temp = kill_mid_write(cmd, &weights);
    // What the killed conversion left is inside a hidden scratch folder.
    let scratch = temp.parent().unwrap().to_path_buf();
    let scratch_name = scratch.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        scratch_name.starts_with(".ldzmask-bundle.safetensors.") && scratch_name.ends_with(".tmp"),
        "{scratch_name}"
    );
    assert_eq!(safetensors_files(&weights), before, "no bundle-like file");
    // A later start does not take it for weights: check still finds the original files only.
    let (ok, text) = run(ldzmask()
        .args(["weights", "check"])
        .arg(&weights)
        .arg("--weights")
        .arg(&weights));
    assert!(ok, "{text}");
    assert!(!text.contains("ldzmask-bundle"), "{text}");
    // The next conversion into the folder removes the leftover and writes the bundle.
    let (ok, text) = run(ldzmask()
        .args(["weights", "convert", "--out"])
        .arg(&bundle)
        .arg("--weights")
        .arg(&weights));
    assert!(ok, "{text}");
    assert!(bundle.exists());
    assert!(
        !scratch.exists(),
        "the killed writer's scratch folder is removed"
    );
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn batch_killed_half_way_resumes_with_skip_existing_and_writes_each_image_once() {
    let weights = tiny_weights_dir("kill-batch");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let input = weights.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_png_from_tensor(io.get("case0.image"), &input.join("a.png"));
    let base = image::open(input.join("a.png")).unwrap();
    for (name, img) in [
        ("b.png", base.fliph()),
        ("c.png", base.flipv()),
        ("d.png", base.rotate180()),
        ("e.png", base.huerotate(90)),
    ] {
        img.save(input.join(name)).unwrap();
    }
    let phrase = common::config(&fixtures_dir().join("pipeline"))["cases"][0]["phrase"]
        .as_str()
        .unwrap()
        .to_string();
    let out = weights.join("out");
    let report = weights.join("report.jsonl");
    let segment = || {
        let mut cmd = ldzmask();
        cmd.arg("segment")
            .arg("--weights")
            .arg(&weights)
            .arg("--input-dir")
            .arg(&input)
            .arg("--out-dir")
            .arg(&out)
            .args(["--phrase", &phrase])
            .arg("--report")
            .arg(&report);
        cmd
    };
    // Two masks are written, the third is killed between its write and its rename.
    let mut first = segment();
    first.env(PAUSE_AFTER_WRITES_ENV, "2");
    let temp = kill_mid_write(first, &out);
    let mask = |stem: &str| out.join(format!("{stem}-{}.png", common::slug(&phrase)));
    let written: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .filter(|s| mask(s).exists())
        .collect();
    assert_eq!(written, [&"a", &"b"], "two images done before the kill");
    let stamp = |stem: &str| {
        let m = std::fs::metadata(mask(stem)).unwrap();
        (
            std::os::unix::fs::MetadataExt::ino(&m),
            m.modified().unwrap(),
        )
    };
    let before = [stamp("a"), stamp("b")];

    let (ok, text) = run(segment().arg("--skip-existing"));
    assert!(ok, "{text}");
    assert!(
        text.contains("done: 3 of 5 image(s); failed: 0; skipped (done before): 2"),
        "{text}"
    );
    assert_eq!(
        [stamp("a"), stamp("b")],
        before,
        "finished images are not written again"
    );
    assert!(!temp.exists(), "the killed write's temp file is swept");
    assert!(temp_files(&out).is_empty());
    // The same bytes as one uninterrupted run.
    let fresh = weights.join("fresh");
    let (ok, text) = run(ldzmask()
        .arg("segment")
        .arg("--weights")
        .arg(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&fresh)
        .args(["--phrase", &phrase]));
    assert!(ok, "{text}");
    for stem in ["a", "b", "c", "d", "e"] {
        let name = mask(stem).file_name().unwrap().to_owned();
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(fresh.join(&name)).unwrap(),
            "{stem}"
        );
    }
    // The report: two `ok` lines from the killed run, then two `skipped` and three `ok`.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let image = Path::new(l["image"].as_str().unwrap());
            (
                image.file_stem().unwrap().to_string_lossy().into_owned(),
                l["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("a", "ok"),
        ("b", "ok"),
        ("a", "skipped"),
        ("b", "skipped"),
        ("c", "ok"),
        ("d", "ok"),
        ("e", "ok"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses, want);
    assert!(lines[4]["outputs"][0].as_str().unwrap().ends_with(".png"));
    assert!(lines[4]["seconds"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(&weights);
}
