//! The GPU backend: builds every dispatch of a program once (buffers planned,
//! bind groups made, uniforms allocated), then records a whole step into one
//! compute pass. Per step the host writes only two small uniforms (batch
//! offset and RNG step; Adam's bias-corrected rate).

use super::ops::PoolKind;
use super::params::ParamLayout;
use super::plan::Plan;
use super::program::{Home, Inst, Program, TensorId};
use crate::gpu::{Dispatch, Gpu, Result, View};
use crate::kernels::adam::{self, AdamConfig};
use crate::kernels::batchnorm::{self, BnBuffers};
use crate::kernels::conv::{Conv2dGeom, ConvPass};
use crate::kernels::gather::{self, GpuDataset};
use crate::kernels::step::StepUniform;
use crate::kernels::{add, concat, conv, dropout, elementwise, gemm, pool, softmax_xent};
use crate::tune::TuneTable;

/// The model's parameters, optimizer state and per-step uniforms on the GPU.
pub struct GpuState {
    /// Where each parameter and state array lives in the packed buffers.
    pub layout: ParamLayout,
    /// Trainable parameters, packed f32 (`ParamLayout` offsets).
    pub params: wgpu::Buffer,
    /// Their gradients, same layout.
    pub grads: wgpu::Buffer,
    /// Adam's first moments, same layout.
    pub m: wgpu::Buffer,
    /// Adam's second moments, same layout.
    pub v: wgpu::Buffer,
    /// Non-trainable state (moving statistics), packed f32.
    pub state: wgpu::Buffer,
    /// The per-step `StepUniform` (batch offset, dropout seed and step).
    pub step_uniform: wgpu::Buffer,
    /// Adam's uniform.
    pub adam_uniform: wgpu::Buffer,
}

impl GpuState {
    /// Uploads the parameters and state (lengths `layout.trainable_len` and
    /// `layout.state_len`); gradients and Adam moments start zeroed.
    pub fn new(gpu: &Gpu, layout: &ParamLayout, trainable: &[f32], state: &[f32]) -> Result<Self> {
        let t = layout.trainable_len;
        Ok(GpuState {
            layout: layout.clone(),
            params: gpu.upload_storage("parameters", trainable)?,
            grads: gpu.storage("gradients", (t * 4) as u64)?,
            m: gpu.storage("adam m", (t * 4) as u64)?,
            v: gpu.storage("adam v", (t * 4) as u64)?,
            state: gpu.upload_storage("moving statistics", state)?,
            step_uniform: gpu.uniform("step", &StepUniform::default())?,
            adam_uniform: gpu.uniform("adam", &AdamConfig::default().uniform(1, t))?,
        })
    }

    /// Writes the per-step uniform (batch offset, dropout seed and step),
    /// ordered before the next submit.
    pub fn set_step(&self, gpu: &Gpu, batch_base: usize, seed: u64, step: u64) {
        gpu.write(
            &self.step_uniform,
            &[StepUniform::new(batch_base as u32, seed, step as u32)],
        );
    }

    /// Writes Adam's uniform for step `t` (from 1): only training steps need it.
    pub fn set_adam(&self, gpu: &Gpu, t: u64, adam: &AdamConfig) {
        gpu.write(
            &self.adam_uniform,
            &[adam.uniform(t, self.layout.trainable_len)],
        );
    }

    /// Parameters, moving statistics and Adam's m and v, in one readback.
    pub fn read_all(&self, gpu: &Gpu) -> Result<[Vec<f32>; 4]> {
        let (t, s) = (self.layout.trainable_len, self.layout.state_len);
        let parts = [
            (&self.params, t),
            (&self.state, s),
            (&self.m, t),
            (&self.v, t),
        ];
        Ok(gpu
            .read_many(&parts)?
            .try_into()
            .expect("one result per part"))
    }

    /// Overwrites the parameters and state, ordered before the next submit.
    pub fn write(&self, gpu: &Gpu, trainable: &[f32], state: &[f32]) {
        gpu.write(&self.params, trainable);
        gpu.write(&self.state, state);
    }

