//! Training on a wgpu adapter: the dataset is uploaded once as u8, each
//! step is one command buffer, metrics are read back only when asked.

use std::collections::HashMap;

use super::backend::{Backend, Metrics, ModelValues};
use crate::data::Split;
use crate::gpu::buffers::padded;
use crate::gpu::Gpu;
use crate::graph::gpu::{GpuProgram, GpuState};
use crate::graph::lower::lower;
use crate::graph::params::ParamLayout;
use crate::graph::program::{Home, Mode, Program};
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;
use crate::kernels::gather::GpuDataset;
use crate::tune::{program_cases, Cases, Policy, TuneTable, Tuner};

/// Examples per evaluation step at most: inference needs no per-batch
/// statistics, so a larger batch only saves dispatches.
pub const EVAL_BATCH: usize = 250;

/// The most bytes one storage binding may hold.
fn binding_limit(gpu: &Gpu) -> u64 {
    gpu.limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size)
}

/// Every tensor of `prog` fits one binding, or an error that names the
/// tensor and what to do, before any buffer is made.
pub(crate) fn fits(gpu: &Gpu, prog: &Program) -> Result<(), GraphError> {
    let limit = binding_limit(gpu);
    match prog.tensors.iter().find(|t| t.len as u64 * 4 > limit) {
        None => Ok(()),
        Some(t) => Err(GraphError::Invalid {
            layer: t.name.clone(),
            message: format!(
                "needs {} bytes at batch {}, more than this adapter binds ({limit} bytes, max_storage_buffer_binding_size); use a smaller --batch-size",
                t.len * 4,
                prog.batch
            ),
        }),
    }
}

/// The largest evaluation batch (up to `EVAL_BATCH`) whose every buffer fits
/// a binding of `limit` bytes: a wide model's im2col at 250 examples can
/// pass lavapipe's 128 MiB.
pub fn eval_batch(graph: &Graph, layout: &ParamLayout, limit: u64) -> Result<usize, GraphError> {
    let probe = lower(graph, layout, 1, Mode::Eval)?;
    let per_example = probe
        .tensors
        .iter()
        .filter(|t| t.home == Home::Temp)
        .map(|t| t.len as u64 * 4)
        .max()
        .unwrap_or(4);
    Ok(((limit / per_example) as usize).clamp(1, EVAL_BATCH))
}

/// The distinct tuning cases (GEMMs, convolution passes) of every program
/// a run of `graph` on `gpu` builds: training steps of `batch` over `train_len` examples (the last
/// partial batch included) and evaluation over `test_len`, in the batches
/// [`GpuBackend`] uses; what tuning covers before a run starts.
pub fn run_cases(
    gpu: &Gpu,
    graph: &Graph,
    batch: usize,
    train_len: usize,
    test_len: usize,
) -> Result<Cases, GraphError> {
    let layout = ParamLayout::new(graph);
    let eval = eval_batch(graph, &layout, binding_limit(gpu))?;
    let programs = batch_sizes(train_len, batch)
        .into_iter()
        .map(|b| (Mode::Train, b))
        .chain(
            batch_sizes(test_len, eval)
                .into_iter()
                .map(|b| (Mode::Eval, b)),
        );
    let mut out = Cases::default();
    for (mode, b) in programs {
        out.extend(program_cases(&lower(graph, &layout, b, mode)?));
    }
    Ok(out)
}

/// One part of what [`GpuBackend`] allocates on the GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPart {
    /// What the buffers hold, for a listing.
    pub what: String,
    /// Their size in bytes, each buffer rounded up to 16.
    pub bytes: u64,
}

/// The batch sizes a pass over `len` examples in batches of `batch` runs:
/// the full batch and the last partial one, each a program of its own.
fn batch_sizes(len: usize, batch: usize) -> Vec<usize> {
    let mut v = vec![batch.min(len.max(1))];
    if len > batch && len % batch != 0 {
        v.push(len % batch);
    }
    v
}

