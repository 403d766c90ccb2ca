//! Link flags for the `gangplank` binary.

fn main() {
    // Packed relative relocations (RELR): the dynamic loader reads a few kilobytes instead of a
    // megabyte of `.rela.dyn` at every start, which keeps the idle agent's resident memory
    // down; the binary stays position-independent (ASLR). Needs binutils >= 2.38 and
    // glibc >= 2.36 (Debian 12).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
