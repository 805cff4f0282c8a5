//! A shared host whose data disk fills: one tenant filling its location cannot make the
//! state unwritable, and a disk filled anyway (by a provider writing on its own, by another
//! process) costs answers only while it is full: the server recovers by itself when space
//! returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::common::{bulky_manifests, dir, s};
use crate::server_api::{Tenancy, token};
use crate::servers::{eventually, http};

/// A tmpfs of `size` mounted at `at` until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"]).arg(at).status().unwrap();
        assert!(mounted.success(), "this test mounts a tmpfs as its full disk: it needs to run as root");
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 << 10];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

fn metric(metrics_url: &str, name: &str) -> Option<f64> {
    let (_, text) = http("GET", metrics_url, None, None);
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Creates secret `name` holding `size` bytes.
fn create_secret(url: &str, token: &str, name: &str, size: usize) -> (u16, String) {
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'v'; size]);
    http("POST", &format!("{url}/v1/secrets"), Some(token), Some(&json!({"metadata": {"name": name}, "data": {"k": value}})))
}

#[test]
fn a_full_data_disk_never_wedges_the_state_and_the_server_recovers_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(&tmp.path().join("data"), "48m");
    let tenancy = Tenancy::start(tmp.path(), &["--state-reserve", "8Mi"]);
    let (url, metrics) = (tenancy.server.server.url.clone(), tenancy.server.metrics_url.clone());
    let healthz = || http("GET", &format!("{url}/healthz"), None, None);
    let pid = tenancy.server.server.pid();
    let globex = token(&tenancy.data, "globex", "g");
    assert_eq!(metric(&metrics, "coffer_state_reserve_held"), Some(1.0));

    // acme backs up into a location in its tree, on the data disk, until it is refused.
    let (cli, home) = (&tenancy.cli, &tenancy.home);
    bulky_manifests(&dir(home, "src"), 6);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(home, "store"))), "--default"]);
    let refused = (0..30)
        .map(|i| format!("fill-{i}"))
        .find(|name| {
            cli.run(&["backup", "create", name, "--source", "src", "--wait"]);
            cli.json(&["backup", "get", name])["status"]["phase"] != "Completed"
        })
        .expect("acme's backups were refused before the disk filled");
    let backup = cli.json(&["backup", "get", &refused]);
    assert_eq!(backup["status"]["phase"], "Failed", "{backup}");
    assert!(backup["status"]["failureReason"].as_str().unwrap().contains("keeps for its own state"), "{backup}");
    // Nothing of it is in the bucket, but its log (kept in the state) says why.
    assert!(!home.join(format!("store/b/backups/{refused}")).exists());
    let log = cli.ok(&["backup", "logs", &refused]);
    assert!(log.contains("level=error") && log.contains("keeps for its own state"), "{log}");
    // The state was never short: the other tenant writes and the host is healthy.
    assert_eq!(create_secret(&url, &globex, "one", 1).0, 201);
    assert_eq!(healthz().0, 200);

    // The disk is filled anyway, beneath the guard (as a provider writing on its own would):
    // when the state must grow, it gives up its reserve and the writes go through.
    fill(&home.join("filler-1"));
    for i in 0.. {
        let (status, body) = create_secret(&url, &globex, &format!("big-{i}"), 256 << 10);
        assert_eq!(status, 201, "{body}");
        if metric(&metrics, "coffer_state_reserve_held") == Some(0.0) {
            break;
        }
        assert!(i < 60, "the state grew by 15 MiB without needing its reserve");
    }

    // Filled again, with no reserve left: writes are refused as unavailable, saying why;
    // reads, /healthz and /metrics still answer, and say it.
    fill(&home.join("filler-2"));
    let (status, body) = (0..60)
        .map(|i| create_secret(&url, &globex, &format!("more-{i}"), 256 << 10))
        .find(|(status, _)| *status != 201)
        .expect("a full disk refused the state's growth");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot write its state") && !body.contains(&s(tmp.path())), "{body}");
    let (status, body) = healthz();
    assert!(status == 503 && body.contains("No space left on device"), "{status} {body}");
    assert_eq!(metric(&metrics, "coffer_state_writable"), Some(0.0));
    assert!(metric(&metrics, "coffer_state_write_failures_total").unwrap() >= 1.0);
    let (status, body) = http("GET", &format!("{url}/v1/secrets"), Some(&globex), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"big-0\""), "{body}");

    // Space returns: the server is healthy again by itself, without a restart, and takes
    // its reserve back.
    std::fs::remove_file(home.join("filler-1")).unwrap();
    std::fs::remove_file(home.join("filler-2")).unwrap();
    eventually(Duration::from_secs(30), "/healthz to answer 200 again", || (healthz().0 == 200).then_some(()));
    assert_eq!(create_secret(&url, &globex, "after", 1).0, 201);
    assert_eq!(metric(&metrics, "coffer_state_writable"), Some(1.0));
    cli.ok(&["backup", "delete", "fill-0", "--confirm"]);
    cli.ok(&["backup", "delete", "fill-1", "--confirm"]);
    eventually(Duration::from_secs(30), "the reserve to be held again", || (metric(&metrics, "coffer_state_reserve_held") == Some(1.0)).then_some(()));
    let again = cli.run(&["backup", "create", "after", "--source", "src", "--wait"]);
    assert!(again.stdout.contains("Completed"), "{}{}", again.stdout, again.stderr);
    assert_eq!(tenancy.server.server.pid(), pid, "the same server process throughout");
}
