//! How inference uses the CPU: the thread pool it runs in and how freed memory is kept.
//!
//! burn's `flex` backend and the `gemm` crate under it split their work over rayon's *current*
//! thread pool. Inference therefore runs inside [`InferencePool::install`], a dedicated pool
//! whose size the user chooses (`--threads N` or `LDZMASK_THREADS`): all cores for the headless
//! commands, all but one in the app so that the UI thread always has a core.
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
    /// The app: leave one core to the UI thread.
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

/// The role's default: every core headless, every core but one (at least one) in the app.
pub fn default_threads(role: Role, cores: usize) -> NonZeroUsize {
    let n = match role {
        Role::Headless => cores,
        Role::Interactive => cores.saturating_sub(1),
    };
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

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
        assert_eq!(thread_count(None, None, Role::Interactive, 8), Ok(n(7)));
        assert_eq!(thread_count(None, Some(""), Role::Interactive, 2), Ok(n(1)));
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
}
