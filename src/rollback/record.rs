//! The audit kept at shutdown for the initrd's rollback (`darlings
//! record`), which cannot check claims itself: the counts, the decision
//! (with claims checked on the running system), and the declared claims
//! exactly as declared.
//!
//! **Where.** A record can be as large as the configuration (10,000 claims
//! is ~1 MB), so it is a file, outside the root it speaks of: on btrfs
//! `.darlings/record-<subvolume>.json` in the top-level volume, on ZFS
//! `record.json` in the dataset `ARCHIVE/darlings-record` (mounted by
//! darlings while it reads or writes it). It is written whole (a new file,
//! synced, renamed over the old one). The root carries only a pointer to
//! it with its SHA-256 ([`RECORD_XATTR`] of the root's directory on btrfs,
//! the property [`RECORD_PROPERTY`] on ZFS), set last.
//!
//! **Used at most once.** `record` first removes the record it replaces,
//! so a record that fails (a full disk, a timeout, a crash at shutdown)
//! leaves none, never the old one. The initrd's rollback removes the
//! record as it reads it, before it acts, whatever it then decides; the
//! running system removes it again when it comes up (`record
//! --invalidate`), for boots that skipped the rollback. So only the
//! shutdown right before a boot can leave a record for it, and without one
//! the initrd refuses, visibly. No clock is asked: boards without a
//! hardware clock boot in 1970.

use std::os::fd::{AsFd, OwnedFd};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{loss_refusals, now, Backend, Error, Loss, Recorded, Result, Target};
use crate::claims::nixos::Declared;
use crate::cli::RecordArgs;
use crate::config::TargetNames;
use crate::error::ExitCode;
use crate::sys::dir as at;

/// The format of the record; any other is refused.
pub const RECORD_VERSION: u32 = 2;
/// btrfs: the pointer, an extended attribute of the root's directory.
pub const RECORD_XATTR: &str = "user.darlings.audit";
/// ZFS: the pointer, a user property of the root dataset.
pub const RECORD_PROPERTY: &str = "darlings:record";

/// The audit recorded at shutdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub version: u32,
    /// When it was recorded (seconds since the epoch), for people: it
    /// decides nothing.
    pub time: i64,
    pub counts: Counts,
    pub claims_verified: bool,
    pub decision: Decision,
    /// The declared claims (the initrd cannot read the configuration).
    #[serde(default)]
    pub claims: Vec<RecordedClaim>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub unclaimed_entries: u64,
    pub unclaimed_bytes: u64,
    pub broken: u64,
    pub critical: u64,
    pub errors: u64,
}

/// Whether the rollback may erase the root, as the recorded audit found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
    pub erase: bool,
    pub reasons: Vec<String>,
}

/// One declared claim, exactly: its path as text, and base64 of its bytes
/// when they are not UTF-8.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedClaim {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    pub directory: bool,
    pub storage: String,
    /// Where the configuration declared it.
    pub option: String,
}

impl RecordedClaim {
    fn new(d: &Declared) -> RecordedClaim {
        let exact = std::str::from_utf8(&d.path).is_ok();
        RecordedClaim {
            path: String::from_utf8_lossy(&d.path).into_owned(),
            path_base64: (!exact).then(|| base64::engine::general_purpose::STANDARD.encode(&d.path)),
            directory: d.directory,
            storage: d.storage.clone(),
            option: d.option.clone(),
        }
    }

    /// The claim as declared.
    pub fn declared(&self) -> std::result::Result<Declared, String> {
        let path = match &self.path_base64 {
            None => self.path.clone().into_bytes(),
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("claim {}: bad path_base64: {e}", self.option))?,
        };
        Ok(Declared {
            path,
            directory: self.directory,
            storage: self.storage.clone(),
            option: self.option.clone(),
        })
    }
}

