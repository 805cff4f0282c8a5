//! 1 GiB put and get through the wasm `aws` provider against native `object_store`'s
//! `AmazonS3`, both on the same s3s-fs server (which checks every signature) in the same run;
//! the ratio is wasm / native throughput.
//!
//! Run: `scripts/setup && cargo bench -p coffer --bench s3` (`COFFER_BENCH_MIB` changes the size).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer::embedded;
use coffer::confine::PathRoot;
use coffer::sandbox::{Limits, ObjectStoreHandle, Sandbox, grants_for};
use coffer::secret::SecretBytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};

/// The upload part size of both sides.
const PART: usize = 8 << 20;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// The fastest of three timings.
fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..3).map(|_| f()).min().unwrap()
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::var("COFFER_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir_in(std::env::var("COFFER_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    std::fs::create_dir_all(tmp.path().join("bench")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(root.join("target/test-tools/bin/s3s-fs"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "testing", "--secret-key", "testing"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs (run scripts/setup first)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");

    let sandbox = Sandbox::new(None, Limits::default()).unwrap();
    let aws = sandbox.load(embedded::AWS).await.unwrap();
    let config = BTreeMap::from([("s3Url".to_owned(), url.clone()), ("region".to_owned(), "us-east-1".to_owned())]);
    let credential = SecretBytes::new(b"[default]\naws_access_key_id=testing\naws_secret_access_key=testing\n".to_vec());
    let grants = grants_for("bench", aws.manifest(), config, Some(credential), &PathRoot::Anywhere).unwrap();
    let mut wasm = ObjectStoreHandle::new(&sandbox, &aws, grants).await.unwrap();
    let native = AmazonS3Builder::new()
        .with_endpoint(&url)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name("bench")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();

    let body = Bytes::from((0..mib << 20).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let len = (mib << 20) as u64;
    let wasm_put = best(|| {
        let started = Instant::now();
        assert_eq!(block_on(wasm.put_object("bench", "wasm", std::io::Cursor::new(body.clone()))).unwrap(), len);
        started.elapsed()
    });
    let native_key = ObjectPath::from("native");
    let native_put = best(|| {
        let started = Instant::now();
        block_on(async {
            let upload = native.put_multipart(&native_key).await.unwrap();
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            for chunk in body.chunks(PART) {
                writer.write(chunk);
            }
            writer.finish().await.unwrap();
        });
        started.elapsed()
    });
    let wasm_get = best(|| {
        let started = Instant::now();
        assert_eq!(block_on(wasm.get_object("bench", "wasm", std::io::sink())).unwrap(), len);
        started.elapsed()
    });
    let native_get = best(|| {
        let started = Instant::now();
        block_on(async {
            let mut stream = native.get(&native_key).await.unwrap().into_stream();
            let mut total = 0u64;
            while let Some(chunk) = stream.next().await {
                total += chunk.unwrap().len() as u64;
            }
            assert_eq!(total, len);
        });
        started.elapsed()
    });
    let rate = |d: Duration| mib as f64 / d.as_secs_f64();
    for (what, w, n) in [("put", wasm_put, native_put), ("get", wasm_get, native_get)] {
        println!(
            "{what} {mib} MiB via s3s-fs (best of 3)   wasm aws provider {:>7.0} MiB/s   object_store AmazonS3 {:>7.0} MiB/s   ratio wasm/native {:.2}",
            rate(w),
            rate(n),
            rate(w) / rate(n)
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
