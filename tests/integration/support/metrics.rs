//! `/metrics` scraped and parsed by Prometheus's own text-format parser (Python's
//! `prometheus_client`), so a test also checks that the text is valid.

use super::request;

/// One sample of a scrape, as Prometheus's own text-format parser (Python's `prometheus_client`)
/// reads it; histograms are their `_bucket`, `_sum` and `_count` samples.
#[derive(Debug, serde::Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::HashMap<String, String>,
    pub value: f64,
}

/// `GET /metrics` on `port`, parsed.
pub async fn scrape(port: u16) -> Vec<Sample> {
    use std::io::Write;
    let text = request(port, "GET", "/metrics", &[], b"").await.text();
    let parse = "import json, sys\n\
                 from prometheus_client.parser import text_string_to_metric_families as families\n\
                 print(json.dumps([{'name': s.name, 'labels': s.labels, 'value': s.value}\n\
                                   for f in families(sys.stdin.read()) for s in f.samples]))";
    let mut python = std::process::Command::new("python3")
        .args(["-c", parse])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    python.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "not valid Prometheus text: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Samples of `name`.
pub fn samples<'a>(scrape: &'a [Sample], name: &'a str) -> impl Iterator<Item = &'a Sample> {
    scrape.iter().filter(move |s| s.name == name)
}

/// The value of `name` with `labels` (and maybe others).
pub fn value(scrape: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(scrape, name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}
