//! `gdl-gpu profile`: the time of every instruction of one training step,
//! on synthetic CIFAR-shaped data, with the layer and phase each belongs to
//! (recorded at lowering time, `Program::origin`), the kernel variant that
//! ran, and its rate (GFLOP/s for GEMMs, GB/s of the tensors it reads and
//! writes otherwise).
//!
//! On the GPU, instructions are timed with timestamp queries between
//! dispatches where the adapter has them (`TIMESTAMP_QUERY_INSIDE_PASSES`),
//! else with one compute pass per instruction and pass timestamps, else by
//! wall clock around a submit and wait per instruction. On the CPU backend,
//! by wall clock around each instruction of the interpreter
//! (`graph::cpu::run_observed`). Either way the step's own wall time is
//! measured on plain steps, recorded as training records them, interleaved
//! with the timed ones: its difference from the sum of the instruction
//! times is overhead (submit, synchronisation, barriers, host work).

#![warn(missing_docs)]

pub mod cpu;
pub mod gpu;
mod table;

use crate::graph::fuse::Fused;
use crate::graph::origin::Phase;
use crate::graph::program::{DType, Inst, Program};
use crate::graph::Graph;

pub use table::render_text;

/// Warm-up steps before any step is timed: the first builds lazily
/// compiled state, the next settle caches.
pub const WARMUP_STEPS: usize = 2;

/// What to profile: the batch size and how many steps.
#[derive(Clone, Copy, Debug)]
pub struct ProfileConfig {
    /// Examples per step.
    pub batch: usize,
    /// Timed steps: each instruction's time is its median over these.
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            batch: 32,
            steps: 20,
            warmup: WARMUP_STEPS,
        }
    }
}

/// How instruction times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GPU timestamps written between the dispatches of one compute pass.
    TimestampsInsidePasses,
    /// One compute pass per instruction, timed by its pass timestamps.
    PassTimestamps,
    /// No timestamps on this adapter: a submit and wait per instruction,
    /// timed on the host (includes each submit's own cost).
    GpuWallClock,
    /// The CPU backend: host wall clock around each instruction.
    CpuWallClock,
}

impl Method {
    /// Its name in the JSON (`timing.method`).
    pub fn name(self) -> &'static str {
        match self {
            Method::TimestampsInsidePasses => "timestamps-inside-passes",
            Method::PassTimestamps => "pass-timestamps",
            Method::GpuWallClock => "gpu-wall-clock",
            Method::CpuWallClock => "cpu-wall-clock",
        }
    }

    /// One line for the text output.
    pub fn describe(self) -> &'static str {
        match self {
            Method::TimestampsInsidePasses => {
                "GPU timestamps between dispatches, the whole step in one compute pass"
            }
            Method::PassTimestamps => {
                "GPU timestamps of one compute pass per instruction (no timestamps inside passes on this adapter)"
            }
            Method::GpuWallClock => {
                "wall clock per instruction, a submit and wait each: this adapter has no timestamp queries, so each time includes a submit's overhead"
            }
            Method::CpuWallClock => "wall clock around each instruction of the CPU interpreter",
        }
    }
}

/// One instruction of the step.
#[derive(Clone, Debug)]
pub struct Row {
    /// The instruction's position in the program.
    pub index: usize,
    /// The layer whose rule emitted it ("(all parameters)" for Adam).
    pub layer: String,
    /// Forward, loss, backward or optimizer.
    pub phase: Phase,
    /// The kernel ("gemm", "im2col", …) and the variant that ran
    /// ("subgroup", "vec4", …; on the CPU backend, the reference).
    pub kernel: String,
    /// See `kernel`.
    pub variant: String,
    /// The entry points of its dispatches, in order (GPU only).
    pub entries: Vec<String>,
    /// M×N×K for a GEMM, NHWC and window for convolution copies and
    /// pooling, the element count for elementwise kernels.
    pub shape: String,
    /// Dispatches recorded per step (GPU; none on the CPU backend).
    pub dispatches: Option<usize>,
    /// Median microseconds over the timed steps.
    pub median_us: f64,
    /// Percent of the sum of all instruction times.
    pub share: f64,
    /// Floating-point operations, for GEMMs (2·M·N·K).
    pub flops: Option<f64>,
    /// Bytes of the tensors it reads and writes, each counted once.
    pub bytes: u64,
}

