// The uniform of both batch gathers (gather.wgsl, gather_quads.wgsl):
// kernels::gather's Params.
struct GatherParams {
    batch: u32,
    // Height * width, channels, and their product (bytes per image).
    hw: u32,
    channels: u32,
    image_bytes: u32,
    // Words per image (image_bytes rounded up to a word) and images per chunk.
    image_words: u32,
    images_per_chunk: u32,
    // 1/255 in f32, from the host: the CPU reference multiplies by the same value.
    scale: f32,
    _pad: u32,
}
