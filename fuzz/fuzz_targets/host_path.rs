//! Host paths of bind mounts are operator input: the runner walks them from their allowed root
//! right before Docker gets them. Against a fixed tree with symlinks that point out of the root,
//! back into it and at themselves, the walk must never panic, and a path it accepts must lie in
//! the real root and hold no symbolic link below it.
#![no_main]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use containerctl::runner::hostpath::walk;
use libfuzzer_sys::fuzz_target;

fn tree() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("containerctl-fuzz-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("a/b/c")).expect("tree");
        std::fs::create_dir_all(base.join("outside")).expect("tree");
        std::fs::write(root.join("a/file"), "x").expect("tree");
        symlink("/", root.join("up")).expect("link");
        symlink("../outside", root.join("a/out")).expect("link");
        symlink("b", root.join("a/in")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(rest) = std::str::from_utf8(data) else { return };
    if rest.contains('\0') {
        return;
    }
    let root = tree();
    let path = root.join(rest.trim_start_matches('/'));
    for allow_missing_last in [false, true] {
        if let Ok(real) = walk(&path, root, allow_missing_last) {
            assert!(real.starts_with(root), "{real:?} left the root");
            let mut p = PathBuf::from(root);
            for c in real.strip_prefix(root).expect("below").components() {
                p.push(c);
                if let Ok(m) = std::fs::symlink_metadata(&p) {
                    assert!(!m.file_type().is_symlink(), "accepted {path:?} through the symlink {p:?}");
                }
            }
            assert!(Path::new(&real).components().all(|c| c != std::path::Component::ParentDir));
        }
    }
});
