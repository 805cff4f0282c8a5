//! One suite of object-store semantics that every provider passes.

use coffer::sandbox::{ErrorKind, ObjectStoreHandle};

/// A sink whose bytes the test reads back after the handle's blocking writer is done.
#[derive(Clone, Default)]
struct SharedSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedSink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl std::io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A body of `len` bytes with a pattern that shows misplaced chunks.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
}

/// Runs the suite on `store` in `bucket`, with a large-object round trip of `big_mib` MiB.
pub async fn object_store_conformance(store: &mut ObjectStoreHandle, bucket: &str, big_mib: usize) {
    // Missing objects: exists is false, get is NotFound, delete succeeds.
    assert!(!store.object_exists(bucket, "nothing/here").await.unwrap());
    let err = store.get_bytes(bucket, "nothing/here", 1 << 20).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotFound(_)), "{err}");
    store.delete_object(bucket, "nothing/here").await.unwrap();

    // Put, overwrite, get.
    store.put_bytes(bucket, "a/one.json", b"first".to_vec()).await.unwrap();
    store.put_bytes(bucket, "a/one.json", b"second".to_vec()).await.unwrap();
    assert_eq!(store.get_bytes(bucket, "a/one.json", 1 << 20).await.unwrap(), b"second");
    assert!(store.object_exists(bucket, "a/one.json").await.unwrap());
    store.put_bytes(bucket, "a/empty", Vec::new()).await.unwrap();
    assert_eq!(store.get_bytes(bucket, "a/empty", 1 << 20).await.unwrap(), b"");
    store.put_bytes(bucket, "a/b/c/deep", b"x".to_vec()).await.unwrap();
    store.put_bytes(bucket, "a/b2/x", b"x".to_vec()).await.unwrap();
    store.put_bytes(bucket, "top", b"x".to_vec()).await.unwrap();

    // Common prefixes are whole and end with the delimiter; loose objects are not prefixes.
    assert_eq!(store.list_common_prefixes(bucket, "", "/").await.unwrap(), ["a/"]);
    assert_eq!(store.list_common_prefixes(bucket, "a/", "/").await.unwrap(), ["a/b/", "a/b2/"]);
    assert_eq!(store.list_common_prefixes(bucket, "a/b", "/").await.unwrap(), ["a/b/", "a/b2/"]);
    assert!(store.list_common_prefixes(bucket, "zzz/", "/").await.unwrap().is_empty());
    let mut all = store.list_objects(bucket, "a/").await.unwrap();
    all.sort();
    assert_eq!(all, ["a/b/c/deep", "a/b2/x", "a/empty", "a/one.json"]);

    // Pagination: more than one page of keys.
    let n = 1005;
    for i in 0..n {
        store.put_bytes(bucket, &format!("many/{i:04}"), vec![b'k']).await.unwrap();
    }
    let keys = store.list_objects(bucket, "many/").await.unwrap();
    assert_eq!(keys.len(), n, "all keys past the first page");
    for i in 0..10 {
        store.put_bytes(bucket, &format!("dirs/d{i:04}/x"), vec![]).await.unwrap();
    }
    assert_eq!(store.list_common_prefixes(bucket, "dirs/", "/").await.unwrap().len(), 10);

    // Deletes.
    store.delete_object(bucket, "a/b/c/deep").await.unwrap();
    assert!(!store.object_exists(bucket, "a/b/c/deep").await.unwrap());
    assert_eq!(store.list_common_prefixes(bucket, "a/", "/").await.unwrap(), ["a/b2/"]);

    // A large object, streamed both ways.
    let big = pattern(big_mib << 20);
    let stored = store.put_bytes(bucket, "big/object", big.clone()).await.unwrap();
    assert_eq!(stored, big.len() as u64);
    let back = store.get_bytes(bucket, "big/object", 2 << 30).await.unwrap();
    assert!(back == big, "the large object came back different ({} bytes)", back.len());

    // Ranged reads: inside, across the end, at and past the end, of nothing, of a missing key.
    let range = async |store: &mut ObjectStoreHandle, key: &str, offset: u64, length: u64| {
        let sink = SharedSink::default();
        let n = store.get_object_range(bucket, key, offset, length, sink.clone()).await?;
        let bytes = sink.take();
        assert_eq!(n, bytes.len() as u64, "reported length of {key} [{offset}; {length}]");
        Ok::<_, coffer::sandbox::ProviderError>(bytes)
    };
    let big_len = big.len() as u64;
    let middle = (5 << 20) + 3;
    assert!(range(store, "big/object", middle, 1 << 20).await.unwrap() == big[middle as usize..][..1 << 20], "a range in the middle");
    assert_eq!(range(store, "big/object", big_len - 10, 100).await.unwrap(), big[big.len() - 10..], "a range across the end");
    assert!(range(store, "big/object", big_len, 10).await.unwrap().is_empty(), "a range at the end");
    assert!(range(store, "big/object", big_len + 1000, 10).await.unwrap().is_empty(), "a range past the end");
    assert_eq!(range(store, "a/one.json", 0, 1).await.unwrap(), b"s");
    assert!(range(store, "a/one.json", 2, 0).await.unwrap().is_empty(), "a range of nothing");
    assert!(range(store, "a/empty", 0, 10).await.unwrap().is_empty(), "a range of an empty object");
    for length in [0, 10] {
        let err = range(store, "nothing/here", 0, length).await.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::NotFound(_)), "a range of a missing object: {err}");
    }

    // Listings carry each object's size.
    let mut sized = store.list_objects_with_sizes(bucket, "a/").await.unwrap();
    sized.sort_by(|a, b| a.key.cmp(&b.key));
    let sized: Vec<(&str, u64)> = sized.iter().map(|e| (e.key.as_str(), e.size)).collect();
    assert_eq!(sized, [("a/b2/x", 1), ("a/empty", 0), ("a/one.json", 6)]);
    let big_listed = store.list_objects_with_sizes(bucket, "big/").await.unwrap();
    assert_eq!(big_listed.iter().map(|e| e.size).collect::<Vec<_>>(), [big_len]);

    // A signed URL names the object.
    let url = store.create_signed_url(bucket, "a/one.json", std::time::Duration::from_secs(600)).await.unwrap();
    assert!(url.contains("one.json"), "{url}");
}
