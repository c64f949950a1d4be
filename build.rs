//! Records the git revision the binary is built from, for `gdl-gpu bench`
//! reports. Without git (a source tarball, a machine without the tool) the
//! revision is "unknown": the build never fails over it.

use std::path::PathBuf;
use std::process::Command;

/// `git <args>`'s trimmed output, or None when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    // Rerun when HEAD moves: HEAD itself (checkout), the branch's ref
    // (commit), and packed-refs (after gc). Only paths that exist are
    // named, since a missing one would rerun this script on every build.
    if rev.is_some() {
        let mut watch: Vec<PathBuf> = Vec::new();
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            watch.push(PathBuf::from(dir).join("HEAD"));
        }
        if let (Some(common), Some(head_ref)) = (
            git(&["rev-parse", "--git-common-dir"]),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ) {
            watch.push(PathBuf::from(&common).join(head_ref));
            watch.push(PathBuf::from(&common).join("packed-refs"));
        }
        for p in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    println!(
        "cargo:rustc-env=GDL_GPU_GIT_REVISION={}",
        rev.as_deref().unwrap_or("unknown")
    );
}
