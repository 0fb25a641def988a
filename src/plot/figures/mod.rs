//! The figures themselves (plotters): one chart scaffold per kind, the common legend style, and PNG + SVG
//! written side by side.

mod chart;
mod run;
mod sweep;

pub(crate) use chart::{Colours, Overlay, both, register_font};
pub(crate) use run::{draw_overlay, draw_run};
pub(crate) use sweep::{draw_bars, draw_cdf, draw_coverage, draw_curve, draw_frontiers, draw_pareto, draw_whatif};

#[cfg(test)]
mod tests;
