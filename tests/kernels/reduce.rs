use gdl_gpu::kernels::reduce::{self, cpu};
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

#[test]
fn column_sums_match_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(31);
    // Rows: 1, a prime, exactly one chunk, one past it, the MLP's batch, the
    // conv layers' 32·32·32 (and a prime near it); columns: 1, the models'
    // 10, 32, 64, 150, 200, and primes.
    let shapes = [
        (1usize, 1usize),
        (1, 10),
        (7, 13),
        (reduce::CHUNK, 10),
        (reduce::CHUNK + 1, 3),
        (32, 200),
        (32, 150),
        (1000, 10),
        (32_768, 32),
        (32_768, 64),
        (32_771, 11),
        (8 * 16 * 16, 64),
    ];
    for &(rows, cols) in &shapes {
        let dy = rng.vec(rows * cols, -1.0, 1.0);
        let (dyb, dbb) = (upload(&dy), upload(&vec![f32::NAN; cols]));
        let ds = reduce::column_sums(gpu, rows, cols, &dyb, &dbb).unwrap();
        let refs: Vec<_> = ds.iter().collect();
        gpu.run("column sums", &refs).unwrap();
        let got = read(&dbb, cols);
        let want = cpu::column_sums(rows, cols, &dy);
        // Serial sums in two levels: the longest chain of additions is
        // L = min(R, CHUNK) + ⌈R/CHUNK⌉, so |error| ≤ L·2⁻²⁴·Σ_r|dy[r,c]|
        // (first order; ×1.01 covers the rest), plus the reference's one
        // rounding 2⁻²⁴·|sum|.
        let chain = reduce::addition_chain(rows) as f64;
        for c in 0..cols {
            let abs_sum: f64 = (0..rows).map(|r| dy[r * cols + c].abs() as f64).sum();
            let bound = 1.01 * chain * F32_EPS * abs_sum + F32_EPS * (want[c] as f64).abs();
            let err = (got[c] as f64 - want[c] as f64).abs();
            assert!(
                err <= bound,
                "rows={rows} cols={cols} c={c}: got {}, want {}, |diff| {err:.3e} > {bound:.3e}",
                got[c],
                want[c]
            );
        }
    }
}
