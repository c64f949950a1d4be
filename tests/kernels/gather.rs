use gdl_gpu::kernels::gather::{self, cpu, GpuDataset};
use gdl_gpu::kernels::step::StepUniform;
use gdl_gpu::util::Rng;
use gdl_gpu::GpuError;

use crate::common::*;

struct Data {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    hwc: (usize, usize, usize),
}

fn synthetic(rng: &mut Rng, len: usize, hwc: (usize, usize, usize)) -> Data {
    let bytes = hwc.0 * hwc.1 * hwc.2;
    Data {
        pixels: (0..len * bytes).map(|_| rng.below(256) as u8).collect(),
        labels: (0..len).map(|_| rng.below(10) as u8).collect(),
        hwc,
    }
}

/// Gathers `batch` images at `base` of `indices` on both sides: exact equality
/// (both multiply the same integer by the same f32 constant).
fn check(case: &str, ds: &GpuDataset, data: &Data, indices: &[u32], base: usize, batch: usize) {
    let gpu = gpu();
    let (h, w, c) = data.hwc;
    let n = batch * h * w * c;
    let ib = gpu.upload_storage("indices", indices).unwrap();
    let sb = gpu
        .uniform("step", &StepUniform::new(base as u32, 0, 0))
        .unwrap();
    let xb = upload(&vec![f32::NAN; n]);
    let lb = gpu
        .upload_storage("labels", &vec![u32::MAX; batch])
        .unwrap();
    let d = gather::gather(gpu, ds, batch, &ib, &sb, &xb, &lb).unwrap();
    gpu.run("gather", &[&d]).unwrap();
    let (x, y) = cpu::gather(&data.pixels, &data.labels, data.hwc, indices, base, batch);
    assert_close(case, &read(&xb, n), &x, 0.0, 0.0);
    assert_eq!(gpu.read::<u32>(&lb, batch).unwrap(), y, "labels {case}");
}

#[test]
fn gather_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(41);
    // CIFAR's shape and others of the quad path (planes of 4k pixels, 1..4
    // channels), then the general path: odd planes, images that are not
    // whole words, 5 channels.
    let shapes = [
        (32usize, 32usize, 3usize),
        (2, 2, 1),
        (2, 6, 2),
        (4, 3, 4),
        (5, 3, 3),
        (1, 1, 1),
        (7, 5, 2),
        (2, 2, 5),
    ];
    for &hwc in &shapes {
        let len = 61;
        let data = synthetic(&mut rng, len, hwc);
        let ds = GpuDataset::upload(gpu, &data.pixels, &data.labels, hwc.0, hwc.1, hwc.2).unwrap();
        assert_eq!((ds.len(), ds.chunks()), (len, 1));
        let mut perm: Vec<u32> = (0..len as u32).collect();
        rng.shuffle(&mut perm);
        for &(base, batch) in &[
            (0usize, 1usize),
            (0, 32),
            (5, 13),
            (60, 1),
            (0, 61),
            (17, 31),
        ] {
            check(
                &format!("{hwc:?} base={base} batch={batch}"),
                &ds,
                &data,
                &perm,
                base,
                batch,
            );
        }
    }
}

#[test]
fn gather_across_chunks() {
    let gpu = gpu();
    let mut rng = Rng::new(42);
    let hwc = (32, 32, 3);
    let image = 3072u64;
    let len = 103;
    let data = synthetic(&mut rng, len, hwc);
    // 30 images per chunk at most: 4 chunks (26 images each after balancing).
    let ds = GpuDataset::upload_with_chunk_limit(
        gpu,
        &data.pixels,
        &data.labels,
        32,
        32,
        3,
        30 * image + 100,
    )
    .unwrap();
    assert_eq!(ds.chunks(), 4);
    let ipc = ds.images_per_chunk() as u32;
    // Indices that hit every chunk, including each chunk's first and last image.
    let mut idx: Vec<u32> = (0..4).flat_map(|k| [k * ipc, k * ipc + ipc - 1]).collect();
    idx.retain(|&i| (i as usize) < len);
    idx.push(len as u32 - 1);
    let mut rest: Vec<u32> = (0..len as u32).collect();
    rng.shuffle(&mut rest);
    idx.extend(rest);
    let last = idx.len() - len;
    for &(base, batch) in &[(0usize, 9usize), (0, 1), (3, 37), (50, 61), (last, len)] {
        check(
            &format!("4 chunks base={base} batch={batch}"),
            &ds,
            &data,
            &idx,
            base,
            batch,
        );
    }
    // Two and three chunks (unused slots bound to chunk 0).
    for (limit, chunks) in [(60 * image, 2), (40 * image, 3)] {
        let ds =
            GpuDataset::upload_with_chunk_limit(gpu, &data.pixels, &data.labels, 32, 32, 3, limit)
                .unwrap();
        assert_eq!(ds.chunks(), chunks);
        check(&format!("{chunks} chunks"), &ds, &data, &idx, 1, 101);
    }
}

#[test]
fn gather_rejects_bad_datasets() {
    let gpu = gpu();
    let pixels = vec![0u8; 10 * 12];
    let labels = vec![0u8; 10];
    // Wrong pixel count.
    let e = GpuDataset::upload(gpu, &pixels[1..], &labels, 2, 2, 3)
        .err()
        .unwrap();
    assert!(matches!(e, GpuError::InvalidInput { .. }), "{e}");
    // Empty.
    let e = GpuDataset::upload(gpu, &[], &[], 2, 2, 3).err().unwrap();
    assert!(matches!(e, GpuError::InvalidInput { .. }), "{e}");
    // More than four chunks' worth, and an image larger than a chunk.
    for limit in [2 * 12, 8] {
        let e = GpuDataset::upload_with_chunk_limit(gpu, &pixels, &labels, 2, 2, 3, limit)
            .err()
            .unwrap();
        assert!(matches!(e, GpuError::BufferTooLarge { .. }), "{e}");
    }
}

#[test]
fn cifar_sized_dataset_fits_in_chunks() {
    // The real training set's size: 50,000 CHW images of 3,072 bytes
    // (153.6 MB), more than lavapipe's 128 MiB per binding.
    let gpu = gpu();
    let (len, image) = (50_000usize, 3072usize);
    let pixels: Vec<u8> = (0..len * image)
        .map(|i| (i / image * 7 + i % 251) as u8)
        .collect();
    let labels: Vec<u8> = (0..len).map(|i| (i % 10) as u8).collect();
    let ds = GpuDataset::upload(gpu, &pixels, &labels, 32, 32, 3).unwrap();
    let limit = gpu.limits.max_storage_buffer_binding_size as usize;
    assert_eq!(ds.chunks(), (len * image).div_ceil(limit / image * image));
    let data = Data {
        pixels,
        labels,
        hwc: (32, 32, 3),
    };
    // The first and last image of every chunk, and a few more.
    let ipc = ds.images_per_chunk() as u32;
    let mut idx: Vec<u32> = (0..ds.chunks() as u32)
        .flat_map(|k| [k * ipc, (k * ipc + ipc - 1).min(len as u32 - 1)])
        .collect();
    idx.extend([1, 24_999, 25_000, 37_123, 49_999]);
    check("cifar-sized", &ds, &data, &idx, 0, idx.len());
}
