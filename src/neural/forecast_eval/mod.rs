//! `prescale forecast-eval`: forecast accuracy of the neural architectures and the classical predictors on
//! real traces, by the rolling-origin protocol of `../shared/peers/forecast_baselines.py` (statsforecast), so
//! the figures stand beside the peers':
//!
//! * the series on a regular grid at its median interval `Δ` (mean per bin, gaps interpolated);
//! * season `m = round(1 day / Δ)`; 24 forecast origins `round(1 h / Δ)` steps apart, the last one `15` steps
//!   before the end; at each origin every model forecasts steps `1..=15`; for horizon `h` the absolute errors of
//!   steps `1..=h` of all origins are pooled (MAE);
//! * MASE = MAE / the in-sample MAE of the seasonal naive forecast (lag `m`) on the data before the first
//!   origin (Hyndman & Koehler 2006).
//!
//! Refits (`--refit`): `once` (default) runs the classical predictors online over all history before each
//! origin (Holt-Winters fits its smoothing parameters on the first four seasons) and trains each network once
//! on the data before the first origin (the last 15 % of it for early stopping), then only reads its input
//! window at each origin. `every-origin` refits as the peers do: at each origin the classical predictors start
//! afresh on the sliding window before it (`--refit-window-s`, 3 days as the peers'; Holt-Winters fits its
//! parameters on it), and each network is trained anew on all the data before the origin — 24 trainings per
//! network. `fine-tune` trains each network once as `once` does, then at each origin fine-tunes it on the
//! window before the origin (`--fine-tune-window-s`, 1 day; `--fine-tune-steps` full-batch Adam steps, 20, at
//! `--fine-tune-learning-rate`, 5e-4) before forecasting — the online fine-tuning a `Neural` predictor does in
//! simulation, by the same function. Networks named `NAME-window` (`gru-window`, …) scale inputs and outputs
//! by each window's mean rate (`level: Window`), so a level shift after training leaves their inputs in the
//! range they were trained on. `--horizons` chooses the horizons (default 1, 5, 15 steps); origins keep the largest one inside
//! the series.

mod evaluate;
#[cfg(feature = "torch")]
mod networks;
mod options;
mod protocol;
mod report;

pub use evaluate::evaluate;
#[cfg(feature = "torch")]
pub use networks::NETWORKS;
pub use options::{CLASSICAL, DEFAULT_MODELS, EvalOptions, MODELS, NetworkEval, PointForecast, Refit, Row};
pub use protocol::{HORIZONS, Series, default_column, load, protocol, seasonal_naive_mae, split_column};
pub use report::{CSV_HEADER, Report, default_traces, run};
