//! The state survives `kill -9` at any point: every change is all there or not at all.

use std::time::Duration;

use crate::common::{Cli, s};

#[test]
fn state_survives_killed_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));
    let value = tmp.path().join("value");
    std::fs::write(&value, b"v").unwrap();
    let spec = format!("k={}", s(&value));
    cli.ok(&["secret", "create", "warmup", "--from-file", &spec]);
    let mut committed = vec!["warmup".to_owned()];
    let mut killed = 0;
    for i in 0..40u64 {
        let name = format!("s{i}");
        let mut child = cli
            .command(&["secret", "create", &name, "--from-file", &spec])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at varying points of start-up, the transaction and the commit.
        std::thread::sleep(Duration::from_millis((i * 7) % 45));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            committed.push(name);
        } else {
            killed += 1;
        }
    }
    assert!(killed > 0, "some processes were killed before finishing");
    let listed = cli.json(&["secret", "get"]);
    let names: Vec<String> =
        listed["items"].as_array().unwrap().iter().map(|x| x["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    for name in &committed {
        assert!(names.contains(name), "{name} was reported created but is gone: {names:?}");
    }
    for item in listed["items"].as_array().unwrap() {
        assert_eq!(item["keys"], serde_json::json!(["k"]), "a secret is whole: {item}");
    }
    // The state is still writable after the kills.
    cli.ok(&["secret", "create", "after", "--from-file", &spec]);
}
