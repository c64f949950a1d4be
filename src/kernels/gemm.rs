//! C = op(A)·op(B) (+ bias) then an activation, or C += op(A)·op(B): the
//! engine's hot kernel (Dense and im2col Conv2D forward and both gradients).
//! Three WGSL variants, chosen per adapter:
//! - `shaders/gemm_tiled.wgsl`: workgroup-memory tiles (real GPUs);
//! - `shaders/gemm_regblock.wgsl`: register blocks up to 16×16, vec4 loads, no
//!   workgroup memory (CPU adapters: lavapipe, llvmpipe);
//! - `shaders/gemm_subgroup.wgsl`: each lane owns 2 rows of a 16×12 block
//!   and the 8 lanes of a subgroup share the loads of op(B) through
//!   `subgroupBroadcast` (lavapipe with subgroups). Its rows must be
//!   K-contiguous: other layouts go through a pack pre-pass
//!   (`shaders/gemm_pack.wgsl`) into a scratch buffer owned by the returned
//!   dispatches, or compute Cᵀ instead (see [`SubgroupPlan`]).
//!
//! A [`GemmConfig`] is one variant with its knobs (workgroup size, tiles,
//! subgroup plan); [`candidates`] lists those an adapter can run for a shape,
//! for the autotuner (`crate::tune`), and [`GemmConfig::default_for`] is the
//! built-in choice that [`gemm`] runs.

use super::conv::{Conv2dGeom, ConvMethod, ConvPass, StridePhase};
use super::reduce;
use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, GpuError, KernelSpec, Result, View};
use crate::shaders::{GEMM_PACK, GEMM_REGBLOCK, GEMM_SUBGROUP, GEMM_TILED};

/// Applied to each element after the bias add; or, for the gradient
/// epilogues, to each element times the activation's derivative at the
/// forward activation, which then comes in the bias's place (shaped like C).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// Nothing: c = the product (+ bias).
    None,
    /// max(c, 0).
    Relu,
    /// c > 0 ? c : slope·c.
    LeakyRelu(f32),
    /// c·(a > 0 ? 1 : 0), a the ReLU's forward activation: the gradient
    /// through it, as the elementwise backward kernel computes it.
    ReluGrad,
    /// c·(a > 0 ? 1 : slope), a the LeakyReLU's forward activation.
    LeakyReluGrad(f32),
}

impl Epilogue {
    /// (code, slope) as the shaders read them.
    fn encode(self) -> (u32, f32) {
        match self {
            Epilogue::None => (0, 0.0),
            Epilogue::Relu => (1, 0.0),
            Epilogue::LeakyRelu(s) => (2, s),
            Epilogue::ReluGrad => (3, 0.0),
            Epilogue::LeakyReluGrad(s) => (4, s),
        }
    }

    /// The GEMM kernels' `EPILOGUE`, `BIAS` and `ACCUMULATE` constants for
    /// this epilogue with or without a bias, accumulating or not, and the
    /// slope their uniform carries.
    fn constants(self, bias: bool, accumulate: bool) -> ([(&'static str, f64); 3], f32) {
        let (code, slope) = self.encode();
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let constants = [
            ("EPILOGUE", f64::from(code)),
            ("BIAS", flag(bias && !self.is_grad())),
            ("ACCUMULATE", flag(accumulate)),
        ];
        (constants, slope)
    }

    /// A gradient epilogue: the bias slot holds the forward activation.
    pub fn is_grad(self) -> bool {
        matches!(self, Epilogue::ReluGrad | Epilogue::LeakyReluGrad(_))
    }
}

/// C[M×N] = op(A)·op(B). A is stored row-major M×K, or K×M when `trans_a`;
/// B is stored K×N, or N×K when `trans_b`; C is M×N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmShape {
    /// Rows of op(A) and C.
    pub m: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// The inner dimension: columns of op(A), rows of op(B).
    pub k: usize,
    /// A is stored [k, m] row-major (op(A) = Aᵀ) rather than [m, k].
    pub trans_a: bool,
    /// B is stored [n, k] row-major (op(B) = Bᵀ) rather than [k, n].
    pub trans_b: bool,
}

impl GemmShape {
    /// C[m, n] = op(A)[m, k]·op(B)[k, n].
    pub fn new(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> Self {
        GemmShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
        }
    }

    /// 2·M·N·K: an FMA counts as two.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// A's stored contiguous dimension is a multiple of 4 (vec4 loads).
    fn vec_a(&self) -> bool {
        (if self.trans_a { self.m } else { self.k }) % 4 == 0
    }

    fn vec_b(&self) -> bool {
        (if self.trans_b { self.k } else { self.n }) % 4 == 0
    }
}

/// Which GEMM shader to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The best variant available on this adapter (see [`auto_variant`]).
    Auto,
    /// `shaders/gemm_tiled.wgsl`: workgroup-memory tiles.
    Tiled,
    /// `shaders/gemm_regblock.wgsl`: register blocks, no workgroup memory.
    RegisterBlocked,
    /// `shaders/gemm_subgroup.wgsl`: subgroup operations (needs `Features::SUBGROUP`).
    Subgroup,
}

/// The concrete variants, for tests and benchmarks.
pub const VARIANTS: [Variant; 3] = [Variant::Tiled, Variant::RegisterBlocked, Variant::Subgroup];

/// Whether `variant` can run on this device. The subgroup kernel assumes
/// exactly 8 lanes per subgroup (its broadcasts name lanes 0..7).
pub fn variant_available(gpu: &Gpu, variant: Variant) -> bool {
    match variant {
        Variant::Subgroup => {
            gpu.caps.subgroups
                && gpu.info.subgroup_min_size == SUBGROUP_LANES
                && gpu.info.subgroup_max_size == SUBGROUP_LANES
        }
        _ => true,
    }
}

/// Subgroup kernel on 8-lane software adapters, register blocking on other
/// software adapters, workgroup tiles on real GPUs.
pub fn auto_variant(gpu: &Gpu) -> Variant {
    if gpu.is_software() {
        if variant_available(gpu, Variant::Subgroup) {
            Variant::Subgroup
        } else {
            Variant::RegisterBlocked
        }
    } else {
        Variant::Tiled
    }
}

