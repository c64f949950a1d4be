//! Batch gather from a GPU-resident u8 dataset (`shaders/gather.wgsl`).
//! The training set stays on the GPU as bytes (CIFAR-10: 50,000 × 3,072 B =
//! 153.6 MB, a quarter of its f32 size); each step gathers one shuffled
//! batch into NHWC f32 and its labels. One storage binding is capped by
//! `max_storage_buffer_binding_size` (128 MiB on lavapipe), so the images
//! are split over up to `MAX_CHUNKS` buffers of whole images.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, GpuError, KernelSpec, Result};
use crate::shaders::{GATHER, GATHER_QUADS};

const WG: u32 = 256;
/// Fewer invocations per group in the quad path: a CIFAR batch of 32 is only
/// 8,192 quads, and lavapipe wants many groups (see notes/lavapipe-gemm.md).
const QUAD_WG: u32 = 64;

/// Chunk buffers the kernel can bind: with its four other storage bindings
/// that is 8, within the GL backend's 16 per stage.
pub const MAX_CHUNKS: usize = 4;

/// Pixel scale, multiplied (not divided: WGSL division is not correctly
/// rounded) on both the GPU and the CPU reference, so they agree exactly.
/// It may differ from Keras' `x / 255.0` by one ulp.
pub const PIXEL_SCALE: f32 = 1.0 / 255.0;

const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::Uniform,
    Binding::Storage,
    Binding::Storage,
    Binding::StorageRw,
    Binding::StorageRw,
    Binding::Storage,
    Binding::Storage,
    Binding::Storage,
    Binding::Storage,
];

/// One invocation per output element: any image shape.
pub static GATHER_SPEC: KernelSpec = KernelSpec {
    shader: &GATHER,
    entry: "gather",
    bindings: BINDINGS,
};
/// Four pixels per invocation, vec4 stores: planes of 4k pixels, ≤ 4 channels.
pub static GATHER_QUADS_SPEC: KernelSpec = KernelSpec {
    shader: &GATHER_QUADS,
    entry: "gather_quads",
    bindings: BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    hw: u32,
    channels: u32,
    image_bytes: u32,
    image_words: u32,
    images_per_chunk: u32,
    scale: f32,
    _pad: u32,
}

/// An image dataset resident on the GPU: u8 pixels (CHW per image) packed
/// four to a u32 word, each image starting on a word, plus a u32 label per image.
pub struct GpuDataset {
    chunks: Vec<wgpu::Buffer>,
    labels: wgpu::Buffer,
    len: usize,
    images_per_chunk: usize,
    height: usize,
    width: usize,
    channels: usize,
}

fn invalid(message: String) -> GpuError {
    GpuError::InvalidInput {
        what: "GpuDataset::upload".into(),
        message,
    }
}

