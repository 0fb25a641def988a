//! The front end's libtorch side: training files (`train`), forecast evaluation (`forecast_eval`), and the gate
//! between the `prescale` and `prescale-torch` binaries (`gate`).

pub mod forecast_eval;
pub mod gate;
pub mod train;
