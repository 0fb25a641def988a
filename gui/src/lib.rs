//! `prescale-gui`, the workbench: a thin egui front end over the same library calls as the CLI. Open a
//! scenario, a run folder or a sweep folder; edit a scenario in a form generated from its structure, checked
//! by the library at every change; run it in the background (progress, cancel); watch linked time series; pin
//! a run and compare another against it; read a sweep's Pareto and what-if curves.
//!
//! - [`doc`]: the scenario being edited (form tree, RON text, the library's diagnostics).
//! - [`form`]: the generated form.
//! - [`runs`]: background runs and what the plots draw of a run.
//! - [`plots`]: the linked time series and the summary table.
//! - [`sweep`]: the sweep view.
//! - [`app`]: the workbench's state and frame; [`window`]: it in its own window (the binary's body).

pub mod app;
pub mod doc;
pub mod form;
pub mod plots;
pub mod runs;
pub mod sweep;
pub mod window;

pub use app::Workbench;

// The tests are modules of the library's one test binary (no integration-test binary: each would be another
// link of the whole GUI); they name the crate as users do.
#[cfg(test)]
extern crate self as prescale_gui;
#[cfg(test)]
mod tests;

use std::path::Path;

/// Writes an egui image as an RGBA PNG (screenshots).
///
/// # Errors
/// The file cannot be written.
pub fn write_png(file: &Path, image: &eframe::egui::ColorImage) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, image.width() as u32, image.height() as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
        w.write_image_data(&rgba)?;
    }
    let tmp = file.with_extension("png.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

/// Whether a screenshot shows a drawn window rather than a blank one: decodes the PNG and counts its distinct
/// colours and the pixels that differ from the most common (background) colour. A blank or single-colour
/// frame fails; the workbench with a run drawn has hundreds of colours (text anti-aliasing, plot lines).
///
/// # Errors
/// An unreadable PNG, or a blank one (with the counts).
pub fn check_screenshot(file: &Path) -> anyhow::Result<String> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file)?));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or_else(|| anyhow::anyhow!("image too large"))?];
    let info = reader.next_frame(&mut buf)?;
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(p).or_default() += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let drawn = pixels.len() - background;
    let what = format!(
        "{}x{}, {} distinct colours, {:.1} % of pixels drawn over the background",
        info.width,
        info.height,
        counts.len(),
        100.0 * drawn as f64 / pixels.len().max(1) as f64
    );
    if counts.len() < 50 || drawn * 100 < pixels.len() {
        anyhow::bail!("blank: {what}");
    }
    Ok(what)
}
