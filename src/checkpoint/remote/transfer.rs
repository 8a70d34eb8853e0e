//! Moving part files between the checkpoint directory and a blob store
//! (placeholder: sequential, whole files; replaced by the parallel version).

use super::config::RemoteConfig;
use crate::blob::{BlobKey, BlobStore};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage};
use bytes::Bytes;
use std::path::PathBuf;

/// How transfers run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferOptions {
    pub concurrency: usize,
    pub part_bytes: usize,
}

impl TransferOptions {
    pub(crate) fn of(config: &RemoteConfig) -> Self {
        TransferOptions {
            concurrency: config.concurrency(),
            part_bytes: config.part_bytes(),
        }
    }
}

/// A file to upload.
#[derive(Debug, Clone)]
pub(crate) struct UploadFile {
    pub path: PathBuf,
    pub size: u64,
    pub key: BlobKey,
}

/// An object to download.
#[derive(Debug, Clone)]
pub(crate) struct DownloadFile {
    pub key: BlobKey,
    pub size: u64,
    pub crc32c: u32,
    pub dest: PathBuf,
}

/// What a transfer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransferStats {
    pub requests: u64,
    pub bytes: u64,
}

pub(crate) fn upload(
    store: &dyn BlobStore,
    storage: &dyn Storage,
    files: &[UploadFile],
    _opts: &TransferOptions,
) -> Result<TransferStats> {
    let mut stats = TransferStats::default();
    for f in files {
        let bytes = crate::storage::load_file(storage, &f.path).ctx("read", &f.path)?;
        store.put(
            &f.key,
            Bytes::copy_from_slice(crate::storage::MappedFile::bytes(&bytes)),
        )?;
        stats.requests += 1;
        stats.bytes += f.size;
    }
    Ok(stats)
}

pub(crate) fn download(
    store: &dyn BlobStore,
    storage: &dyn Storage,
    files: &[DownloadFile],
    _opts: &TransferOptions,
) -> Result<TransferStats> {
    let mut stats = TransferStats::default();
    for f in files {
        let bytes = store.get(&f.key)?;
        let crc = crc32c::crc32c(&bytes);
        if bytes.len() as u64 != f.size || crc != f.crc32c {
            return Err(Error::CheckpointFileMismatch {
                path: PathBuf::from(f.key.as_str()),
                expected_size: f.size,
                actual_size: bytes.len() as u64,
                expected_crc: f.crc32c,
                actual_crc: crc,
            });
        }
        let file = storage
            .open_file(&f.dest, OpenMode::CreateNew)
            .ctx("create", &f.dest)?;
        file.write_all_at(&bytes, 0).ctx("write", &f.dest)?;
        file.sync_all().ctx("sync", &f.dest)?;
        stats.requests += 1;
        stats.bytes += f.size;
    }
    Ok(stats)
}
