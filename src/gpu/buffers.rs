//! Buffer creation with the adapter's limits checked up front, a pool keyed
//! by (size, usage), and one helper each for upload and readback.

use std::collections::HashMap;
use std::sync::Mutex;

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use super::error::{GpuError, Result};
use super::Gpu;

/// Usages of every storage buffer: bindable, copyable both ways.
pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

#[derive(Default)]
pub(super) struct BufferPool {
    free: Mutex<HashMap<(u64, u32), Vec<wgpu::Buffer>>>,
}

/// Storage bindings of `array<vec4<f32>>` need sizes in whole vec4s; rounding
/// every allocation up to 16 bytes lets any buffer be viewed either way.
pub fn padded(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

impl Gpu {
    fn check_size(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> Result<()> {
        if size > self.limits.max_buffer_size {
            return Err(GpuError::BufferTooLarge {
                label: label.to_owned(),
                size,
                limit: self.limits.max_buffer_size,
                which: "max_buffer_size",
            });
        }
        if usage.contains(wgpu::BufferUsages::STORAGE)
            && size > self.limits.max_storage_buffer_binding_size
        {
            return Err(GpuError::BufferTooLarge {
                label: label.to_owned(),
                size,
                limit: self.limits.max_storage_buffer_binding_size,
                which: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// A zeroed buffer of at least `bytes` bytes (rounded up to 16).
    pub fn buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let size = padded(bytes);
        self.check_size(label, size, usage)?;
        self.scoped(&format!("allocating {label}"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// A zeroed storage buffer (readable, writable, copyable).
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.buffer(label, bytes, STORAGE)
    }

    /// A buffer holding `data`, padded with zeros to a multiple of 16 bytes.
    pub fn upload<T: Pod>(
        &self,
        label: &str,
        data: &[T],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let size = padded(bytes.len() as u64);
        self.check_size(label, size, usage)?;
        let mut contents = bytes.to_vec();
        contents.resize(size as usize, 0);
        self.scoped(&format!("uploading {label}"), || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &contents,
                    usage,
                })
        })
    }

    /// A storage buffer holding `data`, padded to a multiple of 16 bytes.
    pub fn upload_storage<T: Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        self.upload(label, data, STORAGE)
    }

    /// A uniform buffer holding one parameter struct.
    pub fn uniform<T: Pod>(&self, label: &str, value: &T) -> Result<wgpu::Buffer> {
        self.upload(
            label,
            std::slice::from_ref(value),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// Overwrites the start of `buffer` with `data` (ordered before the next submit).
    pub fn write<T: Pod>(&self, buffer: &wgpu::Buffer, data: &[T]) {
        self.queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(data));
    }

    /// Copies the first `count` elements of `buffer` back to the host.
    pub fn read<T: Pod>(&self, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<T>> {
        Ok(self
            .read_many(&[(buffer, count)])?
            .pop()
            .expect("one part read"))
    }

    /// Copies the first `count` elements of each buffer back to the host in
    /// one readback (one submit, one wait, one mapping): each readback
    /// stalls the queue, so a checkpoint's four tensors share one.
    pub fn read_many<T: Pod>(&self, parts: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<T>>> {
        let label = parts
            .iter()
            .map(|(b, _)| format!("{b:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Each part at a 4-byte-aligned offset, as copies require.
        let bytes: Vec<u64> = parts
            .iter()
            .map(|&(_, count)| (count * std::mem::size_of::<T>()) as u64)
            .collect();
        let mut offsets = Vec::with_capacity(parts.len());
        let mut size = 0u64;
        for &b in &bytes {
            offsets.push(size);
            size += b.div_ceil(4) * 4;
        }
        if size == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        // Readbacks recur (metrics every 50 steps, each evaluation), so the
        // staging buffer comes from the pool and goes back to it.
        let staging = self.take(
            "readback",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut enc = self.encoder("readback");
        for ((&(buffer, _), &b), &off) in parts.iter().zip(&bytes).zip(&offsets) {
            if b > 0 {
                enc.copy_buffer_to_buffer(buffer, 0, &staging, off, b.div_ceil(4) * 4);
            }
        }
        self.submit("readback copy", enc)?;
        self.readbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = futures::channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        pollster::block_on(rx)
            .map_err(|e| GpuError::Readback {
                label: label.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| GpuError::Readback {
                label: label.clone(),
                message: e.to_string(),
            })?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback {
                label: label.clone(),
                message: e.to_string(),
            })?;
        // The mapped bytes need not be aligned for T; copy through a Vec<T>.
        let out = parts
            .iter()
            .zip(&bytes)
            .zip(&offsets)
            .map(|((&(_, count), &b), &off)| {
                let mut v = vec![T::zeroed(); count];
                bytemuck::cast_slice_mut::<T, u8>(&mut v)
                    .copy_from_slice(&view[off as usize..(off + b) as usize]);
                v
            })
            .collect();
        drop(view);
        staging.unmap();
        self.give(staging);
        Ok(out)
    }

    /// Reads the first `count` f32s of `buffer`; waits for the GPU.
    pub fn read_f32(&self, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<f32>> {
        self.read(buffer, count)
    }

    /// A buffer of at least `bytes` bytes with this usage from the pool
    /// (contents unspecified), or a new one.
    pub fn take(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let size = padded(bytes);
        let key = (size, usage.bits());
        if let Some(b) = self
            .pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
            .and_then(Vec::pop)
        {
            return Ok(b);
        }
        self.buffer(label, size, usage)
    }

    /// Returns a buffer from `take` to the pool.
    pub fn give(&self, buffer: wgpu::Buffer) {
        let key = (buffer.size(), buffer.usage().bits());
        self.pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .push(buffer);
    }
}
