//! C = op(A)·op(B) (+ bias) then an activation, or C += op(A)·op(B): the
//! engine's hot kernel (Dense and im2col Conv2D forward and both gradients).
//! Three WGSL variants, chosen per adapter:
//! - `shaders/gemm_tiled.wgsl`: workgroup-memory tiles (real GPUs);
//! - `shaders/gemm_regblock.wgsl`: 8×4 register blocks, vec4 loads, no
//!   workgroup memory (CPU adapters: lavapipe, llvmpipe);
//! - `shaders/gemm_subgroup.wgsl`: each lane owns 2 rows of a 16×12 block
//!   and the 8 lanes of a subgroup share the loads of op(B) through
//!   `subgroupBroadcast` (lavapipe with subgroups). Its rows must be
//!   K-contiguous: other layouts go through a pack pre-pass
//!   (`shaders/gemm_pack.wgsl`) into a scratch buffer owned by the returned
//!   dispatches, or compute Cᵀ instead (see [`SubgroupPlan`]).

use super::conv::Conv2dGeom;
use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, GpuError, KernelSpec, Result, View};
use crate::shaders::{GEMM_PACK, GEMM_REGBLOCK, GEMM_SUBGROUP, GEMM_TILED};

/// Applied to each element after the bias add.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// Nothing: c = the product (+ bias).
    None,
    /// max(c, 0).
    Relu,
    /// c > 0 ? c : slope·c.
    LeakyRelu(f32),
}

impl Epilogue {
    /// (code, slope) as the shaders read them.
    fn encode(self) -> (u32, f32) {
        match self {
            Epilogue::None => (0, 0.0),
            Epilogue::Relu => (1, 0.0),
            Epilogue::LeakyRelu(s) => (2, s),
        }
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
/// Tiled kernel: 16×16 invocations, 4×4 outputs each, 64×64×16 tiles.
const TILE_WG: u32 = 16;
const TILE_BK: u32 = 16;
const TILE_T: u32 = 4;

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
    /// bit 0: bias; bit 1: accumulate.
    flags: u32,
    epilogue: u32,
    slope: f32,
    _pad: [u32; 2],
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
    gemm_variant(
        gpu,
        Variant::Auto,
        shape,
        a,
        b,
        bias,
        c,
        epilogue,
        accumulate,
    )
}

/// [`gemm`] with an explicit kernel variant. A variant the device lacks
/// (see [`variant_available`]) is `GpuError::MissingFeature`.
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
        need(bias.size(), n, "bias");
    }

    let variant = match variant {
        Variant::Auto => auto_variant(gpu),
        v => v,
    };
    if !variant_available(gpu, variant) {
        return Err(GpuError::MissingFeature {
            kernel: format!("gemm {variant:?}"),
            feature: "subgroups of 8 lanes",
        });
    }
    if variant == Variant::Subgroup {
        return subgroup(
            gpu,
            shape,
            a.view(),
            b.view(),
            bias,
            c.view(),
            epilogue,
            accumulate,
        );
    }

    let (code, slope) = epilogue.encode();
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        flags: u32::from(bias.is_some()) | (u32::from(accumulate) << 1),
        epilogue: code,
        slope,
        _pad: [0; 2],
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let trans = [
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
    ];
    let (spec, constants, workgroups): (&KernelSpec, Vec<(&str, f64)>, [u32; 3]) = match variant {
        Variant::Tiled => {
            let bm = (TILE_WG * TILE_T) as usize;
            let tiles = m.div_ceil(bm) * n.div_ceil(bm);
            let mut c = trans.to_vec();
            c.extend([
                ("WG_X", TILE_WG as f64),
                ("WG_Y", TILE_WG as f64),
                ("BK", TILE_BK as f64),
            ]);
            (&TILED, c, grid_1d(tiles as u64, 1))
        }
        Variant::RegisterBlocked => {
            let vec = [
                ("VEC_A", flag(shape.vec_a())),
                ("VEC_B", flag(shape.vec_b())),
                ("VEC_C", flag(n % 4 == 0)),
                ("WG", WG as f64),
            ];
            let mut c = trans.to_vec();
            c.extend(vec);
            // One invocation per 8×4 block (RM×RN 4×4 sub-blocks in the
            // shader).
            let blocks = m.div_ceil(8) * n.div_ceil(4);
            (&REGISTER_BLOCKED, c, grid_1d(blocks as u64, WG))
        }
        Variant::Subgroup | Variant::Auto => unreachable!("handled above"),
    };
    // Without a bias, A stands in for binding 3 (read-only, never read).
    let bias = bias.unwrap_or(a.view());
    let buffers = [a.view(), b.view(), bias, c.view()];
    let d = gpu.launch(spec, &constants, &params, &buffers, workgroups)?;
    Ok(vec![d])
}

