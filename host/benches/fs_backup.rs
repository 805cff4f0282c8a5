//! File-system backup against the tools people use for it: a generated data set (1 GiB in
//! about 2,000 files of mixed sizes, half of them compressible) backed up, backed up again
//! after 10% of its files change, and restored — by Coffer (the `coffer` CLI, a pod volume
//! through the embedded wasm filesystem provider), by the `rustic` CLI and by the `restic`
//! CLI, each into its own restic repository on the same disk, in the same run. Prints MB/s per
//! phase, repository size and peak resident memory of each, and Coffer's ratios.
//!
//! Run: `scripts/bench-setup && cargo bench -p coffer --bench fs_backup`
//! (`COFFER_BENCH_MIB=256` for a smaller set). A peer that is not installed is left out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One measured run of a command: wall time and peak resident memory.
struct Run {
    seconds: f64,
    max_rss_mib: f64,
}

/// Runs `command` to its end, which must succeed, measuring its time and peak memory.
#[allow(clippy::zombie_processes, reason = "the child is reaped by wait4, which also gives its peak memory")]
fn measure(mut command: Command) -> Run {
    let started = Instant::now();
    let mut stderr = tempfile::tempfile().unwrap();
    let child = command.stdout(std::process::Stdio::null()).stderr(stderr.try_clone().unwrap()).spawn().expect("the command starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `usage` and `status` are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(waited, pid, "wait4");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut text = String::new();
        std::io::Seek::rewind(&mut stderr).and_then(|()| std::io::Read::read_to_string(&mut stderr, &mut text)).ok();
        panic!("{command:?} failed: {text}");
    }
    Run { seconds, max_rss_mib: usage.ru_maxrss as f64 / 1024.0 }
}

/// A small deterministic generator (xorshift), so that every run backs up the same bytes.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The contents of file `i` in generation `generation`: text-like (compressible) for even
/// files, random for odd ones.
fn contents(i: usize, size: usize, generation: u64) -> Vec<u8> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ (i as u64) << 8 ^ generation);
    let mut out = vec![0u8; size];
    if i.is_multiple_of(2) {
        const WORDS: &[&str] = &["backup ", "volume ", "restic ", "pack ", "index ", "snapshot ", "tree ", "blob\n", "coffer ", "data "];
        let mut at = 0;
        while at < size {
            let word = WORDS[(noise.next() % WORDS.len() as u64) as usize].as_bytes();
            let n = word.len().min(size - at);
            out[at..at + n].copy_from_slice(&word[..n]);
            at += n;
        }
    } else {
        noise.fill(&mut out);
    }
    out
}

/// The file sizes of a data set of about `total` bytes: mostly small files, some medium,
/// a few large ones.
fn sizes(total: usize) -> Vec<usize> {
    let mut noise = Noise(42);
    let mut out = Vec::new();
    let mut sum = 0;
    while sum < total {
        let size = match noise.next() % 100 {
            0..=69 => 4 << 10 | (noise.next() % (60 << 10)) as usize,
            70..=97 => 256 << 10 | (noise.next() % (2 << 20)) as usize,
            _ => 4 << 20 | (noise.next() % (12 << 20)) as usize,
        };
        let size = size.min(total - sum).max(1);
        out.push(size);
        sum += size;
    }
    out
}

/// Writes the data set into `dir`: files spread over 20 directories.
fn write_data(dir: &Path, sizes: &[usize], generation: u64, only: impl Fn(usize) -> bool) {
    for (i, &size) in sizes.iter().enumerate().filter(|(i, _)| only(*i)) {
        let sub = dir.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:05}")), contents(i, size, generation)).unwrap();
    }
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { size_of(&entry.path()) } else { meta.len() };
    }
    total
}

/// A tool under test: how it backs up `data` and restores into a directory.
trait Tool {
    fn name(&self) -> &str;
    fn init(&self);
    fn backup(&self, n: usize) -> Command;
    fn restore(&self, target: &Path) -> Command;
    fn repository(&self) -> PathBuf;
}

struct Coffer {
    bin: PathBuf,
    home: PathBuf,
    data: PathBuf,
}

impl Coffer {
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).env("COFFER_DATA_DIR", self.home.join("state")).env_remove("COFFER_LOG");
        c
    }
}

impl Tool for Coffer {
    fn name(&self) -> &str {
        "coffer"
    }
    fn init(&self) {
        let store = self.home.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let config = format!("root={}", store.display());
        measure(self.cli(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &config, "--default"]));
        let manifests = self.home.join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"}, "spec": {"hostPath": {"path": self.data}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "bench"}, "spec": {"volumeName": "pv"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "bench", "annotations": {"backup.velero.io/backup-volumes": "data"}},
             "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}},
        ]});
        std::fs::write(manifests.join("app.json"), list.to_string()).unwrap();
    }
    fn backup(&self, n: usize) -> Command {
        let source = self.home.join("manifests");
        self.cli(&["backup", "create", &format!("b{n}"), "--source", source.to_str().unwrap(), "--wait"])
    }
    fn restore(&self, target: &Path) -> Command {
        self.cli(&["restore", "create", "r", "--from-backup", "b2", "--target", target.to_str().unwrap(), "--wait"])
    }
    fn repository(&self) -> PathBuf {
        self.home.join("store/b/restic/bench")
    }
}

