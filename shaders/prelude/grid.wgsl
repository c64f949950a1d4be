// The flat index of an invocation (or, with wg = 1, of a workgroup) in a
// grid from `grid_1d` (src/gpu/dispatch.rs), which folds groups past x's
// 65,535 limit into y. `wg` is the kernel's workgroup size: each shader's
// own `override WG`, so it comes in as an argument.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}
