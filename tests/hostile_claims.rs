//! Hostile and confused cases for the claim checker. Real mounts in a
//! private mount namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

/// `/mnt` is a bind mount of a directory of the ephemeral root itself: what
/// is in it is erased with the root. A claim reaching it through a symlink
/// (the claim itself, or a parent directory) is as broken as a claim on
/// the path directly: another mount id, but the same filesystem.
#[test]
fn a_symlink_into_a_bind_mount_from_the_root_itself_is_broken() {
    require_root!();
    let t = common::Tree::new();
    t.file(b"/srv/m/q/data", b"d")
        .dir(b"/mnt")
        .symlink(b"/lnk", b"/mnt")
        .symlink(b"/var/lib/s", b"/mnt/q")
        .dir(b"/persist")
        .symlink(b"/var/lib/ok", b"/persist/ok");
    let script = format!(
        r#"R='{}'
mount --bind "$R/srv/m" "$R/mnt"
persistent persist "$R/persist"
mkdir "$R/persist/ok"
"$D" audit --root "$R" --format json --no-default-manifest --keep /mnt/q --keep /lnk/q --keep /var/lib/s --keep /var/lib/ok || true"#,
        t.root().display()
    );
    let out = common::in_mount_namespace(&script);
    let json = common::parse_json(&out);
    let f = common::findings(&json);
    assert_eq!(f[&b"/mnt/q"[..]]["verdict"], "broken", "the direct claim");
    assert_eq!(f[&b"/lnk/q"[..]]["verdict"], "broken", "through a symlinked parent: {}", f[&b"/lnk/q"[..]]);
    assert_eq!(f[&b"/var/lib/s"[..]]["verdict"], "broken", "a symlink claim: {}", f[&b"/var/lib/s"[..]]);
    assert_eq!(f[&b"/var/lib/ok"[..]]["verdict"], "kept", "into a real other filesystem");
    assert_eq!(json["exit_code"], 3);
}