/// restic and rustic take the same arguments for what is measured here, but for where a
/// restore goes.
struct Cli {
    name: &'static str,
    bin: PathBuf,
    repo: PathBuf,
    data: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["--no-cache", "-r", self.repo.to_str().unwrap()]).args(args).env("RESTIC_PASSWORD", "bench").env("RUSTIC_PASSWORD", "bench");
        c
    }
}

impl Tool for Cli {
    fn name(&self) -> &str {
        self.name
    }
    fn init(&self) {
        measure(self.command(&["init"]));
    }
    fn backup(&self, _: usize) -> Command {
        self.command(&["backup", self.data.to_str().unwrap()])
    }
    fn restore(&self, target: &Path) -> Command {
        let target = target.to_str().unwrap();
        match self.name {
            "rustic" => self.command(&["restore", "latest", target]),
            _ => self.command(&["restore", "latest", "--target", target]),
        }
    }
    fn repository(&self) -> PathBuf {
        self.repo.clone()
    }
}

fn find(name: &str, local: &Path) -> Option<PathBuf> {
    if local.exists() {
        return Some(local.to_path_buf());
    }
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
    found.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
}

fn main() {
    let mib: usize = std::env::var("COFFER_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-fs-backup");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let data = root.join("data");
    let sizes = sizes(mib << 20);
    write_data(&data, &sizes, 0, |_| true);
    let total = size_of(&data);
    println!("data set: {} files, {:.0} MiB, half compressible", sizes.len(), total as f64 / (1 << 20) as f64);

    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut tools: Vec<Box<dyn Tool>> = vec![Box::new(Coffer {
        bin: workspace.join("target/release/coffer"),
        home: root.join("coffer"),
        data: data.clone(),
    })];
    for (name, local) in [("rustic", workspace.join("target/bench-tools/bin/rustic")), ("restic", PathBuf::from("/nonexistent"))] {
        match find(name, &local) {
            Some(bin) => tools.push(Box::new(Cli { name, bin, repo: root.join(format!("{name}-repo")), data: data.clone() })),
            None => println!("{name}: not installed (scripts/bench-setup installs it); left out"),
        }
    }
    for tool in &tools {
        tool.init();
    }

    // Each phase runs every tool on the same data before the data changes.
    let mb = |bytes: u64, run: &Run| bytes as f64 / 1e6 / run.seconds;
    let mut results: Vec<(String, [f64; 3], f64, u64)> = Vec::new();
    let mut firsts = Vec::new();
    for tool in &tools {
        firsts.push(measure(tool.backup(1)));
    }
    // 10% of the files change.
    write_data(&data, &sizes, 1, |i| i % 10 == 3);
    let mut seconds = Vec::new();
    for tool in &tools {
        seconds.push(measure(tool.backup(2)));
    }
    for (i, tool) in tools.iter().enumerate() {
        let target = root.join(format!("{}-restored", tool.name()));
        let restore = measure(tool.restore(&target));
        let restored = size_of(&target);
        assert!(restored >= total, "{} restored {restored} of {total} bytes", tool.name());
        let rss = firsts[i].max_rss_mib.max(seconds[i].max_rss_mib).max(restore.max_rss_mib);
        let rates = [mb(total, &firsts[i]), mb(total, &seconds[i]), mb(total, &restore)];
        results.push((tool.name().to_owned(), rates, rss, size_of(&tool.repository())));
        let _ = std::fs::remove_dir_all(&target);
    }

    println!("{:<8} {:>14} {:>14} {:>14} {:>12} {:>10}", "tool", "backup MB/s", "again MB/s", "restore MB/s", "repo MiB", "peak MiB");
    for (name, rates, rss, repo) in &results {
        println!("{name:<8} {:>14.1} {:>14.1} {:>14.1} {:>12.1} {:>10.1}", rates[0], rates[1], rates[2], *repo as f64 / (1 << 20) as f64, rss);
    }
    let ours = &results[0];
    for peer in &results[1..] {
        println!(
            "coffer/{:<7} backup {:.2}x   again {:.2}x   restore {:.2}x   repository size {:.3}x   peak memory {:.2}x",
            peer.0,
            ours.1[0] / peer.1[0],
            ours.1[1] / peer.1[1],
            ours.1[2] / peer.1[2],
            ours.3 as f64 / peer.3 as f64,
            ours.2 / peer.2
        );
    }
}
