//! Every WGSL file parses and validates with naga: no adapter needed.

use std::collections::BTreeSet;

#[test]
fn every_shader_validates() {
    for shader in gdl_gpu::shaders::ALL {
        if let Err(e) = gdl_gpu::shaders::validate(shader) {
            panic!("shaders/{}.wgsl does not validate:\n{e}", shader.name);
        }
    }
}

#[test]
fn every_file_in_shaders_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "wgsl").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    let registered: BTreeSet<String> = gdl_gpu::shaders::ALL
        .iter()
        .map(|s| s.name.to_owned())
        .collect();
    assert_eq!(
        on_disk, registered,
        "shaders/*.wgsl vs gdl_gpu::shaders::ALL"
    );
}