const SUBGROUP_LANES: u32 = 8;
/// Invocations per workgroup of the register-blocked and subgroup kernels:
/// 64 leaves enough workgroups for two CPU threads even at M = 32.
const WG: u32 = 64;
/// Tiled kernel's built-in: 16×16 invocations, 4×4 outputs each, 64×64×16
/// tiles (small enough for the models' M = 32 batches to waste little).
const TILE_BUILTIN: GemmConfig = GemmConfig::Tiled {
    wg_x: 16,
    wg_y: 16,
    bk: 16,
    tm: 4,
    tn: 4,
};

/// The tuner's workgroup sizes for the register-blocked kernel
/// (multiples of the SIMD width's 8 lanes). Adding a candidate is adding a
/// value here, in [`REGBLOCK_BLOCKS`] or in [`TILE_CONFIGS`].
const WG_SIZES: [u32; 3] = [WG, 32, 8];
/// The register-blocked kernel's blocks, (rows, columns) in 4×4 sub-blocks,
/// the built-in first: 16×16 loads 32 vec4s per 1024 FMAs (8×4: 12 per 128)
/// and ran 2.3× faster per thread on lavapipe; the smaller ones are for the
/// tuner (alone on lavapipe, 8×4 and 8×16 won the MLP's 150×10×16 and
/// 150×10×32 weight gradients, where 16×16 leaves most of a block padding).
const REGBLOCK_BLOCKS: [(u32, u32); 3] = [(4, 4), (2, 4), (2, 1)];
/// The subgroup kernel's: 8 (one subgroup) spreads small GEMMs over a CPU
/// adapter's threads, 64 is the built-in for large ones.
const SUBGROUP_WG_SIZES: [u32; 2] = [WG, SUBGROUP_LANES];
/// The subgroup kernel's columns per block, in fours.
const SUBGROUP_SLOTS: [u32; 3] = [3, 4, 8];
/// The tuner's (WG_X, WG_Y, BK, TM, TN) for the tiled kernel: the
/// built-in, shallower and smaller tiles for small GEMMs, and 8×8 register
/// blocks (128×128 and 64×64 tiles from 256 and 64 invocations) for large
/// ones.
const TILE_CONFIGS: [(u32, u32, u32, u32, u32); 5] = [
    (16, 16, 16, 4, 4),
    (16, 16, 8, 4, 4),
    (8, 8, 16, 4, 4),
    (16, 16, 8, 8, 8),
    (8, 8, 16, 8, 8),
];

/// One way to run a GEMM: a concrete variant and its override constants.
/// [`GemmConfig::label`] names it, stably, in the tune cache and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmConfig {
    /// [`Variant::Tiled`]: `wg_x`×`wg_y` invocations, tiles `bk` deep,
    /// `tm`×`tn` outputs per invocation.
    Tiled {
        /// Invocations along N (`WG_X`).
        wg_x: u32,
        /// Invocations along M (`WG_Y`).
        wg_y: u32,
        /// Depth of the K tiles (`BK`), a multiple of 4.
        bk: u32,
        /// Rows per invocation (`TM`): 4 or 8.
        tm: u32,
        /// Columns per invocation (4·`TN4`): 4 or 8.
        tn: u32,
    },
    /// [`Variant::RegisterBlocked`] with `wg` invocations per workgroup,
    /// each computing a block of 4·`rm` rows × 4·`rn` columns.
    RegisterBlocked {
        /// Invocations per workgroup (`WG`).
        wg: u32,
        /// 4×4 sub-blocks along M (`RM`, 1..=4).
        rm: u32,
        /// 4×4 sub-blocks along N (`RN`, 1..=4).
        rn: u32,
    },
    /// [`Variant::Subgroup`] with `plan`, `wg` invocations per workgroup and
    /// blocks of 4·`slots` columns.
    Subgroup {
        /// Which operand the lanes own, and whether it is packed first.
        plan: SubgroupPlan,
        /// Invocations per workgroup (`WG`), a multiple of 8.
        wg: u32,
        /// Columns of each subgroup's block of D, in fours (`SLOTS`, 1..=8).
        slots: u32,
    },
}

impl GemmConfig {
    /// The built-in choice for `shape`: [`auto_variant`] with its default
    /// constants and [`SubgroupPlan::new`], what [`gemm`] runs untuned.
    pub fn default_for(gpu: &Gpu, shape: GemmShape) -> Self {
        Self::for_variant(gpu, Variant::Auto, shape)
    }

    /// `variant` (or, for [`Variant::Auto`], [`auto_variant`]) with its
    /// built-in constants.
    pub fn for_variant(gpu: &Gpu, variant: Variant, shape: GemmShape) -> Self {
        match variant {
            Variant::Auto => Self::for_variant(gpu, auto_variant(gpu), shape),
            Variant::Tiled => TILE_BUILTIN,
            Variant::RegisterBlocked => regblock_default(shape),
            Variant::Subgroup => {
                let plan = SubgroupPlan::new(shape);
                let (r, c) = subgroup_d(shape, plan);
                let slots = subgroup_slots(c);
                GemmConfig::Subgroup {
                    plan,
                    wg: subgroup_wg(subgroup_blocks(r, c, slots)),
                    slots,
                }
            }
        }
    }

    /// The kernel variant it runs.
    pub fn variant(&self) -> Variant {
        match self {
            GemmConfig::Tiled { .. } => Variant::Tiled,
            GemmConfig::RegisterBlocked { .. } => Variant::RegisterBlocked,
            GemmConfig::Subgroup { .. } => Variant::Subgroup,
        }
    }

    /// "tiled/16x16/bk16/4x4", "regblock/wg64/16x16", "subgroup/own-a/pack/wg64/n32"
    /// (`own-bt`: the lanes own op(B)ᵀ and compute Cᵀ; `direct`: no pack).
    pub fn label(&self) -> String {
        match *self {
            GemmConfig::Tiled {
                wg_x,
                wg_y,
                bk,
                tm,
                tn,
            } => format!("tiled/{wg_x}x{wg_y}/bk{bk}/{tm}x{tn}"),
            GemmConfig::RegisterBlocked { wg, rm, rn } => {
                format!("regblock/wg{wg}/{}x{}", 4 * rm, 4 * rn)
            }
            GemmConfig::Subgroup { plan, wg, slots } => format!(
                "subgroup/{}/{}/wg{wg}/n{}",
                if plan.out_t { "own-bt" } else { "own-a" },
                if plan.pack { "pack" } else { "direct" },
                4 * slots
            ),
        }
    }

