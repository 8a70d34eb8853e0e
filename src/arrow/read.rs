//! Decoding one Arrow part file in place: checks in the order of
//! `docs/FORMAT.md` §5 (Reading), then zero-copy decoding of every block with
//! Arrow's validation.
//!
//! Invariant: nothing is handed to Arrow's decoder that has not passed the
//! bounds checks here (Arrow slices buffers with panicking operations), and a
//! panic inside the decoder on input that passed them is still turned into
//! [`Error::ArrowCorrupted`] rather than unwinding into the caller.

use super::part::ArrowVerification;
use super::write::{Layer, FORMAT_KEY, FORMAT_VALUE, LAYER_KEY, VERSION_KEY, VERSION_VALUE};
use crate::checkpoint::PartMetadata;
use crate::error::{Error, Result};
use crate::storage::MappedFile;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::reader::FileDecoder;
use arrow::ipc::{root_as_footer, root_as_message, Block, MessageHeader, MetadataVersion};
use arrow::record_batch::RecordBatch;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 6] = b"ARROW1";
/// The leading magic with its padding.
const HEAD: usize = 8;
/// Footer length (i32) and the trailing magic.
const TRAILER: usize = 10;
/// The IPC continuation marker that starts every message.
const CONTINUATION: [u8; 4] = [0xff; 4];

/// One decoded Arrow part file.
#[derive(Debug)]
pub(crate) struct DecodedFile {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The whole mapped file (every buffer of `batches` points into it).
    pub mapped: Buffer,
}

/// Keeps a mapping alive for as long as any Arrow buffer points into it.
struct MapOwner(Arc<dyn MappedFile>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

fn corrupted(path: &Path, offset: Option<u64>, reason: impl Into<String>) -> Error {
    Error::ArrowCorrupted {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Checks and decodes the Arrow part file `map` read from `path`, described
/// by `part` (size, CRC32C, rows) and expected to hold `layer`.
///
/// # Errors
/// `CheckpointFileMismatch` when the size or (with
/// [`ArrowVerification::Checksums`]) the CRC32C differs from `part`;
/// `ArrowCorrupted` naming the file and offset for everything else.
pub(crate) fn decode_part_file(
    path: &Path,
    map: Arc<dyn MappedFile>,
    part: &PartMetadata,
    layer: Layer,
    verification: ArrowVerification,
) -> Result<DecodedFile> {
    let bytes = map.bytes();
    let size = bytes.len() as u64;
    let crc = match verification {
        ArrowVerification::Checksums if size == part.size => crc32c::crc32c(bytes),
        _ => part.crc32c,
    };
    // A sealed part's bytes here are its opened plaintext: its sealed size
    // and CRC were checked, and every block authenticated, as it was opened.
    if part.sealed.is_none() && (size != part.size || crc != part.crc32c) {
        return Err(Error::CheckpointFileMismatch {
            path: path.to_path_buf(),
            expected_size: part.size,
            actual_size: size,
            expected_crc: part.crc32c,
            actual_crc: if size == part.size { crc } else { 0 },
        });
    }
    let mapped = Buffer::from(bytes::Bytes::from_owner(MapOwner(map)));
    let decoded = decode(path, mapped, layer)?;
    let rows = decoded
        .batches
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.num_rows() as u64));
    if rows != Some(part.entries) {
        let rows = rows.map_or("more than 2^64".to_string(), |r| r.to_string());
        return Err(corrupted(
            path,
            None,
            format!("holds {rows} rows, its metadata lists {}", part.entries),
        ));
    }
    Ok(decoded)
}

/// The verified footer of a file, where it starts, and the schema it holds.
struct Footer<'a> {
    footer: arrow::ipc::Footer<'a>,
    start: usize,
    schema: SchemaRef,
}