/// A dataset as `GpuDataset::upload` lays it out: images as u32 words
/// (whole images per chunk, each chunk padded to 16 bytes; exact for any
/// chunking when an image is a multiple of 16 bytes, as CIFAR-10's 3,072),
/// labels as u32.
fn dataset_bytes(len: usize, image_bytes: usize) -> u64 {
    padded((len * image_bytes.div_ceil(4) * 4) as u64) + padded((len * 4) as u64)
}

fn program_bytes(plan: &crate::graph::plan::Plan) -> u64 {
    plan.slot_bytes.iter().map(|&b| padded(b)).sum()
}

/// What a [`GpuBackend`] allocates to train `graph` for whole epochs of
/// `train_len` examples in batches of `batch`, evaluating on `test_len`:
/// parameters and optimizer state, both datasets, the example orders and
/// metrics, and the activations of every program an epoch builds (the
/// training step, the last partial batch's, evaluation's). Not counted:
/// the small uniform buffers of each dispatch, and kernel scratch whose
/// size depends on the adapter (batch-norm and reduction partial sums,
/// GEMM operand packing on subgroup adapters).
pub fn planned_memory(
    graph: &Graph,
    batch: usize,
    train_len: usize,
    test_len: usize,
) -> Result<Vec<MemoryPart>, GraphError> {
    let layout = ParamLayout::new(graph);
    let image: usize = graph.input_shape().iter().product();
    let part = |what: String, bytes: u64| MemoryPart { what, bytes };
    let t = padded((layout.trainable_len * 4) as u64);
    let mut parts = vec![
        part("parameters, gradients and Adam's m and v".into(), 4 * t),
        part(
            "moving statistics".into(),
            padded((layout.state_len * 4) as u64),
        ),
        part(
            format!("training set ({train_len} images, u8)"),
            dataset_bytes(train_len, image),
        ),
        part(
            format!("test set ({test_len} images, u8)"),
            dataset_bytes(test_len, image),
        ),
        part(
            "example orders and metrics".into(),
            padded((train_len.max(1) * 4) as u64) + padded((test_len * 4) as u64) + 2 * padded(16),
        ),
    ];
    let programs = batch_sizes(train_len, batch)
        .into_iter()
        .map(|b| (Mode::Train, b, "training step"))
        .chain(
            batch_sizes(
                test_len,
                // WebGPU's guaranteed binding size: the batch any adapter fits.
                eval_batch(
                    graph,
                    &layout,
                    wgpu::Limits::default().max_storage_buffer_binding_size,
                )?,
            )
            .into_iter()
            .map(|b| (Mode::Eval, b, "evaluation")),
        );
    for (mode, b, name) in programs {
        let plan = crate::graph::plan::Plan::new(&lower(graph, &layout, b, mode)?);
        parts.push(part(
            format!(
                "{name} activations, batch {b} ({} shared buffers)",
                plan.slot_bytes.len()
            ),
            program_bytes(&plan),
        ));
    }
    Ok(parts)
}

/// A [`Backend`] on a [`Gpu`]: the model's state and both data sets live in
/// GPU buffers, and a training step is one queued submission.
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
    tuner: Tuner,
    eval_batch: usize,
    adam: AdamConfig,
    seed: u64,
    step: u64,
    /// The training step submitted last, still running or queued.
    in_flight: Option<wgpu::SubmissionIndex>,
}