    /// Whether the device's limits allow it.
    fn fits(&self, limits: &wgpu::Limits) -> bool {
        let wg_ok = |x: u32, y: u32| {
            x <= limits.max_compute_workgroup_size_x
                && y <= limits.max_compute_workgroup_size_y
                && x * y <= limits.max_compute_invocations_per_workgroup
        };
        match *self {
            GemmConfig::Tiled {
                wg_x,
                wg_y,
                bk,
                tm,
                tn,
            } => {
                // a_tile and b_tile, f32: BK×BM + BK×BN.
                let bytes = 4 * bk * (wg_y * tm + wg_x * tn);
                let shape_ok = bk % 4 == 0 && matches!(tm, 4 | 8) && matches!(tn, 4 | 8);
                shape_ok && wg_ok(wg_x, wg_y) && bytes <= limits.max_compute_workgroup_storage_size
            }
            GemmConfig::RegisterBlocked { wg, rm, rn } => {
                wg_ok(wg, 1) && (1..=4).contains(&rm) && (1..=4).contains(&rn)
            }
            GemmConfig::Subgroup { wg, slots, .. } => {
                wg_ok(wg, 1) && wg % SUBGROUP_LANES == 0 && (1..=8).contains(&slots)
            }
        }
    }
}

/// Every configuration this device can run for `shape`, the built-in one
/// ([`GemmConfig::default_for`]) first, each once.
pub fn candidates(gpu: &Gpu, shape: GemmShape) -> Vec<GemmConfig> {
    let mut all = vec![GemmConfig::default_for(gpu, shape)];
    for variant in VARIANTS {
        if !variant_available(gpu, variant) {
            continue;
        }
        match variant {
            Variant::Tiled => {
                all.extend(
                    TILE_CONFIGS
                        .iter()
                        .map(|&(wg_x, wg_y, bk, tm, tn)| GemmConfig::Tiled {
                            wg_x,
                            wg_y,
                            bk,
                            tm,
                            tn,
                        }),
                )
            }
            Variant::RegisterBlocked => {
                for &(rm, rn) in &REGBLOCK_BLOCKS {
                    all.extend(WG_SIZES.iter().map(|&wg| GemmConfig::RegisterBlocked {
                        wg,
                        rm,
                        rn,
                    }));
                }
            }
            Variant::Subgroup => {
                for plan in SubgroupPlan::all(shape) {
                    for &slots in &SUBGROUP_SLOTS {
                        all.extend(SUBGROUP_WG_SIZES.iter().map(|&wg| GemmConfig::Subgroup {
                            plan,
                            wg,
                            slots,
                        }));
                    }
                }
            }
            Variant::Auto => {}
        }
    }
    let mut out: Vec<GemmConfig> = Vec::with_capacity(all.len());
    for c in all {
        if c.fits(&gpu.limits) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::Storage,
    Binding::Storage,
    Binding::Storage,
    Binding::StorageRw,
];

/// [`Variant::Tiled`]'s entry point.
pub static TILED: KernelSpec = KernelSpec {
    shader: &GEMM_TILED,
    entry: "gemm_tiled",
    bindings: BINDINGS,
};
/// [`Variant::RegisterBlocked`]'s entry point.
pub static REGISTER_BLOCKED: KernelSpec = KernelSpec {
    shader: &GEMM_REGBLOCK,
    entry: "gemm_regblock",
    bindings: BINDINGS,
};
/// [`Variant::Subgroup`]'s entry point.
pub static SUBGROUP: KernelSpec = KernelSpec {
    shader: &GEMM_SUBGROUP,
    entry: "gemm_subgroup",
    bindings: BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    slope: f32,
    _pad: [u32; 4],
}

/// C = op(A)·op(B) (+ `bias[N]` per row) then `epilogue`; with `accumulate`,
/// C += op(A)·op(B) (no bias, no epilogue). Buffers are bound whole from
/// offset 0. Returns the dispatches to record, in order.
#[allow(clippy::too_many_arguments)]
pub fn gemm<'b>(
    gpu: &Gpu,
    shape: GemmShape,
    a: impl Bind<'b>,
    b: impl Bind<'b>,
    bias: Option<View<'_>>,
    c: impl Bind<'b>,
    epilogue: Epilogue,
    accumulate: bool,
) -> Result<Vec<Dispatch>> {
    gemm_config(
        gpu,
        GemmConfig::default_for(gpu, shape),
        shape,
        a,
        b,
        bias,
        c,
        epilogue,
        accumulate,
    )
}

/// [`gemm`] with an explicit kernel variant (its built-in constants). A
/// variant the device lacks (see [`variant_available`]) is
/// `GpuError::MissingFeature`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_variant<'b>(
    gpu: &Gpu,
    variant: Variant,
    shape: GemmShape,
    a: impl Bind<'b>,
    b: impl Bind<'b>,
    bias: Option<View<'_>>,
    c: impl Bind<'b>,
    epilogue: Epilogue,
    accumulate: bool,
) -> Result<Vec<Dispatch>> {
    let config = GemmConfig::for_variant(gpu, variant, shape);
    gemm_config(gpu, config, shape, a, b, bias, c, epilogue, accumulate)
}

