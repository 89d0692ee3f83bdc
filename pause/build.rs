// Linker flags that only make sense for a tiny static binary: no build-id note,
// no RELRO page, and sections packed without page alignment padding.
fn main() {
    // no_std does not pull in libc by itself; musl's libc.a comes from the target.
    println!("cargo:rustc-link-lib=static=c");
    println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    println!("cargo:rustc-link-arg-bins=-Wl,--build-id=none");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,norelro");
}
