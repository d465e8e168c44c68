//! tests/vm/build-image.sh prints exactly one line on stdout, the image
//! directory, even on a first build with an empty cache: run-vm.sh takes
//! its stdout as the path. A real first build takes 20 minutes, so the
//! programs the recipe runs are stood in for by scripts that make the files
//! the recipe expects and, like `mkfs.ext4 -q` on a new file, chatter on
//! stdout. What is checked is the script's own discipline: everything it
//! runs writes to stderr, and the one line it prints names a directory
//! that exists and is ready.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Stand-ins: each prints something on stdout, as the real ones may.
const STUBS: &[(&str, &str)] = &[
    (
        "apt-get",
        r#"echo "apt-get $*"; if [ "$1" = download ] || [ "$2" = download ] || [ "$3" = download ]; then touch qemu-system-x86.deb qemu-system-common.deb; fi"#,
    ),
    (
        "dpkg",
        r#"echo "dpkg $*"; q="$3/usr/bin"; mkdir -p "$q"; printf '#!/bin/sh\necho "QEMU emulator version 7.2"\n' > "$q/qemu-system-x86_64"; chmod +x "$q/qemu-system-x86_64""#,
    ),
    (
        "debootstrap",
        r#"echo "I: Base system installed successfully."; r="$4"; mkdir -p "$r/etc/apt/apt.conf.d" "$r/etc/apt/sources.list.d" "$r/usr/sbin" "$r/proc" "$r/sys" "$r/dev/pts" "$r/boot" "$r/lib/modules/6.1.0-test/updates/dkms"; touch "$r/lib/modules/6.1.0-test/updates/dkms/zfs.ko" "$r/boot/vmlinuz-6.1.0-test" "$r/boot/initrd.img-6.1.0-test""#,
    ),
    (
        "chroot",
        r#"echo "chroot $*"; case "$*" in *"dkms status"*) echo "zfs/2.1.11, 6.1.0-test, amd64: installed";; esac"#,
    ),
    ("mount", r#"echo "mount $*""#),
    ("umount", r#"echo "umount $*""#),
    (
        "mkfs.ext4",
        r#"for a in "$@"; do last2=$last; last=$a; done; echo "Creating regular file $last2"; touch "$last2""#,
    ),
];

#[test]
fn build_image_prints_only_the_image_directory_on_a_first_build() {
    let stubs = tempfile::tempdir().expect("tempdir");
    for (name, body) in STUBS {
        let path = stubs.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("stub");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let path = format!("{}:{}", stubs.path().display(), std::env::var("PATH").unwrap_or_default());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/build-image.sh");
    let build = || {
        Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .env("DARLINGS_VM_CACHE", cache.path())
            .stdin(Stdio::null())
            .output()
            .expect("run build-image.sh")
    };
    let out = build();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "build-image.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be one line, the image directory:\n{stdout}");
    let dir = Path::new(lines[0]);
    assert!(dir.starts_with(cache.path()), "{stdout}");
    assert!(dir.join("ready").is_file() && dir.join("root.img").is_file(), "{stdout}");

    // The second call finds the cache and prints the same line.
    let again = build();
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
}
