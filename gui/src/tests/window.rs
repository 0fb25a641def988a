//! The workbench in a real window, as `prescale-gui` opens it: the flash crowd opened and run, a screenshot of
//! the window written once nothing runs, the window closed; the screenshot must show a drawn window. It needs a
//! display, so it is ignored by `cargo test`; `scripts/gui-window.sh` runs it under Xvfb (CI's gui-window step),
//! naming the screenshot file in `PRESCALE_GUI_SCREENSHOT`.

use std::path::PathBuf;

#[test]
#[ignore = "opens a window: scripts/gui-window.sh runs it under Xvfb"]
fn a_real_window_under_xvfb() {
    let file = std::env::var_os("PRESCALE_GUI_SCREENSHOT")
        .map(PathBuf::from)
        .expect("PRESCALE_GUI_SCREENSHOT names the screenshot to write (scripts/gui-window.sh sets it)");
    assert!(std::env::var_os("DISPLAY").is_some(), "a display (DISPLAY) to open the window on");
    // As the binary does: learned controllers' model directories are checked with libtorch.
    prescale::cli::install_torch();
    let args = ["../scenarios/flash-crowd.ron", "--run", "--screenshot", &file.display().to_string()].map(String::from);
    let _ = crate::window::main(args);
    assert!(file.is_file(), "the window wrote no screenshot to {}", file.display());
    let what = crate::check_screenshot(&file).unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    println!("{}: {what}", file.display());
}
