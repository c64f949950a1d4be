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

/// `column_sums_scalar`: one invocation per (chunk, column).
pub static SCALAR: KernelSpec = KernelSpec {
    shader: &REDUCE,
    entry: "column_sums_scalar",
    bindings: BINDINGS,
};
/// `column_sums_vec4`: one invocation per (chunk, 4 columns); cols % 4 == 0.
pub static VEC4: KernelSpec = KernelSpec {
    shader: &REDUCE,
    entry: "column_sums_vec4",
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

/// One pass: dst[k, c] = Σ of src over row chunk k of `chunk` rows.
fn pass<'s, 'd>(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    chunk: usize,
    src: impl Bind<'s>,
    dst: impl Bind<'d>,
) -> Result<Dispatch> {
    let chunks = rows.div_ceil(chunk).max(1);
    // The vec4 view of src needs whole vec4s (the `Gpu` allocators pad so).
    assert!(
        src.size() % 16 == 0,
        "column_sums: source size {} is not a multiple of 16 bytes",
        src.size()
    );
    let (spec, per_row) = if cols % 4 == 0 {
        (&VEC4, cols / 4)
    } else {
        (&SCALAR, cols)
    };
    gpu.launch(
        spec,
        &[("WG", WG as f64)],
        &Params {
            rows: rows as u32,
            cols: cols as u32,
            chunk: chunk as u32,
            chunks: chunks as u32,
        },
        &[src.view(), dst.view()],
        grid_1d((chunks * per_row) as u64, WG),
    )
}

/// `db[c] = Σ_r dy[r, c]` over rows (column sums); overwrites db. One dispatch
/// when rows ≤ CHUNK, else two (partial sums into a scratch buffer owned by
/// the returned dispatches, then the same kernel over the scratch as one
/// chunk); record them in order.
pub fn column_sums<'b>(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    dy: impl Bind<'b>,
    db: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    let chunks = rows.div_ceil(CHUNK).max(1);
    if chunks == 1 {
        return Ok(vec![pass(gpu, rows, cols, CHUNK, dy, db)?]);
    }
    let partial = gpu.storage("column partial sums", (chunks * cols * 4) as u64)?;
    Ok(vec![
        pass(gpu, rows, cols, CHUNK, dy, &partial)?,
        pass(gpu, chunks, cols, chunks, &partial, db)?,
    ])
}

/// Plain-Rust reference.
pub mod cpu {
    /// Column sums, accumulated in f64 and rounded once.
    pub fn column_sums(rows: usize, cols: usize, dy: &[f32]) -> Vec<f32> {
        let mut db = vec![0.0; cols];
        column_sums_into(rows, cols, dy, &mut db);
        db
    }

    /// [`column_sums`] into `db`.
    pub fn column_sums_into(rows: usize, cols: usize, dy: &[f32], db: &mut [f32]) {
        let mut acc = vec![0.0f64; cols];
        for row in dy[..rows * cols].chunks(cols.max(1)) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
        for (o, v) in db.iter_mut().zip(acc) {
            *o = v as f32;
        }
    }
}
