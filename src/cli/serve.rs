//! `prescale serve`: the live server, or a replay of its decisions over a Prometheus range.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::validate::controller_name;
use crate::neural::gate::require;

/// `prescale serve`.
pub(super) fn cmd_serve(
    file: &Path,
    replay: Option<(f64, f64)>,
    out: Option<&Path>,
    prometheus: Option<String>,
    listen: Option<String>,
    grpc_listen: Option<String>,
) -> Result<ExitCode> {
    let mut cfg =
        crate::live::config::load_serve(file).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?.config;
    let overridden = prometheus.is_some() || listen.is_some() || grpc_listen.is_some();
    if let Some(u) = prometheus {
        cfg.prometheus.url = u;
    }
    if let Some(a) = listen {
        cfg.listen = a;
    }
    if let Some(a) = grpc_listen {
        cfg.grpc_listen = a;
    }
    if overridden {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let flag = |p: &str| match p {
                "prometheus.url" => "--prometheus",
                "listen" => "--listen",
                "grpc_listen" => "--grpc-listen",
                _ => "",
            };
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    if flag(&p.path).is_empty() {
                        format!("{}: {p}", file.display())
                    } else {
                        format!("{}: {}", flag(&p.path), p.message)
                    }
                })
                .collect();
            bail!("{}", lines.join("\n"));
        }
    }
    if cfg.controller.model().is_some() {
        require("prescale serve with a learned model");
    }
    let Some((from, to)) = replay else {
        crate::live::serve::serve(cfg)?;
        return Ok(ExitCode::SUCCESS);
    };
    let Some(out) = out else { bail!("--replay needs --out FILE (where the decisions go)") };
    let r = crate::live::serve::replay(&cfg, from, to)?;
    crate::files::results::write_atomically(out, &crate::live::serve::ticks_csv(&r.ticks))?;
    let s = crate::live::serve::replay_summary(&r.ticks);
    println!(
        "{}: {} ticks ({} failed, {} unavailable) after {} history tick(s)",
        out.display(),
        s["ticks"],
        s["failed"],
        s["unavailable"],
        r.history_ticks
    );
    if cfg.mode == crate::live::config::Mode::Shadow {
        let c = &r.counterfactual;
        println!(
            "shadow: over {:.0} min the running replicas violated the SLO {:.1} min and cost {:.2} USD; {} would have \
             violated it {:.1} min (prevented {:.1}, caused {:.1}) and cost {:.2} USD",
            c.minutes,
            c.actual_violation_minutes,
            c.actual_cost_usd,
            controller_name(&cfg.controller),
            c.shadow_violation_minutes,
            c.prevented_minutes,
            c.caused_minutes,
            c.shadow_cost_usd
        );
    }
    Ok(ExitCode::SUCCESS)
}
