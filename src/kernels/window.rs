//! Sliding-window geometry shared by convolution and pooling: TensorFlow's
//! padding modes and the one copy of its output-size rule.

/// TensorFlow's padding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// out = ceil(in / stride); the padding total is split with the extra
    /// pixel at the bottom/right.
    Same,
    /// out = floor((in − k) / stride) + 1; no padding.
    Valid,
}

/// (output size, padding before) along one spatial axis, or `None` for a
/// "valid" window larger than the input (no output). TensorFlow's rule:
/// "same" pads a total of max((out − 1)·stride + k − in, 0), the smaller
/// half first.
pub fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = (out.saturating_sub(1) * stride + kernel).saturating_sub(input);
            Some((out, total / 2))
        }
        Padding::Valid => (input >= kernel).then(|| ((input - kernel) / stride + 1, 0)),
    }
}
