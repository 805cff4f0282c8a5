//! Builds the WebAssembly components in `providers/` (first-party providers and the test
//! components) for `wasm32-wasip2`, so that the first-party ones can be embedded in `coffer`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ is inside the workspace").to_path_buf();
    for watched in ["providers", "guest-sdk", "wit", "tests/components"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    // A separate target directory: the outer build holds the lock on its own.
    let target_dir = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("wasm");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--workspace", "--target", TARGET, "--manifest-path"])
        .arg(root.join("providers/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    // The outer build's flags and jobserver are for the host target, not for this one.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", "RUSTC_WRAPPER"] {
        command.env_remove(var);
    }
    let status = command.status().expect("running cargo for the wasm components");
    if !status.success() {
        panic!(
            "building the provider components for {TARGET} failed (see above). If the target is missing, \
             run `rustup target add {TARGET}` (scripts/setup does this)."
        );
    }
    let out = target_dir.join(TARGET).join("release");
    for (var, file) in [
        ("COFFER_FILESYSTEM_WASM", "coffer_provider_filesystem.wasm"),
        ("COFFER_LOCAL_WASM", "coffer_provider_local.wasm"),
        ("COFFER_AWS_WASM", "coffer_provider_aws.wasm"),
        ("COFFER_AWS_EBS_WASM", "coffer_provider_aws_ebs.wasm"),
        ("COFFER_AZURE_WASM", "coffer_provider_azure.wasm"),
        ("COFFER_GCP_WASM", "coffer_provider_gcp.wasm"),
    ] {
        println!("cargo:rustc-env={var}={}", out.join(file).display());
    }
    println!("cargo:rustc-env=COFFER_TEST_COMPONENTS_DIR={}", out.display());
}