/// [`gemm`] with an explicit configuration (one of [`candidates`]). A
/// variant the device lacks is `GpuError::MissingFeature`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_config<'b>(
    gpu: &Gpu,
    config: GemmConfig,
    shape: GemmShape,
    a: impl Bind<'b>,
    b: impl Bind<'b>,
    bias: Option<View<'_>>,
    c: impl Bind<'b>,
    epilogue: Epilogue,
    accumulate: bool,
) -> Result<Vec<Dispatch>> {
    let GemmShape { m, n, k, .. } = shape;
    assert!(m >= 1 && n >= 1 && k >= 1, "gemm: empty shape {shape:?}");
    assert!(
        !accumulate || (bias.is_none() && epilogue == Epilogue::None),
        "gemm: accumulate takes no bias and no epilogue"
    );
    let need = |size: u64, elems: usize, what: &str| {
        assert!(
            size >= (elems * 4) as u64,
            "gemm {shape:?}: {what} holds {size} bytes, needs {}",
            elems * 4
        );
    };
    need(a.size(), m * k, "A");
    need(b.size(), k * n, "B");
    need(c.size(), m * n, "C");
    if let Some(bias) = bias {
        let len = if epilogue.is_grad() { m * n } else { n };
        need(
            bias.size(),
            len,
            "bias (or the gradient epilogue's activation)",
        );
    }

    let variant = config.variant();
    if !variant_available(gpu, variant) {
        return Err(GpuError::MissingFeature {
            kernel: format!("gemm {variant:?}"),
            feature: "subgroups of 8 lanes",
        });
    }
    if let Some(slice) = k_slice(gpu, config.variant(), k) {
        let views = [a.view(), b.view(), c.view()];
        return gemm_k_sliced(gpu, config, shape, slice, views, bias, epilogue, accumulate);
    }
    if let GemmConfig::Subgroup { plan, wg, slots } = config {
        return subgroup(
            gpu,
            shape,
            (plan, wg, slots),
            [a.view(), b.view(), c.view()],
            bias,
            epilogue,
            (accumulate, None),
        );
    }

    let (epilogue_constants, slope) = epilogue.constants(bias.is_some(), accumulate);
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        slope,
        _pad: [0; 4],
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut trans = vec![
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
    ];
    trans.extend(epilogue_constants);
    let (spec, constants, workgroups): (&KernelSpec, Vec<(&str, f64)>, [u32; 3]) = match config {
        GemmConfig::Tiled {
            wg_x,
            wg_y,
            bk,
            tm,
            tn,
        } => {
            let bm = (wg_y * tm) as usize;
            let bn = (wg_x * tn) as usize;
            let tiles = m.div_ceil(bm) * n.div_ceil(bn);
            let mut c = trans.to_vec();
            c.extend([
                ("VEC_A", flag(shape.vec_a())),
                ("VEC_B", flag(shape.vec_b())),
                ("VEC_C", flag(n % 4 == 0)),
                ("WG_X", wg_x as f64),
                ("WG_Y", wg_y as f64),
                ("BK", bk as f64),
                ("TM", tm as f64),
                ("TN4", (tn / 4) as f64),
            ]);
            (&TILED, c, grid_1d(tiles as u64, 1))
        }
        GemmConfig::RegisterBlocked { wg, rm, rn } => {
            let vec = [
                ("VEC_A", flag(shape.vec_a())),
                ("VEC_B", flag(shape.vec_b())),
                ("VEC_C", flag(n % 4 == 0)),
                ("WG", wg as f64),
                ("RM", rm as f64),
                ("RN", rn as f64),
            ];
            let mut c = trans.to_vec();
            c.extend(vec);
            // One invocation per block.
            let blocks = regblock_blocks(m, n, rm, rn);
            (&REGISTER_BLOCKED, c, grid_1d(blocks as u64, wg))
        }
        GemmConfig::Subgroup { .. } => unreachable!("handled above"),
    };
    // Without a bias, A stands in for binding 3 (read-only, never read).
    let bias = bias.unwrap_or(a.view());
    let buffers = [a.view(), b.view(), bias, c.view()];
    let d = gpu.launch(spec, &constants, &params, &buffers, workgroups)?;
    Ok(vec![d])
}

/// Mesa's llvmpipe and lavapipe end a shader invocation's loops after
/// 65,535 iterations in all (gallivm's loop limiter, shared by every loop
/// of a shader), silently: the sums come out short. On those adapters a
/// GEMM's K loop stays within this many iterations; half the limit, since
/// the kernels' other loops count too.
const SOFTWARE_LOOP_BUDGET: usize = 1 << 15;

/// The most K one dispatch of `variant` may cover on this adapter, where
/// there is a limit: the register-blocked kernel loops once per 4 k, the
/// subgroup kernel (implicit convolutions included) once per 8; the tiled
/// kernel's loops per K tile (staging and products) came to under 2 per k
/// (measured on lavapipe: 4×4/bk16 right at K = 32,768, cut short at
/// 49,152; 8×8/bk8 right at 32,768).
pub fn max_k_per_dispatch(gpu: &Gpu, variant: Variant) -> Option<usize> {
    if !gpu.is_software() {
        return None;
    }
    Some(match variant {
        Variant::Subgroup => 8 * SOFTWARE_LOOP_BUDGET,
        Variant::Tiled => SOFTWARE_LOOP_BUDGET / 2,
        _ => 4 * SOFTWARE_LOOP_BUDGET,
    })
}

/// The K slice `variant` runs a K-long GEMM in, where it cannot run whole.
fn k_slice(gpu: &Gpu, variant: Variant, k: usize) -> Option<usize> {
    max_k_per_dispatch(gpu, variant).filter(|&limit| k > limit)
}

