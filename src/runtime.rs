//! How inference uses the CPU: the thread pool it runs in and how freed memory is kept.
//!
//! burn's `flex` backend and the `gemm` crate under it split their work over rayon's *current*
//! thread pool. Inference therefore runs inside [`InferencePool::install`], a dedicated pool
//! whose size the user chooses (`--threads N` or `LDZMASK_THREADS`): all cores, in the app too.
//! The app's pool runs at a lower OS priority instead ([`InferencePool::background`]: nice +10
//! on Linux), so the window still gets a core the moment it needs one while inference has the
//! whole machine otherwise: a 2-core laptop no longer loses half of its speed to an idle UI.
//!
//! [`retain_freed_memory`] stops glibc from handing large buffers back to the kernel: flex
//! allocates a fresh 10–100 MB buffer per op, and glibc serves those with `mmap` and unmaps them
//! on free, so every op paid for zero-filled pages again (about 9 M minor page faults per
//! forward pass at 384²). Kept in the heap, they are reused by the next op.

use std::num::NonZeroUsize;

/// Environment variable that sets the number of inference threads when `--threads` is not given.
pub const THREADS_ENV: &str = "LDZMASK_THREADS";

/// Who runs inference: decides the default thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `segment`, `bench`: nothing else needs the CPU, use every core.
    Headless,
    /// The app: every core too, at a lower priority than the UI thread.
    Interactive,
}

/// The number of inference threads: the flag, else `LDZMASK_THREADS`, else the role's default.
///
/// `cores` is the number of cores available to this process.
pub fn thread_count(
    flag: Option<NonZeroUsize>,
    env: Option<&str>,
    role: Role,
    cores: usize,
) -> Result<NonZeroUsize, String> {
    if let Some(n) = flag {
        return Ok(n);
    }
    if let Some(value) = env.map(str::trim).filter(|v| !v.is_empty()) {
        return value.parse::<NonZeroUsize>().map_err(|_| {
            format!("{THREADS_ENV}=`{value}`: expected a whole number of threads, 1 or more")
        });
    }
    Ok(default_threads(role, cores))
}

/// The role's default: every core (the app lowers its pool's priority instead of leaving a
/// core idle).
pub fn default_threads(role: Role, cores: usize) -> NonZeroUsize {
    let n = match role {
        Role::Headless | Role::Interactive => cores,
    };
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Nice value of the app's inference threads (Linux: 0 is normal, 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 10;

/// The cores this process may use (1 when the OS cannot tell).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The thread pool inference runs in.
#[derive(Debug)]
pub struct InferencePool {
    pool: rayon::ThreadPool,
}

impl InferencePool {
    /// A pool of `threads` threads named `ldzmask-infer-N`.
    pub fn new(threads: NonZeroUsize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.get())
            .thread_name(|i| format!("ldzmask-infer-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self { pool })
    }

    /// A pool of `threads` threads named `ldzmask-infer-N` that run at a lower OS priority
    /// than the rest of the process ([`BACKGROUND_NICE`] on Linux; other systems keep the
    /// normal priority): the app's pool.
    pub fn background(threads: NonZeroUsize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.get())
            .thread_name(|i| format!("ldzmask-infer-{i}"))
            .start_handler(|_| {
                if !lower_current_thread_priority() {
                    log::debug!("inference thread keeps the normal priority");
                }
            })
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self { pool })
    }

    /// The pool for `role`, sized from `--threads` (`flag`) or `LDZMASK_THREADS`.
    /// A bad `LDZMASK_THREADS` value is an `InvalidInput` error that names it.
    pub fn for_role(flag: Option<NonZeroUsize>, role: Role) -> std::io::Result<Self> {
        let env = std::env::var(THREADS_ENV).ok();
        let threads = thread_count(flag, env.as_deref(), role, available_cores())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::new(threads)
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` inside the pool: every parallel op it starts (flex, gemm, our kernels) uses this
    /// pool's threads. Blocks until `f` returns.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`] (never raises it: a
/// process started with a higher nice value keeps it); false where the system has no
/// per-thread nice value (or refused).
pub fn lower_current_thread_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        let current = nice::current_thread().unwrap_or(0);
        current >= BACKGROUND_NICE || nice::set_current_thread(BACKGROUND_NICE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The calling thread's nice value (Linux), for tests and the status bar.
pub fn current_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        nice::current_thread()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
mod nice {
    /// On Linux the nice value belongs to each thread (`setpriority(2)`, NOTES): setting it
    /// for the thread id changes only this thread. Raising it needs no privilege.
    #[allow(unsafe_code)]
    pub(super) fn set_current_thread(value: i32) -> bool {
        // SAFETY: `gettid` has no preconditions; `setpriority` reads its integer arguments
        // only.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, value) == 0
        }
    }

    #[allow(unsafe_code)]
    pub(super) fn current_thread() -> Option<i32> {
        // SAFETY: as above; `getpriority` may return -1 as a valid value, so errno is cleared
        // first and checked after.
        unsafe {
            let tid = libc::gettid();
            *libc::__errno_location() = 0;
            let value = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            (*libc::__errno_location() == 0).then_some(value)
        }
    }
}

/// Memory of this process as the OS counts it (Linux: `/proc/self/status`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessMemory {
    /// Resident set size now, MB (`VmRSS`).
    pub rss_mb: f64,
    /// Peak resident set size since the start, MB (`VmHWM`).
    pub peak_mb: f64,
}

/// This process's resident and peak memory; `None` where the OS does not say (non-Linux).
pub fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some(ProcessMemory {
        rss_mb: field("VmRSS:")?,
        peak_mb: field("VmHWM:")?,
    })
}

