//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer::confine::PathRoot;
use coffer::sandbox::{Grants, Limits, ProviderComponent, Sandbox, grants_for};
use coffer::secret::SecretBytes;

/// A test component built from `tests/components/<name>`.
pub fn test_component(name: &str) -> Vec<u8> {
    let path = Path::new(env!("COFFER_TEST_COMPONENTS_DIR")).join(format!("coffer_test_{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sandbox without a component cache.
pub fn sandbox(limits: Limits) -> Sandbox {
    Sandbox::new(None, limits).expect("sandbox starts")
}

/// Loads a component.
pub async fn load(sandbox: &Sandbox, wasm: &[u8]) -> ProviderComponent {
    sandbox.load(wasm).await.expect("component loads")
}

/// Grants for a location with `config` and an optional credential.
pub fn grants(location: &str, component: &ProviderComponent, config: &[(&str, &str)], credential: Option<&str>) -> Grants {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    grants_for(location, component.manifest(), config, credential.map(|c| SecretBytes::new(c.as_bytes().to_vec())), &PathRoot::Anywhere)
        .expect("grants")
}

/// A path as a string.
/// The `--state` of the processes on data directory `data_dir`: when the suite runs on etcd
/// (`COFFER_TEST_ETCD=etcd://HOST:PORT`, as `scripts/test` runs the server suite a second
/// time), a prefix of that etcd of the directory's own, so that every test has a state of its
/// own there; otherwise none, and the data directory's file keeps it.
pub fn test_state(data_dir: &Path) -> Option<String> {
    let etcd = std::env::var("COFFER_TEST_ETCD").ok().filter(|url| !url.is_empty())?;
    let path = data_dir.display().to_string();
    let prefix: String = path.trim_start_matches('/').chars().map(|c| if c.is_ascii_alphanumeric() || "-_./".contains(c) { c } else { '_' }).collect();
    Some(format!("{etcd}/{prefix}"))
}

/// The library's view of data directory `data_dir`, on the state its processes use
/// ([`test_state`]).
pub async fn open_coffer(data_dir: &Path) -> coffer::coffer::Coffer {
    let state = coffer::state::StateLocation::parse(&test_state(data_dir).unwrap_or_default()).unwrap();
    coffer::coffer::Coffer::open_with(data_dir, coffer::sandbox::Limits::default(), &state, None).await.unwrap()
}

pub fn s(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// Every file under `root`, by its path relative to `root`, with its content.
pub fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(s(path.strip_prefix(root).unwrap()), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A fresh directory under `parent`.
pub fn dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A directory `source` under `parent` holding the example manifests (`examples/manifests`).
pub fn example_source(parent: &Path) -> PathBuf {
    let source = dir(parent, "source");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, source.join(path.file_name().unwrap())).unwrap();
    }
    source
}

/// Runs the `coffer` binary against a data directory.
pub struct Cli {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Extra environment, e.g. `COFFER_SERVER` and `COFFER_TOKEN` for a remote CLI.
    pub env: Vec<(String, String)>,
}

/// What a `coffer` run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit status was success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Cli {
    /// A CLI on `data_dir` (and on its state in etcd, when the suite runs there: see
    /// [`test_state`]).
    pub fn new(data_dir: &Path) -> Self {
        let env = test_state(data_dir).map(|state| ("COFFER_STATE".to_owned(), state)).into_iter().collect();
        Cli { data_dir: data_dir.to_path_buf(), env }
    }

    /// A CLI that talks to the server at `url` with `token` (and has no data directory of
    /// its own that would work: it points at an empty one).
    pub fn remote(url: &str, token: &str) -> Self {
        let env = vec![("COFFER_SERVER".into(), url.into()), ("COFFER_TOKEN".into(), token.into())];
        Cli { data_dir: PathBuf::from("/nonexistent/coffer-remote-cli"), env }
    }

    /// The command, ready to run.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"));
        c.args(args).env("COFFER_DATA_DIR", &self.data_dir).env_remove("COFFER_LOG").stdin(std::process::Stdio::null());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `coffer ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("coffer runs");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `coffer ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "coffer {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Runs `coffer ARGS`, which must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(!r.ok, "coffer {args:?} should fail but printed: {}", r.stdout);
        r.stderr
    }

    /// `ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }
}

/// A filesystem backup storage location `name` on `root`, bucket `b`, the default.
pub fn filesystem_bsl(name: &str, root: &Path) -> coffer::locations::NewBackupStorageLocation {
    coffer::locations::NewBackupStorageLocation {
        name: name.into(),
        provider: "filesystem".into(),
        bucket: "b".into(),
        config: BTreeMap::from([("root".into(), s(root))]),
        default: true,
        ..Default::default()
    }
}

/// A gzipped tarball of `entries` (path, body), as a hostile bucket would hold one.
pub fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(&mut out, flate2::Compression::best()));
    for (path, body) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *body).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    out
}

/// `n` ConfigMaps of 1 MiB of hex text (half of it compressible) each, under `src`.
pub fn bulky_manifests(src: &std::path::Path, n: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        let text: String = (0..(1 << 20) / 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect();
        std::fs::write(src.join(format!("cm{i}.yaml")), format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bulk{i}, namespace: shop}}\ndata: {{blob: {text}}}\n")).unwrap();
    }
}