/// Elements `first..first + len` of `v` as a view of their own, its size
/// rounded up to whole vec4s where the buffer has them.
fn sub_view(v: View<'_>, first: usize, len: usize) -> View<'_> {
    let offset = v.offset + 4 * first as u64;
    let end = v.offset + v.size;
    let size = (4 * len as u64).next_multiple_of(16).min(end - offset);
    View::new(v.buffer, offset, size)
}

/// [`gemm_config`] as one GEMM per `slice` of K: C = the first slice's
/// product (or C += it, accumulating), then C += each next one's. A slice
/// of K is a run of whole rows only where both operands are stored K-major
/// (op(A) = Aᵀ, B as is: the weight gradients, whose K = batch·pixels is
/// what grows), and the bias and epilogue would apply to the whole sum;
/// anything else is [`GpuError::LoopLimit`]. Slices are multiples of 64
/// rows, so each starts on a 256-byte boundary (the storage offset
/// alignment) of a buffer whose rows do.
#[allow(clippy::too_many_arguments)]
fn gemm_k_sliced(
    gpu: &Gpu,
    config: GemmConfig,
    shape: GemmShape,
    slice: usize,
    [a, b, c]: [View<'_>; 3],
    bias: Option<View<'_>>,
    epilogue: Epilogue,
    accumulate: bool,
) -> Result<Vec<Dispatch>> {
    let GemmShape { m, n, k, .. } = shape;
    if !shape.trans_a || shape.trans_b || bias.is_some() || epilogue != Epilogue::None {
        return Err(GpuError::LoopLimit {
            kernel: format!("gemm {m}x{n}x{k} ({})", config.label()),
            iterations: k * SOFTWARE_LOOP_BUDGET / slice,
            adapter: gpu.name(),
            hint: "a smaller batch or layer, or a GPU, would fit",
        });
    }
    debug_assert!(slice % 64 == 0);
    let mut out = Vec::new();
    for k0 in (0..k).step_by(slice) {
        let kc = slice.min(k - k0);
        let part = GemmShape::new(m, n, kc, true, false);
        out.extend(gemm_config(
            gpu,
            config,
            part,
            sub_view(a, k0 * m, kc * m),
            sub_view(b, k0 * n, kc * n),
            None,
            c,
            Epilogue::None,
            accumulate || k0 > 0,
        )?);
    }
    Ok(out)
}

/// Which operand the subgroup kernel's lanes own (see
/// `shaders/gemm_subgroup.wgsl`): its rows are loaded as vec4s along K, so it
/// must be stored K-contiguous with K % 4 == 0, else it is first repacked
/// into a scratch buffer (`shaders/gemm_pack.wgsl`). Owning A computes C
/// directly; owning op(B)ᵀ computes Cᵀ, which costs scalar stores of C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubgroupPlan {
    /// The kernel computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
    pub out_t: bool,
    /// The owned operand goes through the pack pre-pass.
    pub pack: bool,
}

impl SubgroupPlan {
    /// Both plans for `shape`, owning A (C) or op(B)ᵀ (Cᵀ), each packing
    /// its operand only where it is not K-contiguous with K % 4 == 0.
    pub fn all(shape: GemmShape) -> [Self; 2] {
        let k4 = shape.k % 4 == 0;
        [
            SubgroupPlan {
                out_t: false,
                pack: shape.trans_a || !k4,
            },
            SubgroupPlan {
                out_t: true,
                pack: !shape.trans_b || !k4,
            },
        ]
    }

    /// The cheaper plan for `shape` (pack or not, C or Cᵀ).
    pub fn new(shape: GemmShape) -> Self {
        let GemmShape { m, n, k, .. } = shape;
        let a_direct = !shape.trans_a && k % 4 == 0;
        let b_direct = shape.trans_b && k % 4 == 0;
        // Rough costs in values moved: a pack reads and writes its operand
        // once; transposed output stores C with scalar stores (≈ 1.5× the
        // vec4 path, counted per element). Measured on lavapipe: packing A
        // for the MLP's weight gradient (K = 32) beats transposed stores;
        // packing dY for the CNN's (K = 8192) beats packing im2col.
        let cost_a = if a_direct { 0 } else { m * k };
        let cost_b = if b_direct { 0 } else { n * k } + m * n * 3 / 2;
        if cost_a <= cost_b {
            SubgroupPlan {
                out_t: false,
                pack: !a_direct,
            }
        } else {
            SubgroupPlan {
                out_t: true,
                pack: !b_direct,
            }
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SubgroupParams {
    r: u32,
    c: u32,
    k: u32,
    ldo: u32,
    slope: f32,
    /// With `DB`: db's offset in C, in elements.
    db_off: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PackParams {
    r: u32,
    k: u32,
    ldp: u32,
    _pad: u32,
}

/// Invocations per workgroup of the pack pre-pass.
const PACK_WG: u32 = 64;

/// The pack pre-pass of [`Variant::Subgroup`]: copies an operand into the
/// layout the subgroup kernel reads.
pub static PACK: KernelSpec = KernelSpec {
    shader: &GEMM_PACK,
    entry: "gemm_pack",
    bindings: &[Binding::Uniform, Binding::Storage, Binding::StorageRw],
};

/// Repacks X (r×k; stored k×r when `trans`, else r×k) into a new buffer as
/// r rows of `ldp` (k rounded up to 8), K contiguous, zero-padded.
fn pack<'b>(
    gpu: &Gpu,
    x: View<'b>,
    r: usize,
    k: usize,
    trans: bool,
) -> Result<(wgpu::Buffer, usize, Dispatch)> {
    let ldp = k.next_multiple_of(8);
    let out = gpu.storage("gemm packed operand", (r * ldp * 4) as u64)?;
    let vec = trans && r % 4 == 0;
    let items = if vec {
        (r / 4) * (ldp / 4)
    } else {
        r * (ldp / 4)
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let d = gpu.launch(
        &PACK,
        &[
            ("TRANS", flag(trans)),
            ("VEC", flag(vec)),
            ("WG", PACK_WG as f64),
        ],
        &PackParams {
            r: r as u32,
            k: k as u32,
            ldp: ldp as u32,
            _pad: 0,
        },
        &[x, (&out).view()],
        grid_1d(items as u64, PACK_WG),
    )?;
    Ok((out, ldp, d))
}

/// The subgroup variant with `plan`, `wg` invocations per workgroup and
/// 4·`slots` columns per block: an optional pack pre-pass, then the kernel. `[a, b, c]` as [`gemm`] takes them.
#[allow(clippy::too_many_arguments)]
fn subgroup(
    gpu: &Gpu,
    shape: GemmShape,
    (plan, wg, slots): (SubgroupPlan, u32, u32),
    [a, b, c]: [View<'_>; 3],
    bias: Option<View<'_>>,
    epilogue: Epilogue,
    (accumulate, db_off): (bool, Option<usize>),
) -> Result<Vec<Dispatch>> {
    let GemmShape { m, n, k, .. } = shape;
    // (own operand, its stored transpose flag, shared operand, S_KCONTIG,
    // VEC_S, rows, columns)
    let (own, own_trans, shared, s_kcontig, vec_s, r, cols) = if plan.out_t {
        // O = op(B)ᵀ (N×K): B stored N×K is already K-contiguous. S = op(A)ᵀ
        // (K×M): A stored K×M, else M×K (C×K).
        let s_kc = !shape.trans_a;
        let vs = if s_kc { k % 4 == 0 } else { m % 4 == 0 };
        (b, !shape.trans_b, a, s_kc, vs, n, m)
    } else {
        (a, shape.trans_a, b, shape.trans_b, shape.vec_b(), m, n)
    };
    let mut out = Vec::new();
    let packed;
    let (own, ldo) = if plan.pack {
        let (buf, ldp, d) = pack(gpu, own, r, k, own_trans)?;
        out.push(d);
        packed = buf;
        (View::from(&packed), ldp)
    } else {
        (own, k)
    };
    let call = SubgroupCall {
        r,
        c: cols,
        k,
        ldo,
        s_kcontig,
        vec_s,
        out_t: plan.out_t,
        implicit: None,
        db_off,
    };
    out.push(call.launch(gpu, (wg, slots), own, shared, bias, c, epilogue, accumulate)?);
    Ok(out)
}

/// C = op(A)·op(B) and `db[n] = Σ_k op(B)[k][n]`: a weight gradient and its
/// bias gradient (op(B) the output gradient, stored [k, n]). Where the
/// subgroup kernel owns op(B)ᵀ (computing Cᵀ) and db follows C in the same
/// buffer (one binding spans both), each lane sums the rows it loads
/// anyway; otherwise a column-sums pass follows. (Summing S's columns in
/// the kernel when it owns A was tried: the 8 extra vec4 accumulators cost
/// lavapipe 0.45 ms on the MLP's 3072×200×32, the pass 0.05 ms.)
pub fn gemm_bias_grad<'b>(
    gpu: &Gpu,
    config: GemmConfig,
    shape: GemmShape,
    [a, b, c, db]: [View<'b>; 4],
) -> Result<Vec<Dispatch>> {
    assert!(!shape.trans_b, "gemm_bias_grad: op(B) is stored [k, n]");
    assert!(
        db.size >= (shape.n * 4) as u64,
        "gemm_bias_grad: db too small"
    );
    let whole = k_slice(gpu, Variant::Subgroup, shape.k).is_none();
    if let (GemmConfig::Subgroup { plan, wg, slots }, Some(span)) = (config, c.span_to(db)) {
        if plan.out_t && whole && variant_available(gpu, Variant::Subgroup) {
            let db_off = ((db.offset - c.offset) / 4) as usize;
            return subgroup(
                gpu,
                shape,
                (plan, wg, slots),
                [a, b, span],
                None,
                Epilogue::None,
                (false, Some(db_off)),
            );
        }
    }
    let mut d = gemm_config(gpu, config, shape, a, b, None, c, Epilogue::None, false)?;
    d.extend(reduce::column_sums(gpu, shape.k, shape.n, b, db)?);
    Ok(d)
}

/// Which operand of the subgroup kernel is im2col(x) of a convolution, read
/// from x in place (`IMPLICIT` in `shaders/gemm_subgroup.wgsl`).
#[derive(Clone, Copy, Debug)]
enum Implicit {
    /// O: the forward pass, C = im2col(x)·W.
    Own(Conv2dGeom),
    /// S: the weight gradient, dWᵀ = dYᵀ·im2col(x).
    Shared(Conv2dGeom),
    /// O is dY gathered per tap of one stride phase and S the kernel per
    /// tap: the input gradient at the phase's pixels, dX = Σ over its taps
    /// of dY·Wᵀ, without col2im.
    InputGrad(Conv2dGeom, StridePhase),
}

/// One dispatch of `shaders/gemm_subgroup.wgsl`: D[r×c] = O·S over k.
struct SubgroupCall {
    r: usize,
    c: usize,
    k: usize,
    /// O's row stride (≥ k, a multiple of 4).
    ldo: usize,
    /// S stored C×K (else K×C).
    s_kcontig: bool,
    /// vec4 loads of S.
    vec_s: bool,
    /// D is Cᵀ.
    out_t: bool,
    implicit: Option<Implicit>,
    /// `DB`: also the sums over k of op(B), at this element offset in C.
    db_off: Option<usize>,
}

/// Columns of D per subgroup block, in slots of 4: the most (fewest loads
/// per FMA; on lavapipe 8 slots reach 36–42 GFLOP/s where 3 reach 25–28)
/// whose padding past C stays within an eighth (C = 200: 8; C = 10: 3).
fn subgroup_slots(c: usize) -> u32 {
    (3..=8u32)
        .rev()
        .find(|&s| {
            let w = 4 * s as usize;
            (c.div_ceil(w) * w - c) * 8 <= c
        })
        .unwrap_or(3)
}

/// Register blocks (4·`rm` × 4·`rn`) covering an m×n C.
fn regblock_blocks(m: usize, n: usize, rm: u32, rn: u32) -> usize {
    m.div_ceil(4 * rm as usize) * n.div_ceil(4 * rn as usize)
}

/// 16×16 blocks (the fastest at every shape measured, even 32×10), in
/// workgroups of 64 from 1024 blocks on and of 8 below, as [`subgroup_wg`]
/// decides (lavapipe, 32×200×3072: 26 blocks ran at 7.3 GFLOP/s in one
/// workgroup of 64, at 26.5 in four of 8).
fn regblock_default(shape: GemmShape) -> GemmConfig {
    let (rm, rn) = REGBLOCK_BLOCKS[0];
    let wg = if regblock_blocks(shape.m, shape.n, rm, rn) >= 1024 {
        WG
    } else {
        SUBGROUP_LANES
    };
    GemmConfig::RegisterBlocked { wg, rm, rn }
}

/// Subgroup blocks (16 rows × 4·`slots` columns) covering an r×c D.
fn subgroup_blocks(r: usize, c: usize, slots: u32) -> usize {
    r.div_ceil(16) * c.div_ceil(4 * slots as usize)
}

/// Invocations per workgroup for `blocks` subgroups: 64 (8 subgroups), or
/// one subgroup each below 128 blocks, where 8-subgroup workgroups would
/// leave a CPU adapter's threads idle (lavapipe runs a workgroup on one
/// thread: a 32×128×4096 GEMM ran at 18 GFLOP/s in one workgroup of 64 and
/// 31–36 in eight of 8).
fn subgroup_wg(blocks: usize) -> u32 {
    if blocks >= 128 {
        WG
    } else {
        SUBGROUP_LANES
    }
}

/// The shape of D (rows, columns) under `plan`.
fn subgroup_d(shape: GemmShape, plan: SubgroupPlan) -> (usize, usize) {
    if plan.out_t {
        (shape.n, shape.m)
    } else {
        (shape.m, shape.n)
    }
}

impl SubgroupCall {
    /// The built-in (invocations per workgroup, slots) for this D.
    fn builtin_blocking(&self) -> (u32, u32) {
        let slots = subgroup_slots(self.c);
        (subgroup_wg(subgroup_blocks(self.r, self.c, slots)), slots)
    }

    /// The dispatch, in workgroups of `wg` invocations (a multiple of 8)
    /// whose subgroups each compute blocks of 4·`slots` columns of D
    /// (`SLOTS`, 1..=8).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        gpu: &Gpu,
        (wg, slots): (u32, u32),
        own: View<'_>,
        shared: View<'_>,
        bias: Option<View<'_>>,
        c: View<'_>,
        epilogue: Epilogue,
        accumulate: bool,
    ) -> Result<Dispatch> {
        let (epilogue_constants, slope) = epilogue.constants(bias.is_some(), accumulate);
        let params = SubgroupParams {
            r: self.r as u32,
            c: self.c as u32,
            k: self.k as u32,
            ldo: self.ldo as u32,
            slope,
            db_off: self.db_off.unwrap_or(0) as u32,
            _pad: [0; 2],
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut constants = vec![
            ("DB", flag(self.db_off.is_some())),
            ("S_KCONTIG", flag(self.s_kcontig)),
            ("VEC_S", flag(self.vec_s)),
            ("OUT_T", flag(self.out_t)),
            ("VEC_C", flag(!self.out_t && self.c % 4 == 0)),
            ("WG", wg as f64),
            ("SLOTS", slots as f64),
        ];
        constants.extend(epilogue_constants);
        if let Some(implicit) = self.implicit {
            let (mode, g) = match implicit {
                Implicit::Own(g) => (1.0, g),
                Implicit::Shared(g) => (2.0, g),
                Implicit::InputGrad(g, ph) => {
                    constants.extend([
                        ("PH_Y", ph.py as f64),
                        ("PH_X", ph.px as f64),
                        ("PH_ROWS", ph.rows as f64),
                        ("PH_COLS", ph.cols as f64),
                        ("PH_KY0", ph.ky0 as f64),
                        ("PH_KX0", ph.kx0 as f64),
                        // Never a divisor of 0, even in a phase without taps.
                        ("PH_TAPS_W", ph.taps_w.max(1) as f64),
                    ]);
                    (3.0, g)
                }
            };
            let w = &g.window;
            constants.extend([
                ("IMPLICIT", mode),
                ("IN_H", w.in_h as f64),
                ("IN_W", w.in_w as f64),
                ("IN_C", g.in_c as f64),
                ("OUT_C", g.out_c as f64),
                ("OUT_H", w.out_h() as f64),
                ("OUT_W", w.out_w() as f64),
                ("KW", w.kw as f64),
                ("STRIDE_H", w.stride_h as f64),
                ("STRIDE_W", w.stride_w as f64),
                ("PAD_TOP", w.pad_top() as f64),
                ("PAD_LEFT", w.pad_left() as f64),
            ]);
        }
        let blocks = subgroup_blocks(self.r, self.c, slots);
        // Without a bias, the owned operand stands in for binding 3
        // (read-only, never read).
        let bias = bias.unwrap_or(own);
        gpu.launch(
            &SUBGROUP,
            &constants,
            &params,
            &[own, shared, bias, c],
            grid_1d(blocks as u64 * 8, wg),
        )
    }
}

/// y = im2col(x)·W (+ bias) then `epilogue`, reading x (NHWC) in place:
/// Conv2D's forward pass as one dispatch. `w` is [kh·kw·in_c, out_c].
/// Needs `ConvMethod::Implicit.available` (`kernels::conv`).
pub fn conv_forward_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: impl Bind<'b>,
    w: impl Bind<'b>,
    bias: Option<View<'_>>,
    y: impl Bind<'b>,
    epilogue: Epilogue,
) -> Result<Vec<Dispatch>> {
    assert!(
        ConvMethod::Implicit.available(gpu, g, ConvPass::Forward),
        "implicit conv {g:?}"
    );
    let call = SubgroupCall {
        r: g.col_rows(),
        c: g.out_c,
        k: g.col_cols(),
        ldo: g.col_cols(),
        s_kcontig: false,
        vec_s: g.out_c % 4 == 0,
        out_t: false,
        implicit: Some(Implicit::Own(*g)),
        db_off: None,
    };
    Ok(vec![call.launch(
        gpu,
        call.builtin_blocking(),
        x.view(),
        w.view(),
        bias,
        y.view(),
        epilogue,
        false,
    )?])
}

/// dX = col2im(dY·Wᵀ) as one dispatch per stride phase
/// ([`Conv2dGeom::input_grad_phases`]; one at stride 1): each input pixel
/// gathers, per tap of its phase, the output gradient of the pixel whose
/// window puts that tap on it (see `col2im_at` in
/// `shaders/prelude/im2col.wgsl`) times the kernel's slice, so neither
/// dY·Wᵀ nor col2im is stored and no tap that meets no output pixel is
/// summed. Overwrites dx (NHWC). Needs the subgroup kernel and
/// out_c % 4 == 0 (`ConvMethod::Implicit.available`).
pub fn conv_input_grad_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: impl Bind<'b>,
    w: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    assert!(
        ConvMethod::Implicit.available(gpu, g, ConvPass::InputGrad),
        "implicit conv input grad {g:?}"
    );
    let (dy, w, dx) = (dy.view(), w.view(), dx.view());
    g.input_grad_phases()
        .into_iter()
        .map(|ph| {
            let k = ph.taps() * g.out_c;
            let call = SubgroupCall {
                r: g.batch * ph.rows * ph.cols,
                c: g.in_c,
                k,
                ldo: k,
                s_kcontig: true,
                vec_s: true,
                out_t: false,
                implicit: Some(Implicit::InputGrad(*g, ph)),
                db_off: None,
            };
            call.launch(
                gpu,
                call.builtin_blocking(),
                dy,
                w,
                None,
                dx,
                Epilogue::None,
                false,
            )
        })
        .collect()
}

/// dW = im2col(x)ᵀ·dY, reading x (NHWC) in place: dY ([pixels, out_c]) is
/// packed K-contiguous and the kernel computes dWᵀ = dYᵀ·im2col(x), stored
/// transposed into dW ([kh·kw·in_c, out_c]). With `db`, also the bias
/// gradient (dY's column sums, the owned rows' sums): in the same dispatch
/// where db follows dW in one buffer, else by a column-sums pass. Needs
/// `ConvMethod::Implicit.available`.
pub fn conv_weight_grad_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    dw: impl Bind<'b>,
    db: Option<View<'b>>,
) -> Result<Vec<Dispatch>> {
    assert!(
        ConvMethod::Implicit.available(gpu, g, ConvPass::WeightGrad),
        "implicit conv {g:?}"
    );
    let pixels = g.col_rows();
    let (packed, ldp, pack_dispatch) = pack(gpu, dy.view(), g.out_c, pixels, true)?;
    let span = db.and_then(|db| dw.view().span_to(db).map(|s| (s, db)));
    let call = SubgroupCall {
        r: g.out_c,
        c: g.col_cols(),
        k: pixels,
        ldo: ldp,
        s_kcontig: false,
        vec_s: true,
        out_t: true,
        implicit: Some(Implicit::Shared(*g)),
        db_off: span.map(|(s, db)| ((db.offset - s.offset) / 4) as usize),
    };
    let d = call.launch(
        gpu,
        call.builtin_blocking(),
        (&packed).view(),
        x.view(),
        None,
        span.map_or(dw.view(), |(s, _)| s),
        Epilogue::None,
        false,
    )?;
    let mut out = vec![pack_dispatch, d];
    if let (Some(db), None) = (db, span) {
        out.extend(reduce::column_sums(gpu, pixels, g.out_c, dy, db)?);
    }
    Ok(out)
}

/// Plain-Rust references of the GEMM, accumulating in f64.
pub mod cpu {
    use super::{Epilogue, GemmShape};

    /// `bias` is the forward activation (m·n) for a gradient epilogue.
    fn check(
        shape: GemmShape,
        [a, b, c]: [&[f32]; 3],
        bias: Option<&[f32]>,
        e: Epilogue,
        acc: bool,
    ) {
        let GemmShape { m, n, k, .. } = shape;
        assert_eq!(a.len(), m * k, "gemm: A length");
        assert_eq!(b.len(), k * n, "gemm: B length");
        assert_eq!(c.len(), m * n, "gemm: C length");
        if let Some(bias) = bias {
            let len = if e.is_grad() { m * n } else { n };
            assert_eq!(bias.len(), len, "gemm: bias length");
        }
        assert!(
            e.is_grad() == bias.is_some() || !e.is_grad(),
            "gemm: {e:?} needs the activation"
        );
        assert!(!acc || bias.is_none(), "gemm: accumulate takes no bias");
    }

    /// What `bias` contributes to element (i, j): the bias added, and the
    /// value the gradient epilogue tests.
    fn bias_at(bias: Option<&[f32]>, e: Epilogue, n: usize, i: usize, j: usize) -> (f32, f32) {
        match bias {
            Some(b) if e.is_grad() => (0.0, b[i * n + j]),
            Some(b) => (b[j], 0.0),
            None => (0.0, 0.0),
        }
    }

    /// Row/column strides of op(A) (M×K) and op(B) (K×N) in their storage.
    /// Rows of C per thread's block in a large GEMM.
    const ROW_BLOCK: usize = 256;
    /// GEMMs from this many multiply-adds up are split into row blocks.
    const PARALLEL_FMAS: usize = 1 << 23;

    fn strides(shape: GemmShape) -> ([usize; 2], [usize; 2]) {
        let GemmShape { m, n, k, .. } = shape;
        let sa = if shape.trans_a { [1, m] } else { [k, 1] };
        let sb = if shape.trans_b { [1, k] } else { [n, 1] };
        (sa, sb)
    }

    /// Element value v (after any bias) through the epilogue; `a` is the
    /// forward activation for the gradient epilogues.
    fn finish(v: f32, a: f32, epilogue: Epilogue) -> f32 {
        match epilogue {
            Epilogue::None => v,
            Epilogue::Relu => v.max(0.0),
            Epilogue::ReluGrad => {
                if a > 0.0 {
                    v
                } else {
                    0.0
                }
            }
            Epilogue::LeakyReluGrad(s) => {
                if a > 0.0 {
                    v
                } else {
                    v * s
                }
            }
            Epilogue::LeakyRelu(s) => {
                if v > 0.0 {
                    v
                } else {
                    v * s
                }
            }
        }
    }

    fn epilogue_pass(n: usize, bias: Option<&[f32]>, c: &mut [f32], epilogue: Epilogue) {
        for (i, row) in c.chunks_exact_mut(n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let (add, a) = bias_at(bias, epilogue, n, i, j);
                *v = finish(*v + add, a, epilogue);
            }
        }
    }

    /// The reference: `matrixmultiply`'s SGEMM (which takes any strides, so
    /// every transpose is free), then bias and epilogue.
    pub fn gemm(
        shape: GemmShape,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
        epilogue: Epilogue,
        accumulate: bool,
    ) {
        check(shape, [a, b, c], bias, epilogue, accumulate);
        assert!(!accumulate || epilogue == Epilogue::None);
        let GemmShape { m, n, k, .. } = shape;
        let (sa, sb) = strides(shape);
        // Blocks of ROW_BLOCK rows of C, one thread each: the blocks depend
        // on the shape only, so the result does not depend on the thread
        // count. Small GEMMs stay whole (a thread costs more than they do).
        let rows = if m * n * k >= PARALLEL_FMAS {
            ROW_BLOCK
        } else {
            m
        };
        crate::par::chunks_mut(c, rows.max(1) * n, |i, block| {
            let r0 = i * rows;
            // SAFETY: the lengths were checked above; the strides address
            // exactly the row-major layouts those lengths describe, and
            // rows r0.. of op(A) start r0·sa[0] elements in.
            unsafe {
                matrixmultiply::sgemm(
                    block.len() / n,
                    k,
                    n,
                    1.0,
                    a.as_ptr().add(r0 * sa[0]),
                    sa[0] as isize,
                    sa[1] as isize,
                    b.as_ptr(),
                    sb[0] as isize,
                    sb[1] as isize,
                    if accumulate { 1.0 } else { 0.0 },
                    block.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        });
        if !accumulate {
            epilogue_pass(n, bias, c, epilogue);
        }
    }

    /// The obviously-correct triple loop, accumulating in f64 (one rounding
    /// per output), to validate [`gemm`] on small shapes.
    pub fn gemm_naive(
        shape: GemmShape,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
        epilogue: Epilogue,
        accumulate: bool,
    ) {
        check(shape, [a, b, c], bias, epilogue, accumulate);
        assert!(!accumulate || epilogue == Epilogue::None);
        let GemmShape { m, n, k, .. } = shape;
        let (sa, sb) = strides(shape);
        for i in 0..m {
            for j in 0..n {
                let mut s = if accumulate { c[i * n + j] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a[i * sa[0] + p * sa[1]] as f64 * b[p * sb[0] + j * sb[1]] as f64;
                }
                let (add, act) = bias_at(bias, epilogue, n, i, j);
                if !accumulate {
                    s += add as f64;
                }
                let v = s as f32;
                c[i * n + j] = if accumulate {
                    v
                } else {
                    finish(v, act, epilogue)
                };
            }
        }
    }
}
