//! The CPU backend's results do not depend on its thread count: training
//! steps of the CNN (convolutions, batch norm, pooling, dropout, Adam) give
//! the same bits with 1 thread and with several.

use gdl_gpu::bench::training::synthetic;
use gdl_gpu::graph::cpu::{run, CpuState, StepInputs};
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::Mode;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::ModelValues;

fn steps(model: &str, threads: usize) -> (Vec<f32>, Vec<f32>, [u32; 4]) {
    gdl_gpu::par::set_threads(threads);
    let graph = gdl_gpu::models::load_graph(model).unwrap();
    let layout = ParamLayout::new(&graph);
    let init = ModelValues::initial(&layout, 7);
    let mut st = CpuState::new(&layout, init.trainable, init.state);
    let batch = 8;
    let data = synthetic(2 * batch, 3);
    let order: Vec<u32> = (0..data.len as u32).rev().collect();
    let program = lower(&graph, &layout, batch, Mode::Train).unwrap();
    let mut metrics = [0u32; 4];
    for step in 1..=2u64 {
        let inp = StepInputs {
            pixels: &data.pixels,
            labels: &data.labels,
            hwc: (32, 32, 3),
            indices: &order,
            batch_base: (step as usize - 1) * batch,
            seed: 11,
            step,
            adam: AdamConfig::default(),
        };
        run(&program, &mut st, &inp, &mut metrics);
    }
    (st.params, st.state, metrics)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn training_steps_are_bit_identical_across_thread_counts() {
    for model in ["cnn", "mlp"] {
        let (p1, s1, m1) = steps(model, 1);
        for t in [2, 3] {
            let (p, s, m) = steps(model, t);
            assert!(
                bits(&p1) == bits(&p),
                "{model}: parameters differ at {t} threads"
            );
            assert!(
                bits(&s1) == bits(&s),
                "{model}: state differs at {t} threads"
            );
            assert_eq!(m1, m, "{model}: metrics differ at {t} threads");
        }
    }
}
