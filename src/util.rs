//! Small helpers shared by kernels, tests and benchmarks: a seeded RNG (so
//! runs are reproducible without a dependency), error measurement, and the
//! user's cache folder.

/// SplitMix64: tiny, fast, and good enough for initialisation, shuffling
/// and test data. Not for anything security-related.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (equal seeds give equal streams).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: bias is below 2^-64 * n, irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// `n` values uniform in [lo, hi).
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.next_f32() as f64).max(1e-12);
        let u2 = self.next_f32() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Where two arrays differ most, for error messages and tolerance checks.
#[derive(Clone, Copy, Debug)]
pub struct Diff {
    /// The largest |got − want|.
    pub max_abs: f64,
    /// Where it is.
    pub index: usize,
    /// The value there.
    pub got: f32,
    /// The expected value there.
    pub want: f32,
}

/// Checks `|got - want| <= atol + rtol * |want|` elementwise and reports the
/// worst element; `Err` carries a message naming it.
pub fn compare(got: &[f32], want: &[f32], atol: f64, rtol: f64) -> Result<Diff, String> {
    if got.len() != want.len() {
        return Err(format!("length {} != {}", got.len(), want.len()));
    }
    let mut worst = Diff {
        max_abs: 0.0,
        index: 0,
        got: 0.0,
        want: 0.0,
    };
    let mut worst_excess = f64::NEG_INFINITY;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        let bound = atol + rtol * (w as f64).abs();
        let excess = if err.is_nan() || g.is_nan() != w.is_nan() {
            f64::INFINITY
        } else {
            err - bound
        };
        if err > worst.max_abs || err.is_nan() {
            worst.max_abs = err;
        }
        if excess > worst_excess {
            worst_excess = excess;
            worst.index = i;
            worst.got = g;
            worst.want = w;
        }
    }
    if worst_excess > 0.0 {
        Err(format!(
            "element {} differs: got {}, want {} (|diff| {:.3e} > atol {:.1e} + rtol {:.1e}·|want|); max |diff| {:.3e}",
            worst.index,
            worst.got,
            worst.want,
            (worst.got as f64 - worst.want as f64).abs(),
            atol,
            rtol,
            worst.max_abs
        ))
    } else {
        Ok(worst)
    }
}

/// Unit roundoff of f32: the relative error of one rounding.
pub const F32_EPS: f64 = 1.0 / (1u64 << 24) as f64;

/// gdl-gpu's folder in the user's cache: `$XDG_CACHE_HOME/gdl-gpu`, else
/// `~/.cache/gdl-gpu` (None when neither variable is set).
pub fn user_cache_dir() -> Option<std::path::PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(c) = var("XDG_CACHE_HOME") {
        return Some(std::path::PathBuf::from(c).join("gdl-gpu"));
    }
    var("HOME").map(|h| std::path::PathBuf::from(h).join(".cache").join("gdl-gpu"))
}
