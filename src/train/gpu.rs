//! Training on a wgpu adapter: the dataset is uploaded once as u8, each
//! step is one command buffer, metrics are read back only when asked.

use std::collections::HashMap;

use super::backend::{Backend, Metrics, ModelValues};
use crate::data::Split;
use crate::gpu::Gpu;
use crate::graph::gpu::{GpuProgram, GpuState};
use crate::graph::lower::lower;
use crate::graph::params::ParamLayout;
use crate::graph::program::Mode;
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;
use crate::kernels::gather::GpuDataset;

/// Examples per evaluation step: inference needs no per-batch statistics,
/// so a larger batch only saves dispatches.
pub const EVAL_BATCH: usize = 250;

pub struct GpuBackend<'g> {
    gpu: &'g Gpu,
    graph: Graph,
    state: GpuState,
    train: GpuDataset,
    test: GpuDataset,
    train_indices: wgpu::Buffer,
    test_indices: wgpu::Buffer,
    train_metrics: wgpu::Buffer,
    eval_metrics: wgpu::Buffer,
    programs: HashMap<(Mode, usize), GpuProgram>,
    adam: AdamConfig,
    seed: u32,
    step: u64,
}

impl<'g> GpuBackend<'g> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &'g Gpu,
        graph: &Graph,
        train: &Split,
        test: &Split,
        adam: AdamConfig,
        seed: u64,
        init: &ModelValues,
    ) -> Result<Self, GraphError> {
        let layout = ParamLayout::new(graph);
        let [h, w, c] = graph.input_shape() else {
            return Err(GraphError::Invalid {
                layer: graph.nodes[0].name.clone(),
                message: "input must be [height, width, channels]".into(),
            });
        };
        let state = GpuState::new(gpu, &layout, &init.trainable, &init.state)?;
        state.write_adam(gpu, &init.adam_m, &init.adam_v);
        let train_data = GpuDataset::upload(gpu, &train.pixels, &train.labels, *h, *w, *c)?;
        let test_data = GpuDataset::upload(gpu, &test.pixels, &test.labels, *h, *w, *c)?;
        let identity: Vec<u32> = (0..test.len as u32).collect();
        Ok(GpuBackend {
            gpu,
            graph: graph.clone(),
            state,
            train: train_data,
            test: test_data,
            train_indices: gpu.storage("train order", (train.len.max(1) * 4) as u64)?,
            test_indices: gpu.upload_storage("test order", &identity)?,
            train_metrics: gpu.storage("train metrics", 16)?,
            eval_metrics: gpu.storage("eval metrics", 16)?,
            programs: HashMap::new(),
            adam,
            seed: seed as u32,
            step: init.step,
        })
    }

    fn program(&mut self, mode: Mode, batch: usize) -> Result<&GpuProgram, GraphError> {
        if !self.programs.contains_key(&(mode, batch)) {
            let layout = &self.state.layout;
            let prog = lower(&self.graph, layout, batch, mode)?;
            let (data, indices, metrics) = match mode {
                Mode::Train => (&self.train, &self.train_indices, &self.train_metrics),
                Mode::Eval | Mode::Predict => (&self.test, &self.test_indices, &self.eval_metrics),
            };
            let gp = GpuProgram::new(self.gpu, &self.state, prog, data, indices, metrics)?;
            self.programs.insert((mode, batch), gp);
        }
        Ok(&self.programs[&(mode, batch)])
    }

    fn submit(&self, mode: Mode, batch: usize) -> Result<(), GraphError> {
        let prog = &self.programs[&(mode, batch)];
        let mut enc = self.gpu.encoder("step");
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            prog.record(&mut pass);
        }
        self.gpu.submit("training step", enc)?;
        Ok(())
    }
}

impl Backend for GpuBackend<'_> {
    fn describe(&self) -> String {
        format!("GPU: {}", self.gpu.name())
    }

    fn set_permutation(&mut self, perm: &[u32]) -> Result<(), GraphError> {
        self.gpu.write(&self.train_indices, perm);
        Ok(())
    }

    fn train_step(&mut self, start: usize, len: usize) -> Result<(), GraphError> {
        self.program(Mode::Train, len)?;
        self.step += 1;
        self.state.set_step(self.gpu, start, self.seed, self.step);
        self.state.set_adam(self.gpu, self.step, &self.adam);
        self.submit(Mode::Train, len)
    }

    fn metrics(&mut self) -> Result<Metrics, GraphError> {
        let w: Vec<u32> = self.gpu.read(&self.train_metrics, 4)?;
        Ok(Metrics::from_words(&w))
    }

    fn reset_metrics(&mut self) -> Result<(), GraphError> {
        self.gpu.write(&self.train_metrics, &[0u32; 4]);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<Metrics, GraphError> {
        self.gpu.write(&self.eval_metrics, &[0u32; 4]);
        let n = self.test.len();
        let mut start = 0;
        while start < n {
            let len = EVAL_BATCH.min(n - start);
            self.program(Mode::Eval, len)?;
            self.state.set_step(self.gpu, start, self.seed, self.step);
            self.submit(Mode::Eval, len)?;
            start += len;
        }
        let w: Vec<u32> = self.gpu.read(&self.eval_metrics, 4)?;
        Ok(Metrics::from_words(&w))
    }

    fn predict(&mut self) -> Result<Vec<Vec<f32>>, GraphError> {
        let n = self.test.len();
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = EVAL_BATCH.min(n - start);
            self.program(Mode::Predict, len)?;
            self.state.set_step(self.gpu, start, self.seed, self.step);
            self.submit(Mode::Predict, len)?;
            let prog = &self.programs[&(Mode::Predict, len)];
            let probs = prog
                .program
                .probs
                .expect("predict programs have probabilities");
            let v = prog.read_tensor(self.gpu, probs)?;
            let classes = v.len() / len;
            out.extend(v.chunks_exact(classes).map(<[f32]>::to_vec));
            start += len;
        }
        Ok(out)
    }

    fn values(&mut self) -> Result<ModelValues, GraphError> {
        let [trainable, state, adam_m, adam_v] = self.state.read_all(self.gpu)?;
        Ok(ModelValues {
            trainable,
            state,
            adam_m,
            adam_v,
            step: self.step,
        })
    }

    fn set_values(&mut self, v: &ModelValues) -> Result<(), GraphError> {
        self.state.write(self.gpu, &v.trainable, &v.state);
        self.state.write_adam(self.gpu, &v.adam_m, &v.adam_v);
        self.step = v.step;
        Ok(())
    }
}