/// Which operand the subgroup kernel's lanes own (see
/// `shaders/gemm_subgroup.wgsl`): its rows are loaded as vec4s along K, so it
/// must be stored K-contiguous with K % 4 == 0, else it is first repacked
/// into a scratch buffer (`shaders/gemm_pack.wgsl`). Owning A computes C
/// directly; owning op(B)ᵀ computes Cᵀ, which costs scalar stores of C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupPlan {
    /// The kernel computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
    pub out_t: bool,
    /// The owned operand goes through the pack pre-pass.
    pub pack: bool,
}

impl SubgroupPlan {
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
    flags: u32,
    epilogue: u32,
    slope: f32,
    _pad: u32,
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

/// The subgroup variant: an optional pack pre-pass, then the kernel.
#[allow(clippy::too_many_arguments)]
fn subgroup(
    gpu: &Gpu,
    shape: GemmShape,
    a: View<'_>,
    b: View<'_>,
    bias: Option<View<'_>>,
    c: View<'_>,
    epilogue: Epilogue,
    accumulate: bool,
) -> Result<Vec<Dispatch>> {
    let GemmShape { m, n, k, .. } = shape;
    let plan = SubgroupPlan::new(shape);
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
    };
    out.push(call.launch(gpu, own, shared, bias, c, epilogue, accumulate)?);
    Ok(out)
}

/// Which operand of the subgroup kernel is im2col(x) of a convolution, read
/// from x in place (`IMPLICIT` in `shaders/gemm_subgroup.wgsl`).
#[derive(Clone, Copy, Debug)]
enum Implicit {
    /// O: the forward pass, C = im2col(x)·W.
    Own(Conv2dGeom),
    /// S: the weight gradient, dWᵀ = dYᵀ·im2col(x).
    Shared(Conv2dGeom),
    /// O is dY gathered per tap and S the kernel per tap: the input
    /// gradient, dX = Σ over taps of dY·Wᵀ, without col2im.
    InputGrad(Conv2dGeom),
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
}

/// Columns of D per subgroup block, in slots of 4: the most (fewest loads
/// per FMA) whose padding past C stays under an eighth (C = 200: 6 slots).
/// Up to 8, the shader's accumulators.
fn subgroup_slots(c: usize) -> usize {
    (3..=8)
        .rev()
        .find(|s| {
            let w = 4 * s;
            (c.div_ceil(w) * w - c) * 8 <= c
        })
        .unwrap_or(3)
}

