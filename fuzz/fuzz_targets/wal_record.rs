//! The record payload decoder: any kind byte and payload either decode to an
//! entry that re-encodes to the same bytes, or give a `DecodeError`; the
//! borrowing and the owning decoder agree.
#![no_main]

use highwater::wal::WalEntryRef;
use highwater::WalEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let owned = WalEntry::decode(kind, payload);
    let borrowed = WalEntryRef::decode(kind, payload).map(WalEntryRef::into_owned);
    assert_eq!(owned, borrowed, "the two decoders disagree");
    if let Ok(entry) = owned {
        assert_eq!(entry.kind(), kind);
        let mut again = Vec::new();
        entry.encode_into(&mut again);
        assert_eq!(again, payload, "decode then encode changes the bytes");
        assert_eq!(entry.encoded_len(), payload.len() as u64);
    }
});
