//! Threads for the CPU backend. Work is cut into chunks whose size never
//! depends on the thread count, each chunk is computed by one thread, and
//! partial results are combined in chunk order: results are the same bits
//! with 1 thread or 16.

use std::sync::atomic::{AtomicUsize, Ordering};

/// 0: every core the OS offers.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Uses `n` threads (0: all cores) from now on.
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The number of threads the CPU kernels use.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Calls `f` on every item, the items cut into up to [`threads`]
/// contiguous groups, one thread each (the caller's thread takes the
/// first). Each item must be independent of the others.
pub fn for_each<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync) {
    let t = threads().min(items.len());
    if t <= 1 {
        items.into_iter().for_each(f);
        return;
    }
    let per = items.len().div_ceil(t);
    let f = &f;
    let mut items = items.into_iter();
    let mut groups: Vec<Vec<I>> = Vec::with_capacity(t);
    loop {
        let g: Vec<I> = items.by_ref().take(per).collect();
        if g.is_empty() {
            break;
        }
        groups.push(g);
    }
    std::thread::scope(|s| {
        let mut groups = groups.into_iter();
        let first = groups.next();
        for g in groups {
            s.spawn(move || {
                let _ftz = Ftz::on();
                g.into_iter().for_each(f);
            });
        }
        first.into_iter().flatten().for_each(f);
    });
}

/// Calls `f(i, chunk)` on the `i`th `chunk`-long piece of `out`, in parallel.
pub fn chunks_mut<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let items: Vec<_> = out.chunks_mut(chunk.max(1)).enumerate().collect();
    for_each(items, |(i, c)| f(i, c));
}

/// Elements per chunk of the elementwise kernels (a few hundred KB of traffic).
pub const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// Flushes denormals to zero (FTZ and DAZ in the MXCSR) on this thread
/// while it lives, restoring the previous mode when dropped; a no-op
/// off x86_64. Denormal arithmetic is ~100× slower on x86, and the GPU
/// kernels flush them too.
pub struct Ftz {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
impl Ftz {
    /// FTZ|DAZ on.
    pub fn on() -> Ftz {
        let saved = read_mxcsr();
        write_mxcsr(saved | 0x8040);
        Ftz { saved }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Ftz {
    fn drop(&mut self) {
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr stores the 32-bit MXCSR to the given address.
    unsafe {
        std::arch::asm!("stmxcsr [{p}]", p = in(reg) &mut csr as *mut u32, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: ldmxcsr loads a valid MXCSR value (one read from it, with
    // only the FTZ/DAZ bits changed).
    unsafe {
        std::arch::asm!("ldmxcsr [{p}]", p = in(reg) &csr as *const u32, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Ftz {
    /// A no-op off x86_64.
    pub fn on() -> Ftz {
        Ftz {}
    }
}
