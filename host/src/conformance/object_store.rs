//! The object-store checks: `wit/object-store.wit`, call by call.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use super::data::{Digest, Paused, Pattern, Summary};
use super::manifest::check_manifest;
use super::record::{Failure, Recorder, answered};
use super::{CheckResult, ObjectStoreTarget, Report, RunError, Subject};
use crate::sandbox::{ErrorKind, Grants, ObjectStoreHandle, ProviderError, fetch_signed_url};

/// Every object-store check, in the order they run.
pub const OBJECT_STORE_CHECKS: &[&str] = &[
    "describe-stable",
    "grants",
    "manifest-coherent",
    "init",
    "missing-object-exists",
    "missing-object-get",
    "missing-object-range",
    "delete-missing-object",
    "round-trip-0-bytes",
    "round-trip-1-byte",
    "round-trip-8MiB-minus-1",
    "round-trip-8MiB",
    "round-trip-8MiB-plus-1",
    "round-trip-1GiB",
    "replace",
    "atomic-replace",
    "unusual-keys",
    "list-objects",
    "list-common-prefixes",
    "list-common-prefixes-bucket-root",
    "listing-pages",
    "delete-object",
    "ranged-reads",
    "signed-url",
    "signed-url-expires",
    "calls-within-deadline",
    "cleanup",
];

const MIB: u64 = 1 << 20;

/// Keys more than one page of an S3 or GCS listing holds.
const PAGED_KEYS: usize = 1001;

/// The objects the listing checks list: key under the run's root, and body.
const LISTED: &[(&str, &[u8])] =
    &[("list/a/one", b"one"), ("list/a/empty", b""), ("list/a/b/c/deep", b"deep"), ("list/a/b2/x", b"x"), ("list/top", b"top")];

/// Keys with characters that need encoding somewhere between the host and the service.
const UNUSUAL: &[&str] = &["unusual/with space.txt", "unusual/ünïcödé 日本.json", "unusual/100%.txt", "unusual/a+b.txt"];

/// One run's instance, bucket and the keys it wrote.
struct Run<'s> {
    subject: &'s Subject,
    grants: Grants,
    store: ObjectStoreHandle,
    bucket: String,
    /// The fresh prefix every key of the run is under, ending in `/`.
    root: String,
    /// Every key the run tried to write, for the cleanup.
    written: BTreeSet<String>,
    /// Whether the listing checks' objects were written, or why not.
    listed: Option<Result<(), String>>,
}

impl Run<'_> {
    fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.root)
    }

    async fn put(&mut self, relative: &str, body: impl Read + Send + 'static) -> Result<u64, ProviderError> {
        let key = self.key(relative);
        self.written.insert(key.clone());
        self.store.put_object(&self.bucket, &key, body).await
    }

    async fn put_bytes(&mut self, relative: &str, body: &[u8]) -> Result<u64, Failure> {
        answered("put-object to succeed", self.put(relative, std::io::Cursor::new(body.to_vec())).await)
    }

    async fn exists(&mut self, relative: &str) -> Result<bool, ProviderError> {
        self.store.object_exists(&self.bucket, &self.key(relative)).await
    }

    async fn get(&mut self, relative: &str) -> Result<Summary, ProviderError> {
        let key = self.key(relative);
        summary_of(&mut self.store, &self.bucket, &key).await
    }

    async fn delete(&mut self, relative: &str) -> Result<(), ProviderError> {
        let key = self.key(relative);
        self.store.delete_object(&self.bucket, &key).await?;
        self.written.remove(&key);
        Ok(())
    }

    /// The keys under `relative`, sorted, made relative to the run's root.
    async fn list(&mut self, relative: &str) -> Result<Vec<String>, ProviderError> {
        let keys = self.store.list_objects(&self.bucket, &self.key(relative)).await?;
        Ok(self.relative(keys))
    }

    async fn common_prefixes(&mut self, relative: &str) -> Result<Vec<String>, ProviderError> {
        let prefixes = self.store.list_common_prefixes(&self.bucket, &self.key(relative), "/").await?;
        Ok(self.relative(prefixes))
    }

    fn relative(&self, mut keys: Vec<String>) -> Vec<String> {
        keys.sort();
        keys.into_iter().map(|k| k.strip_prefix(&self.root).map(str::to_owned).unwrap_or(k)).collect()
    }

    /// Writes the listing checks' objects once.
    async fn write_listed(&mut self) -> Result<(), Failure> {
        if self.listed.is_none() {
            let mut done = Ok(());
            for (key, body) in LISTED {
                if let Err(e) = self.put(key, std::io::Cursor::new(body.to_vec())).await {
                    done = Err(e.kind.to_string());
                    break;
                }
            }
            self.listed = Some(done);
        }
        match self.listed.clone().expect("set above") {
            Ok(()) => Ok(()),
            Err(got) => Err(Failure::new("put-object of the objects to list to succeed", got)),
        }
    }
}

