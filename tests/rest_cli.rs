//! `abuseipdb-ioc export` through the real binary, on a data directory filled by `report`
//! and `preprocess`.

use std::process::Command;

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_abuseipdb-ioc"))
        .args(args)
        .current_dir(dir)
        .env("DATA_DIR", dir.join("data"))
        .env("GEO_PROVIDERS", "none")
        .env_remove("API_KEYS")
        .env_remove("ABUSEIPDB_API_KEY")
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn export_writes_every_format_from_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (ip, confidence) in [
        ("192.0.2.1", "90"),
        ("192.0.2.2", "60"),
        ("2001:db8::1", "85"),
    ] {
        stdout(&run(
            dir.path(),
            &["report", ip, "--confidence", confidence],
        ));
    }
    stdout(&run(dir.path(), &["preprocess"]));

    let plain = stdout(&run(
        dir.path(),
        &["export", "--format", "plain", "--family", "v4"],
    ));
    let mut lines: Vec<&str> = plain.lines().collect();
    lines.sort();
    assert_eq!(lines, ["192.0.2.1", "192.0.2.2"]);

    let csv = stdout(&run(
        dir.path(),
        &["export", "--format", "csv", "--min-confidence", "80"],
    ));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.records().count(), 2);

    let bundle = stdout(&run(
        dir.path(),
        &["export", "--format", "stix", "--collection", "high"],
    ));
    let bundle: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(bundle["objects"].as_array().unwrap().len(), 2 + 2);

    let edl = stdout(&run(
        dir.path(),
        &[
            "export",
            "--format",
            "paloalto",
            "--aggregate",
            "--max-entries",
            "1",
        ],
    ));
    assert_eq!(edl, "192.0.2.1\n");

    let nft = stdout(&run(dir.path(), &["export", "--format", "nftables"]));
    assert!(nft.contains("table inet abuseipdb_ioc"));
}

#[test]
fn export_refuses_unknown_formats_and_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["export", "--format", "pf"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nftables"));
    let output = run(dir.path(), &["export", "--format", "csv", "--aggregate"]);
    assert_eq!(output.status.code(), Some(2));
}
