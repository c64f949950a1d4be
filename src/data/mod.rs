//! The data layer: CIFAR-10 from disk (folder or archive) or the network,
//! as validated u8 images and labels.

pub mod cifar10;
pub mod download;
pub mod error;

pub use cifar10::{Cifar10, Split, CLASS_NAMES};
pub use error::DataError;