impl SubgroupCall {
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        gpu: &Gpu,
        own: View<'_>,
        shared: View<'_>,
        bias: Option<View<'_>>,
        c: View<'_>,
        epilogue: Epilogue,
        accumulate: bool,
    ) -> Result<Dispatch> {
        let (code, slope) = epilogue.encode();
        let slots = std::env::var("GDL_GPU_SLOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| subgroup_slots(self.c));
        let wg: u32 = std::env::var("GDL_GPU_SGWG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WG);
        let params = SubgroupParams {
            r: self.r as u32,
            c: self.c as u32,
            k: self.k as u32,
            ldo: self.ldo as u32,
            flags: u32::from(bias.is_some()) | (u32::from(accumulate) << 1),
            epilogue: code,
            slope,
            _pad: 0,
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut constants = vec![
            ("S_KCONTIG", flag(self.s_kcontig)),
            ("VEC_S", flag(self.vec_s)),
            ("OUT_T", flag(self.out_t)),
            ("VEC_C", flag(!self.out_t && self.c % 4 == 0)),
            ("WG", wg as f64),
            ("SLOTS", slots as f64),
        ];
        if let Some(implicit) = self.implicit {
            let (mode, g) = match implicit {
                Implicit::Own(g) => (1.0, g),
                Implicit::Shared(g) => (2.0, g),
                Implicit::InputGrad(g) => (3.0, g),
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
        // One subgroup of 8 invocations per 16×(4·slots) block of D.
        let blocks = self.r.div_ceil(16) * self.c.div_ceil(4 * slots);
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

/// Whether [`conv_forward_implicit`] and [`conv_weight_grad_implicit`] can
/// run `g` on this device: the subgroup kernel is the built-in choice and
/// four channels make one vec4 of an im2col row.
pub fn implicit_conv_available(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    auto_variant(gpu) == Variant::Subgroup && g.in_c % 4 == 0 && g.col_rows() >= 1
}

/// y = im2col(x)·W (+ bias) then `epilogue`, reading x (NHWC) in place:
/// Conv2D's forward pass as one dispatch. `w` is [kh·kw·in_c, out_c].
/// Needs [`implicit_conv_available`].
pub fn conv_forward_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: impl Bind<'b>,
    w: impl Bind<'b>,
    bias: Option<View<'_>>,
    y: impl Bind<'b>,
    epilogue: Epilogue,
) -> Result<Vec<Dispatch>> {
    assert!(implicit_conv_available(gpu, g), "implicit conv {g:?}");
    let call = SubgroupCall {
        r: g.col_rows(),
        c: g.out_c,
        k: g.col_cols(),
        ldo: g.col_cols(),
        s_kcontig: false,
        vec_s: g.out_c % 4 == 0,
        out_t: false,
        implicit: Some(Implicit::Own(*g)),
    };
    Ok(vec![call.launch(
        gpu,
        x.view(),
        w.view(),
        bias,
        y.view(),
        epilogue,
        false,
    )?])
}

/// Whether [`conv_input_grad_implicit`] should run `g` on this device: the
/// subgroup kernel is the built-in choice, four output channels make one
/// vec4 of dY, and the strides are 1. With stride s only one tap in s² meets
/// an output pixel, so the gather would multiply mostly zeros (measured on
/// lavapipe: 4× slower than dY·Wᵀ and col2im at stride 2).
pub fn implicit_conv_input_grad_available(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    auto_variant(gpu) == Variant::Subgroup
        && g.out_c % 4 == 0
        && g.input_len() >= 1
        && g.window.stride_h == 1
        && g.window.stride_w == 1
}

/// dX = col2im(dY·Wᵀ) as one dispatch: each input pixel gathers, per tap,
/// the output gradient of the pixel whose window puts that tap on it (see
/// `col2im_at` in `shaders/prelude/im2col.wgsl`) times the kernel's slice,
/// so neither dY·Wᵀ nor col2im is stored. Overwrites dx (NHWC). Needs the
/// subgroup kernel and out_c % 4 == 0; [`implicit_conv_input_grad_available`]
/// says where it is also the faster way.
pub fn conv_input_grad_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: impl Bind<'b>,
    w: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    // Any stride computes right (the tests run them all); only speed
    // rules strides out in `implicit_conv_input_grad_available`.
    assert!(
        auto_variant(gpu) == Variant::Subgroup && g.out_c % 4 == 0 && g.input_len() >= 1,
        "implicit conv input grad {g:?}"
    );
    let k = g.window.taps() * g.out_c;
    let call = SubgroupCall {
        r: g.batch * g.window.in_pixels(),
        c: g.in_c,
        k,
        ldo: k,
        s_kcontig: true,
        vec_s: true,
        out_t: false,
        implicit: Some(Implicit::InputGrad(*g)),
    };
    Ok(vec![call.launch(
        gpu,
        dy.view(),
        w.view(),
        None,
        dx.view(),
        Epilogue::None,
        false,
    )?])
}

/// dW = im2col(x)ᵀ·dY, reading x (NHWC) in place: dY ([pixels, out_c]) is
/// packed K-contiguous and the kernel computes dWᵀ = dYᵀ·im2col(x), stored
/// transposed into dW ([kh·kw·in_c, out_c]). Needs [`implicit_conv_available`].
pub fn conv_weight_grad_implicit<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    dw: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    assert!(implicit_conv_available(gpu, g), "implicit conv {g:?}");
    let pixels = g.col_rows();
    let (packed, ldp, pack_dispatch) = pack(gpu, dy.view(), g.out_c, pixels, true)?;
    let call = SubgroupCall {
        r: g.out_c,
        c: g.col_cols(),
        k: pixels,
        ldo: ldp,
        s_kcontig: false,
        vec_s: true,
        out_t: true,
        implicit: Some(Implicit::Shared(*g)),
    };
    let d = call.launch(
        gpu,
        (&packed).view(),
        x.view(),
        None,
        dw.view(),
        Epilogue::None,
        false,
    )?;
    Ok(vec![pack_dispatch, d])
}

/// Plain-Rust references of the GEMM, accumulating in f64.
pub mod cpu {
    use super::{Epilogue, GemmShape};

    fn check(shape: GemmShape, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &[f32], acc: bool) {
        let GemmShape { m, n, k, .. } = shape;
        assert_eq!(a.len(), m * k, "gemm: A length");
        assert_eq!(b.len(), k * n, "gemm: B length");
        assert_eq!(c.len(), m * n, "gemm: C length");
        if let Some(bias) = bias {
            assert_eq!(bias.len(), n, "gemm: bias length");
        }
        assert!(!acc || bias.is_none(), "gemm: accumulate takes no bias");
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

    fn finish(v: f32, epilogue: Epilogue) -> f32 {
        match epilogue {
            Epilogue::None => v,
            Epilogue::Relu => v.max(0.0),
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
        for row in c.chunks_exact_mut(n) {
            for (j, v) in row.iter_mut().enumerate() {
                let x = *v + bias.map_or(0.0, |b| b[j]);
                *v = finish(x, epilogue);
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
        check(shape, a, b, bias, c, accumulate);
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
        check(shape, a, b, bias, c, accumulate);
        assert!(!accumulate || epilogue == Epilogue::None);
        let GemmShape { m, n, k, .. } = shape;
        let (sa, sb) = strides(shape);
        for i in 0..m {
            for j in 0..n {
                let mut s = if accumulate { c[i * n + j] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a[i * sa[0] + p * sa[1]] as f64 * b[p * sb[0] + j * sb[1]] as f64;
                }
                if !accumulate {
                    s += bias.map_or(0.0, |b| b[j] as f64);
                }
                let v = s as f32;
                c[i * n + j] = if accumulate { v } else { finish(v, epilogue) };
            }
        }
    }
}
