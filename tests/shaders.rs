//! Every WGSL file parses and validates with naga: no adapter needed. Each
//! shader is validated as it is compiled, with its preludes appended.

use std::collections::BTreeSet;

use gdl_gpu::shaders::{self, ALL, PRELUDES};

#[test]
fn every_shader_validates() {
    for shader in ALL {
        if let Err(e) = shaders::validate(shader) {
            panic!("{} does not validate:\n{e}", shader.path());
        }
    }
}

#[test]
fn every_prelude_validates_alone() {
    for prelude in PRELUDES {
        if let Err(e) = shaders::validate_prelude(prelude) {
            panic!("{} does not validate:\n{e}", prelude.path());
        }
    }
}

#[test]
fn every_prelude_is_used() {
    for prelude in PRELUDES {
        assert!(
            ALL.iter()
                .any(|s| s.preludes.iter().any(|p| p.name == prelude.name)),
            "{} is appended to no shader",
            prelude.path()
        );
    }
}

/// The shader's own lines come first, so naga's line numbers are the file's.
#[test]
fn preludes_come_after_the_shader() {
    for shader in ALL {
        let file = std::fs::read_to_string(format!(
            "{}/shaders/{}.wgsl",
            env!("CARGO_MANIFEST_DIR"),
            shader.name
        ))
        .expect("shader file");
        let source = shader.source();
        assert!(source.starts_with(&file), "{}", shader.path());
        for prelude in shader.preludes {
            assert!(source.contains(prelude.source), "{}", shader.path());
        }
    }
}

fn stems(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(format!("{}/{dir}", env!("CARGO_MANIFEST_DIR")))
        .expect("shader folder exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "wgsl").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect()
}

#[test]
fn every_file_in_shaders_is_registered() {
    let registered: BTreeSet<String> = ALL.iter().map(|s| s.name.to_owned()).collect();
    assert_eq!(
        stems("shaders"),
        registered,
        "shaders/*.wgsl vs gdl_gpu::shaders::ALL"
    );
    let preludes: BTreeSet<String> = PRELUDES.iter().map(|p| p.name.to_owned()).collect();
    assert_eq!(
        stems("shaders/prelude"),
        preludes,
        "shaders/prelude/*.wgsl vs gdl_gpu::shaders::PRELUDES"
    );
}
