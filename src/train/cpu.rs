//! Training on the CPU reference: the same lowered programs as the GPU,
//! run by `graph::cpu`. Slow, simple, and the oracle for the GPU.

use std::collections::HashMap;

use super::backend::{Backend, Metrics, ModelValues};
use super::gpu::EVAL_BATCH;
use crate::data::Split;
use crate::graph::cpu::{run, CpuState, StepInputs};
use crate::graph::lower::lower;
use crate::graph::params::ParamLayout;
use crate::graph::program::{Mode, Program};
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;

/// A [`Backend`] on the CPU reference, borrowing the data sets.
pub struct CpuBackend<'d> {
    graph: Graph,
    state: CpuState,
    train: &'d Split,
    test: &'d Split,
    hwc: (usize, usize, usize),
    perm: Vec<u32>,
    identity: Vec<u32>,
    programs: HashMap<(Mode, usize), Program>,
    metrics: [u32; 4],
    adam: AdamConfig,
    seed: u32,
    step: u64,
}

impl<'d> CpuBackend<'d> {
    /// Starts from `init` (its lengths must match `graph`'s layout) with
    /// Adam settings `adam`; `seed` drives dropout. Fails when the graph's
    /// input is not `[height, width, channels]`.
    pub fn new(
        graph: &Graph,
        train: &'d Split,
        test: &'d Split,
        adam: AdamConfig,
        seed: u64,
        init: &ModelValues,
    ) -> Result<Self, GraphError> {
        let layout = ParamLayout::new(graph);
        let [h, w, c] = *graph.input_shape() else {
            return Err(GraphError::Invalid {
                layer: graph.nodes[0].name.clone(),
                message: "input must be [height, width, channels]".into(),
            });
        };
        let mut state = CpuState::new(&layout, init.trainable.clone(), init.state.clone());
        state.m.clone_from(&init.adam_m);
        state.v.clone_from(&init.adam_v);
        Ok(CpuBackend {
            graph: graph.clone(),
            state,
            train,
            test,
            hwc: (h, w, c),
            perm: (0..train.len as u32).collect(),
            identity: (0..test.len as u32).collect(),
            programs: HashMap::new(),
            metrics: [0; 4],
            adam,
            seed: seed as u32,
            step: init.step,
        })
    }

    fn program(&mut self, mode: Mode, batch: usize) -> Result<Program, GraphError> {
        if !self.programs.contains_key(&(mode, batch)) {
            let p = lower(&self.graph, &self.state.layout, batch, mode)?;
            self.programs.insert((mode, batch), p);
        }
        Ok(self.programs[&(mode, batch)].clone())
    }
}

impl Backend for CpuBackend<'_> {
    fn describe(&self) -> String {
        "CPU reference".into()
    }

    fn set_permutation(&mut self, perm: &[u32]) -> Result<(), GraphError> {
        self.perm = perm.to_vec();
        Ok(())
    }

    fn train_step(&mut self, start: usize, len: usize) -> Result<(), GraphError> {
        let prog = self.program(Mode::Train, len)?;
        self.step += 1;
        let inp = StepInputs {
            pixels: &self.train.pixels,
            labels: &self.train.labels,
            hwc: self.hwc,
            indices: &self.perm,
            batch_base: start,
            seed: self.seed,
            step: self.step,
            adam: self.adam,
        };
        run(&prog, &mut self.state, &inp, &mut self.metrics);
        Ok(())
    }

    fn metrics(&mut self) -> Result<Metrics, GraphError> {
        Ok(Metrics::from_words(&self.metrics))
    }

    fn reset_metrics(&mut self) -> Result<(), GraphError> {
        self.metrics = [0; 4];
        Ok(())
    }

    fn evaluate(&mut self) -> Result<Metrics, GraphError> {
        let mut metrics = [0u32; 4];
        let n = self.test.len;
        let mut start = 0;
        while start < n {
            let len = EVAL_BATCH.min(n - start);
            let prog = self.program(Mode::Eval, len)?;
            let inp = StepInputs {
                pixels: &self.test.pixels,
                labels: &self.test.labels,
                hwc: self.hwc,
                indices: &self.identity,
                batch_base: start,
                seed: self.seed,
                step: self.step,
                adam: self.adam,
            };
            run(&prog, &mut self.state, &inp, &mut metrics);
            start += len;
        }
        Ok(Metrics::from_words(&metrics))
    }

    fn predict(&mut self) -> Result<Vec<Vec<f32>>, GraphError> {
        let mut metrics = [0u32; 4];
        let n = self.test.len;
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = EVAL_BATCH.min(n - start);
            let prog = self.program(Mode::Predict, len)?;
            let inp = StepInputs {
                pixels: &self.test.pixels,
                labels: &self.test.labels,
                hwc: self.hwc,
                indices: &self.identity,
                batch_base: start,
                seed: self.seed,
                step: self.step,
                adam: self.adam,
            };
            let r = run(&prog, &mut self.state, &inp, &mut metrics);
            let probs = prog.probs.expect("predict programs have probabilities");
            let v = r.tensor(probs);
            let classes = v.len() / len;
            out.extend(v.chunks_exact(classes).map(<[f32]>::to_vec));
            start += len;
        }
        Ok(out)
    }

    fn values(&mut self) -> Result<ModelValues, GraphError> {
        Ok(ModelValues {
            trainable: self.state.params.clone(),
            state: self.state.state.clone(),
            adam_m: self.state.m.clone(),
            adam_v: self.state.v.clone(),
            step: self.step,
        })
    }

    fn set_values(&mut self, v: &ModelValues) -> Result<(), GraphError> {
        self.state.params.clone_from(&v.trainable);
        self.state.state.clone_from(&v.state);
        self.state.m.clone_from(&v.adam_m);
        self.state.v.clone_from(&v.adam_v);
        self.step = v.step;
        Ok(())
    }
}
