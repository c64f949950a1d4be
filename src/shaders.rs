//! The WGSL sources, embedded in the binary. Every file in `shaders/` is
//! listed here (a test checks that), so each can be validated by naga
//! without an adapter.

#[derive(Debug)]
pub struct Shader {
    /// The file's stem: `shaders/<name>.wgsl`.
    pub name: &'static str,
    pub source: &'static str,
    /// Uses `subgroupBroadcast` and friends: needs `Features::SUBGROUP`.
    pub needs_subgroups: bool,
}

macro_rules! shader {
    ($ident:ident, $name:literal) => {
        shader!($ident, $name, false);
    };
    ($ident:ident, $name:literal, $subgroups:expr) => {
        pub static $ident: Shader = Shader {
            name: $name,
            source: include_str!(concat!("../shaders/", $name, ".wgsl")),
            needs_subgroups: $subgroups,
        };
    };
}

shader!(ELEMENTWISE, "elementwise");
shader!(SOFTMAX_XENT, "softmax_xent");
shader!(SOFTMAX, "softmax");
shader!(METRICS, "metrics");
shader!(ADAM, "adam");
shader!(DROPOUT, "dropout");
shader!(REDUCE, "reduce");
shader!(GATHER, "gather");
shader!(CONV, "conv");
shader!(BATCHNORM, "batchnorm");
shader!(GEMM_TILED, "gemm_tiled");
shader!(GEMM_REGBLOCK, "gemm_regblock");
shader!(GEMM_SUBGROUP, "gemm_subgroup", true);
shader!(GEMM_PACK, "gemm_pack");
shader!(GATHER_QUADS, "gather_quads");
shader!(POOL, "pool");
shader!(ADD, "add");
shader!(CONCAT, "concat");

/// Every shader, for validation and listing.
pub static ALL: &[&Shader] = &[
    &ELEMENTWISE,
    &SOFTMAX_XENT,
    &SOFTMAX,
    &METRICS,
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

/// Parses and validates a shader with naga, with the capabilities it may use.
pub fn validate(shader: &Shader) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(shader.source).map_err(|e| {
        e.emit_to_string_with_path(shader.source, &format!("shaders/{}.wgsl", shader.name))
    })?;
    let mut caps = naga::valid::Capabilities::default();
    if shader.needs_subgroups {
        caps |= naga::valid::Capabilities::SUBGROUP;
    }
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    if shader.needs_subgroups {
        validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
        validator.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    validator.validate(&module).map_err(|e| {
        e.emit_to_string_with_path(shader.source, &format!("shaders/{}.wgsl", shader.name))
    })?;
    Ok(module)
}
