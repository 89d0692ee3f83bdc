//! The Kubernetes adapter: Pod objects in and out. Decoding (`decode`) turns a Pod
//! manifest into the runtime's `PodSpec`, with field paths in every error; encoding
//! (`encode`) turns a `PodSpec` and its status back into a Pod object. Nothing else in
//! the launcher knows Kubernetes' wire format.

pub mod decode;
pub mod encode;

pub use decode::{parse, read, ManifestError};
pub use encode::{pod_manifest, pod_object, PIDS_ANNOTATION};