/// A tmpfs is erased at boot like the root itself: a claim is kept only
/// where its data lands on a filesystem that survives a reboot (and, for
/// a declared claim, inside its storage root). Every way a claim can be
/// realised is held to that — a symlink, a symlinked parent directory, a
/// bind mount, a path inside a mount — for declared claims and for
/// `--keep` alike, and `explain` says what the audit says.
#[test]
fn a_claim_whose_data_lands_on_a_tmpfs_is_broken() {
    require_root!();
    let t = common::Tree::new();
    t.dir(b"/run")
        .dir(b"/persist")
        .dir(b"/volatile")
        .dir(b"/var/lib/good")
        .dir(b"/var/lib/v")
        .dir(b"/var/lib/scratch")
        .symlink(b"/home/alice/.config", b"/run/elsewhere")
        .symlink(b"/home/alice/.local", b"/run/direct")
        .symlink(b"/home/alice/.mozilla", b"/persist/home/alice/.mozilla")
        .symlink(b"/home/alice/.ssh", b"/persist/home/alice/.ssh");
    let declared = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(
        declared.path(),
        r#"{"/persist": {"directories": ["/home/alice/.config/app", "/home/alice/.local",
                                          "/home/alice/.mozilla/firefox", "/home/alice/.ssh", "/var/lib/good"]},
            "/volatile": {"directories": ["/var/lib/v"]}}"#,
    )
    .expect("write");
    let script = format!(
        r#"R='{root}'
mount -t tmpfs run "$R/run"
mkdir -p "$R/run/elsewhere/app" "$R/run/direct" "$R/run/x"
persistent persist "$R/persist"
mkdir -p "$R/persist/home/alice/.mozilla/firefox" "$R/persist/home/alice/.ssh" "$R/persist/var/lib/good"
mount --bind "$R/persist/var/lib/good" "$R/var/lib/good"
mount -t tmpfs volatile "$R/volatile"
mkdir -p "$R/volatile/var/lib/v"
mount --bind "$R/volatile/var/lib/v" "$R/var/lib/v"
mount -t tmpfs scratch "$R/var/lib/scratch"
echo '=== declared'
"$D" audit --root "$R" --format json --no-default-manifest --impermanence '{json}' || true
echo '=== keep'
"$D" audit --root "$R" --format json --no-default-manifest --keep /home/alice/.config/app \
    --keep /home/alice/.local --keep /home/alice/.mozilla/firefox --keep /home/alice/.ssh \
    --keep /var/lib/scratch --keep /run/x --keep /var/lib/good || true
echo '=== explain'
"$D" explain --root "$R" --format json --no-default-manifest --impermanence '{json}' /home/alice/.config/app"#,
        root = t.root().display(),
        json = declared.path().display(),
    );
    let out = common::in_mount_namespace(&script);
    let sections = common::sections(&out);
    let verdict = |section: usize, path: &str| -> (String, String) {
        let f = common::findings(&sections[section].1);
        let row =
            f.get(path.as_bytes()).unwrap_or_else(|| panic!("{}: no row for {path}", sections[section].0));
        (row["verdict"].as_str().unwrap().to_owned(), row["detail"].as_str().unwrap_or("").to_owned())
    };
    let expect = |section: usize, path: &str, want: &str, says: &str| {
        let (v, detail) = verdict(section, path);
        assert_eq!(v, want, "{}: {path}: {detail}", sections[section].0);
        assert!(detail.contains(says), "{}: {path}: {detail:?} does not say {says:?}", sections[section].0);
    };
    let gone = "tmpfs run mounted at /run, which does not survive a reboot";
    expect(
        0,
        "/home/alice/.config/app",
        "broken",
        "a parent directory, /home/alice/.config, is a symlink to /run/elsewhere, outside its storage root /persist",
    );
    expect(0, "/home/alice/.local", "broken", "symlink to /run/direct, outside its storage root /persist");
    expect(0, "/home/alice/.mozilla/firefox", "kept", "reached through a symlinked parent");
    expect(0, "/home/alice/.ssh", "kept", "symlink to /persist/home/alice/.ssh");
    expect(0, "/var/lib/good", "kept", "mount point (overlay persist[/var/lib/good])");
    expect(
        0,
        "/var/lib/v",
        "broken",
        "mount point (tmpfs volatile[/var/lib/v]), a filesystem that does not survive",
    );
    assert_eq!(sections[0].1["exit_code"], 3);

    expect(
        1,
        "/home/alice/.config/app",
        "broken",
        &format!("/home/alice/.config, is a symlink to /run/elsewhere, on {gone}"),
    );
    expect(1, "/home/alice/.local", "broken", &format!("symlink to /run/direct, on {gone}"));
    expect(1, "/home/alice/.mozilla/firefox", "kept", "reached through a symlinked parent");
    expect(1, "/home/alice/.ssh", "kept", "symlink to /persist/home/alice/.ssh");
    expect(
        1,
        "/var/lib/scratch",
        "broken",
        "mount point (tmpfs scratch), a filesystem that does not survive a reboot",
    );
    expect(1, "/run/x", "broken", &format!("inside {gone}"));
    expect(1, "/var/lib/good", "kept", "mount point (overlay persist[/var/lib/good])");

    let explained = &sections[2].1;
    assert_eq!(explained["claim"]["state"], "broken", "{explained}");
    assert_eq!(explained["finding"]["verdict"], "broken", "{explained}");
    assert!(
        explained["claim"]["detail"].as_str().unwrap().contains("outside its storage root /persist"),
        "{explained}"
    );
}

/// A claim on a loop-mounted filesystem lives in its image file: an image
/// on a tmpfs, or on the ephemeral root itself, goes at boot with all that
/// was written in it (`broken`); one on lasting storage keeps it (`kept`).
#[test]
fn a_claim_on_a_loop_mount_goes_with_its_image() {
    require_root!();
    require_tool!("mkfs.ext4", "e2fsprogs");
    let t = common::Tree::new();
    t.dir(b"/vol")
        .dir(b"/images")
        .dir(b"/var/lib/on-tmpfs")
        .dir(b"/var/lib/on-root")
        .dir(b"/var/lib/lasting");
    let lasting = tempfile::tempdir().expect("tempdir");
    let script = format!(
        r#"R='{root}'
mount -t tmpfs vol "$R/vol"
for img in "$R/vol/a.img" "$R/images/b.img" '{lasting}/c.img'; do
  truncate -s 8M "$img" && mkfs.ext4 -q -F "$img" > /dev/null
done
mount -o loop "$R/vol/a.img" "$R/var/lib/on-tmpfs"
mount -o loop "$R/images/b.img" "$R/var/lib/on-root"
mount -o loop '{lasting}/c.img' "$R/var/lib/lasting"
echo '=== keep'
"$D" audit --root "$R" --format json --no-default-manifest --ignore /images --ignore /vol \
    --keep /var/lib/on-tmpfs --keep /var/lib/on-root --keep /var/lib/lasting || true"#,
        root = t.root().display(),
        lasting = lasting.path().display(),
    );
    let out = common::in_mount_namespace(&script);
    let sections = common::sections(&out);
    let f = common::findings(&sections[0].1);
    let row = |path: &str| {
        let r = f.get(path.as_bytes()).unwrap_or_else(|| panic!("no row for {path}: {}", sections[0].1));
        (r["verdict"].as_str().unwrap().to_owned(), r["detail"].as_str().unwrap_or("").to_owned())
    };
    let (v, d) = row("/var/lib/on-tmpfs");
    assert_eq!(v, "broken", "{d}");
    assert!(d.contains("/vol/a.img") && d.contains("does not survive a reboot"), "{d}");
    let (v, d) = row("/var/lib/on-root");
    assert_eq!(v, "broken", "{d}");
    assert!(d.contains("/images/b.img") && d.contains("from the ephemeral root itself"), "{d}");
    let (v, d) = row("/var/lib/lasting");
    assert_eq!(v, "kept", "{d}");
}