impl Row {
    /// GFLOP/s, for GEMMs.
    pub fn gflops(&self) -> Option<f64> {
        self.flops
            .filter(|_| self.median_us > 0.0)
            .map(|f| f / (self.median_us * 1e3))
    }

    /// GB/s of `bytes`.
    pub fn gbps(&self) -> Option<f64> {
        (self.median_us > 0.0).then(|| self.bytes as f64 / (self.median_us * 1e3))
    }

    /// "gemm subgroup", "im2col vec4", "act".
    pub fn kernel_variant(&self) -> String {
        if self.variant.is_empty() {
            self.kernel.clone()
        } else {
            format!("{} {}", self.kernel, self.variant)
        }
    }
}

/// A step's totals.
#[derive(Clone, Debug)]
pub struct Totals {
    /// Instructions per step (rows).
    pub instructions: usize,
    /// Dispatches of one training step (GPU).
    pub dispatches: Option<usize>,
    /// Submits of one training step as `train` records it (GPU: one).
    pub submits: Option<usize>,
    /// Submits of one timed step of this profile (GPU).
    pub profiled_submits: Option<usize>,
    /// Sum of the rows' bytes.
    pub bytes: u64,
    /// Sum of the GEMMs' floating-point operations.
    pub flops: f64,
    /// Median wall time of a plain step.
    pub step_wall_us: f64,
    /// Sum of the instructions' median times.
    pub instructions_us: f64,
    /// `step_wall_us - instructions_us`.
    pub overhead_us: f64,
}

/// A profiled step: one row per instruction and the totals.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The model's name.
    pub model: String,
    /// "GPU: llvmpipe … \[Vulkan\]" or "CPU reference".
    pub backend: String,
    /// Examples per step.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// Warm-up steps before them.
    pub warmup: usize,
    /// How instructions were timed.
    pub method: Method,
    /// One per instruction, in program order.
    pub rows: Vec<Row>,
    /// Layers that lower to no instruction (Flatten, Reshape: a view of
    /// their input).
    pub silent_layers: Vec<String>,
    /// Layers applied inside another layer's kernel (`graph::fuse`), as
    /// "name (in head)".
    pub fused_layers: Vec<String>,
    /// Per step.
    pub totals: Totals,
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Rows and totals from per-instruction samples (`samples[i]`: seconds of
/// instruction i in each timed step) and plain steps' wall times.
/// `variants[i]` is (variant, entry points, dispatches) as the backend ran it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    graph: &Graph,
    program: &Program,
    trainable_len: usize,
    samples: &[Vec<f64>],
    variants: Vec<(String, Vec<String>, Option<usize>)>,
    step_walls: &[f64],
    submits: (Option<usize>, Option<usize>),
    backend: String,
    method: Method,
    cfg: &ProfileConfig,
) -> Profile {
    let medians: Vec<f64> = samples.iter().map(|s| median(s) * 1e6).collect();
    let sum: f64 = medians.iter().sum();
    let rows: Vec<Row> = program
        .insts
        .iter()
        .zip(variants)
        .enumerate()
        .map(|(i, (inst, (variant, entries, dispatches)))| {
            let origin = program.origin[i];
            let (bytes, flops) = traffic(program, inst, trainable_len);
            Row {
                index: i,
                layer: match origin.node {
                    Some(n) => graph.nodes[n].name.clone(),
                    None => "(all parameters)".into(),
                },
                phase: origin.phase,
                kernel: kernel_name(inst).into(),
                variant,
                entries,
                shape: shape(program, inst, trainable_len),
                dispatches,
                median_us: medians[i],
                share: if sum > 0.0 {
                    100.0 * medians[i] / sum
                } else {
                    0.0
                },
                flops,
                bytes,
            }
        })
        .collect();
    let step_wall_us = median(step_walls) * 1e6;
    let totals = Totals {
        instructions: rows.len(),
        dispatches: rows.iter().map(|r| r.dispatches).sum::<Option<usize>>(),
        submits: submits.0,
        profiled_submits: submits.1,
        bytes: rows.iter().map(|r| r.bytes).sum(),
        flops: rows.iter().filter_map(|r| r.flops).sum(),
        step_wall_us,
        instructions_us: sum,
        overhead_us: step_wall_us - sum,
    };
    let fusion = crate::graph::fuse::plan(graph);
    let silent_layers = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(id, _)| !matches!(fusion[*id], Fused::Absorbed(_)))
        .filter(|(id, _)| !program.origin.iter().any(|o| o.node == Some(*id)))
        .map(|(_, n)| n.name.clone())
        .collect();
    let fused_layers = fusion
        .iter()
        .enumerate()
        .filter_map(|(id, f)| match f {
            Fused::Absorbed(head) => Some(format!(
                "{} (in {})",
                graph.nodes[id].name, graph.nodes[*head].name
            )),
            _ => None,
        })
        .collect();
    Profile {
        model: graph.name.clone(),
        backend,
        batch: program.batch,
        steps: cfg.steps,
        warmup: cfg.warmup,
        method,
        rows,
        silent_layers,
        fused_layers,
        totals,
    }
}

