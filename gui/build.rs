//! Links libtorch with an rpath: the workbench runs learned controllers (`Bc`, `Neural`) in process, as
//! `prescale-torch` does.
include!("../build_support/torch_rpath.rs");

fn main() {
    torch_rpath();
}
