//! Checks of listings and deletes.

use super::{key, label, ok, scratch};
use crate::blob::{list_all, BlobError, BlobKey, BlobStore};

/// Listings: all depths under a prefix, segment-wise, sorted, after a
/// cursor, paginated.
pub fn listings(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "listings");
    let names = ["a/1", "a/2/x", "a/2/y", "a-b", "ab", "b", "a/3", "c/d/e/f"];
    for n in names {
        ok(store, store.put(&key(&dir, n), n.to_string().into()), "put");
    }
    let all: Vec<String> = ok(store, list_all(store, Some(&dir)), "list all")
        .into_iter()
        .map(|m| {
            m.key
                .as_str()
                .trim_start_matches(dir.as_str())
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        all,
        expected,
        "{}: list returns every object, sorted by key",
        label(store)
    );

    let a = key(&dir, "a");
    let under_a: Vec<BlobKey> = ok(store, list_all(store, Some(&a)), "list a")
        .into_iter()
        .map(|m| m.key)
        .collect();
    let want: Vec<BlobKey> = ["a/1", "a/2/x", "a/2/y", "a/3"]
        .iter()
        .map(|n| key(&dir, n))
        .collect();
    assert_eq!(
        under_a,
        want,
        "{}: a prefix is segment-wise (not a-b, ab)",
        label(store)
    );

    let after = key(&dir, "a/2/x");
    let page = ok(
        store,
        store.list(Some(&a), Some(&after), 1000),
        "list after",
    );
    let keys: Vec<BlobKey> = page.objects.iter().map(|m| m.key.clone()).collect();
    assert_eq!(
        keys,
        want[2..].to_vec(),
        "{}: after is exclusive",
        label(store)
    );
    assert!(
        page.next.is_none(),
        "{}: the last page has no next",
        label(store)
    );
    let sizes: Vec<u64> = page.objects.iter().map(|m| m.size).collect();
    assert_eq!(sizes, vec![5, 3], "{}: listed sizes", label(store));

    // Pages of 3 join to the whole listing, without loss or repetition.
    let (mut joined, mut cursor) = (Vec::new(), None::<BlobKey>);
    for _ in 0..10 {
        let page = ok(
            store,
            store.list(Some(&dir), cursor.as_ref(), 3),
            "list a page",
        );
        assert!(
            page.objects.len() <= 3,
            "{}: a page holds at most its limit",
            label(store)
        );
        joined.extend(page.objects.into_iter().map(|m| m.key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let whole: Vec<BlobKey> = ok(store, list_all(store, Some(&dir)), "list all")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        joined,
        whole,
        "{}: pages join to the whole listing",
        label(store)
    );

    let none = key(&dir, "zzz");
    let empty = ok(
        store,
        store.list(Some(&none), None, 10),
        "list an empty prefix",
    );
    assert!(
        empty.objects.is_empty() && empty.next.is_none(),
        "{}: an empty prefix",
        label(store)
    );
}

/// Delete removes the object everywhere and is idempotent.
pub fn deletes(store: &dyn BlobStore, root: &BlobKey) {
    let dir = scratch(store, root, "deletes");
    let (k, other) = (key(&dir, "gone"), key(&dir, "kept"));
    ok(store, store.put(&k, "x".into()), "put");
    ok(store, store.put(&other, "y".into()), "put");
    ok(store, store.delete(&k), "delete");
    assert!(
        matches!(store.get(&k), Err(BlobError::NotFound { .. })),
        "{}: a deleted object is NotFound",
        label(store)
    );
    assert!(
        store.head(&k).is_err_and(|e| e.is_not_found()),
        "{}: head after delete",
        label(store)
    );
    let left: Vec<BlobKey> = ok(store, list_all(store, Some(&dir)), "list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        left,
        vec![other.clone()],
        "{}: list after delete",
        label(store)
    );
    ok(store, store.delete(&k), "delete again (idempotent)");
    ok(
        store,
        store.delete(&key(&dir, "never")),
        "delete of a missing object",
    );
    assert_eq!(&ok(store, store.get(&other), "get")[..], b"y");
}
