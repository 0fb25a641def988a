//! The package's binaries start. This integration test is also why `cargo test` builds them (cargo builds a
//! package's binaries for its integration tests): the tests proper are modules of the library's test binary
//! (`tests/main.rs`, included by `src/lib.rs`), which run the binaries built here (`common::exe`).

use std::process::Command;

#[test]
fn both_binaries_start_and_say_their_version() {
    for exe in [env!("CARGO_BIN_EXE_prescale"), env!("CARGO_BIN_EXE_prescale-torch")] {
        let o = Command::new(exe).arg("--version").output().expect("the binary starts");
        assert!(o.status.success(), "{exe} --version: {o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(env!("CARGO_PKG_VERSION")), "{exe} --version printed {out}");
    }
}
