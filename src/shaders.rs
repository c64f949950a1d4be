//! The WGSL sources, embedded in the binary. Every file in `shaders/` and
//! `shaders/prelude/` is listed here (a test checks that), so each can be
//! validated by naga without an adapter.
//!
//! WGSL has no includes: what several shaders share lives in preludes,
//! which the loader appends to each shader that names them. Appended, not
//! prepended: module-scope declarations may come in any order in WGSL, so
//! the shader's own lines keep their numbers in naga's and wgpu's messages,
//! and any `enable` directive (which must come first) stays first. A
//! prelude's functions take what they need as arguments (no shader's
//! bindings or override constants), so each prelude is a module of its own
//! and validates alone.

use std::borrow::Cow;

/// A file of declarations shared by several shaders.
#[derive(Debug)]
pub struct Prelude {
    /// The file's stem: `shaders/prelude/<name>.wgsl`.
    pub name: &'static str,
    /// The file's text.
    pub source: &'static str,
}

/// One WGSL compute shader file and the preludes appended to it.
#[derive(Debug)]
pub struct Shader {
    /// The file's stem: `shaders/<name>.wgsl`.
    pub name: &'static str,
    /// The file alone; private so that everything compiles [`Shader::source`].
    file: &'static str,
    /// Appended to the file, in this order.
    pub preludes: &'static [&'static Prelude],
    /// Uses `subgroupBroadcast` and friends: needs `Features::SUBGROUP`.
    pub needs_subgroups: bool,
}

impl Shader {
    /// The module to compile: the file, then its preludes.
    pub fn source(&self) -> Cow<'static, str> {
        if self.preludes.is_empty() {
            return Cow::Borrowed(self.file);
        }
        let mut s = self.file.to_owned();
        for p in self.preludes {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!("// ---- {} ----\n", p.path()));
            s.push_str(p.source);
        }
        Cow::Owned(s)
    }

    /// Names the composed source for messages: past the file's own lines,
    /// the line where each prelude starts says which one a line is in.
    pub fn path(&self) -> String {
        let mut path = format!("shaders/{}.wgsl", self.name);
        let mut line = self.file.lines().count() + 1;
        for p in self.preludes {
            // The separator comment, then the prelude's first line.
            line += 1;
            path.push_str(&format!(" + {} from line {line}", p.path()));
            line += p.source.lines().count();
        }
        path
    }
}

impl Prelude {
    /// The file's path from the crate root.
    pub fn path(&self) -> String {
        format!("shaders/prelude/{}.wgsl", self.name)
    }
}

macro_rules! prelude {
    ($ident:ident, $name:literal) => {
        #[doc = concat!("`shaders/prelude/", $name, ".wgsl`.")]
        pub static $ident: Prelude = Prelude {
            name: $name,
            source: include_str!(concat!("../shaders/prelude/", $name, ".wgsl")),
        };
    };
}

macro_rules! shader {
    ($ident:ident, $name:literal, [$($prelude:ident),*]) => {
        shader!($ident, $name, [$($prelude),*], false);
    };
    ($ident:ident, $name:literal, [$($prelude:ident),*], $subgroups:expr) => {
        #[doc = concat!("`shaders/", $name, ".wgsl` and its preludes.")]
        pub static $ident: Shader = Shader {
            name: $name,
            file: include_str!(concat!("../shaders/", $name, ".wgsl")),
            preludes: &[$(&$prelude),*],
            needs_subgroups: $subgroups,
        };
    };
}

prelude!(GRID, "grid");
prelude!(STEP, "step");
prelude!(EPILOGUE, "epilogue");
prelude!(GEMM_PARAMS, "gemm_params");
prelude!(GATHER_PARAMS, "gather_params");
prelude!(IM2COL, "im2col");
prelude!(ACTIVATION, "activation");
prelude!(DROPOUT_MASK, "dropout_mask");

shader!(ELEMENTWISE, "elementwise", [GRID, ACTIVATION]);
shader!(SOFTMAX_XENT, "softmax_xent", [GRID]);
shader!(SOFTMAX, "softmax", [GRID]);
shader!(ADAM, "adam", [GRID]);
shader!(DROPOUT, "dropout", [GRID, STEP, DROPOUT_MASK]);
shader!(REDUCE, "reduce", [GRID]);
shader!(GATHER, "gather", [GRID, STEP, GATHER_PARAMS]);
shader!(CONV, "conv", [GRID, IM2COL]);
shader!(
    BATCHNORM,
    "batchnorm",
    [GRID, STEP, ACTIVATION, DROPOUT_MASK]
);
shader!(GEMM_TILED, "gemm_tiled", [GRID, GEMM_PARAMS, EPILOGUE]);
shader!(
    GEMM_REGBLOCK,
    "gemm_regblock",
    [GRID, GEMM_PARAMS, EPILOGUE]
);
shader!(
    GEMM_SUBGROUP,
    "gemm_subgroup",
    [GRID, EPILOGUE, IM2COL],
    true
);
shader!(GEMM_PACK, "gemm_pack", [GRID]);
shader!(GATHER_QUADS, "gather_quads", [GRID, STEP, GATHER_PARAMS]);
shader!(POOL, "pool", [GRID]);
shader!(ADD, "add", [GRID]);
shader!(CONCAT, "concat", [GRID]);

/// Every prelude, for validation and listing.
pub static PRELUDES: &[&Prelude] = &[
    &GRID,
    &STEP,
    &EPILOGUE,
    &GEMM_PARAMS,
    &GATHER_PARAMS,
    &IM2COL,
    &ACTIVATION,
    &DROPOUT_MASK,
];

/// Every shader, for validation and listing.
pub static ALL: &[&Shader] = &[
    &ELEMENTWISE,
    &SOFTMAX_XENT,
    &SOFTMAX,
    &ADAM,
    &DROPOUT,
    &REDUCE,
    &GATHER,
    &CONV,
    &BATCHNORM,
    &GEMM_TILED,
    &GEMM_REGBLOCK,
    &GEMM_SUBGROUP,
    &GEMM_PACK,
    &GATHER_QUADS,
    &POOL,
    &ADD,
    &CONCAT,
];

/// Parses and validates a shader, preludes included, with naga and the
/// capabilities it may use.
pub fn validate(shader: &Shader) -> Result<naga::Module, String> {
    check(&shader.source(), &shader.path(), shader.needs_subgroups)
}

/// Parses and validates a prelude on its own.
pub fn validate_prelude(prelude: &Prelude) -> Result<naga::Module, String> {
    check(prelude.source, &prelude.path(), false)
}

fn check(source: &str, path: &str, subgroups: bool) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| e.emit_to_string_with_path(source, path))?;
    let mut caps = naga::valid::Capabilities::default();
    if subgroups {
        caps |= naga::valid::Capabilities::SUBGROUP;
    }
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    if subgroups {
        validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
        validator.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    validator
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(source, path))?;
    Ok(module)
}
