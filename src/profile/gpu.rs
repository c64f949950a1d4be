//! Profiling a training step on a wgpu adapter.

use std::time::Instant;

use super::{assemble, variant_from_entries, Method, Profile, ProfileConfig};
use crate::bench::training::synthetic;
use crate::gpu::{Dispatch, Gpu, GpuError};
use crate::graph::gpu::{GpuProgram, GpuState};
use crate::graph::lower::lower;
use crate::graph::params::ParamLayout;
use crate::graph::program::{Inst, Mode};
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;
use crate::kernels::conv::{Conv2dGeom, ConvPass};
use crate::kernels::gather::GpuDataset;
use crate::kernels::gemm::GemmConfig;
use crate::train::ModelValues;
use crate::tune::{program_cases, ConvCase, GemmCase, Policy, TuneTable, Tuner};

/// Batches of synthetic images the steps cycle through.
const BATCHES: usize = 4;

/// The timing method this adapter allows.
pub fn method(gpu: &Gpu) -> Method {
    if gpu.caps.timestamps_inside_passes {
        Method::TimestampsInsidePasses
    } else if gpu.caps.timestamps {
        Method::PassTimestamps
    } else {
        Method::GpuWallClock
    }
}

fn recorded(d: &Dispatch) -> bool {
    d.workgroups.iter().all(|&w| w > 0)
}

/// The entry point of a dispatch's pipeline (its label is "shader::entry").
fn entry(d: &Dispatch) -> String {
    let l = &d.pipeline.label;
    l.rsplit("::").next().unwrap_or(l).to_owned()
}

struct Timer<'a> {
    gpu: &'a Gpu,
    method: Method,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer, u32)>,
}

impl<'a> Timer<'a> {
    fn new(gpu: &'a Gpu, method: Method, n: usize) -> Result<Self, GraphError> {
        let count = match method {
            Method::TimestampsInsidePasses => n + 1,
            Method::PassTimestamps => 2 * n,
            _ => 0,
        };
        if count as u32 > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(GraphError::Invalid {
                layer: "(profile)".into(),
                message: format!(
                    "{n} instructions need {count} timestamp queries, more than one query set holds ({})",
                    wgpu::QUERY_SET_MAX_QUERIES
                ),
            });
        }
        let queries = if count > 0 {
            let qs = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: count as u32,
            });
            let buf = gpu.buffer(
                "profile timestamps",
                8 * count as u64,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            )?;
            Some((qs, buf, count as u32))
        } else {
            None
        };
        Ok(Timer {
            gpu,
            method,
            queries,
        })
    }

    /// Seconds of each instruction of one step (its uniforms already written).
    fn step(&self, gp: &GpuProgram) -> Result<Vec<f64>, GpuError> {
        let gpu = self.gpu;
        let n = gp.program.insts.len();
        let period = gpu.queue.get_timestamp_period() as f64 * 1e-9;
        match (self.method, &self.queries) {
            (Method::TimestampsInsidePasses, Some((qs, buf, count))) => {
                let mut enc = gpu.encoder("profiled step");
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("profiled step"),
                        timestamp_writes: None,
                    });
                    pass.write_timestamp(qs, 0);
                    for i in 0..n {
                        for d in gp.inst_dispatches(i) {
                            d.record(&mut pass);
                        }
                        pass.write_timestamp(qs, i as u32 + 1);
                    }
                }
                enc.resolve_query_set(qs, 0..*count, buf, 0);
                gpu.submit("profiled step", enc)?;
                let t: Vec<u64> = gpu.read(buf, *count as usize)?;
                Ok(t.windows(2)
                    .map(|w| w[1].saturating_sub(w[0]) as f64 * period)
                    .collect())
            }
            (Method::PassTimestamps, Some((qs, buf, count))) => {
                let mut enc = gpu.encoder("profiled step");
                for i in 0..n {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("profiled instruction"),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: qs,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    for d in gp.inst_dispatches(i) {
                        d.record(&mut pass);
                    }
                }
                enc.resolve_query_set(qs, 0..*count, buf, 0);
                gpu.submit("profiled step", enc)?;
                let t: Vec<u64> = gpu.read(buf, *count as usize)?;
                Ok(t.chunks_exact(2)
                    .map(|p| p[1].saturating_sub(p[0]) as f64 * period)
                    .collect())
            }
            _ => {
                // The uniform writes go with an empty submit first, so the
                // first instruction's time is its own.
                gpu.queue.submit(std::iter::empty());
                gpu.wait()?;
                (0..n)
                    .map(|i| {
                        let t = Instant::now();
                        let d: Vec<&Dispatch> = gp.inst_dispatches(i).iter().collect();
                        gpu.run("profiled instruction", &d)?;
                        Ok(t.elapsed().as_secs_f64())
                    })
                    .collect()
            }
        }
    }

    /// Submits of one timed step (the timestamp readback aside).
    fn submits(&self, n: usize) -> usize {
        match self.method {
            Method::GpuWallClock => n + 1,
            _ => 1,
        }
    }
}

