//! TEMPORARY profiler (not for commit).
#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

static PROF: Mutex<BTreeMap<String, (f64, u32)>> = Mutex::new(BTreeMap::new());

pub struct Guard(String, Instant);
impl Drop for Guard {
    fn drop(&mut self) {
        let dt = self.1.elapsed().as_secs_f64() * 1e3;
        let mut p = PROF.lock().unwrap();
        let e = p.entry(std::mem::take(&mut self.0)).or_insert((0.0, 0));
        e.0 += dt;
        e.1 += 1;
    }
}
pub fn scope(name: impl FnOnce() -> String) -> Option<Guard> {
    std::env::var_os("LDZ_PROF").map(|_| Guard(name(), Instant::now()))
}
pub fn dump(stage: &str) {
    let mut p = PROF.lock().unwrap();
    if p.is_empty() { return; }
    let total: f64 = p.values().map(|v| v.0).sum();
    eprintln!("== {stage}: kernels total {total:.1} ms");
    let mut v: Vec<_> = p.iter().collect();
    v.sort_by(|a, b| b.1 .0.partial_cmp(&a.1 .0).unwrap());
    for (k, (ms, n)) in v { eprintln!("  {ms:8.1} ms {n:5}x  {k}"); }
    p.clear();
}