/// The instruction's kernel, as the rows name it.
pub fn kernel_name(inst: &Inst) -> &'static str {
    match inst {
        Inst::Gather { .. } => "gather",
        Inst::Gemm { .. } => "gemm",
        Inst::ConvForward { .. } => "conv forward",
        Inst::ConvWeightGrad { .. } => "conv weight grad",
        Inst::ConvInputGrad { .. } => "conv input grad",
        Inst::BnTrain { .. } => "batchnorm train",
        Inst::BnInfer { .. } => "batchnorm infer",
        Inst::BnBackward { .. } => "batchnorm backward",
        Inst::Act { .. } => "act",
        Inst::ActBackward { .. } => "act backward",
        Inst::Dropout { .. } => "dropout",
        Inst::DropoutBackward { .. } => "dropout backward",
        Inst::Pool { .. } => "pool",
        Inst::PoolBackward { .. } => "pool backward",
        Inst::Add { .. } => "add",
        Inst::Accumulate { .. } => "accumulate",
        Inst::CopyColumns { .. } => "copy columns",
        Inst::SoftmaxXent { .. } => "softmax xent + metrics",
        Inst::Softmax { .. } => "softmax",
        Inst::Adam => "adam",
    }
}

/// The variant a GPU instruction ran, from its dispatches' entry points:
/// the GEMM's kernel (`tiled`, `regblock`, `subgroup`, with `pack` where
/// an operand was repacked first and `im2col` where a convolution built its
/// im2col matrix rather than reading its input in place), and `vec4`, `quads` or `scalar` where a
/// kernel has such variants.
pub fn variant_from_entries(entries: &[String]) -> String {
    let mut tags: Vec<&str> = Vec::new();
    for e in entries {
        let tag = if let Some(g) = e.strip_prefix("gemm_") {
            Some(g)
        } else if e.starts_with("im2col") {
            // A convolution that built its im2col matrix (not implicit).
            Some("im2col")
        } else {
            ["vec4", "quads", "scalar"]
                .into_iter()
                .find(|s| e.ends_with(&format!("_{s}")))
        };
        if let Some(t) = tag {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    // The GEMM kernel first, its pre-passes after: "subgroup+pack".
    tags.sort_by_key(|t| matches!(*t, "pack" | "im2col"));
    tags.join("+")
}

/// 2·pixels·out_c·(kh·kw·in_c): the convolution's GEMM, an FMA counted as two.
fn conv_flops(g: &crate::kernels::conv::Conv2dGeom) -> f64 {
    2.0 * g.col_rows() as f64 * g.out_c as f64 * g.col_cols() as f64
}

fn bytes_of(p: &Program, t: usize) -> u64 {
    let info = &p.tensors[t];
    let width = match info.dtype {
        DType::F32 | DType::U32 => 4,
    };
    (info.len * width) as u64
}

/// Bytes of the tensors `inst` reads and writes (each counted once, a
/// tensor both read and written twice), and its floating-point operations
/// where it is a GEMM.
pub fn traffic(p: &Program, inst: &Inst, trainable_len: usize) -> (u64, Option<f64>) {
    let b = |t: usize| bytes_of(p, t);
    let f32s = |n: usize| (n * 4) as u64;
    match *inst {
        // u8 pixels, labels and the example order read; f32 images and
        // labels written.
        Inst::Gather { x, labels } => {
            let n = p.tensors[x].len as u64;
            (n + 2 * b(labels) + n * 4 + b(labels), None)
        }
        Inst::Gemm {
            shape,
            bias,
            accumulate,
            db,
            ..
        } => {
            let (m, n, k) = (shape.m, shape.n, shape.k);
            let mut bytes = f32s(m * k + k * n + m * n);
            if db.is_some() {
                bytes += f32s(n);
            }
            if accumulate {
                bytes += f32s(m * n);
            }
            if bias.is_some() {
                bytes += f32s(n);
            }
            (bytes, Some(shape.flops()))
        }
        Inst::ConvForward {
            geom: g, x, bias, ..
        } => (
            b(x) + f32s(g.weight_len() + g.output_len() + bias.map_or(0, |_| g.out_c)),
            Some(conv_flops(&g)),
        ),
        Inst::ConvWeightGrad { geom: g, x, db, .. } => (
            b(x) + f32s(g.output_len() + g.weight_len() + db.map_or(0, |_| g.out_c)),
            Some(conv_flops(&g)),
        ),
        Inst::ConvInputGrad { geom: g, dx, .. } => (
            f32s(g.output_len() + g.weight_len()) + b(dx),
            Some(conv_flops(&g)),
        ),
        Inst::BnTrain { x, y, bn, .. } => (
            b(x) + b(y)
                + b(bn.gamma)
                + b(bn.beta)
                + 2 * (b(bn.moving_mean) + b(bn.moving_var))
                + b(bn.save_mean)
                + b(bn.save_inv_std),
            None,
        ),
        Inst::BnInfer { x, y, bn, .. } => (
            b(x) + b(y) + b(bn.gamma) + b(bn.beta) + b(bn.moving_mean) + b(bn.moving_var),
            None,
        ),
        Inst::BnBackward {
            x,
            dy,
            bn,
            dx,
            dgamma,
            dbeta,
            ..
        } => (
            b(x) + b(dy)
                + b(bn.gamma)
                + b(bn.beta)
                + b(bn.save_mean)
                + b(bn.save_inv_std)
                + b(dx)
                + b(dgamma)
                + b(dbeta),
            None,
        ),
        Inst::Act { n, .. } => (f32s(2 * n), None),
        Inst::ActBackward { n, .. } => (f32s(3 * n), None),
        Inst::Dropout { n, .. } | Inst::DropoutBackward { n, .. } => (f32s(2 * n), None),
        Inst::Pool { x, y, .. } => (b(x) + b(y), None),
        Inst::PoolBackward {
            kind, x, dy, dx, ..
        } => {
            let fwd = match kind {
                crate::graph::ops::PoolKind::Max => b(x),
                crate::graph::ops::PoolKind::Average => 0,
            };
            (fwd + b(dy) + b(dx), None)
        }
        Inst::Add { n, .. } | Inst::Accumulate { n, .. } => (f32s(3 * n), None),
        Inst::CopyColumns { rows, width, .. } => (f32s(2 * rows * width), None),
        // The four metric words read and written.
        Inst::SoftmaxXent {
            logits,
            labels,
            dlogits,
            ..
        } => (b(logits) + b(labels) + dlogits.map_or(0, b) + 32, None),
        Inst::Softmax { logits, probs, .. } => (b(logits) + b(probs), None),
        // Parameters, gradients, m and v read; parameters, m and v written.
        Inst::Adam => (f32s(7 * trainable_len), None),
    }
}

/// A short shape for the row: M×N×K for a GEMM, NHWC for convolutions'
/// copies and pooling, the element count for elementwise kernels.
pub fn shape(p: &Program, inst: &Inst, trainable_len: usize) -> String {
    let t = "ᵀ";
    match inst {
        Inst::Gather { x, .. } => format!("{} images, {} values", p.batch, p.tensors[*x].len),
        Inst::Gemm {
            shape, accumulate, ..
        } => format!(
            "{}×{}×{}{}{}{}",
            shape.m,
            shape.n,
            shape.k,
            if shape.trans_a {
                format!(" A{t}")
            } else {
                String::new()
            },
            if shape.trans_b {
                format!(" B{t}")
            } else {
                String::new()
            },
            if *accumulate { " +=" } else { "" }
        ),
        Inst::ConvForward { geom: g, .. }
        | Inst::ConvWeightGrad { geom: g, .. }
        | Inst::ConvInputGrad { geom: g, .. } => format!(
            "{}×{}×{} of {}×{}×{}×{} k{}×{} s{}",
            g.col_rows(),
            g.out_c,
            g.col_cols(),
            g.batch,
            g.window.in_h,
            g.window.in_w,
            g.in_c,
            g.window.kh,
            g.window.kw,
            g.window.stride_h
        ),
        Inst::BnTrain { shape, post, .. } | Inst::BnBackward { shape, post, .. } => {
            format!(
                "{}×{}{}",
                shape.rows,
                shape.channels,
                fused(post.act, post.dropout)
            )
        }
        Inst::BnInfer { shape, act, .. } => {
            format!("{}×{}{}", shape.rows, shape.channels, fused(*act, None))
        }
        Inst::Act { n, kind, .. } | Inst::ActBackward { n, kind, .. } => {
            format!("{n} {kind:?}")
        }
        Inst::Dropout { n, rate, .. } | Inst::DropoutBackward { n, rate, .. } => {
            format!("{n} rate {rate}")
        }
        Inst::Pool { geom: g, kind, .. } | Inst::PoolBackward { geom: g, kind, .. } => format!(
            "{kind:?} {}×{}×{}×{} k{}×{}",
            g.batch, g.window.in_h, g.window.in_w, g.channels, g.window.kh, g.window.kw
        ),
        Inst::Add { n, .. } | Inst::Accumulate { n, .. } => format!("{n}"),
        Inst::CopyColumns { rows, width, .. } => format!("{rows}×{width}"),
        Inst::SoftmaxXent { batch, classes, .. } | Inst::Softmax { batch, classes, .. } => {
            format!("{batch}×{classes}")
        }
        Inst::Adam => format!("{trainable_len} parameters"),
    }
}

/// The layers fused into a BatchNorm, as its shape column names them.
fn fused(
    act: Option<crate::kernels::elementwise::ActKind>,
    dropout: Option<crate::kernels::dropout::DropoutMask>,
) -> String {
    let mut s = String::new();
    if let Some(kind) = act {
        s += &format!(" + {kind:?}");
    }
    if let Some(d) = dropout {
        s += &format!(" + dropout {}", d.rate);
    }
    s
}

impl Profile {
    /// The readable table and totals.
    pub fn text(&self) -> String {
        render_text(self)
    }

    /// One JSON document: the run, every row and the totals.
    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "index": r.index,
                    "layer": r.layer,
                    "phase": r.phase.name(),
                    "kernel": r.kernel,
                    "variant": r.variant,
                    "entries": r.entries,
                    "shape": r.shape,
                    "dispatches": r.dispatches,
                    "median_us": r.median_us,
                    "share": r.share,
                    "flops": r.flops,
                    "bytes": r.bytes,
                    "gflops": r.gflops(),
                    "gbps": r.gbps(),
                })
            })
            .collect();
        let t = &self.totals;
        serde_json::json!({
            "model": self.model,
            "backend": self.backend,
            "batch": self.batch,
            "steps": self.steps,
            "warmup_steps": self.warmup,
            "timing": {
                "method": self.method.name(),
                "note": self.method.describe(),
            },
            "rows": rows,
            "layers_without_instructions": self.silent_layers,
            "layers_fused": self.fused_layers,
            "totals": {
                "instructions": t.instructions,
                "dispatches": t.dispatches,
                "submits": t.submits,
                "profiled_submits": t.profiled_submits,
                "bytes": t.bytes,
                "flops": t.flops,
                "step_wall_us": t.step_wall_us,
                "instructions_us": t.instructions_us,
                "overhead_us": t.overhead_us,
            },
        })
    }
}
