use gdl_gpu::kernels::add::{self, cpu};
use gdl_gpu::util::Rng;

use crate::common::*;

// One f32 addition per element on both sides: exact.
#[test]
fn add_and_accumulate_are_exact() {
    let gpu = gpu();
    let mut rng = Rng::new(51);
    // 1, primes, odd and vec4 lengths, the CNN's 32×32×32 and 16×16×64 maps.
    for n in [
        1usize,
        3,
        4,
        7,
        257,
        1000,
        32 * 32 * 32 * 32,
        32 * 16 * 16 * 64 + 1,
    ] {
        let a = rng.vec(n, -1.0, 1.0);
        let b = rng.vec(n, -1.0, 1.0);
        let (ab, bb) = (upload(&a), upload(&b));
        let cb = upload(&vec![f32::NAN; n]);
        let accb = upload(&b);
        let d1 = add::add(gpu, n, &ab, &bb, &cb).unwrap();
        let d2 = add::accumulate(gpu, n, &ab, &accb).unwrap();
        gpu.run("add", &[&d1, &d2]).unwrap();
        let want = cpu::add(&a, &b);
        assert_eq!(read(&cb, n), want, "add n={n}");
        let mut acc = b.clone();
        cpu::accumulate(&a, &mut acc);
        assert_eq!(acc, want, "cpu accumulate n={n}");
        assert_eq!(read(&accb, n), want, "accumulate n={n}");
    }
}