/// Globs are compiled, each into an automaton of its own: past the limit
/// (counted over every manifest and flag together) the rules are refused
/// with the limit named, before the rest is compiled; at the limit they
/// are read.
#[test]
fn more_globs_than_the_limit_are_refused_before_they_are_compiled() {
    let limit = darlings::claims::matcher::MAX_GLOBS;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("data")).unwrap();
    let manifest = |name: &str, n: usize| {
        let mut text = String::from("keep = [\n");
        for i in 0..n {
            text.push_str(&format!("  \"/data/**/x{i}*/**/y*\",\n"));
        }
        text.push_str("]\n");
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let at_limit = manifest("at.toml", limit);
    let past = manifest("past.toml", limit + 10);
    let run = |args: &[&std::ffi::OsStr]| {
        let mut all: Vec<&std::ffi::OsStr> = vec!["audit".as_ref(), "--root".as_ref(), root.as_os_str()];
        all.extend_from_slice(args);
        common::run(all)
    };
    let ok = run(&["--manifest".as_ref(), at_limit.as_os_str()]);
    // Read and audited: /data is unclaimed (no glob names it), nothing is refused.
    assert_eq!(common::code(&ok), 1, "{}", String::from_utf8_lossy(&ok.stderr));
    let refused = run(&["--manifest".as_ref(), past.as_os_str()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(common::code(&refused), 2, "{err}");
    // The line of the first glob past the limit (the list starts on line 2).
    let line = limit + 2;
    assert!(err.contains(&format!("past.toml:{line}:3: this is glob pattern {}", limit + 1)), "{err}");
    assert!(err.contains(&format!("darlings compiles at most {limit} glob patterns")), "{err}");
    // Together with one more on the command line.
    let together = run(&["--manifest".as_ref(), at_limit.as_os_str(), "--ignore".as_ref(), "/x/*".as_ref()]);
    let err = String::from_utf8_lossy(&together.stderr);
    assert_eq!(common::code(&together), 2, "{err}");
    assert!(err.contains(&format!("{} glob patterns (", limit + 1)), "{err}");
    assert!(err.contains(" bytes) in --keep/--ignore, "), "{err}");
    assert!(err.contains("at.toml: darlings compiles at most"), "{err}");
}

/// An automaton grows with its pattern: one glob longer than `PATH_MAX`
/// is an error of its line (the compiler gave up on 600 KB, and darlings
/// died), and long globs count against a budget of bytes as well.
#[test]
fn long_globs_are_refused_as_errors_of_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    // The audit of `root` with a manifest of `text`: refused, its message.
    let refused = |name: &str, text: String| {
        let manifest = dir.path().join(name);
        std::fs::write(&manifest, text).unwrap();
        let args = [
            "audit".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ];
        let out = common::run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(common::code(&out), 2, "{err}");
        err
    };
    let err = refused("huge.toml", format!("keep = [\"/srv/{}\"]\n", "*a".repeat(300_000)));
    assert!(err.contains("huge.toml:1:"), "{err}");
    assert!(err.contains("of 128 KiB in all"), "{err}");
    // Longer than a path can be, within the budget.
    let err = refused("one.toml", format!("keep = [\"/srv/{}*\"]\n", "x".repeat(5000)));
    assert!(err.contains("one.toml:1:"), "{err}");
    assert!(err.contains("a glob pattern may be at most 4096 bytes long"), "{err}");
    // 200 globs of a kilobyte: far fewer than 4,096, but 200 KB of them.
    let mut text = String::from("keep = [\n");
    for i in 0..200 {
        text.push_str(&format!("  \"/srv/{i}/{}*\",\n", "x".repeat(1000)));
    }
    text.push_str("]\n");
    let err = refused("long.toml", text);
    assert!(err.contains("darlings compiles at most 4096 glob patterns of 128 KiB in all"), "{err}");
}