impl<'g> GpuBackend<'g> {
    /// Uploads `init` (its lengths must match `graph`'s layout), the train
    /// and test sets (u8 CHW, normalised on the GPU) and sets Adam to `adam`;
    /// `seed` drives dropout. Fails when the graph's input is not
    /// `[height, width, channels]` or a buffer does not fit the device.
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
        let eval_batch = eval_batch(graph, &layout, binding_limit(gpu))?;
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
            tuner: Tuner::new(gpu, Policy::BuiltIn),
            eval_batch,
            adam,
            seed,
            step: init.step,
            in_flight: None,
        })
    }

    /// Kernel configurations by `tuner` (the default follows
    /// [`Policy::BuiltIn`]): under [`Policy::TuneMissing`], the first
    /// training step tunes every GEMM of the run the cache lacks.
    pub fn with_tuner(mut self, tuner: Tuner) -> Self {
        self.tuner = tuner;
        self
    }

    /// The tuner's table: which configuration each GEMM case runs.
    pub fn tune_table(&self) -> &TuneTable {
        self.tuner.table()
    }

    fn program(&mut self, mode: Mode, batch: usize) -> Result<&GpuProgram, GraphError> {
        if !self.programs.contains_key(&(mode, batch)) {
            let layout = &self.state.layout;
            let prog = lower(&self.graph, layout, batch, mode)?;
            fits(self.gpu, &prog)?;
            if self.tuner.policy() != Policy::BuiltIn {
                let mut cases = program_cases(&prog);
                // The whole run at once, so that tuning happens (and is
                // announced) once, before the first step.
                if mode == Mode::Train {
                    cases.extend(run_cases(
                        self.gpu,
                        &self.graph,
                        batch,
                        self.train.len(),
                        self.test.len(),
                    )?);
                }
                self.tuner.prepare(self.gpu, &cases)?;
            }
            let (data, indices, metrics) = match mode {
                Mode::Train => (&self.train, &self.train_indices, &self.train_metrics),
                Mode::Eval | Mode::Predict => (&self.test, &self.test_indices, &self.eval_metrics),
            };
            let gp = GpuProgram::with_tuning(
                self.gpu,
                &self.state,
                prog,
                data,
                indices,
                metrics,
                self.tuner.table(),
            )?;
            self.programs.insert((mode, batch), gp);
        }
        Ok(&self.programs[&(mode, batch)])
    }

    /// Bytes of the buffers this backend has allocated so far, counted as
    /// [`planned_memory`] counts them (uniforms and kernel scratch aside):
    /// what the plan is checked against.
    pub fn allocated_bytes(&self) -> u64 {
        let st = &self.state;
        let own = [
            &st.params,
            &st.grads,
            &st.m,
            &st.v,
            &st.state,
            &self.train_indices,
            &self.test_indices,
            &self.train_metrics,
            &self.eval_metrics,
        ];
        let dataset = |d: &GpuDataset| -> u64 {
            let (h, w, c) = d.hwc();
            let image_words = (h * w * c).div_ceil(4);
            let per_chunk = d.images_per_chunk();
            (0..d.chunks())
                .map(|k| {
                    let n = per_chunk.min(d.len() - k * per_chunk);
                    padded((n * image_words * 4) as u64)
                })
                .sum::<u64>()
                + padded((d.len() * 4) as u64)
        };
        own.iter().map(|b| b.size()).sum::<u64>()
            + dataset(&self.train)
            + dataset(&self.test)
            + self
                .programs
                .values()
                .map(|p| program_bytes(&p.plan))
                .sum::<u64>()
    }

    fn submit(&self, mode: Mode, batch: usize) -> Result<wgpu::SubmissionIndex, GraphError> {
        let prog = &self.programs[&(mode, batch)];
        let mut enc = self.gpu.encoder("step");
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            prog.record(&mut pass);
        }
        Ok(self.gpu.submit("training step", enc)?)
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

    fn prepare(&mut self, batch: usize) -> Result<(), GraphError> {
        self.program(Mode::Train, batch)?;
        Ok(())
    }

    fn train_step(&mut self, start: usize, len: usize) -> Result<(), GraphError> {
        self.program(Mode::Train, len)?;
        self.step += 1;
        self.state.set_step(self.gpu, start, self.seed, self.step);
        self.state.set_adam(self.gpu, self.step, &self.adam);
        let index = self.submit(Mode::Train, len)?;
        // On a GPU, at most one step queued behind the running one: the next
        // step's recording overlaps this one's run, and the queue stays
        // short. On a CPU adapter recording competes for the cores its
        // threads run the step on, and a preempted thread holds up every
        // dispatch's end: there each step runs before the next is recorded
        // (lavapipe, CNN: 83 ms a step in `train` recording ahead unbounded,
        // 78–83 with one step ahead, 75–76 this way, `profile` 73; the MLP
        // the same within noise).
        if self.gpu.is_software() {
            self.gpu.wait_for(index)?;
        } else if let Some(previous) = self.in_flight.replace(index) {
            self.gpu.wait_for(previous)?;
        }
        Ok(())
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
            let len = self.eval_batch.min(n - start);
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
            let len = self.eval_batch.min(n - start);
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
