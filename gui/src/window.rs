//! The workbench in its own window (eframe on OpenGL): what `prescale-gui` runs. The binary installs
//! libtorch's side and hands its arguments to [`main`]; the real-window check (`scripts/gui-window.sh`) runs
//! the same function from the test build (`tests::window::a_real_window_under_xvfb`) under Xvfb, so that CI
//! does not link a second program of the GUI's size.

use std::path::PathBuf;
use std::process::ExitCode;

/// `prescale-gui [PATH] [--run] [--screenshot FILE]` with `args` its arguments (the program name left out).
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let mut path = None;
    let mut run = false;
    let mut screenshot = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--run" => run = true,
            "--check-screenshot" => {
                let Some(f) = args.next() else { return usage("--check-screenshot needs a FILE") };
                return match crate::check_screenshot(std::path::Path::new(&f)) {
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
        // The window may be opened from a thread other than the main one (the real-window check runs in a test
        // thread); on Linux, winit refuses that unless told.
        event_loop_builder: Some(Box::new(|b| {
            use winit::platform::x11::EventLoopBuilderExtX11 as _;
            b.with_any_thread(true);
        })),
        ..Default::default()
    };
    let result = eframe::run_native(
        "prescale",
        options,
        Box::new(move |cc| {
            let mut app = if screenshot.is_some() {
                crate::Workbench::with(Default::default())
            } else {
                crate::Workbench::new(cc)
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