impl Record {
    pub fn new(time: i64, loss: &Loss, declared: &[Declared]) -> Record {
        let reasons: Vec<String> = loss_refusals(loss).into_iter().map(|r| r.reason).collect();
        Record {
            version: RECORD_VERSION,
            time,
            counts: Counts {
                unclaimed_entries: loss.unclaimed_entries,
                unclaimed_bytes: loss.unclaimed_bytes,
                broken: loss.broken.len() as u64,
                critical: loss.critical_total,
                errors: loss.errors,
            },
            claims_verified: loss.claims_verified,
            decision: Decision { erase: reasons.is_empty(), reasons },
            claims: declared.iter().map(RecordedClaim::new).collect(),
        }
    }

    /// The declared claims, as declared.
    pub fn declared(&self) -> std::result::Result<Vec<Declared>, String> {
        self.claims.iter().map(RecordedClaim::declared).collect()
    }
}

/// What the root points to: the record's file and its digest.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Pointer {
    version: u32,
    file: String,
    sha256: String,
}

/// How a [`RecordStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Writable, if it exists.
    Change,
    /// Writable, made if missing.
    Create,
}

/// The directory that holds a target's record, held open (and, on ZFS,
/// mounted for as long as it lives).
pub struct RecordStore {
    pub dir: OwnedFd,
    /// Its file name there (btrfs keeps one per subvolume in one directory).
    pub file: String,
    /// Where it is, for messages.
    pub shown: String,
    /// Undoes a temporary mount when dropped (after `dir` is closed).
    pub guard: Option<Box<dyn std::any::Any>>,
}

