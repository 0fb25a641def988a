//! `report.md` of a sweep: per scenario and axis values, the controllers (baseline first, then the
//! experiment's order) with means and 95 % Student-t intervals over seeds; against the baseline, paired
//! differences and ratios on the same seeds; and, for controller families, the equal-cost comparison
//! ([`crate::lab::frontier`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::lab::experiment::ExperimentConfig;
use crate::lab::stats::mean_ci95;
use crate::lab::sweep::tables::Row;
use prescale_agents::ControllerConfig;

/// The metrics the report summarises.
pub(crate) const METRICS: [&str; 7] = [
    "slo_violation_minutes",
    "slo_violation_request_fraction",
    "cost_usd",
    "over_provisioning_core_hours",
    "under_provisioning_core_hours",
    "latency_p99_s",
    "scaling_actions",
];

/// The metrics of a report of `rows`: [`METRICS`], and where the scenarios price violated minutes, the total
/// cost with them (`total_cost_usd`) after the bill.
fn metrics_of(rows: &[Row<'_>]) -> Vec<&'static str> {
    let priced = rows.iter().any(|r| r.summary.get("total_cost_usd").and_then(Value::as_f64).is_some());
    let mut m = METRICS.to_vec();
    if priced {
        let at = m.iter().position(|x| *x == "cost_usd").map_or(m.len(), |i| i + 1);
        m.insert(at, "total_cost_usd");
    }
    m
}

fn fmt_ci(m: f64, hw: f64) -> String {
    if hw.is_nan() { format!("{m:.4}") } else { format!("{m:.4} ± {hw:.4}") }
}

/// A group of cells that differ only by controller and seed: scenario file and axis values.
type GroupKey = (String, Vec<String>);

/// A table comparing each controller with the baseline seed by seed: per metric, `combine(other, baseline)`
/// over the pairs (`None` leaves a pair out), as mean ± 95 % CI.
fn paired_table(
    out: &mut String,
    heading: &str,
    by_controller: &[(&String, &Vec<&Row<'_>>)],
    base: (&String, &Vec<&Row<'_>>),
    metrics: &[&str],
    combine: impl Fn(f64, f64) -> Option<f64>,
) {
    let _ = writeln!(out, "\n{heading}\n");
    let _ = writeln!(out, "| controller | pairs | {} |", metrics.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(metrics.len()));
    for (c, rs) in by_controller {
        if *c == base.0 {
            continue;
        }
        let pairs = paired(rs, base.1);
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| {
                let xs: Vec<f64> = pairs
                    .iter()
                    .filter_map(|(r, b)| combine(metric(r, m), metric(b, m)))
                    .filter(|x| x.is_finite())
                    .collect();
                let (mean, hw) = mean_ci95(&xs);
                fmt_ci(mean, hw)
            })
            .collect();
        let _ = writeln!(out, "| {c} | {} | {} |", pairs.len(), cells.join(" | "));
    }
}

/// A run's figure `m` from its summary (NaN if it has none).
fn metric(r: &Row<'_>, m: &str) -> f64 {
    r.summary.get(m).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// The runs of `rs` with the baseline's run of the same seed.
fn paired<'a, 'r>(rs: &[&'a Row<'r>], base: &[&'a Row<'r>]) -> Vec<(&'a Row<'r>, &'a Row<'r>)> {
    rs.iter().filter_map(|r| base.iter().find(|b| b.cell.seed == r.cell.seed).map(|b| (*r, *b))).collect()
}

pub(crate) fn report(cfg: &ExperimentConfig, rows: &[Row<'_>]) -> String {
    // Groups: scenario + axis values (the "cell" without controller and seed), then controller.
    let mut groups: BTreeMap<GroupKey, BTreeMap<String, Vec<&Row<'_>>>> = BTreeMap::new();
    let metrics = metrics_of(rows);
    let mut order: Vec<GroupKey> = Vec::new();
    for r in rows {
        let key = (
            r.cell.scenario_file.display().to_string(),
            r.cell.axis_values.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        );
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().entry(r.cell.controller.clone()).or_default().push(r);
    }
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n\n{}\n", cfg.name, cfg.description);
    let _ =
        writeln!(out, "Means over seeds with 95 % Student-t confidence intervals (`mean ± half-width`, n = seeds).\n");
    // Sections are titled by the scenario file's stem, or its path where two files share a stem.
    let stem = |f: &str| Path::new(f).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let title = |f: &str| {
        let shared = order.iter().any(|(g, _)| g != f && stem(g) == stem(f));
        if shared { f.to_string() } else { stem(f) }
    };
    // Controllers in the experiment's order, the baseline first (a scenario's own controller: by name).
    let rank = |c: &str| {
        let listed = cfg.controllers.iter().position(|n| n.name == c).unwrap_or(usize::MAX);
        (cfg.baseline.as_deref() != Some(c), listed, c.to_string())
    };
    for key in &order {
        let mut by_controller: Vec<(&String, &Vec<&Row<'_>>)> = groups[key].iter().collect();
        by_controller.sort_by_key(|(c, _)| rank(c));
        let axes: Vec<String> = cfg.axes.iter().zip(&key.1).map(|(a, v)| format!("`{}` = `{v}`", a.path)).collect();
        let _ = writeln!(
            out,
            "## {}{}\n",
            title(&key.0),
            if axes.is_empty() { String::new() } else { format!(" — {}", axes.join(", ")) }
        );
        let _ = writeln!(out, "| controller | n | {} |", metrics.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(metrics.len()));
        for (c, rs) in &by_controller {
            let cells: Vec<String> = metrics
                .iter()
                .map(|m| {
                    let xs: Vec<f64> = rs.iter().map(|r| metric(r, m)).filter(|x| x.is_finite()).collect();
                    let (mean, hw) = mean_ci95(&xs);
                    fmt_ci(mean, hw)
                })
                .collect();
            let _ = writeln!(out, "| {c} | {} | {} |", rs.len(), cells.join(" | "));
        }
        let base =
            cfg.baseline.as_ref().and_then(|b| by_controller.iter().find(|(c, _)| *c == b).map(|(_, rs)| (b, *rs)));
        if let Some(base) = base {
            let heading = format!("Paired differences against `{}` on the same seeds (other − baseline):", base.0);
            paired_table(&mut out, &heading, &by_controller, base, &metrics, |o, b| Some(o - b));
            let heading = format!(
                "Ratios to `{}` on the same seeds (other / baseline, the mean of the per-seed ratios; a seed where the \
                 baseline's figure is 0 is left out):",
                base.0
            );
            paired_table(&mut out, &heading, &by_controller, base, &metrics, |o, b| (b != 0.0).then(|| o / b));
        }
        blocks_table(&mut out, &by_controller, base.map(|b| b.0.as_str()));
        if let Some(base) = base {
            equal_cost_section(&mut out, cfg, &by_controller, base.0);
        }
        out.push('\n');
    }
    out
}

/// A controller's figure `m` in time block `b`, the mean over its runs (seeds) that have the block.
fn block_mean(rs: &[&Row<'_>], b: usize, m: &str) -> Option<f64> {
    let xs: Vec<f64> =
        rs.iter().filter_map(|r| r.blocks.get(b).and_then(|x| x.get(m)).and_then(Value::as_f64)).collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The number of time blocks every run of the group has (0 when some run has none).
fn common_blocks(by_controller: &[(&String, &Vec<&Row<'_>>)]) -> usize {
    by_controller.iter().flat_map(|(_, rs)| rs.iter().map(|r| r.blocks.len())).min().unwrap_or(0)
}

/// The block table: each controller's SLO minutes and cost per time block of the scored period (each block
/// the mean over seeds), mean ± 95 % CI over the blocks, and the per-block ratios to the baseline — the
/// variation across test windows, where seeds of a trace replay vary only the simulation's own noise.
fn blocks_table(out: &mut String, by_controller: &[(&String, &Vec<&Row<'_>>)], base: Option<&str>) {
    let n = common_blocks(by_controller);
    if n < 2 {
        return;
    }
    let metrics = ["slo_violation_minutes", "cost_usd"];
    let base_rows = base.and_then(|b| by_controller.iter().find(|(c, _)| c.as_str() == b).map(|(_, rs)| *rs));
    let _ = writeln!(
        out,
        "\nOver {n} time blocks of the scored period (each block: the mean over seeds; mean ± 95 % CI over the \
         blocks{}):\n",
        if base.is_some() {
            "; ratios to the baseline block by block, a block where the baseline's figure is 0 left out"
        } else {
            ""
        }
    );
    let ratio_heads = if base_rows.is_some() { " | SLO minutes / baseline | cost / baseline" } else { "" };
    let _ = writeln!(out, "| controller | blocks | SLO minutes per block | cost per block (USD){ratio_heads} |");
    let _ = writeln!(out, "|---|---|---|---|{}", if base_rows.is_some() { "---|---|" } else { "" });
    for (c, rs) in by_controller {
        let mut cells = Vec::new();
        for m in metrics {
            let xs: Vec<f64> = (0..n).filter_map(|b| block_mean(rs, b, m)).collect();
            let (mean, hw) = mean_ci95(&xs);
            cells.push(fmt_ci(mean, hw));
        }
        if let Some(br) = base_rows {
            for m in metrics {
                let xs: Vec<f64> = (0..n)
                    .filter_map(|b| Some((block_mean(rs, b, m)?, block_mean(br, b, m)?)))
                    .filter(|(_, y)| *y != 0.0)
                    .map(|(x, y)| x / y)
                    .collect();
                let (mean, hw) = mean_ci95(&xs);
                cells.push(if xs.is_empty() {
                    "–".into()
                } else {
                    format!("{} (n = {})", fmt_ci(mean, hw), xs.len())
                });
            }
        }
        let _ = writeln!(out, "| {c} | {n} | {} |", cells.join(" | "));
    }
}

/// The equal-cost comparison of a group's controller families (see [`crate::lab::frontier`]): per seed, each
/// family's frontier read at every baseline-family member's cost and SLO minutes, as ratios to that member,
/// mean ± 95 % CI over the seeds where the reading lies within the family's range. Written only when some
/// family has two members or more (a single point cannot be read at another cost). With a hindsight expert in
/// the group, each family is also read at the expert's SLO minutes: the expert knows the future demand, so its
/// cost is the floor, and the ratio says how close a family comes to it. Where the runs have time blocks, each
/// reading is also made block by block (each block's figures the means over seeds), with CIs over the blocks.
///
/// Why one function: one table, read over seeds and then over blocks by the same frontier readings; the two
/// passes share the families, the baseline's points and the expert's, which a split would pass around.
fn equal_cost_section(
    out: &mut String,
    cfg: &ExperimentConfig,
    by_controller: &[(&String, &Vec<&Row<'_>>)],
    base: &str,
) {
    use crate::lab::frontier::{frontier, ratios_at};
    let entry = |c: &str| cfg.controllers.iter().find(|n| n.name == c);
    let is_expert = |c: &str| entry(c).is_some_and(|n| n.controller == ControllerConfig::HindsightExpert);
    let family = |c: &str| cfg.family_of(c);
    let mut families: Vec<String> = Vec::new();
    for (c, _) in by_controller {
        let f = family(c);
        if !families.contains(&f) && !is_expert(c) {
            families.push(f);
        }
    }
    let members = |f: &str| by_controller.iter().filter(|(c, _)| family(c) == f).count();
    if families.iter().all(|f| members(f) < 2) {
        return;
    }
    let base_family = family(base);
    let mut seeds: Vec<u64> = by_controller.iter().flat_map(|(_, rs)| rs.iter().map(|r| r.cell.seed)).collect();
    seeds.sort_unstable();
    seeds.dedup();
    // Per seed, a family's points.
    let points = |f: &str, seed: u64| -> Vec<(f64, f64)> {
        by_controller
            .iter()
            .filter(|(c, _)| family(c) == f)
            .flat_map(|(_, rs)| rs.iter().filter(|r| r.cell.seed == seed))
            .map(|r| (metric(r, "cost_usd"), metric(r, "slo_violation_minutes")))
            .collect()
    };
    // Family `f` read, seed by seed, at the controller `reference`'s own point: (SLO minutes at its cost,
    // cost at its SLO minutes), each as a ratio to the reference's figure.
    let read = |f: &str, reference: &str| {
        let (mut slo_ratio, mut cost_ratio) = (Vec::new(), Vec::new());
        for &seed in &seeds {
            let Some(row) = by_controller
                .iter()
                .find(|(c, _)| *c == reference)
                .and_then(|(_, rs)| rs.iter().find(|r| r.cell.seed == seed))
            else {
                continue;
            };
            let at = (metric(row, "cost_usd"), metric(row, "slo_violation_minutes"));
            let (s, c) = ratios_at(&frontier(&points(f, seed)), at);
            slo_ratio.extend(s);
            cost_ratio.extend(c);
        }
        (slo_ratio, cost_ratio)
    };
    // The same reading over time blocks: each member's and the reference's block figures (means over seeds).
    let n_blocks = common_blocks(by_controller);
    let read_blocks = |f: &str, reference: &str| {
        let (mut slo_ratio, mut cost_ratio) = (Vec::new(), Vec::new());
        let rows_of = |c: &str| by_controller.iter().find(|(x, _)| x.as_str() == c).map(|(_, rs)| *rs);
        let Some(rr) = rows_of(reference) else { return (slo_ratio, cost_ratio) };
        for b in 0..n_blocks {
            let point =
                |rs: &[&Row<'_>]| Some((block_mean(rs, b, "cost_usd")?, block_mean(rs, b, "slo_violation_minutes")?));
            let Some(at) = point(rr) else { continue };
            let members: Vec<(f64, f64)> =
                by_controller.iter().filter(|(c, _)| family(c) == f).filter_map(|(_, rs)| point(rs)).collect();
            let (s, c) = ratios_at(&frontier(&members), at);
            slo_ratio.extend(s);
            cost_ratio.extend(c);
        }
        (slo_ratio, cost_ratio)
    };
    let show = |xs: &[f64]| {
        if xs.is_empty() {
            "–".to_string()
        } else {
            let (m, h) = mean_ci95(xs);
            fmt_ci(m, h)
        }
    };
    let _ = writeln!(
        out,
        "\nEqual-cost comparison with the `{base_family}` family (per seed, each family's cost–SLO frontier read at a \
         baseline member's cost and at its SLO minutes, as ratios to that member; n = seeds where the reading lies \
         within the family's range):\n"
    );
    let blocks = n_blocks >= 2;
    let _ = writeln!(
        out,
        "| family | members | baseline member | SLO minutes at equal cost (ratio) | n |{} cost at equal SLO minutes (ratio) | n |{}",
        if blocks { " over time blocks | n |" } else { "" },
        if blocks { " over time blocks | n |" } else { "" }
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|{}", if blocks { "---|---|---|---|" } else { "" });
    let base_members: Vec<&String> =
        by_controller.iter().filter(|(c, _)| family(c) == base_family).map(|(c, _)| *c).collect();
    for f in families.iter().filter(|f| **f != base_family) {
        for b in &base_members {
            let (slo_ratio, cost_ratio) = read(f, b);
            let (slo_blocks, cost_blocks) = if blocks { read_blocks(f, b) } else { (Vec::new(), Vec::new()) };
            let by_block = |xs: &[f64]| if blocks { format!(" {} | {} |", show(xs), xs.len()) } else { String::new() };
            let _ = writeln!(
                out,
                "| {f} | {} | {b} | {} | {} |{} {} | {} |{}",
                members(f),
                show(&slo_ratio),
                slo_ratio.len(),
                by_block(&slo_blocks),
                show(&cost_ratio),
                cost_ratio.len(),
                by_block(&cost_blocks)
            );
        }
    }
    // A reference's cost ratios over time blocks as two more table cells (none without blocks).
    let cost_over_blocks = |f: &str, reference: &str| {
        if blocks {
            let (_, c) = read_blocks(f, reference);
            format!(" {} | {} |", show(&c), c.len())
        } else {
            String::new()
        }
    };
    for (expert, _) in by_controller.iter().filter(|(c, _)| is_expert(c)) {
        let _ = writeln!(
            out,
            "\nThe cost floor: `{expert}` (the hindsight expert, which knows the future demand). Each family's cost at \
             the expert's SLO minutes, as a ratio to the expert's cost (per seed; n = seeds where the expert's SLO \
             minutes lie within the family's range):\n"
        );
        let _ = writeln!(
            out,
            "| family | members | cost at the expert's SLO minutes (ratio) | n |{}",
            if blocks { " over time blocks | n |" } else { "" }
        );
        let _ = writeln!(out, "|---|---|---|---|{}", if blocks { "---|---|" } else { "" });
        for f in &families {
            let (_, cost_ratio) = read(f, expert);
            let by_block = cost_over_blocks(f, expert);
            let _ = writeln!(out, "| {f} | {} | {} | {} |{by_block}", members(f), show(&cost_ratio), cost_ratio.len());
        }
    }
    // A family of priced experts (`PricedHindsightExpert`, swept over the price of a violated minute) is the
    // expert's cost–SLO frontier: every other family is read at each of its points.
    let is_priced =
        |c: &str| entry(c).is_some_and(|n| matches!(n.controller, ControllerConfig::PricedHindsightExpert(_)));
    let mut priced_families: Vec<String> = Vec::new();
    for (c, _) in by_controller.iter().filter(|(c, _)| is_priced(c)) {
        if !priced_families.contains(&family(c)) {
            priced_families.push(family(c));
        }
    }
    for pf in &priced_families {
        let _ = writeln!(
            out,
            "\nThe expert's frontier: `{pf}` (the hindsight expert, which knows the future demand, planning at several \
             prices of a violated minute). Each family's cost at each of its points' SLO minutes, as a ratio to that \
             point's cost (per seed; n = seeds where the point's SLO minutes lie within the family's range):\n"
        );
        let _ = writeln!(
            out,
            "| family | members | expert | its SLO minutes | its cost (USD) | cost at its SLO minutes (ratio) | n |{}",
            if blocks { " over time blocks | n |" } else { "" }
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|{}", if blocks { "---|---|" } else { "" });
        let points: Vec<&(&String, &Vec<&Row<'_>>)> = by_controller.iter().filter(|(c, _)| family(c) == *pf).collect();
        for f in families.iter().filter(|f| *f != pf) {
            for (e, rows) in &points {
                let mean_of = |m: &str| rows.iter().map(|r| metric(r, m)).sum::<f64>() / rows.len().max(1) as f64;
                let (_, cost_ratio) = read(f, e);
                let by_block = cost_over_blocks(f, e);
                let _ = writeln!(
                    out,
                    "| {f} | {} | {e} | {:.1} | {:.2} | {} | {} |{by_block}",
                    members(f),
                    mean_of("slo_violation_minutes"),
                    mean_of("cost_usd"),
                    show(&cost_ratio),
                    cost_ratio.len()
                );
            }
        }
    }
}
