use gdl_gpu::kernels::concat::{self, cpu};
use gdl_gpu::util::Rng;

use crate::common::*;

/// Copies `width` columns of a (rows × src_stride) matrix at `src_offset`
/// into a NaN-filled (rows × dst_stride) one at `dst_offset`: the block must
/// arrive exactly and nothing else may be touched.
fn check(rows: usize, width: usize, src: (usize, usize), dst: (usize, usize), rng: &mut Rng) {
    let gpu = gpu();
    let x = rng.vec(rows * src.0, -1.0, 1.0);
    let init = vec![f32::NAN; rows * dst.0];
    let (xb, yb) = (upload(&x), upload(&init));
    let d = concat::copy_columns(gpu, rows, width, &xb, src.0, src.1, &yb, dst.0, dst.1).unwrap();
    gpu.run("copy columns", &[&d]).unwrap();
    let mut want = init;
    cpu::copy_columns(rows, width, &x, src.0, src.1, &mut want, dst.0, dst.1);
    let got = read(&yb, rows * dst.0);
    // Bitwise, so that untouched NaNs compare equal.
    let bits = |v: &[f32]| -> Vec<u32> { v.iter().map(|f| f.to_bits()).collect() };
    assert_eq!(
        bits(&got),
        bits(&want),
        "rows={rows} width={width} src={src:?} dst={dst:?}"
    );
}

#[test]
fn copy_columns_is_exact() {
    let mut rng = Rng::new(52);
    // (rows, width, (src stride, offset), (dst stride, offset)): odd widths
    // and offsets (scalar path), one row, whole rows, vec4-aligned blocks.
    let cases = [
        (1, 1, (1, 0), (1, 0)),
        (1, 5, (7, 2), (9, 3)),
        (7, 3, (3, 0), (8, 5)),
        (13, 5, (11, 6), (5, 0)),
        (5, 4, (8, 4), (12, 8)),
        (3, 4, (8, 4), (12, 7)),
        (257, 8, (8, 0), (24, 16)),
    ];
    for (rows, width, src, dst) in cases {
        check(rows, width, src, dst, &mut rng);
    }
    // The CNN-sized concatenation: 32·16·16 pixels of 32 + 64 channels,
    // forward (each input into its range) and backward (each range out).
    let rows = 32 * 16 * 16;
    check(rows, 32, (32, 0), (96, 0), &mut rng);
    check(rows, 64, (64, 0), (96, 32), &mut rng);
    check(rows, 32, (96, 0), (32, 0), &mut rng);
    check(rows, 64, (96, 32), (64, 0), &mut rng);
    // An odd split of the same (scalar path): 33 + 63.
    check(rows, 33, (33, 0), (96, 0), &mut rng);
    check(rows, 63, (96, 33), (63, 0), &mut rng);
}

#[test]
fn concat_then_split_round_trips() {
    // Forward then backward of a 3-way concatenation (5 + 4 + 7 channels).
    let gpu = gpu();
    let mut rng = Rng::new(53);
    let (rows, widths) = (37usize, [5usize, 4, 7]);
    let total: usize = widths.iter().sum();
    let parts: Vec<Vec<f32>> = widths
        .iter()
        .map(|&w| rng.vec(rows * w, -1.0, 1.0))
        .collect();
    let bufs: Vec<_> = parts.iter().map(|p| upload(p)).collect();
    let out = zeros(rows * total);
    let backs: Vec<_> = widths.iter().map(|&w| zeros(rows * w)).collect();
    let mut ds = Vec::new();
    let mut offset = 0;
    for (i, &w) in widths.iter().enumerate() {
        ds.push(concat::copy_columns(gpu, rows, w, &bufs[i], w, 0, &out, total, offset).unwrap());
        offset += w;
    }
    let mut offset = 0;
    for (i, &w) in widths.iter().enumerate() {
        ds.push(concat::copy_columns(gpu, rows, w, &out, total, offset, &backs[i], w, 0).unwrap());
        offset += w;
    }
    let refs: Vec<_> = ds.iter().collect();
    gpu.run("concat round trip", &refs).unwrap();
    for (i, &w) in widths.iter().enumerate() {
        assert_eq!(read(&backs[i], rows * w), parts[i], "part {i}");
    }
}