impl RecordStore {
    fn io(&self, what: &str, e: rustix::io::Errno) -> Error {
        Error::io(format!("cannot {what} the record {}/{}", self.shown, self.file), e)
    }
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the record the target points to (`Ok(None)`: there is none).
/// An `Err` says why the one there cannot be used.
pub fn read(backend: &dyn Backend) -> std::result::Result<Option<Record>, String> {
    let Some(raw) = backend.record_pointer().map_err(|e| e.to_string())? else { return Ok(None) };
    let pointer: Pointer = serde_json::from_slice(&raw)
        .map_err(|e| format!("its pointer is not a darlings record pointer ({e})"))?;
    if pointer.version != RECORD_VERSION {
        return Err(format!(
            "format version {} is not one this darlings reads ({RECORD_VERSION})",
            pointer.version
        ));
    }
    let store = backend.record_store(Access::Read).map_err(|e| e.to_string())?;
    let Some(store) = store else { return Err("its file is gone (the pointer leads nowhere)".into()) };
    // The pointer names the file, but only the store's own name is read:
    // a name from an attribute never leads anywhere else (`../x`).
    if pointer.file != store.file {
        return Err(format!(
            "its pointer names {}, not this target's record {}",
            crate::sanitize::escape(pointer.file.as_bytes()),
            store.file
        ));
    }
    let bytes = at::read_file_at(store.dir.as_fd(), store.file.as_bytes())
        .map_err(|e| store.io("read", e).to_string())?
        .ok_or_else(|| format!("its file {}/{} is gone", store.shown, store.file))?;
    if sha256(&bytes) != pointer.sha256 {
        return Err(format!(
            "its file {}/{} is not the one recorded (its digest differs)",
            store.shown, store.file
        ));
    }
    let record: Record =
        serde_json::from_slice(&bytes).map_err(|e| format!("its file is not a darlings record ({e})"))?;
    if record.version != RECORD_VERSION {
        return Err(format!(
            "format version {} is not one this darlings reads ({RECORD_VERSION})",
            record.version
        ));
    }
    Ok(Some(record))
}

/// Removes the record: the pointer first (a record without it is never
/// used), then its file.
pub fn invalidate(backend: &dyn Backend) -> Result<()> {
    backend.set_record_pointer(None)?;
    if let Some(store) = backend.record_store(Access::Change)? {
        at::remove_file_at(store.dir.as_fd(), store.file.as_bytes()).map_err(|e| store.io("remove", e))?;
    }
    Ok(())
}

/// The record for the initrd's rollback, used at most once: unless
/// `dry_run`, it is invalidated as it is read, whatever it says; one
/// that cannot be invalidated is not used.
pub fn take(backend: &dyn Backend, dry_run: bool) -> Recorded {
    let found = read(backend);
    if !dry_run {
        if let Err(e) = invalidate(backend) {
            return Recorded::Unreadable(format!(
                "it cannot be removed, so a later boot could use it again: {e}"
            ));
        }
    }
    match found {
        Ok(Some(r)) => Recorded::Found(r),
        Ok(None) => Recorded::None,
        Err(why) => Recorded::Unreadable(why),
    }
}

/// Writes `record` and points the root to it (the old record is already
/// gone: [`invalidate`]).
fn keep(backend: &dyn Backend, text: &[u8]) -> Result<String> {
    let store = backend
        .record_store(Access::Create)?
        .ok_or_else(|| Error::Target("the record's store could not be made".into()))?;
    at::write_file_atomic(store.dir.as_fd(), store.file.as_bytes(), text)
        .map_err(|e| store.io("write", e))?;
    let pointer = Pointer { version: RECORD_VERSION, file: store.file.clone(), sha256: sha256(text) };
    backend.set_record_pointer(Some(serde_json::to_string(&pointer).unwrap_or_default().as_bytes()))?;
    Ok(format!("{}/{}", store.shown, store.file))
}

/// `darlings record`: audits the running root and keeps for the initrd's
/// rollback what it needs. `--invalidate` only removes the record;
/// `--dry-run` prints the record and keeps nothing.
pub fn record(args: &RecordArgs) -> Result<ExitCode> {
    let what = "cannot record the audit";
    let target = if args.dry_run {
        None
    } else {
        let names = TargetNames::for_record(args);
        let target = Target::open(&names, true)?;
        let lock = target.backend().lock(names.wait)?;
        // Asked only to say, with --invalidate, whether there was one.
        let had = args.invalidate && read(target.backend()).map_or(true, |r| r.is_some());
        // Whatever happens next, the record of an earlier shutdown is gone.
        invalidate(target.backend())?;
        if args.invalidate {
            let text = if had { "removed the recorded audit of" } else { "there was no recorded audit of" };
            let name = crate::sanitize::terminal_safe(&target.name()).into_owned();
            super::status::print(&format!("{text} {name}\n"))?;
            return Ok(ExitCode::Clean);
        }
        // What is audited is what the rollback erases: the target's root.
        let root = args.rules.at.root.clone().unwrap_or_else(|| std::path::PathBuf::from("/"));
        if !target.backend().is_root_at(&root)? {
            return Err(Error::Target(format!(
                "{} is not {} (the root the rollback erases) mounted: record the root the target names, \
                 with --root where it is mounted (the old record is removed)",
                crate::sanitize::escape(root.as_os_str().as_encoded_bytes()),
                target.name()
            )));
        }
        Some((target, lock))
    };
    let cfg = crate::config::Audit::for_record(args)
        .map_err(|e| Error::Audit { what: what.into(), message: e.to_string() })?;
    let audited = crate::audit::guard(&cfg).map_err(|e| Error::audit(what, &e))?;
    let code = audited.exit_code(&cfg);
    let loss = Loss::from_guarded(&audited, !cfg.rules.assume_claims);
    let record = Record::new(now(), &loss, &audited.declared);
    let text = serde_json::to_string(&record).unwrap_or_default();
    if let Some((target, _lock)) = &target {
        keep(target.backend(), text.as_bytes())?;
    }
    super::status::print(&format!("{text}\n"))?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_kept_exactly() {
        let odd = Declared {
            path: b"/var/lib/\xffodd\nname".to_vec(),
            directory: true,
            storage: "/persist".into(),
            option: "\"/persist\".directories[3]".into(),
        };
        let plain = Declared { path: b"/etc/machine-id".to_vec(), directory: false, ..odd.clone() };
        let record = Record::new(1, &Loss::default(), &[odd.clone(), plain.clone()]);
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.declared().unwrap(), [odd, plain]);
        assert!(back.claims[1].path_base64.is_none());
    }

    #[test]
    fn a_digest_is_of_the_bytes() {
        assert_eq!(sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
