use gdl_gpu::kernels::elementwise;
use gdl_gpu::util::Rng;

use crate::common::*;

// Forward and backward are a select and at most one multiply: exact up to
// one rounding of slope·x, which the CPU does identically.
#[test]
fn leaky_relu_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    // 1, a prime, a non-multiple of the workgroup, the CNN's largest map
    // (32·32·32·32), and one past the 65,535-workgroup fold.
    for &n in &[1usize, 7, 257, 1000, 32 * 32 * 32 * 32, 65_536 * 256 + 3] {
        for &slope in &[0.0f32, 0.2] {
            let mut x = rng.vec(n, -3.0, 3.0);
            x[0] = 0.0;
            let dy = rng.vec(n, -1.0, 1.0);
            let xb = upload(&x);
            let yb = zeros(n);
            let gb = upload(&dy);
            let f = elementwise::forward(gpu, &xb, &yb, n, slope).unwrap();
            let b = elementwise::backward(gpu, &xb, &gb, n, slope).unwrap();
            gpu.run("leaky relu", &[&f, &b]).unwrap();
            let case = format!("n={n} slope={slope}");
            assert_close(
                &format!("forward {case}"),
                &read(&yb, n),
                &elementwise::cpu::forward(&x, slope),
                0.0,
                0.0,
            );
            assert_close(
                &format!("backward {case}"),
                &read(&gb, n),
                &elementwise::cpu::backward(&x, &dy, slope),
                0.0,
                0.0,
            );
        }
    }
}
