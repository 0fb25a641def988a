//! The agents' tests through their public interface: the Kubernetes HPA against its documented behaviour, and
//! the reactive controllers. A module of the library's test binary (`src/lib.rs` includes it under
//! `cfg(test)`; one link of the crate instead of two).

mod hpa_documented;
mod reactive;
