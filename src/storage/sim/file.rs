//! The handles a [`CrashSimStorage`] gives out: open files ([`SimFile`]) and
//! held locks ([`SimLock`]). Every call goes back through the storage, so a
//! crash or an injected fault reaches handles opened before it.

use super::fault::SimOp;
use super::image::SECTOR;
use super::tree::{FileOp, Ino, Tree};
use super::CrashSimStorage;
use crate::storage::{StorageFile, StorageLock};
use std::io;
use std::path::PathBuf;

/// An open file of a [`CrashSimStorage`].
#[derive(Debug)]
pub(super) struct SimFile {
    pub(super) storage: CrashSimStorage,
    pub(super) ino: Ino,
    pub(super) path: PathBuf,
    pub(super) writable: bool,
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: opened read-only", self.path.display()),
            ))
        }
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.read_op(SimOp::ReadAt, &self.path, |t| {
            let live = &t.file(self.ino).live;
            let start = (offset as usize).min(live.len());
            let n = buf.len().min(live.len() - start);
            buf[..n].copy_from_slice(&live[start..start + n]);
            Ok(n)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let write = |t: &mut Tree, data: &[u8]| {
            t.file_mut(self.ino).change(FileOp::Write {
                offset,
                data: data.to_vec(),
            })
        };
        self.storage.mutate(
            SimOp::Write,
            &self.path,
            |t| {
                write(t, buf);
                Ok(())
            },
            |t| {
                let sectors = (buf.len() as u64).div_ceil(SECTOR) / 2;
                write(t, &buf[..(sectors * SECTOR) as usize]);
            },
        )
    }

    fn len(&self) -> io::Result<u64> {
        self.storage
            .read(|t| Ok(t.file(self.ino).live.len() as u64))
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        self.storage.mutate(
            SimOp::Truncate,
            &self.path,
            |t| {
                t.file_mut(self.ino).change(FileOp::SetLen(len));
                Ok(())
            },
            |_| {},
        )
    }

    fn sync_data(&self) -> io::Result<()> {
        self.storage.mutate(
            SimOp::SyncFile,
            &self.path,
            |t| {
                let file = t.file_mut(self.ino);
                if std::mem::take(&mut file.writeback_error) {
                    return Err(io::Error::other(format!(
                        "simulated write-back error reported by sync of {}",
                        self.path.display()
                    )));
                }
                file.sync();
                Ok(())
            },
            |t| t.file_mut(self.ino).fail_sync(),
        )
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    /// The write-behind hint: counted ([`SimOp::WriteBack`]) and failed or
    /// held by a matching fault, and otherwise without effect. Nothing it
    /// covers becomes durable (a crash image keeps only what a sync made
    /// durable), and a pending write-back error stays for the next sync.
    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        self.check_writable()?;
        self.storage
            .read_op(SimOp::WriteBack, &self.path, |_| Ok(()))
    }
}

/// A lock held on a file of a [`CrashSimStorage`]; released when dropped.
#[derive(Debug)]
pub(super) struct SimLock {
    pub(super) storage: CrashSimStorage,
    pub(super) path: PathBuf,
}

impl StorageLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.storage.state().locks.remove(&self.path);
    }
}