async fn summary_of(store: &mut ObjectStoreHandle, bucket: &str, key: &str) -> Result<Summary, ProviderError> {
    let digest = Digest::default();
    store.get_object(bucket, key, digest.sink()).await?;
    Ok(digest.summary())
}

fn shown(summary: &Summary) -> String {
    format!("{} bytes (SHA-256 {}…)", summary.len, hex::encode(&summary.sha256[..6]))
}

/// Runs every object-store check on `subject` in `target`.
pub(super) async fn run(subject: &Subject, target: &ObjectStoreTarget, on_check: &mut dyn FnMut(&CheckResult)) -> Result<Report, RunError> {
    let mut rec = Recorder::new(on_check);
    let mut notes = Vec::new();
    let Some(grants) = check_manifest(subject, &mut rec).await else {
        rec.skip_rest(OBJECT_STORE_CHECKS, "the config grants nothing to test with (see grants)");
        return Ok(Report::new(&subject.component, rec.into_checks(), notes));
    };
    let mut store = None;
    rec.check("init", async {
        store = Some(answered("init to accept the config and credential", ObjectStoreHandle::new(&subject.sandbox, &subject.component, grants.clone()).await)?);
        Ok(())
    })
    .await;
    let Some(mut store) = store else {
        rec.skip_rest(OBJECT_STORE_CHECKS, "init failed");
        return Ok(Report::new(&subject.component, rec.into_checks(), notes));
    };

    let base = if target.prefix.is_empty() { String::new() } else { format!("{}/", target.prefix) };
    match store.list_objects(&target.bucket, &base).await {
        Ok(keys) if !keys.is_empty() && !target.force => {
            return Err(RunError::NotEmpty { bucket: target.bucket.clone(), prefix: target.prefix.clone(), count: keys.len(), first: keys[0].clone() });
        }
        Ok(_) => {}
        Err(e) => notes.push(format!("could not list the prefix to see that it is empty ({}); the run writes under a fresh prefix anyway", e.kind)),
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let root = format!("{base}coffer-plugin-test-{stamp}-{}/", hex::encode(rand::random::<[u8; 4]>()));
    notes.push(format!("the run wrote only under bucket {:?} prefix {root:?}", target.bucket));
    let mut run = Run { subject, grants, store, bucket: target.bucket.clone(), root, written: BTreeSet::new(), listed: None };

    missing_objects(&mut run, &mut rec).await;
    round_trips(&mut run, &mut rec, target.large).await;
    rec.check("replace", replace(&mut run)).await;
    rec.check("atomic-replace", atomic_replace(&mut run)).await;
    rec.check("unusual-keys", unusual_keys(&mut run)).await;
    rec.check("list-objects", list_objects(&mut run)).await;
    rec.check("list-common-prefixes", list_common_prefixes(&mut run)).await;
    rec.check("list-common-prefixes-bucket-root", bucket_root(&mut run)).await;
    rec.check("listing-pages", listing_pages(&mut run)).await;
    rec.check("delete-object", delete_object(&mut run)).await;
    if run.store.has("0.2.0") {
        rec.check("ranged-reads", ranged_reads(&mut run)).await;
    } else {
        rec.skip("ranged-reads", format!("contract {} has no get-object-range", run.store.contract()));
    }
    signed_urls(&mut run, &mut rec).await;
    rec.check_deadlines(subject.sandbox.limits().call_deadline);
    rec.check("cleanup", cleanup(&mut run)).await;
    Ok(Report::new(&subject.component, rec.into_checks(), notes))
}

async fn missing_objects(run: &mut Run<'_>, rec: &mut Recorder<'_>) {
    const MISSING: &str = "missing/never-written";
    rec.check("missing-object-exists", async {
        match answered("ok(false) for a key never written", run.exists(MISSING).await)? {
            false => Ok(()),
            true => Err(Failure::new("ok(false) for a key never written", "ok(true)")),
        }
    })
    .await;
    let not_found = |what: &str, result: Result<Summary, ProviderError>| match result {
        Err(ProviderError { kind: ErrorKind::NotFound(_), .. }) => Ok(()),
        Err(e) => Err(Failure::error(format!("error not-found from {what} of a key never written"), &e)),
        Ok(s) => Err(Failure::new(format!("error not-found from {what} of a key never written"), format!("ok, {}", shown(&s)))),
    };
    rec.check("missing-object-get", async { not_found("get-object", run.get(MISSING).await) }).await;
    if run.store.has("0.2.0") {
        rec.check("missing-object-range", async {
            let key = run.key(MISSING);
            let result = run.store.get_range_bytes(&run.bucket, &key, 0, 10).await.map(|b| Summary::of(&b));
            not_found("get-object-range", result)
        })
        .await;
    } else {
        rec.skip("missing-object-range", format!("contract {} has no get-object-range", run.store.contract()));
    }
    rec.check("delete-missing-object", async { answered("delete-object of a key never written to succeed", run.delete(MISSING).await) }).await;
}

async fn round_trips(run: &mut Run<'_>, rec: &mut Recorder<'_>, large: bool) {
    let sizes: [(&'static str, u64); 5] = [
        ("round-trip-0-bytes", 0),
        ("round-trip-1-byte", 1),
        ("round-trip-8MiB-minus-1", 8 * MIB - 1),
        ("round-trip-8MiB", 8 * MIB),
        ("round-trip-8MiB-plus-1", 8 * MIB + 1),
    ];
    for (seed, (name, len)) in sizes.into_iter().enumerate() {
        rec.check(name, round_trip(run, name, len, seed as u8)).await;
    }
    if large {
        rec.check("round-trip-1GiB", round_trip(run, "round-trip-1GiB", 1024 * MIB, 7)).await;
    } else {
        rec.skip("round-trip-1GiB", "pass --large to round-trip 1 GiB");
    }
}

/// Puts a `len`-byte object, generated as it streams, and gets it back hashed as it streams.
async fn round_trip(run: &mut Run<'_>, name: &str, len: u64, seed: u8) -> Result<(), Failure> {
    let key = format!("round-trip/{name}");
    let sent = Digest::default();
    // The host itself refuses a put whose reported length is not what crossed the stream.
    answered(&format!("put-object of a {len}-byte body to succeed"), run.put(&key, sent.reading(Pattern::new(len, seed))).await)?;
    if !answered("object-exists to be ok(true) after a put", run.exists(&key).await)? {
        return Err(Failure::new("object-exists to be ok(true) after a put", "ok(false)"));
    }
    let back = answered("get-object to return the object put", run.get(&key).await)?;
    let sent = sent.summary();
    if back != sent {
        return Err(Failure::new(format!("get-object to return the {} put", shown(&sent)), format!("{} back", shown(&back))));
    }
    // Not kept for the cleanup: the largest objects should not wait for the end.
    if len > MIB {
        answered("delete-object to succeed", run.delete(&key).await)?;
    }
    Ok(())
}

async fn replace(run: &mut Run<'_>) -> Result<(), Failure> {
    run.put_bytes("replace/object", b"first").await?;
    run.put_bytes("replace/object", b"second, longer").await?;
    let back = answered("get-object to return the object put last", run.get("replace/object").await)?;
    if back != Summary::of(b"second, longer") {
        return Err(Failure::new("get-object to return the 14 bytes put last", format!("{} back", shown(&back))));
    }
    Ok(())
}

/// While a put replacing an object is held open midway, a second instance reads the object:
/// the contract says no reader ever observes a partially written object.
async fn atomic_replace(run: &mut Run<'_>) -> Result<(), Failure> {
    const EXPECTED: &str = "a reader to see the old object, whole, until the put completes";
    const OLD: &[u8] = b"the object before it was replaced\n";
    const NEW_LEN: u64 = 12 * MIB;
    const PAUSE_AT: u64 = 6 * MIB;
    run.put_bytes("atomic/object", OLD).await?;
    let mut reader = answered(
        "a second instance to initialise",
        ObjectStoreHandle::new(&run.subject.sandbox, &run.subject.component, run.grants.clone()).await,
    )?;
    let new = Pattern::new(NEW_LEN, 11);
    let (reached, paused) = tokio::sync::oneshot::channel();
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let (bucket, key) = (run.bucket.clone(), run.key("atomic/object"));
    let observe = async {
        paused.await.ok()?;
        // Time for the provider to store what it was given so far.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = summary_of(&mut reader, &bucket, &key).await;
        drop(resume);
        Some(seen)
    };
    let (put, seen) = tokio::join!(run.put("atomic/object", Paused::new(new.clone(), PAUSE_AT, reached, resumed)), observe);
    answered("put-object of the new object to succeed", put)?;
    match seen {
        None => return Err(Failure::new(EXPECTED, "the put ended before it had read half its body")),
        Some(Ok(s)) if s == Summary::of(OLD) => {}
        Some(Ok(s)) => {
            return Err(Failure::new(EXPECTED, format!("a reader saw {} while the put had sent {PAUSE_AT} of {NEW_LEN} bytes", shown(&s))));
        }
        Some(Err(e)) => return Err(Failure::new(EXPECTED, format!("a reader got {} while the put was under way", e.kind))),
    }
    let back = answered("get-object to return the new object", run.get("atomic/object").await)?;
    if back != new.summary() {
        return Err(Failure::new("get-object to return the new object once the put completed", format!("{} back", shown(&back))));
    }
    answered("delete-object to succeed", run.delete("atomic/object").await)
}

async fn unusual_keys(run: &mut Run<'_>) -> Result<(), Failure> {
    for key in UNUSUAL {
        run.put_bytes(key, key.as_bytes()).await.map_err(|f| f.about(key))?;
        let back = answered("get-object to return it", run.get(key).await).map_err(|f| f.about(key))?;
        if back != Summary::of(key.as_bytes()) {
            return Err(Failure::new(format!("get-object of {key:?} to return the {} bytes put", key.len()), shown(&back)));
        }
        if !answered("object-exists to be ok(true)", run.exists(key).await).map_err(|f| f.about(key))? {
            return Err(Failure::new(format!("object-exists of {key:?} to be ok(true)"), "ok(false)"));
        }
    }
    let listed = answered("list-objects to succeed", run.list("unusual/").await)?;
    let mut expected: Vec<String> = UNUSUAL.iter().map(|k| k.to_string()).collect();
    expected.sort();
    if listed != expected {
        return Err(Failure::new(format!("list-objects to list exactly {expected:?}"), format!("{listed:?}")));
    }
    for key in UNUSUAL {
        answered("delete-object to succeed", run.delete(key).await).map_err(|f| f.about(key))?;
        if answered("object-exists to succeed", run.exists(key).await).map_err(|f| f.about(key))? {
            return Err(Failure::new(format!("object-exists of {key:?} to be ok(false) once deleted"), "ok(true)"));
        }
    }
    Ok(())
}

async fn list_objects(run: &mut Run<'_>) -> Result<(), Failure> {
    run.write_listed().await?;
    let expect = |prefix: &str, keys: &[&str], got: Vec<String>| {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        if got == keys { Ok(()) } else { Err(Failure::new(format!("list-objects of {prefix:?} to list exactly {keys:?}"), format!("{got:?}"))) }
    };
    let under_a = answered("list-objects to succeed", run.list("list/a/").await)?;
    expect("list/a/", &["list/a/b/c/deep", "list/a/b2/x", "list/a/empty", "list/a/one"], under_a)?;
    let partial = answered("list-objects to succeed", run.list("list/a/b").await)?;
    expect("list/a/b", &["list/a/b/c/deep", "list/a/b2/x"], partial)?;
    let none = answered("list-objects to succeed", run.list("list/nothing/").await)?;
    expect("list/nothing/", &[], none)?;
    if !run.store.has("0.2.0") {
        return Ok(());
    }
    let sized = answered("list-objects to succeed", run.store.list_objects_with_sizes(&run.bucket, &run.key("list/")).await)?;
    for (key, body) in LISTED {
        let found = sized.iter().find(|e| e.key == run.key(key)).map(|e| e.size);
        if found != Some(body.len() as u64) {
            return Err(Failure::new(format!("list-objects to give {key:?} its size, {}", body.len()), format!("{found:?}")));
        }
    }
    Ok(())
}

async fn list_common_prefixes(run: &mut Run<'_>) -> Result<(), Failure> {
    run.write_listed().await?;
    let cases: [(&str, &[&str]); 4] = [
        ("list/", &["list/a/"]),
        ("list/a/", &["list/a/b/", "list/a/b2/"]),
        ("list/a/b", &["list/a/b/", "list/a/b2/"]),
        ("list/nothing/", &[]),
    ];
    for (prefix, expected) in cases {
        let got = answered("list-common-prefixes to succeed", run.common_prefixes(prefix).await)?;
        if got != expected.iter().map(|k| k.to_string()).collect::<Vec<_>>() {
            return Err(Failure::new(format!("list-common-prefixes of {prefix:?} with \"/\" to be exactly {expected:?}"), format!("{got:?}")));
        }
    }
    Ok(())
}

/// The empty prefix lists the bucket's top level, which holds the run's first segment.
async fn bucket_root(run: &mut Run<'_>) -> Result<(), Failure> {
    let top = format!("{}/", run.root.split('/').next().unwrap_or_default());
    let got = answered("list-common-prefixes to succeed", run.store.list_common_prefixes(&run.bucket, "", "/").await)?;
    if got.contains(&top) {
        Ok(())
    } else {
        let shown: Vec<&String> = got.iter().take(10).collect();
        Err(Failure::new(format!("list-common-prefixes of \"\" to include {top:?}"), format!("{} prefixes: {shown:?}…", got.len())))
    }
}

async fn listing_pages(run: &mut Run<'_>) -> Result<(), Failure> {
    let keys: Vec<String> = (0..PAGED_KEYS).map(|i| format!("pages/{i:04}/k")).collect();
    for key in &keys {
        run.put_bytes(key, b"k").await.map_err(|f| f.about(key))?;
    }
    let listed = answered("list-objects to succeed", run.list("pages/").await)?;
    if listed != keys {
        let missing = keys.iter().find(|k| !listed.contains(k));
        return Err(Failure::new(format!("list-objects to list all {PAGED_KEYS} keys, past the first page"), format!("{} keys (missing e.g. {missing:?})", listed.len())));
    }
    let prefixes = answered("list-common-prefixes to succeed", run.common_prefixes("pages/").await)?;
    if prefixes.len() != PAGED_KEYS {
        return Err(Failure::new(format!("list-common-prefixes to give all {PAGED_KEYS} prefixes, past the first page"), format!("{}", prefixes.len())));
    }
    for key in &keys {
        answered("delete-object to succeed", run.delete(key).await).map_err(|f| f.about(key))?;
    }
    Ok(())
}

async fn delete_object(run: &mut Run<'_>) -> Result<(), Failure> {
    run.put_bytes("delete/object", b"to be deleted").await?;
    answered("delete-object to succeed", run.delete("delete/object").await)?;
    if answered("object-exists to succeed", run.exists("delete/object").await)? {
        return Err(Failure::new("object-exists to be ok(false) once deleted", "ok(true)"));
    }
    match run.get("delete/object").await {
        Err(ProviderError { kind: ErrorKind::NotFound(_), .. }) => {}
        Err(e) => return Err(Failure::error("get-object of a deleted key to be not-found", &e)),
        Ok(s) => return Err(Failure::new("get-object of a deleted key to be not-found", format!("ok, {}", shown(&s)))),
    }
    let listed = answered("list-objects to succeed", run.list("delete/").await)?;
    if listed.is_empty() { Ok(()) } else { Err(Failure::new("list-objects to list no deleted key", format!("{listed:?}"))) }
}

async fn ranged_reads(run: &mut Run<'_>) -> Result<(), Failure> {
    let len = 3 * MIB + 5;
    let body = Pattern::new(len, 13);
    answered("put-object to succeed", run.put("range/object", body.clone()).await)?;
    run.put_bytes("range/empty", b"").await?;
    let cases = [
        ("range/object", MIB + 3, MIB, "in the middle"),
        ("range/object", len - 10, 100, "across the end"),
        ("range/object", len, 10, "at the end"),
        ("range/object", len + 1000, 10, "past the end"),
        ("range/object", 2, 0, "of no bytes"),
        ("range/empty", 0, 10, "of an empty object"),
    ];
    for (key, offset, length, what) in cases {
        let full = run.key(key);
        let got = answered("get-object-range to succeed", run.store.get_range_bytes(&run.bucket, &full, offset, length).await)
            .map_err(|f| f.about(&format!("{key} [{offset}; {length}]")))?;
        let expected = if key == "range/object" { body.slice(offset, length) } else { Vec::new() };
        if got != expected {
            return Err(Failure::new(
                format!("a range {what} ({length} bytes from {offset} of {key:?}) to be {} bytes", expected.len()),
                format!("{} bytes{}", got.len(), if got.len() == expected.len() { ", not the object's" } else { "" }),
            ));
        }
    }
    Ok(())
}

async fn signed_urls(run: &mut Run<'_>, rec: &mut Recorder<'_>) {
    const BODY: &[u8] = b"fetched through a signed URL\n";
    let mut scheme = None;
    rec.check("signed-url", async {
        run.put_bytes("signed/object.txt", BODY).await?;
        let key = run.key("signed/object.txt");
        let url = answered("create-signed-url to succeed", run.store.create_signed_url(&run.bucket, &key, Duration::from_secs(600)).await)?;
        scheme = url.split_once(':').map(|(s, _)| s.to_owned());
        let fetched = fetch_signed_url(&run.grants, &url, MIB).await.map_err(|e| Failure::new("a URL the host can fetch", e))?;
        if !fetched.success() || fetched.body != BODY {
            return Err(Failure::new(
                format!("GET {url} to answer the object ({} bytes)", BODY.len()),
                format!("status {} with {} bytes", fetched.status, fetched.body.len()),
            ));
        }
        Ok(())
    })
    .await;
    match scheme.as_deref() {
        Some("file") => rec.skip("signed-url-expires", "a file URL is as good as the file's permissions and does not expire"),
        None => rec.skip("signed-url-expires", "signed-url failed"),
        Some(_) => {
            let key = run.key("signed/object.txt");
            let signed = run.store.create_signed_url(&run.bucket, &key, Duration::from_secs(1)).await;
            // A service that serves a URL whose signature was altered checks no signature, and
            // cannot show whether one expires (some emulators).
            let unchecked = match &signed {
                Ok(url) => fetch_signed_url(&run.grants, &altered(url), MIB).await.is_ok_and(|f| f.success()),
                Err(_) => false,
            };
            if unchecked {
                rec.skip("signed-url-expires", "the service served the URL with its signature altered: it checks no signatures, so it cannot show expiry");
            } else {
                rec.check("signed-url-expires", async {
                    let url = answered("create-signed-url to succeed", signed)?;
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    let fetched = fetch_signed_url(&run.grants, &url, MIB).await.map_err(|e| Failure::new("a URL the host can fetch", e))?;
                    if fetched.success() {
                        return Err(Failure::new("a URL signed for 1 s to be refused 2.5 s later", format!("status {}", fetched.status)));
                    }
                    Ok(())
                })
                .await;
            }
        }
    }
}

/// `url` with its last character changed (the end of its signature, where it has one).
fn altered(url: &str) -> String {
    let mut chars: Vec<char> = url.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

/// Deletes every key the run wrote, then checks that nothing is left under its prefix.
async fn cleanup(run: &mut Run<'_>) -> Result<(), Failure> {
    let mut failed = Vec::new();
    for key in std::mem::take(&mut run.written) {
        if let Err(e) = run.store.delete_object(&run.bucket, &key).await {
            failed.push(format!("{key:?}: {}", e.kind));
        }
    }
    if let Some(first) = failed.first() {
        return Err(Failure::new("delete-object to delete every object the run wrote", format!("{} deletes failed, first {first}", failed.len())));
    }
    let root = run.root.clone();
    let left = answered("list-objects to succeed", run.store.list_objects(&run.bucket, &root).await)?;
    if left.is_empty() { Ok(()) } else { Err(Failure::new(format!("nothing left under {root:?}"), format!("{left:?}"))) }
}
