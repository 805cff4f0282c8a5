//! Sandbox benchmarks, each printed with a ratio against a native peer measured in the same
//! run: instantiation, no-op and smallest-store call latency, and 256 MiB put/get through the
//! `filesystem` provider against `object_store`'s native `LocalFileSystem` on the same disk.
//!
//! Run: `cargo bench -p coffer --bench sandbox` (`COFFER_BENCH_MIB` changes the object size).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer::embedded;
use coffer::confine::PathRoot;
use coffer::sandbox::{Limits, ObjectStoreHandle, ProviderComponent, Sandbox, grants_for};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

fn grants(component: &ProviderComponent, root: &Path) -> coffer::sandbox::Grants {
    let config = BTreeMap::from([("root".to_owned(), root.to_str().unwrap().to_owned()), ("bucket".to_owned(), "b".to_owned())]);
    grants_for("bench", component.manifest(), config, None, &PathRoot::Anywhere).unwrap()
}

fn per_op(total: Duration, n: u32) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(n)
}

fn report(what: &str, wasm_us: f64, native_us: f64, peer: &str) {
    println!("{what:<44} wasm {wasm_us:>10.2} µs   {peer} {native_us:>10.2} µs   ratio wasm/native {:.2}", wasm_us / native_us);
}

/// The fastest of `runs` timings of `f`.
fn best(runs: u32, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap()
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::var("COFFER_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let tmp = tempfile::tempdir_in(std::env::var("COFFER_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let (wasm_root, native_root) = (tmp.path().join("wasm"), tmp.path().join("native"));
    std::fs::create_dir_all(&wasm_root).unwrap();
    std::fs::create_dir_all(&native_root).unwrap();
    let sandbox = Sandbox::new(None, Limits::default()).unwrap();
    let fs = sandbox.load(embedded::FILESYSTEM).await.unwrap();
    let native = LocalFileSystem::new_with_prefix(&native_root).unwrap();

    // Instantiation: a new instance with its preopen, initialised; versus building the
    // native store.
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let handle = ObjectStoreHandle::new(&sandbox, &fs, grants(&fs, &wasm_root)).await.unwrap();
        drop(handle);
    }
    let wasm = per_op(started.elapsed(), n);
    let started = Instant::now();
    for _ in 0..n {
        drop(LocalFileSystem::new_with_prefix(&native_root).unwrap());
    }
    report("instantiate + init (filesystem provider)", wasm, per_op(started.elapsed(), n), "LocalFileSystem::new");

    // A call that does nothing in the guest, against a native async call through a trait
    // object (what calling a native provider costs).
    let probe_wasm = std::fs::read(Path::new(env!("COFFER_TEST_COMPONENTS_DIR")).join("coffer_test_probe.wasm")).unwrap();
    let probe = sandbox.load(&probe_wasm).await.unwrap();
    let no_grants = grants_for("bench", probe.manifest(), BTreeMap::new(), None, &PathRoot::Anywhere).unwrap();
    let mut noop = ObjectStoreHandle::new(&sandbox, &probe, no_grants).await.unwrap();
    let n = 50_000;
    let started = Instant::now();
    for _ in 0..n {
        assert!(noop.object_exists("b", "noop").await.unwrap());
    }
    let wasm = per_op(started.elapsed(), n);
    let native_noop: Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>> =
        Box::new(|| Box::pin(async { std::hint::black_box(true) }));
    let started = Instant::now();
    for _ in 0..n {
        assert!(native_noop().await);
    }
    report("call: no-op", wasm, per_op(started.elapsed(), n), "dyn async fn");

    // The smallest call that reaches the store: existence of a missing object.
    let mut store = ObjectStoreHandle::new(&sandbox, &fs, grants(&fs, &wasm_root)).await.unwrap();
    let n = 20_000;
    let missing = ObjectPath::from("b/missing");
    let started = Instant::now();
    for _ in 0..n {
        assert!(!store.object_exists("b", "missing").await.unwrap());
    }
    let wasm = per_op(started.elapsed(), n);
    let started = Instant::now();
    for _ in 0..n {
        assert!(native.head(&missing).await.is_err());
    }
    report("call: exists(missing)", wasm, per_op(started.elapsed(), n), "head");

    // Large objects, from and to memory so that both sides do the same disk work.
    let body = Bytes::from((0..mib << 20).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let key = ObjectPath::from("b/big");
    let wasm_put = best(3, || {
        let body = body.clone();
        let started = Instant::now();
        let n = block_on(store.put_object("b", "big", std::io::Cursor::new(body))).unwrap();
        assert_eq!(n, (mib << 20) as u64);
        started.elapsed()
    });
    let native_put = best(3, || {
        let started = Instant::now();
        block_on(native.put(&key, PutPayload::from(body.clone()))).unwrap();
        started.elapsed()
    });
    let wasm_get = best(3, || {
        let started = Instant::now();
        let n = block_on(store.get_object("b", "big", std::io::sink())).unwrap();
        assert_eq!(n, (mib << 20) as u64);
        started.elapsed()
    });
    let native_get = best(3, || {
        let started = Instant::now();
        block_on(async {
            use futures::StreamExt;
            let mut stream = native.get(&key).await.unwrap().into_stream();
            let mut total = 0;
            while let Some(chunk) = stream.next().await {
                total += chunk.unwrap().len();
            }
            assert_eq!(total, mib << 20);
        });
        started.elapsed()
    });
    let mibps = |d: Duration| mib as f64 / d.as_secs_f64();
    for (what, wasm, native) in [("put", wasm_put, native_put), ("get", wasm_get, native_get)] {
        println!(
            "{what} {mib} MiB (best of 3)                           wasm {:>8.0} MiB/s   LocalFileSystem {:>8.0} MiB/s   ratio wasm/native {:.2}",
            mibps(wasm),
            mibps(native),
            mibps(wasm) / mibps(native)
        );
    }
}

/// Runs a future to completion from inside the benchmark's runtime.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
