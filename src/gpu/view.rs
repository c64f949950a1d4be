//! A byte range of a buffer, as kernels bind it. Whole buffers convert to a
//! view implicitly; the executor binds parameter tensors as ranges of one
//! packed buffer so that Adam updates all of them in one dispatch.

use std::num::NonZeroU64;

/// A byte range of a buffer.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Bytes; a multiple of the adapter's storage offset alignment.
    pub offset: u64,
    /// Bytes; a multiple of 16 so `array<vec4<f32>>` views are legal.
    pub size: u64,
}

impl<'a> View<'a> {
    /// Bytes `offset..offset + size` of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64, size: u64) -> Self {
        View {
            buffer,
            offset,
            size,
        }
    }

    /// One view from this one's start through the end of `later`, where
    /// both are in the same buffer and `later` starts no earlier.
    pub fn span_to(self, later: View<'a>) -> Option<View<'a>> {
        (std::ptr::eq(self.buffer, later.buffer) && later.offset >= self.offset).then(|| {
            View::new(
                self.buffer,
                self.offset,
                (later.offset + later.size - self.offset).max(self.size),
            )
        })
    }

    /// As a bind group resource.
    pub fn binding(self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: NonZeroU64::new(self.size),
        })
    }
}

impl<'a> From<&'a wgpu::Buffer> for View<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        View {
            buffer,
            offset: 0,
            size: buffer.size(),
        }
    }
}

/// Anything a kernel wrapper can bind as one storage buffer: a whole buffer
/// or a `View` of part of one. Wrappers take `impl Bind`, so callers pass
/// `&buffer` or a view alike.
pub trait Bind<'a>: Copy {
    /// The bound range.
    fn view(self) -> View<'a>;

    /// The bound range as a bind group resource.
    fn as_entire_binding(self) -> wgpu::BindingResource<'a> {
        self.view().binding()
    }

    /// Bytes bound.
    fn size(self) -> u64 {
        self.view().size
    }
}

impl<'a> Bind<'a> for &'a wgpu::Buffer {
    fn view(self) -> View<'a> {
        View::from(self)
    }
}

impl<'a> Bind<'a> for View<'a> {
    fn view(self) -> View<'a> {
        self
    }
}
