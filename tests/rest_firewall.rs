//! Firewall feeds: golden files per format, the tools' own syntax checks where they run,
//! aggregation, the entry cap and the errors.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::rest::{Fixture, error_message};

const FORMATS: [&str; 5] = ["nftables", "ipset", "iptables", "mikrotik", "paloalto"];

/// Compares with `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file instead.
fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

#[tokio::test]
async fn every_format_matches_its_golden_file() {
    let f = Fixture::new().await;
    for format in FORMATS {
        let (status, text) = f
            .text(&format!("/api/v1/indicators/firewall/{format}"))
            .await;
        assert_eq!(status, 200, "{format}");
        golden(&format!("firewall-{format}.txt"), &text);
    }
    let query = "family=v4&aggregate=true&min_confidence=50";
    let (_, text) = f
        .text(&format!("/api/v1/indicators/firewall/nftables?{query}"))
        .await;
    golden("firewall-nftables-v4-aggregated.txt", &text);
}

#[tokio::test]
async fn aggregation_merges_neighbours_and_the_cap_keeps_the_highest_scores() {
    let f = Fixture::new().await;
    let (_, text) = f
        .text("/api/v1/indicators/firewall/paloalto?aggregate=true")
        .await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "192.0.2.1",
            "192.0.2.2/31",
            "198.51.100.7",
            "2001:db8::1",
            "2001:db8::2"
        ]
    );
    let (_, text) = f
        .text("/api/v1/indicators/firewall/paloalto?max_entries=3")
        .await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["192.0.2.1", "192.0.2.2", "2001:db8::1"]);
}

#[tokio::test]
async fn unknown_formats_and_bad_options_are_refused() {
    let f = Fixture::new().await;
    let (status, body) = f.json("/api/v1/indicators/firewall/pf").await;
    assert_eq!(status, 404);
    let message = error_message(404, &body);
    for format in FORMATS {
        assert!(message.contains(format), "{message}");
    }
    for query in ["max_entries=0", "aggregate=maybe", "family=v7"] {
        let (status, body) = f
            .json(&format!("/api/v1/indicators/firewall/ipset?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
        error_message(400, &body);
    }
}

/// Runs `tool` in a scratch network namespace; `None` when it cannot run here.
fn in_scratch_namespace(tool: &[&str], file: &std::path::Path) -> Option<std::process::Output> {
    let mut args: Vec<&str> = vec!["-n"];
    args.extend_from_slice(tool);
    args.push(file.to_str().unwrap());
    let output = Command::new("unshare").args(&args).output().ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let refused = [
        "Operation not permitted",
        "not found",
        "No such file",
        "Permission denied",
    ];
    if !output.status.success() && refused.iter().any(|r| stderr.contains(r)) {
        eprintln!("note: {tool:?} cannot run here ({stderr}); relying on the golden file");
        return None;
    }
    Some(output)
}

#[tokio::test]
async fn the_tools_accept_the_feeds() {
    let f = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    for (format, tool, query) in [
        ("nftables", &["nft", "-c", "-f"][..], ""),
        ("nftables", &["nft", "-c", "-f"][..], "?aggregate=true"),
        ("ipset", &["ipset", "restore", "-f"][..], ""),
        ("ipset", &["ipset", "restore", "-f"][..], "?aggregate=true"),
    ] {
        let (_, text) = f
            .text(&format!("/api/v1/indicators/firewall/{format}{query}"))
            .await;
        let file = dir.path().join(format);
        std::fs::write(&file, &text).unwrap();
        let Some(output) = in_scratch_namespace(tool, &file) else {
            continue;
        };
        assert!(
            output.status.success(),
            "{tool:?} refused the {format} feed: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
