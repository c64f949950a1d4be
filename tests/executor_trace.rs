//! Instruction by instruction: run the first n instructions of a training
//! program on the GPU and on the CPU reference from the same state, and
//! compare every f32 tensor instruction n touches. The whole-step tests say
//! whether a step agrees; this one says where it would first part ways.

use gdl_gpu::data::Split;
use gdl_gpu::graph::cpu::{run_prefix, CpuState, StepInputs};
use gdl_gpu::graph::gpu::{GpuProgram, GpuState};
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::{DType, Mode};
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::kernels::gather::GpuDataset;
use gdl_gpu::models;
use gdl_gpu::util::Rng;
use gdl_gpu::Gpu;

fn trace(model: &str) {
    let gpu = Gpu::new().expect("an adapter");
    let graph = models::builtin_graph(model).unwrap();
    let mut rng = Rng::new(1);
    let train = Split {
        pixels: (0..64 * 3072).map(|_| rng.below(256) as u8).collect(),
        labels: (0..64).map(|_| rng.below(10) as u8).collect(),
        len: 64,
    };
    let layout = ParamLayout::new(&graph);
    let (t, s) = layout.initial_values(7);
    let adam = AdamConfig {
        lr: 5e-4,
        ..AdamConfig::default()
    };
    let perm: Vec<u32> = (0..64).rev().collect();
    let prog = lower(&graph, &layout, 32, Mode::Train).unwrap();
    let ds = GpuDataset::upload(&gpu, &train.pixels, &train.labels, 32, 32, 3).unwrap();
    let indices = gpu.upload_storage("order", &perm).unwrap();
    let metrics = gpu.storage("metrics", 16).unwrap();
    for n in 1..=prog.insts.len() {
        let st = GpuState::new(&gpu, &layout, &t, &s).unwrap();
        st.set_step(&gpu, 0, 3, 1);
        st.set_adam(&gpu, 1, &adam);
        let gp = GpuProgram::new(&gpu, &st, prog.clone(), &ds, &indices, &metrics).unwrap();
        let mut enc = gpu.encoder("prefix");
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            gp.record_prefix(&mut pass, n);
        }
        gpu.submit("prefix", enc).unwrap();
        let mut cst = CpuState::new(&layout, t.clone(), s.clone());
        let inp = StepInputs {
            pixels: &train.pixels,
            labels: &train.labels,
            hwc: (32, 32, 3),
            indices: &perm,
            batch_base: 0,
            seed: 3,
            step: 1,
            adam,
        };
        let run = run_prefix(&prog, &mut cst, &inp, &mut [0u32; 4], n);
        let inst = &prog.insts[n - 1];
        let f32s: Vec<usize> = inst
            .uses()
            .into_iter()
            .filter(|&t| prog.tensors[t].dtype == DType::F32 && inst.scratch() != Some(t))
            .collect();
        // Largest magnitude among everything the instruction touches: a sum's
        // rounding error scales with its terms, and a gradient that is 0 in
        // exact arithmetic (a bias feeding BatchNorm) is pure rounding noise.
        let terms = f32s
            .iter()
            .map(|&t| {
                run.value(&prog, &cst, t)
                    .iter()
                    .fold(0f32, |a, v| a.max(v.abs()))
            })
            .fold(0f32, f32::max) as f64;
        for tid in f32s {
            let want = run.value(&prog, &cst, tid);
            let got = gp.read_any(&gpu, &st, tid).unwrap();
            // 1e-4 of the tensor's own scale, plus 1e-5 (≈ 170·2⁻²⁴) of the
            // terms' scale for sums with cancellation.
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
            if let Err(e) = gdl_gpu::util::compare(&got, &want, 1e-4 * scale + 1e-5 * terms, 1e-3) {
                panic!(
                    "{model}: instruction {} {inst:?}, tensor {}: {e}",
                    n - 1,
                    prog.tensors[tid].name
                );
            }
        }
    }
}

/// The chapter's conv sketch: every op is linear up to the loss, so no
/// rounding-dependent branch can make the two sides part ways. (The CNN's
/// long BatchNorm and bias sums accumulate each side's own input rounding,
/// so its per-instruction bound would have to carry the measured input
/// differences; the whole-step test in executor.rs covers it.)
#[test]
fn conv_agrees_instruction_by_instruction() {
    trace("conv");
}
