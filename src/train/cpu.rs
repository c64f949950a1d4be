//! Training on the CPU reference: the same lowered programs as the GPU,
//! run by `graph::cpu`. Slow, simple, and the oracle for the GPU.

use std::collections::HashMap;

use super::backend::{Backend, Metrics, ModelValues};
use super::gpu::EVAL_BATCH;
use crate::data::Split;
use crate::graph::cpu::{run_in, CpuRun, CpuState, StepInputs};
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
    /// Each lowered program with its temporaries, reused by every run.
    programs: HashMap<(Mode, usize), (Program, CpuRun)>,
    metrics: [u32; 4],
    adam: AdamConfig,
    seed: u64,
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
            seed,
            step: init.step,
        })
    }

    /// Runs the (mode, batch) program (lowered on first use) on `inp`,
    /// in its own temporaries, which it returns for reading.
    fn run(
        &mut self,
        mode: Mode,
        batch: usize,
        inp: &StepInputs,
        metrics: &mut [u32; 4],
    ) -> Result<(&Program, &CpuRun), GraphError> {
        let key = (mode, batch);
        if !self.programs.contains_key(&key) {
            let p = lower(&self.graph, &self.state.layout, batch, mode)?;
            let temps = CpuRun::new(&p);
            self.programs.insert(key, (p, temps));
        }
        let (p, temps) = self.programs.get_mut(&key).expect("inserted above");
        run_in(
            p,
            &mut self.state,
            inp,
            metrics,
            p.insts.len(),
            temps,
            &mut |_| {},
        );
        Ok((p, temps))
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
        self.step += 1;
        let perm = std::mem::take(&mut self.perm);
        let train = self.train;
        let inp = StepInputs {
            pixels: &train.pixels,
            labels: &train.labels,
            hwc: self.hwc,
            indices: &perm,
            batch_base: start,
            seed: self.seed,
            step: self.step,
            adam: self.adam,
        };
        let mut metrics = self.metrics;
        let r = self.run(Mode::Train, len, &inp, &mut metrics).map(|_| ());
        self.metrics = metrics;
        self.perm = perm;
        r
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
            let test = self.test;
            let identity = std::mem::take(&mut self.identity);
            let mode = Mode::Eval;
            let inp = StepInputs {
                pixels: &test.pixels,
                labels: &test.labels,
                hwc: self.hwc,
                indices: &identity,
                batch_base: start,
                seed: self.seed,
                step: self.step,
                adam: self.adam,
            };
            let r = self.run(mode, len, &inp, &mut metrics).map(|_| ());
            self.identity = identity;
            r?;
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
            let test = self.test;
            let identity = std::mem::take(&mut self.identity);
            let mode = Mode::Predict;
            let inp = StepInputs {
                pixels: &test.pixels,
                labels: &test.labels,
                hwc: self.hwc,
                indices: &identity,
                batch_base: start,
                seed: self.seed,
                step: self.step,
                adam: self.adam,
            };
            let r = self.run(mode, len, &inp, &mut metrics).map(|(prog, r)| {
                let probs = prog.probs.expect("predict programs have probabilities");
                let v = r.tensor(probs);
                let classes = v.len() / len;
                out.extend(v.chunks_exact(classes).map(<[f32]>::to_vec));
            });
            self.identity = identity;
            r?;
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