/// Environment variable that, set to `0`, leaves the allocator as the C library configures it
/// (to measure what [`retain_freed_memory`] gains).
pub const RETAIN_MEMORY_ENV: &str = "LDZMASK_RETAIN_MEMORY";

/// Keeps freed memory in the process for reuse instead of returning it to the kernel (glibc
/// only; other C libraries and platforms keep their allocator's own policy), unless
/// `LDZMASK_RETAIN_MEMORY=0`. Call once, early in `main`, before threads start. Returns whether
/// the setting was applied.
pub fn retain_freed_memory() -> bool {
    if std::env::var(RETAIN_MEMORY_ENV).is_ok_and(|v| v.trim() == "0") {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::retain_freed_memory()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// Never serve an allocation with its own `mmap` (so freeing never `munmap`s), never
    /// trim the heap top, and keep every thread in the main arena: freed blocks stay mapped
    /// and are reused by the next allocation of the same size, which for a network's
    /// activations is the next forward pass. This is what `GLIBC_TUNABLES=` with
    /// `glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=…:glibc.malloc.arena_max=1` does,
    /// set from inside the process.
    #[allow(unsafe_code)]
    pub(super) fn retain_freed_memory() -> bool {
        // SAFETY: `mallopt` only changes glibc's allocator parameters; it is called with valid
        // constants and has no memory-safety preconditions.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) };
        // The largest value the `int` parameter takes: effectively "never trim".
        // SAFETY: as above.
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) };
        // One arena: the per-thread arenas of the inference threads are 64 MB heaps that glibc
        // shrinks on its own, so their buffers were faulted in again on every pass (177 k minor
        // faults per forward pass with them, 24 k without; peak RSS 1.5 % lower). The
        // allocations are few and large, so the shared lock costs nothing measurable.
        // SAFETY: as above.
        let arenas = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        // mallopt returns 1 on success.
        mmap == 1 && trim == 1 && arenas == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).expect("non-zero in tests")
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        assert_eq!(
            thread_count(Some(n(3)), Some("5"), Role::Headless, 8),
            Ok(n(3))
        );
    }

    #[test]
    fn the_environment_wins_over_the_default() {
        assert_eq!(
            thread_count(None, Some(" 5 "), Role::Interactive, 8),
            Ok(n(5))
        );
    }

    #[test]
    fn headless_uses_every_core_and_the_app_leaves_one() {
        assert_eq!(thread_count(None, None, Role::Headless, 8), Ok(n(8)));
        assert_eq!(thread_count(None, None, Role::Interactive, 8), Ok(n(8)));
        assert_eq!(thread_count(None, Some(""), Role::Interactive, 2), Ok(n(2)));
        // One core: the app still gets one inference thread.
        assert_eq!(thread_count(None, None, Role::Interactive, 1), Ok(n(1)));
    }

    #[test]
    fn a_bad_environment_value_is_named() {
        for bad in ["0", "-2", "many", "1.5"] {
            let err = thread_count(None, Some(bad), Role::Headless, 4)
                .expect_err("bad values are refused");
            assert!(err.contains(THREADS_ENV) && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn work_inside_the_pool_sees_its_thread_count() {
        let pool = InferencePool::new(n(3)).expect("pool");
        assert_eq!(pool.threads(), 3);
        let (inside, name) = pool.install(|| {
            (
                rayon::current_num_threads(),
                std::thread::current().name().map(str::to_owned),
            )
        });
        assert_eq!(inside, 3);
        assert!(name.is_some_and(|n| n.starts_with("ldzmask-infer-")));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_allocator_settings() {
        assert!(retain_freed_memory());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_app_pool_runs_at_a_lower_priority_and_the_caller_keeps_its_own() {
        let before = current_thread_nice().expect("nice of this thread");
        let pool = InferencePool::background(n(2)).expect("pool");
        let inside = pool
            .install(current_thread_nice)
            .expect("nice of a pool thread");
        assert_eq!(inside, BACKGROUND_NICE.max(before));
        assert_eq!(
            current_thread_nice(),
            Some(before),
            "the calling thread is untouched"
        );
        let headless = InferencePool::new(n(1)).expect("pool");
        assert_eq!(headless.install(current_thread_nice), Some(before));
    }
}
