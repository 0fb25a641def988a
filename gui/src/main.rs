//! `prescale-gui [PATH] [--run] [--screenshot FILE]`: the workbench window.
//!
//! PATH opens a scenario file, a run folder or a sweep folder; `--run` runs the scenario at once;
//! `--screenshot FILE` writes the window to FILE (PNG) once nothing is running, then closes it (the CI's
//! real-window check under Xvfb); `--check-screenshot FILE` says whether such a file shows a drawn window
//! (exit 1 if it is blank).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Learned controllers (Bc, Neural) in a scenario need libtorch, as in `prescale-torch`.
    prescale::cli::install_torch();
    let mut path = None;
    let mut run = false;
    let mut screenshot = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--run" => run = true,
            "--check-screenshot" => {
                let Some(f) = args.next() else { return usage("--check-screenshot needs a FILE") };
                return match prescale_gui::check_screenshot(std::path::Path::new(&f)) {
                    Ok(what) => {
                        println!("{f}: {what}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {f}: {e:#}");
                        ExitCode::FAILURE
                    }
                };
            }
            "--screenshot" => match args.next() {
                Some(f) => screenshot = Some(PathBuf::from(f)),
                None => return usage("--screenshot needs a FILE"),
            },
            "-h" | "--help" => {
                println!("usage: prescale-gui [PATH] [--run] [--screenshot FILE]");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') => return usage(&format!("unknown flag {s}")),
            s if path.is_none() => path = Some(PathBuf::from(s)),
            s => return usage(&format!("one PATH only (got a second: {s})")),
        }
    }
    if let Some(p) = &path
        && !p.exists()
    {
        eprintln!("error: {}: no such file or folder", p.display());
        return ExitCode::from(2);
    }
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: eframe::egui::ViewportBuilder::default().with_inner_size([1400.0, 900.0]).with_title("prescale"),
        // A screenshot run leaves the user's remembered state alone.
        persist_window: screenshot.is_none(),
        ..Default::default()
    };
    let result = eframe::run_native(
        "prescale",
        options,
        Box::new(move |cc| {
            let mut app = if screenshot.is_some() {
                prescale_gui::Workbench::with(Default::default())
            } else {
                prescale_gui::Workbench::new(cc)
            };
            if let Some(p) = &path {
                app.open(p);
                if run {
                    app.start_run(&cc.egui_ctx);
                }
            }
            if let Some(f) = screenshot {
                app.screenshot_then_close(f);
            }
            Ok(Box::new(app))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the window could not be opened: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("error: {why}\nusage: prescale-gui [PATH] [--run] [--screenshot FILE]");
    ExitCode::from(2)
}