/// Step 3 of the reading rules: magics, footer, identity, schema.
fn footer<'a>(path: &Path, bytes: &'a [u8], layer: Layer) -> Result<Footer<'a>> {
    let len = bytes.len();
    if len < HEAD + TRAILER || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupted(
            path,
            Some(0),
            "does not start with the Arrow magic ARROW1",
        ));
    }
    if &bytes[len - MAGIC.len()..] != MAGIC {
        return Err(corrupted(
            path,
            Some((len - MAGIC.len()) as u64),
            "does not end with the Arrow magic ARROW1",
        ));
    }
    let trailer = len - TRAILER;
    let footer_len = i32::from_le_bytes(bytes[trailer..trailer + 4].try_into().expect("4 bytes"));
    let start = usize::try_from(footer_len)
        .ok()
        .and_then(|l| trailer.checked_sub(l))
        .filter(|start| *start >= HEAD)
        .ok_or_else(|| {
            corrupted(
                path,
                Some(trailer as u64),
                format!("footer length {footer_len} does not fit in a {len}-byte file"),
            )
        })?;
    let at_footer = |reason: String| corrupted(path, Some(start as u64), reason);
    let footer = root_as_footer(&bytes[start..trailer])
        .map_err(|e| at_footer(format!("footer is not a valid flatbuffer: {e}")))?;
    if footer.version() != MetadataVersion::V5 {
        return Err(at_footer(format!(
            "IPC metadata version {:?}, expected V5",
            footer.version()
        )));
    }
    check_identity(&footer, layer).map_err(|p| at_footer(p.to_string()))?;
    let fb_schema = footer
        .schema()
        .ok_or_else(|| at_footer("footer has no schema".into()))?;
    if !fb_schema.endianness().equals_to_target_endianness() {
        return Err(at_footer("schema is not little-endian".into()));
    }
    let schema = try_fb_to_schema(fb_schema)
        .map_err(|e| at_footer(format!("schema does not decode: {e}")))?;
    Ok(Footer {
        footer,
        start,
        schema: Arc::new(schema),
    })
}

/// The schema of the Arrow part file `map` at `path` holding `layer`, from its
/// footer alone (no block is read).
///
/// # Errors
/// `ArrowCorrupted` naming the file and offset.
pub(crate) fn read_schema(path: &Path, map: &dyn MappedFile, layer: Layer) -> Result<SchemaRef> {
    Ok(footer(path, map.bytes(), layer)?.schema)
}

/// Steps 3–5 of the reading rules over the whole file `mapped`.
fn decode(path: &Path, mapped: Buffer, layer: Layer) -> Result<DecodedFile> {
    let Footer {
        footer,
        start: footer_start,
        schema,
    } = footer(path, mapped.as_slice(), layer)?;
    let mut decoder =
        FileDecoder::new(schema.clone(), MetadataVersion::V5).with_require_alignment(true);
    check_no_overlap(path, &footer)?;
    for block in footer.dictionaries().iter().flatten() {
        let data = block_data(path, &mapped, block, footer_start)?;
        guarded(path, block, || decoder.read_dictionary(block, &data))?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        let data = block_data(path, &mapped, block, footer_start)?;
        match guarded(path, block, || decoder.read_record_batch(block, &data))? {
            Some(batch) => batches.push(batch),
            None => {
                return Err(corrupted(
                    path,
                    Some(block.offset() as u64),
                    "block holds no record batch",
                ))
            }
        }
    }
    Ok(DecodedFile {
        schema,
        batches,
        mapped,
    })
}

/// A footer whose `highwater.*` keys do not name this part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FooterProblem {
    /// A key holds another value.
    #[error("footer says {key} = {found:?}, expected {expected:?}")]
    Value {
        key: &'static str,
        found: String,
        expected: &'static str,
    },
    /// A key is missing.
    #[error("footer has no {key} (not a highwater Arrow part)")]
    Missing { key: &'static str },
}

/// Checks the footer's `highwater.*` keys: format, version and layer.
fn check_identity(
    footer: &arrow::ipc::Footer<'_>,
    layer: Layer,
) -> std::result::Result<(), FooterProblem> {
    let mut found = std::collections::HashMap::new();
    for kv in footer.custom_metadata().iter().flatten() {
        if let (Some(k), Some(v)) = (kv.key(), kv.value()) {
            found.insert(k, v);
        }
    }
    let want = [
        (FORMAT_KEY, FORMAT_VALUE),
        (VERSION_KEY, VERSION_VALUE),
        (LAYER_KEY, layer.name()),
    ];
    for (key, expected) in want {
        match found.get(key) {
            Some(v) if *v == expected => {}
            Some(v) => {
                return Err(FooterProblem::Value {
                    key,
                    found: v.to_string(),
                    expected,
                })
            }
            None => return Err(FooterProblem::Missing { key }),
        }
    }
    Ok(())
}

