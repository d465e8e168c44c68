//! `darlings restore`: one path back from an archive of an old root.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{shown, Target};
use crate::cli::RestoreArgs;
use crate::error::ExitCode;
use crate::sanitize::escape;
use crate::sys::command::Cmd;

/// `darlings restore`.
pub fn restore(args: &RestoreArgs) -> Result<ExitCode> {
    let target = Target::open(&args.target, false)?;
    let list = target.archives()?;
    let archive = match &args.from {
        Some(name) => list.iter().find(|a| &a.name == name).with_context(|| {
            format!(
                "no archive {name}; there are: {}",
                list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?,
        None => list.first().context("there are no archives to restore from")?,
    };
    let raw = args.path.as_os_str().as_bytes();
    let rel = match crate::claims::matcher::Pattern::parse(raw) {
        Ok(crate::claims::matcher::Pattern::Prefix(p)) if p != b"/" => p,
        _ => bail!("restore takes an absolute path below /, not {}", escape(raw)),
    };
    let rel = std::ffi::OsStr::from_bytes(&rel[1..]).to_owned();
    let (tree, _guard) = match &target {
        Target::Zfs(z) => z.open_archive(archive)?,
        Target::Btrfs(b) => (b.archive_path(archive), None),
    };
    // Never through a symlink of the archive: it would lead out of it.
    // (Errors are escaped once, where main prints them.)
    let raw_text = String::from_utf8_lossy(raw);
    let mut at = tree.clone();
    let comps: Vec<_> = Path::new(&rel).components().collect();
    for (i, c) in comps.iter().enumerate() {
        at.push(c);
        let meta = std::fs::symlink_metadata(&at)
            .with_context(|| format!("{raw_text} is not in archive {}", archive.name))?;
        if meta.file_type().is_symlink() && i + 1 < comps.len() {
            bail!(
                "{raw_text} passes through a symlink in the archive ({} -> {}); restore what it points to instead",
                at.display(),
                std::fs::read_link(&at).map(|t| t.display().to_string()).unwrap_or_default()
            );
        }
    }
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let dest = root.join(&rel);
    let exists = std::fs::symlink_metadata(&dest).is_ok();
    if exists && !args.force {
        bail!(
            "{} exists; nothing was copied (pass --force to copy the archive's version over it)",
            dest.display()
        );
    }
    let mut cmds = Vec::new();
    if let Some(parent) = dest.parent().filter(|p| !p.exists()) {
        cmds.push(Cmd::new("mkdir").arg("-p").arg("--").arg(parent));
    }
    cmds.push(Cmd::new("cp").arg("-a").arg("-T").arg("--").arg(&at).arg(&dest));
    for cmd in &cmds {
        println!("{}", cmd.display());
        if !args.dry_run {
            cmd.output()?;
        }
    }
    if args.dry_run {
        println!("Dry run: nothing was copied.");
    } else {
        println!("restored {} from archive {}", dest.display(), shown(&archive.name));
    }
    Ok(ExitCode::Clean)
}
