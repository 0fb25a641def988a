// Shared by the build scripts of the packages whose binaries or tests load libtorch.
//
// torch-sys does not record where libtorch lives, so binaries would exit 127 ("libtorch_cpu.so: cannot open
// shared object file") unless LD_LIBRARY_PATH is set by hand. This emits an rpath to `$LIBTORCH/lib`, resolved
// to the real folder (the per-machine cache), so a built binary runs from anywhere on this machine.
// `.cargo/config.toml` sets LIBTORCH to the repository's `.libtorch` link made by `scripts/setup-torch.sh`.
//
// On a GPU machine, set PRESCALE_TORCH_CUDA=1 at build time: rustc's `--as-needed` would otherwise drop
// libtorch_cuda.so, and libtorch would not see the GPU.
fn torch_rpath() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=PRESCALE_TORCH_CUDA");
    let Ok(dir) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&dir).join("lib");
    let Ok(lib) = lib.canonicalize() else {
        panic!(
            "libtorch not found at {} (LIBTORCH={dir}): run scripts/setup-torch.sh once on this machine",
            lib.display()
        );
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if std::env::var("PRESCALE_TORCH_CUDA").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-L{},-ltorch_cuda,--as-needed", lib.display());
    }
}
