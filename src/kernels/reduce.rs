//! Column sums, the bias gradient (`shaders/reduce.wgsl`): two passes, a
//! serial sum over chunks of `CHUNK` rows per (chunk, column), then a serial
//! sum over the chunks. A sum of R terms thus goes through at most
//! CHUNK + ⌈R/CHUNK⌉ − 1 additions in sequence, not R.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::REDUCE;

const WG: u32 = 64;
/// Rows per chunk: √32768 ≈ 181, so 128 at the conv shapes balances the two
/// serial loops (128 + 256 additions) and gives 256·cols invocations.
pub const CHUNK: usize = 128;

const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

pub static PARTIAL: KernelSpec = KernelSpec {
    shader: &REDUCE,
    entry: "column_partial_sums",
    bindings: BINDINGS,
};
pub static COMBINE: KernelSpec = KernelSpec {
    shader: &REDUCE,
    entry: "column_combine",
    bindings: BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    chunk: u32,
    chunks: u32,
}

/// The longest chain of additions behind one column sum of `rows` terms
/// (for error bounds: |error| ≤ chain·2⁻²⁴·Σ|terms| to first order).
pub fn addition_chain(rows: usize) -> usize {
    let chunks = rows.div_ceil(CHUNK).max(1);
    rows.min(CHUNK) + if chunks > 1 { chunks } else { 0 }
}

/// db[c] = Σ_r dy[r, c] over rows (column sums); overwrites db. One dispatch
/// when rows ≤ CHUNK, else two (partial sums into a scratch buffer owned by
/// the returned dispatches, then the combine); record them in order.
pub fn column_sums<'b>(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    dy: impl Bind<'b>,
    db: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    let chunks = rows.div_ceil(CHUNK).max(1);
    let params = gpu.uniform(
        PARTIAL.entry,
        &Params {
            rows: rows as u32,
            cols: cols as u32,
            chunk: CHUNK as u32,
            chunks: chunks as u32,
        },
    )?;
    let consts = [("WG", WG as f64)];
    if chunks == 1 {
        return Ok(vec![gpu.dispatch(
            &PARTIAL,
            &consts,
            &[
                params.as_entire_binding(),
                dy.as_entire_binding(),
                db.as_entire_binding(),
            ],
            grid_1d(cols as u64, WG),
        )?]);
    }
    let partial = gpu.storage("column partial sums", (chunks * cols * 4) as u64)?;
    let pass1 = gpu.dispatch(
        &PARTIAL,
        &consts,
        &[
            params.as_entire_binding(),
            dy.as_entire_binding(),
            partial.as_entire_binding(),
        ],
        grid_1d((chunks * cols) as u64, WG),
    )?;
    let pass2 = gpu.dispatch(
        &COMBINE,
        &consts,
        &[
            params.as_entire_binding(),
            partial.as_entire_binding(),
            db.as_entire_binding(),
        ],
        grid_1d(cols as u64, WG),
    )?;
    Ok(vec![pass1, pass2])
}

pub mod cpu {
    /// Column sums, accumulated in f64 and rounded once.
    pub fn column_sums(rows: usize, cols: usize, dy: &[f32]) -> Vec<f32> {
        let mut acc = vec![0.0f64; cols];
        for row in dy[..rows * cols].chunks(cols.max(1)) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
        acc.into_iter().map(|v| v as f32).collect()
    }
}
