//! The agents' integration tests, as one test binary: the Kubernetes HPA against its documented behaviour, and
//! the reactive controllers.

mod hpa_documented;
mod reactive;