impl GpuDataset {
    /// pixels: len·height·width·channels bytes, CHW per image; labels: len
    /// bytes. Chunks as large as the adapter's storage binding limit allows.
    pub fn upload(
        gpu: &Gpu,
        pixels: &[u8],
        labels: &[u8],
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<GpuDataset> {
        let limit = gpu
            .limits
            .max_storage_buffer_binding_size
            .min(gpu.limits.max_buffer_size);
        Self::upload_with_chunk_limit(gpu, pixels, labels, height, width, channels, limit)
    }

    /// As `upload`, with chunks of at most `max_chunk_bytes` (tests use a
    /// small limit to exercise several chunks).
    pub fn upload_with_chunk_limit(
        gpu: &Gpu,
        pixels: &[u8],
        labels: &[u8],
        height: usize,
        width: usize,
        channels: usize,
        max_chunk_bytes: u64,
    ) -> Result<GpuDataset> {
        let len = labels.len();
        let image_bytes = height * width * channels;
        if len == 0 || image_bytes == 0 {
            return Err(invalid(format!(
                "empty dataset ({len} images of {height}×{width}×{channels})"
            )));
        }
        if pixels.len() != len * image_bytes {
            return Err(invalid(format!(
                "{} pixel bytes for {len} images of {height}×{width}×{channels} \
                 (expected {})",
                pixels.len(),
                len * image_bytes
            )));
        }
        let limit = max_chunk_bytes.min(gpu.limits.max_storage_buffer_binding_size);
        let image_words = image_bytes.div_ceil(4);
        let fit = (limit / (image_words as u64 * 4)) as usize;
        let needed = if fit == 0 {
            usize::MAX
        } else {
            len.div_ceil(fit)
        };
        if needed > MAX_CHUNKS {
            return Err(GpuError::BufferTooLarge {
                label: "dataset".into(),
                size: (len * image_words * 4) as u64,
                limit: MAX_CHUNKS as u64 * (fit * image_words * 4) as u64,
                which: "max_storage_buffer_binding_size, 4 chunks of whole images",
            });
        }
        // Spread the images evenly over the chunks.
        let images_per_chunk = len.div_ceil(needed);
        let mut chunks = Vec::with_capacity(needed);
        for (k, imgs) in pixels.chunks(images_per_chunk * image_bytes).enumerate() {
            let n = imgs.len() / image_bytes;
            let mut words = vec![0u32; n * image_words];
            for (img, dst) in imgs.chunks(image_bytes).zip(words.chunks_mut(image_words)) {
                for (w, bytes) in dst.iter_mut().zip(img.chunks(4)) {
                    let mut b = [0u8; 4];
                    b[..bytes.len()].copy_from_slice(bytes);
                    *w = u32::from_le_bytes(b);
                }
            }
            chunks.push(gpu.upload_storage(&format!("dataset chunk {k}"), &words)?);
        }
        let labels32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let labels = gpu.upload_storage("dataset labels", &labels32)?;
        Ok(GpuDataset {
            chunks,
            labels,
            len,
            images_per_chunk,
            height,
            width,
            channels,
        })
    }

    /// Images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Storage buffers the images are split across (each within the binding limit).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Images per chunk (the last may hold fewer).
    pub fn images_per_chunk(&self) -> usize {
        self.images_per_chunk
    }

    /// (height, width, channels) of every image.
    pub fn hwc(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }
}

/// x[b, y, x, c] (NHWC f32) = pixel·(1/255) of image indices[step.batch_base + b];
/// `labels_out[b]` = its label (u32). `indices` is the epoch's permutation
/// (u32, every entry < ds.len(): the kernel trusts it); `step` holds a `StepUniform`.
pub fn gather<'b>(
    gpu: &Gpu,
    ds: &GpuDataset,
    batch: usize,
    indices: impl Bind<'b>,
    step: impl Bind<'b>,
    x: impl Bind<'b>,
    labels_out: impl Bind<'b>,
) -> Result<Dispatch> {
    let image_bytes = ds.height * ds.width * ds.channels;
    let params = Params {
        batch: batch as u32,
        hw: (ds.height * ds.width) as u32,
        channels: ds.channels as u32,
        image_bytes: image_bytes as u32,
        image_words: image_bytes.div_ceil(4) as u32,
        images_per_chunk: ds.images_per_chunk as u32,
        scale: PIXEL_SCALE,
        _pad: 0,
    };
    let chunk = |k: usize| ds.chunks.get(k).unwrap_or(&ds.chunks[0]).view();
    let hw = ds.height * ds.width;
    // The quad path's vec4 stores need x's size in whole vec4s (as the
    // `Gpu` allocators pad it).
    let quads = hw % 4 == 0 && ds.channels <= 4 && x.size() % 16 == 0;
    let (spec, consts, grid) = if quads {
        (
            &GATHER_QUADS_SPEC,
            vec![("WG", QUAD_WG as f64), ("C", ds.channels as f64)],
            grid_1d((batch * hw / 4) as u64, QUAD_WG),
        )
    } else {
        (
            &GATHER_SPEC,
            vec![("WG", WG as f64)],
            grid_1d((batch * image_bytes) as u64, WG),
        )
    };
    gpu.launch(
        spec,
        &consts,
        &params,
        &[
            step.view(),
            indices.view(),
            (&ds.labels).view(),
            x.view(),
            labels_out.view(),
            chunk(0),
            chunk(1),
            chunk(2),
            chunk(3),
        ],
        grid,
    )
}

/// Plain-Rust reference.
pub mod cpu {
    use super::PIXEL_SCALE;

    /// The batch at `base` of the permutation `indices`: NHWC f32 images and labels.
    pub fn gather(
        pixels: &[u8],
        labels: &[u8],
        hwc: (usize, usize, usize),
        indices: &[u32],
        base: usize,
        batch: usize,
    ) -> (Vec<f32>, Vec<u32>) {
        let (h, w, c) = hwc;
        let mut x = vec![0.0; batch * h * w * c];
        let mut y = vec![0; batch];
        gather_into(
            pixels,
            labels,
            hwc,
            &indices[base..base + batch],
            &mut x,
            &mut y,
        );
        (x, y)
    }

    /// The images `indices` name into `x` (NHWC f32) and their labels into `y`.
    pub fn gather_into(
        pixels: &[u8],
        labels: &[u8],
        hwc: (usize, usize, usize),
        indices: &[u32],
        x: &mut [f32],
        y: &mut [u32],
    ) {
        let (h, w, c) = hwc;
        let image_bytes = h * w * c;
        for ((&idx, xi), yi) in indices.iter().zip(x.chunks_exact_mut(image_bytes)).zip(y) {
            let img = &pixels[idx as usize * image_bytes..][..image_bytes];
            let mut o = 0;
            for row in 0..h {
                for col in 0..w {
                    for ch in 0..c {
                        xi[o] = img[ch * h * w + row * w + col] as f32 * PIXEL_SCALE;
                        o += 1;
                    }
                }
            }
            *yi = labels[idx as usize] as u32;
        }
    }
}
