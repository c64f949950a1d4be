//! Profiling a training step on the CPU backend: wall clock around each
//! instruction of the interpreter (`graph::cpu::run_observed`).

use std::time::Instant;

use super::{assemble, Method, Profile, ProfileConfig};
use crate::bench::training::synthetic;
use crate::graph::cpu::{run_in, CpuRun, CpuState, StepInputs};
use crate::graph::lower::lower;
use crate::graph::params::ParamLayout;
use crate::graph::program::{Inst, Mode};
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;
use crate::train::ModelValues;

/// Batches of synthetic images the steps cycle through.
const BATCHES: usize = 4;

/// Profiles `cfg.steps` training steps of `graph` on the CPU reference.
pub fn profile(graph: &Graph, cfg: &ProfileConfig) -> Result<Profile, GraphError> {
    let [h, w, c] = *graph.input_shape() else {
        return Err(GraphError::Invalid {
            layer: graph.nodes[0].name.clone(),
            message: "input must be [height, width, channels]".into(),
        });
    };
    let batch = cfg.batch;
    let data = synthetic(BATCHES * batch, 1);
    let order: Vec<u32> = (0..data.len as u32).collect();
    let layout = ParamLayout::new(graph);
    let init = ModelValues::initial(&layout, 0);
    let mut st = CpuState::new(&layout, init.trainable, init.state);
    let program = lower(graph, &layout, batch, Mode::Train)?;
    let n = program.insts.len();
    let mut temps = CpuRun::new(&program);
    let mut metrics = [0u32; 4];
    let inputs = |step: u64| StepInputs {
        pixels: &data.pixels,
        labels: &data.labels,
        hwc: (h, w, c),
        indices: &order,
        batch_base: (step as usize % BATCHES) * batch,
        seed: 0,
        step,
        adam: AdamConfig::default(),
    };

    let mut step = 0u64;
    let mut samples = vec![Vec::with_capacity(cfg.steps); n];
    let mut walls = Vec::with_capacity(cfg.steps);
    for k in 0..cfg.warmup + cfg.steps {
        let timed = k >= cfg.warmup;
        // A plain step, as training runs it.
        step += 1;
        let t = Instant::now();
        run_in(
            &program,
            &mut st,
            &inputs(step),
            &mut metrics,
            n,
            &mut temps,
            &mut |_| {},
        );
        let wall = t.elapsed().as_secs_f64();
        // A timed step: the time between marks is one instruction's.
        step += 1;
        let mut marks = Vec::with_capacity(n + 1);
        run_in(
            &program,
            &mut st,
            &inputs(step),
            &mut metrics,
            n,
            &mut temps,
            &mut |_| marks.push(Instant::now()),
        );
        if timed {
            walls.push(wall);
            for (i, w) in marks.windows(2).enumerate() {
                samples[i].push((w[1] - w[0]).as_secs_f64());
            }
        }
    }
    let variants = program
        .insts
        .iter()
        .map(|inst| {
            let v = match inst {
                Inst::Gemm { .. } => "matrixmultiply",
                _ => "reference",
            };
            (v.to_owned(), Vec::new(), None)
        })
        .collect();
    Ok(assemble(
        graph,
        &program,
        layout.trainable_len,
        &samples,
        variants,
        &walls,
        (None, None),
        "CPU reference".into(),
        Method::CpuWallClock,
        cfg,
    ))
}