    /// Overwrites Adam's moments, ordered before the next submit.
    pub fn write_adam(&self, gpu: &Gpu, m: &[f32], v: &[f32]) {
        gpu.write(&self.m, m);
        gpu.write(&self.v, v);
    }
}

/// A program ready to record: its buffers and dispatches.
pub struct GpuProgram {
    /// The program.
    pub program: Program,
    /// Its buffer plan (which slot each temporary uses).
    pub plan: Plan,
    slots: Vec<wgpu::Buffer>,
    dispatches: Vec<Dispatch>,
    /// dispatches[inst_end[i - 1]..inst_end[i]] belong to instruction i.
    inst_end: Vec<usize>,
}

fn padded(len: usize) -> u64 {
    ((len * 4).max(16) as u64).div_ceil(16) * 16
}

impl GpuProgram {
    /// `metrics` is the running [loss_sum, correct, examples, 0] buffer this
    /// program adds to; `indices` the order in which `dataset` is read.
    /// Every kernel runs its built-in configuration.
    pub fn new(
        gpu: &Gpu,
        st: &GpuState,
        program: Program,
        dataset: &GpuDataset,
        indices: &wgpu::Buffer,
        metrics: &wgpu::Buffer,
    ) -> Result<Self> {
        let builtin = TuneTable::default();
        Self::with_tuning(gpu, st, program, dataset, indices, metrics, &builtin)
    }

