//! Links libtorch with an rpath, so that this package's tests run without a hand-set library path.
include!("../build_support/torch_rpath.rs");

fn main() {
    torch_rpath();
}