/// Profiles `cfg.steps` training steps of `graph` on `gpu`, every kernel in
/// its built-in configuration.
pub fn profile(gpu: &Gpu, graph: &Graph, cfg: &ProfileConfig) -> Result<Profile, GraphError> {
    profile_tuned(gpu, graph, cfg, Policy::BuiltIn)
}

/// [`profile`] with kernel configurations by `tune`; a GEMM row's variant
/// names the configuration that ran (`GemmConfig::label`), marked
/// "(tuned)" where the tuner chose it.
pub fn profile_tuned(
    gpu: &Gpu,
    graph: &Graph,
    cfg: &ProfileConfig,
    tune: Policy,
) -> Result<Profile, GraphError> {
    let [h, w, c] = *graph.input_shape() else {
        return Err(GraphError::Invalid {
            layer: graph.nodes[0].name.clone(),
            message: "input must be [height, width, channels]".into(),
        });
    };
    let batch = cfg.batch;
    let data = synthetic(BATCHES * batch, 1);
    let layout = ParamLayout::new(graph);
    let init = ModelValues::initial(&layout, 0);
    let st = GpuState::new(gpu, &layout, &init.trainable, &init.state)?;
    let dataset = GpuDataset::upload(gpu, &data.pixels, &data.labels, h, w, c)?;
    let order: Vec<u32> = (0..data.len as u32).collect();
    let indices = gpu.upload_storage("profile order", &order)?;
    let metrics = gpu.storage("profile metrics", 16)?;
    let program = lower(graph, &layout, batch, Mode::Train)?;
    crate::train::gpu::fits(gpu, &program)?;
    let mut tuner = Tuner::new(gpu, tune);
    let table = tuner.prepare(gpu, &program_cases(&program))?;
    let gp = GpuProgram::with_tuning(gpu, &st, program, &dataset, &indices, &metrics, table)?;
    let n = gp.program.insts.len();
    let method = method(gpu);
    let timer = Timer::new(gpu, method, n)?;
    let adam = AdamConfig::default();

    let begin = |step: u64| {
        st.set_step(gpu, (step as usize % BATCHES) * batch, 0, step);
        st.set_adam(gpu, step, &adam);
    };
    // A plain step as training records it: one pass, one submit, waited for.
    let plain = |step: u64| -> Result<f64, GpuError> {
        let t = Instant::now();
        begin(step);
        let mut enc = gpu.encoder("step");
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            gp.record(&mut pass);
        }
        gpu.submit("training step", enc)?;
        gpu.wait()?;
        Ok(t.elapsed().as_secs_f64())
    };

    let mut step = 0u64;
    for _ in 0..cfg.warmup {
        plain(step + 1)?;
        begin(step + 2);
        timer.step(&gp)?;
        step += 2;
    }
    let mut samples = vec![Vec::with_capacity(cfg.steps); n];
    let mut walls = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        walls.push(plain(step + 1)?);
        begin(step + 2);
        for (i, s) in timer.step(&gp)?.into_iter().enumerate() {
            samples[i].push(s);
        }
        step += 2;
    }
    gpu.check()?;

    let variants = (0..n)
        .map(|i| {
            let ds: Vec<&Dispatch> = gp
                .inst_dispatches(i)
                .iter()
                .filter(|d| recorded(d))
                .collect();
            let entries: Vec<String> = ds.iter().map(|d| entry(d)).collect();
            let variant = match gp.program.insts[i] {
                Inst::Gemm {
                    shape,
                    bias,
                    accumulate,
                    ..
                } => {
                    let case = GemmCase::new(shape, bias.is_some(), accumulate);
                    match table.tuned_gemm(case) {
                        Some(c) => format!("{} (tuned)", c.label()),
                        None => GemmConfig::default_for(gpu, shape).label(),
                    }
                }
                Inst::ConvForward { geom, .. } => {
                    conv_variant(table, geom, ConvPass::Forward, &entries)
                }
                Inst::ConvWeightGrad { geom, .. } => {
                    conv_variant(table, geom, ConvPass::WeightGrad, &entries)
                }
                Inst::ConvInputGrad { geom, .. } => {
                    conv_variant(table, geom, ConvPass::InputGrad, &entries)
                }
                _ => variant_from_entries(&entries),
            };
            (variant, entries, Some(ds.len()))
        })
        .collect();
    Ok(assemble(
        graph,
        &gp.program,
        layout.trainable_len,
        &samples,
        variants,
        &walls,
        (Some(1), Some(timer.submits(n))),
        format!("GPU: {}", gpu.name()),
        method,
        cfg,
    ))
}

/// A convolution pass's kernels, with "(tuned)" where the cache chose its
/// method.
fn conv_variant(table: &TuneTable, geom: Conv2dGeom, pass: ConvPass, entries: &[String]) -> String {
    let v = variant_from_entries(entries);
    match table.tuned_conv(ConvCase { geom, pass }) {
        Some(m) => format!("{v} ({} tuned)", m.label()),
        None => v,
    }
}