    /// [`GpuProgram::new`], each GEMM in the configuration and each
    /// convolution pass in the method `tune` holds for it.
    pub fn with_tuning(
        gpu: &Gpu,
        st: &GpuState,
        program: Program,
        dataset: &GpuDataset,
        indices: &wgpu::Buffer,
        metrics: &wgpu::Buffer,
        tune: &TuneTable,
    ) -> Result<Self> {
        let plan = Plan::new(&program);
        let slots = plan
            .slot_bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| gpu.storage(&format!("slot {i}"), b))
            .collect::<Result<Vec<_>>>()?;
        let mut dispatches = Vec::new();
        // Which convolutions built their im2col matrix in the forward pass,
        // for their weight gradients to reuse (or else build).
        let mut cols_built: std::collections::HashSet<Conv2dGeom> = Default::default();
        let mut inst_end = Vec::with_capacity(program.insts.len());
        {
            let v = |t: TensorId| -> View<'_> {
                let info = &program.tensors[t];
                let size = padded(info.len);
                match info.home {
                    Home::Param(o) => View::new(&st.params, (o * 4) as u64, size),
                    Home::Grad(o) => View::new(&st.grads, (o * 4) as u64, size),
                    Home::State(o) => View::new(&st.state, (o * 4) as u64, size),
                    Home::Metrics => View::from(metrics),
                    Home::Temp => View::new(&slots[plan.slot_of[t].expect("planned")], 0, size),
                }
            };
            let bn_views = |bn: &super::program::BnTensors| BnBuffers {
                gamma: v(bn.gamma),
                beta: v(bn.beta),
                moving_mean: v(bn.moving_mean),
                moving_var: v(bn.moving_var),
                save_mean: v(bn.save_mean),
                save_inv_std: v(bn.save_inv_std),
            };
            for inst in &program.insts {
                match *inst {
                    Inst::Gather { x, labels } => dispatches.push(gather::gather(
                        gpu,
                        dataset,
                        program.batch,
                        indices,
                        &st.step_uniform,
                        v(x),
                        v(labels),
                    )?),
                    Inst::Gemm {
                        shape,
                        a,
                        b,
                        bias,
                        c,
                        epilogue,
                        accumulate,
                        db,
                    } => {
                        let config = tune.gemm(gpu, shape, bias.is_some(), accumulate);
                        dispatches.extend(match db {
                            Some(db) => {
                                gemm::gemm_bias_grad(gpu, config, shape, [v(a), v(b), v(c), v(db)])?
                            }
                            None => gemm::gemm_config(
                                gpu,
                                config,
                                shape,
                                v(a),
                                v(b),
                                bias.map(v),
                                v(c),
                                epilogue,
                                accumulate,
                            )?,
                        });
                    }
                    Inst::ConvForward {
                        geom,
                        x,
                        cols,
                        w,
                        bias,
                        y,
                        epilogue,
                    } => dispatches.extend(conv::forward(
                        gpu,
                        &geom,
                        {
                            let how = tune.conv(gpu, &geom, ConvPass::Forward);
                            if how.0.leaves_cols() {
                                cols_built.insert(geom);
                            }
                            how
                        },
                        v(x),
                        v(cols),
                        v(w),
                        bias.map(v),
                        v(y),
                        epilogue,
                    )?),
                    Inst::ConvWeightGrad {
                        geom,
                        x,
                        cols,
                        dy,
                        dw,
                        db,
                    } => {
                        dispatches.extend(conv::weight_grad(
                            gpu,
                            &geom,
                            tune.conv(gpu, &geom, ConvPass::WeightGrad),
                            cols_built.contains(&geom),
                            v(x),
                            v(cols),
                            v(dy),
                            v(dw),
                            db.map(v),
                        )?);
                    }
                    Inst::ConvInputGrad {
                        geom,
                        dy,
                        w,
                        dcols,
                        dx,
                    } => dispatches.extend(conv::input_grad(
                        gpu,
                        &geom,
                        tune.conv(gpu, &geom, ConvPass::InputGrad),
                        v(dy),
                        v(w),
                        v(dcols),
                        v(dx),
                    )?),
                    Inst::BnTrain {
                        shape,
                        x,
                        y,
                        post,
                        bn,
                        momentum,
                        eps,
                    } => {
                        let p = bn_views(&bn);
                        dispatches.extend(batchnorm::forward_train(
                            gpu,
                            shape,
                            v(x),
                            v(y),
                            &p,
                            (momentum, eps),
                            post,
                            &st.step_uniform,
                        )?)
                    }
                    Inst::BnInfer {
                        shape,
                        x,
                        y,
                        act,
                        bn,
                        eps,
                    } => {
                        let p = bn_views(&bn);
                        dispatches.extend(batchnorm::forward_infer(
                            gpu,
                            shape,
                            v(x),
                            v(y),
                            &p,
                            eps,
                            act,
                        )?)
                    }
                    Inst::BnBackward {
                        shape,
                        x,
                        dy,
                        post,
                        bn,
                        dx,
                        dgamma,
                        dbeta,
                    } => {
                        let p = bn_views(&bn);
                        dispatches.extend(batchnorm::backward(
                            gpu,
                            shape,
                            v(x),
                            v(dy),
                            &p,
                            (v(dx), v(dgamma), v(dbeta)),
                            post,
                            &st.step_uniform,
                        )?)
                    }
                    Inst::Act { n, kind, x, y } => {
                        dispatches.push(elementwise::forward(gpu, kind, v(x), v(y), n)?)
                    }
                    Inst::ActBackward { n, kind, x, dy, dx } => {
                        dispatches.push(elementwise::backward(gpu, kind, v(x), v(dy), v(dx), n)?)
                    }
                    Inst::Dropout {
                        n,
                        rate,
                        stream,
                        x,
                        y,
                    } => dispatches.push(dropout::forward(
                        gpu,
                        n,
                        rate,
                        stream,
                        &st.step_uniform,
                        v(x),
                        v(y),
                    )?),
                    Inst::DropoutBackward {
                        n,
                        rate,
                        stream,
                        dy,
                        dx,
                    } => dispatches.push(dropout::backward(
                        gpu,
                        n,
                        rate,
                        stream,
                        &st.step_uniform,
                        v(dy),
                        v(dx),
                    )?),
                    Inst::Pool { geom, kind, x, y } => dispatches.push(match kind {
                        PoolKind::Max => pool::max_forward(gpu, &geom, v(x), v(y))?,
                        PoolKind::Average => pool::avg_forward(gpu, &geom, v(x), v(y))?,
                    }),
                    Inst::PoolBackward {
                        geom,
                        kind,
                        x,
                        dy,
                        dx,
                    } => dispatches.push(match kind {
                        PoolKind::Max => pool::max_backward(gpu, &geom, v(x), v(dy), v(dx))?,
                        PoolKind::Average => pool::avg_backward(gpu, &geom, v(dy), v(dx))?,
                    }),
                    Inst::Add { n, a, b, c } => {
                        dispatches.push(add::add(gpu, n, v(a), v(b), v(c))?)
                    }
                    Inst::Accumulate { n, src, acc } => {
                        dispatches.push(add::accumulate(gpu, n, v(src), v(acc))?)
                    }
                    Inst::CopyColumns {
                        rows,
                        width,
                        src,
                        src_stride,
                        src_offset,
                        dst,
                        dst_stride,
                        dst_offset,
                    } => dispatches.push(concat::copy_columns(
                        gpu,
                        rows,
                        width,
                        v(src),
                        src_stride,
                        src_offset,
                        v(dst),
                        dst_stride,
                        dst_offset,
                    )?),
                    Inst::SoftmaxXent {
                        batch,
                        classes,
                        logits,
                        labels,
                        metrics,
                        dlogits,
                    } => dispatches.push(softmax_xent::xent_metrics(
                        gpu,
                        (batch, classes),
                        v(logits),
                        v(labels),
                        v(metrics),
                        dlogits.map(v),
                    )?),
                    Inst::Softmax {
                        batch,
                        classes,
                        logits,
                        probs,
                    } => dispatches.push(softmax_xent::softmax(
                        gpu,
                        batch,
                        classes,
                        v(logits),
                        v(probs),
                    )?),
                    Inst::Adam => dispatches.push(adam::update(
                        gpu,
                        st.layout.trainable_len,
                        &st.adam_uniform,
                        &st.params,
                        &st.grads,
                        &st.m,
                        &st.v,
                    )?),
                }
                inst_end.push(dispatches.len());
            }
        }
        Ok(GpuProgram {
            program,
            plan,
            slots,
            dispatches,
            inst_end,
        })
    }

    /// Records every dispatch into `pass`, in program order.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            d.record(pass);
        }
    }

    /// Records instructions 0..n only: with `read_any`, a tool to find the
    /// first instruction where the GPU and the CPU reference part ways.
    pub fn record_prefix(&self, pass: &mut wgpu::ComputePass<'_>, n: usize) {
        let end = if n == 0 { 0 } else { self.inst_end[n - 1] };
        for d in &self.dispatches[..end] {
            d.record(pass);
        }
    }

    /// The dispatches of instruction `i`, in recording order (a profile
    /// records and times them one instruction at a time).
    pub fn inst_dispatches(&self, i: usize) -> &[Dispatch] {
        let start = if i == 0 { 0 } else { self.inst_end[i - 1] };
        &self.dispatches[start..self.inst_end[i]]
    }

    /// Reads any f32 tensor of the program as it is now.
    pub fn read_any(&self, gpu: &Gpu, st: &GpuState, t: TensorId) -> Result<Vec<f32>> {
        let info = &self.program.tensors[t];
        let (buf, off) = match info.home {
            Home::Param(o) => (&st.params, o),
            Home::Grad(o) => (&st.grads, o),
            Home::State(o) => (&st.state, o),
            Home::Temp => (&self.slots[self.plan.slot_of[t].expect("planned")], 0),
            Home::Metrics => return Ok(Vec::new()),
        };
        let all = gpu.read_f32(buf, off + info.len)?;
        Ok(all[off..].to_vec())
    }

    /// Reads a temporary after the last step (logits, probabilities).
    pub fn read_tensor(&self, gpu: &Gpu, t: TensorId) -> Result<Vec<f32>> {
        let slot = self.plan.slot_of[t].expect("a temporary");
        gpu.read_f32(&self.slots[slot], self.program.tensors[t].len)
    }
}