/// Step 4 across blocks: dictionary and record batch blocks, in file order
/// (they interleave when a dictionary grows), do not overlap. Lengths are
/// checked per block by [`block_data`]; saturating sums keep garbage from
/// overflowing here.
fn check_no_overlap(path: &Path, footer: &arrow::ipc::Footer<'_>) -> Result<()> {
    let mut blocks: Vec<(i64, i64)> = footer
        .dictionaries()
        .iter()
        .flatten()
        .chain(footer.recordBatches().iter().flatten())
        .map(|b| {
            let len = i64::from(b.metaDataLength()).saturating_add(b.bodyLength());
            (b.offset(), b.offset().saturating_add(len))
        })
        .collect();
    blocks.sort_unstable();
    let mut end = HEAD as i64;
    for (start, block_end) in blocks {
        if start < end {
            return Err(corrupted(
                path,
                u64::try_from(start).ok(),
                format!("block at {start} overlaps the magic or the block that ends at {end}"),
            ));
        }
        end = block_end;
    }
    Ok(())
}

/// Step 4 for one block: bounds, alignment and its message's buffers; returns
/// the block's bytes.
fn block_data(path: &Path, mapped: &Buffer, block: &Block, footer_start: usize) -> Result<Buffer> {
    let offset = block.offset();
    let bad = |reason: String| corrupted(path, u64::try_from(offset).ok(), reason);
    let start =
        usize::try_from(offset).map_err(|_| bad(format!("block offset {offset} is negative")))?;
    let meta_len = usize::try_from(block.metaDataLength()).map_err(|_| {
        bad(format!(
            "negative metadata length {}",
            block.metaDataLength()
        ))
    })?;
    let body_len = usize::try_from(block.bodyLength())
        .map_err(|_| bad(format!("negative body length {}", block.bodyLength())))?;
    let block_end = start
        .checked_add(meta_len)
        .and_then(|e| e.checked_add(body_len))
        .filter(|e| *e <= footer_start);
    let Some(block_end) = block_end else {
        return Err(bad(format!(
            "block of {meta_len} + {body_len} bytes runs past the footer at {footer_start}"
        )));
    };
    if start < HEAD || start % 8 != 0 || meta_len % 8 != 0 {
        return Err(bad(format!(
            "block at {start} with {meta_len} bytes of metadata: not 8-byte aligned, or inside the magic"
        )));
    }
    let bytes = mapped.as_slice();
    if meta_len < 8 || bytes[start..start + 4] != CONTINUATION {
        return Err(bad("block does not start with an IPC message".into()));
    }
    let fb_len = i32::from_le_bytes(bytes[start + 4..start + 8].try_into().expect("4 bytes"));
    let fb_end = usize::try_from(fb_len)
        .ok()
        .and_then(|l| (start + 8).checked_add(l))
        .filter(|e| *e <= start + meta_len)
        .ok_or_else(|| {
            bad(format!(
                "message length {fb_len} exceeds the block's metadata"
            ))
        })?;
    let message = root_as_message(&bytes[start + 8..fb_end])
        .map_err(|e| bad(format!("message is not a valid flatbuffer: {e}")))?;
    if message.bodyLength() != block.bodyLength() {
        return Err(bad(format!(
            "message body of {} bytes, block body of {body_len}",
            message.bodyLength()
        )));
    }
    let batch = match message.header_type() {
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => {
            message.header_as_dictionary_batch().and_then(|d| d.data())
        }
        other => return Err(bad(format!("unexpected {other:?} message in a block"))),
    }
    .ok_or_else(|| bad("message has no batch".into()))?;
    if batch.compression().is_some() {
        return Err(bad("compressed bodies are not used in Arrow parts".into()));
    }
    for buffer in batch.buffers().iter().flatten() {
        let in_body = u64::try_from(buffer.offset())
            .ok()
            .zip(u64::try_from(buffer.length()).ok())
            .and_then(|(o, l)| o.checked_add(l))
            .is_some_and(|e| e <= body_len as u64);
        if !in_body || buffer.offset() % 8 != 0 {
            return Err(bad(format!(
                "buffer at {} of {} bytes is not 8-byte aligned inside the {body_len}-byte body",
                buffer.offset(),
                buffer.length()
            )));
        }
    }
    Ok(mapped.slice_with_length(start, block_end - start))
}

/// Runs one decoder call on a block, turning Arrow's errors (and, as a last
/// defence, its panics) into `ArrowCorrupted` at the block's offset.
fn guarded<T>(
    path: &Path,
    block: &Block,
    decode: impl FnOnce() -> std::result::Result<T, arrow::error::ArrowError>,
) -> Result<T> {
    let offset = u64::try_from(block.offset()).ok();
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(corrupted(
            path,
            offset,
            format!("block does not decode: {e}"),
        )),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(corrupted(
                path,
                offset,
                format!("block does not decode (Arrow panicked: {what})"),
            ))
        }
    }
}
