//! `natsd bench report`: folds the JSON lines of several rounds against several servers into a
//! Markdown table of medians, spreads and the ratio of the first server to the second.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

/// Headline metrics, in table order: key, column text, and whether higher is better.
const METRICS: &[(&str, &str, bool)] = &[
    ("msgs_per_sec", "msgs/s", true),
    ("reqs_per_sec", "req/s", true),
    ("p50_us", "p50 µs", false),
    ("p99_us", "p99 µs", false),
    ("p999_us", "p99.9 µs", false),
    ("kib_per_conn", "KiB per conn", false),
    ("rss_delta_mib", "RSS growth MiB", false),
    ("subs_per_sec", "SUB/s", true),
    ("lost", "msgs lost", false),
];

/// Values of one metric: label → round → value.
type Series = BTreeMap<String, BTreeMap<u64, f64>>;

/// Every (scenario, metric) series, scenarios and labels in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct Table {
    labels: Vec<String>,
    scenarios: Vec<String>,
    series: BTreeMap<(String, &'static str), Series>,
    /// (scenario, label) → the error of a run the server refused (shown as n/a).
    errors: BTreeMap<(String, String), String>,
}

impl Table {
    /// Adds the records in `text` (one JSON object per line; other lines are skipped).
    pub(crate) fn add_lines(&mut self, text: &str) {
        for line in text.lines() {
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let (Some(scenario), Some(label)) = (
                m.get("scenario").and_then(Value::as_str),
                m.get("label").and_then(Value::as_str),
            ) else {
                continue;
            };
            let round = m.get("round").and_then(Value::as_u64).unwrap_or(0);
            if let Some(e) = m.get("error").and_then(Value::as_str) {
                self.errors
                    .insert((scenario.to_string(), label.to_string()), e.to_string());
            }
            if !self.labels.iter().any(|l| l == label) {
                self.labels.push(label.to_string());
            }
            if !self.scenarios.iter().any(|s| s == scenario) {
                self.scenarios.push(scenario.to_string());
            }
            for &(key, _, _) in METRICS {
                if let Some(v) = m.get(key).and_then(Value::as_f64) {
                    self.series
                        .entry((scenario.to_string(), key))
                        .or_default()
                        .entry(label.to_string())
                        .or_default()
                        .insert(round, v);
                }
            }
        }
    }

    /// The Markdown table.
    pub(crate) fn markdown(&self) -> String {
        let ratio = self.labels.len() >= 2;
        let mut out = String::from("| scenario | metric |");
        for l in &self.labels {
            out += &format!(" {l} median (min–max) |");
        }
        // With more than two servers, the first is compared with each of the others.
        let others = if ratio { &self.labels[1..] } else { &[] };
        for other in others {
            out += &format!(" {} / {other} (min–max) |", self.labels[0]);
        }
        out += "\n|---|---|";
        for _ in self.labels.iter().chain(others) {
            out += "---:|";
        }
        out += "\n";
        for scenario in &self.scenarios {
            let refused = |l: &String| self.errors.contains_key(&(scenario.clone(), l.clone()));
            if !METRICS
                .iter()
                .any(|(key, ..)| self.series.contains_key(&(scenario.clone(), *key)))
            {
                // No server has figures: one row saying which were refused.
                out += &format!("| {scenario} | – |");
                for l in &self.labels {
                    out += if refused(l) { " n/a |" } else { " – |" };
                }
                out += &" – |".repeat(others.len());
                out += "\n";
                continue;
            }
            for &(key, text, higher) in METRICS {
                let Some(series) = self.series.get(&(scenario.clone(), key)) else {
                    continue;
                };
                let arrow = if higher { "↑" } else { "↓" };
                out += &format!("| {scenario} | {text} {arrow} |");
                for l in &self.labels {
                    let vals: Vec<f64> = series
                        .get(l)
                        .map(|r| r.values().copied().collect())
                        .unwrap_or_default();
                    out += &match spread(&vals) {
                        Some((med, lo, hi)) => {
                            format!(" {} ({}–{}) |", human(med), human(lo), human(hi))
                        }
                        None if refused(l) => " n/a |".to_string(),
                        None => " – |".to_string(),
                    };
                }
                for other in others {
                    out += &ratio_cell(series.get(&self.labels[0]), series.get(other));
                }
                out += "\n";
            }
        }
        // Why each n/a: a server's error and the scenarios it refused.
        let mut why: BTreeMap<(&String, &String), Vec<&String>> = BTreeMap::new();
        for ((scenario, label), e) in &self.errors {
            why.entry((label, e)).or_default().push(scenario);
        }
        if !why.is_empty() {
            out += "\n";
        }
        for ((label, e), scenarios) in why {
            let list: Vec<&str> = scenarios.iter().map(|s| s.as_str()).collect();
            out += &format!("n/a: {label} refused {}: {e}\n", list.join(", "));
        }
        out
    }
}

fn ratio_cell(a: Option<&BTreeMap<u64, f64>>, b: Option<&BTreeMap<u64, f64>>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return " – |".to_string();
    };
    let per_round: Vec<f64> = a
        .iter()
        .filter_map(|(round, x)| b.get(round).filter(|y| **y > 0.0).map(|y| x / y))
        .collect();
    let medians = (
        spread(&a.values().copied().collect::<Vec<_>>()),
        spread(&b.values().copied().collect::<Vec<_>>()),
    );
    match (medians, spread(&per_round)) {
        ((Some((ma, ..)), Some((mb, ..))), Some((_, lo, hi))) if mb > 0.0 => {
            format!(" **{:.2}** ({lo:.2}–{hi:.2}) |", ma / mb)
        }
        _ => " – |".to_string(),
    }
}

/// Median, min and max.
pub(crate) fn spread(vals: &[f64]) -> Option<(f64, f64, f64)> {
    if vals.is_empty() {
        return None;
    }
    let mut v = vals.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let med = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some((med, v[0], v[v.len() - 1]))
}

/// Three significant figures with a k/M suffix.
pub(crate) fn human(v: f64) -> String {
    let (x, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{suffix}")
}

/// `natsd bench report FILE...`: prints the table.
#[allow(clippy::print_stdout)]
pub(crate) fn main(files: &[String]) -> ExitCode {
    if files.is_empty() {
        eprintln!("usage: natsd bench report <results.jsonl>...");
        return ExitCode::from(2);
    }
    let mut t = Table::default();
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) => t.add_lines(&text),
            Err(e) => {
                eprintln!("natsd bench report: {f}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    print!("{}", t.markdown());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_spreads_and_ratios() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&[]), None);
        let mut t = Table::default();
        let mut lines = String::new();
        for round in 1..=3 {
            let a = 100.0 * f64::from(round);
            lines += &format!(
                "{{\"scenario\":\"pubsub_16B\",\"label\":\"natsd\",\"round\":{round},\"msgs_per_sec\":{a}}}\n\
                 {{\"scenario\":\"pubsub_16B\",\"label\":\"nats-server\",\"round\":{round},\"msgs_per_sec\":{}}}\n\
                 not json\n",
                a / 2.0
            );
        }
        lines += "{\"scenario\":\"reqrep_1\",\"label\":\"natsd\",\"round\":1,\"p99_us\":50.5}\n";
        t.add_lines(&lines);
        let md = t.markdown();
        assert!(md.starts_with(
            "| scenario | metric | natsd median (min–max) | nats-server median (min–max) | natsd / nats-server (min–max) |"
        ));
        assert!(
            md.contains(
                "| pubsub_16B | msgs/s ↑ | 200 (100–300) | 100 (50.0–150) | **2.00** (2.00–2.00) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| reqrep_1 | p99 µs ↓ | 50.5 (50.5–50.5) | – | – |"),
            "{md}"
        );
    }

    #[test]
    fn the_first_server_is_compared_with_each_other() {
        let mut t = Table::default();
        t.add_lines(
            "{\"scenario\":\"js\",\"label\":\"natsd\",\"round\":1,\"msgs_per_sec\":300}\n\
             {\"scenario\":\"js\",\"label\":\"go\",\"round\":1,\"msgs_per_sec\":300}\n\
             {\"scenario\":\"js\",\"label\":\"go-sync\",\"round\":1,\"msgs_per_sec\":100}\n",
        );
        let md = t.markdown();
        assert!(
            md.contains("| natsd / go (min–max) | natsd / go-sync (min–max) |\n|---|---|---:|---:|---:|---:|---:|\n"),
            "{md}"
        );
        assert!(
            md.contains("| **1.00** (1.00–1.00) | **3.00** (3.00–3.00) |"),
            "{md}"
        );
    }

    #[test]
    fn a_refused_run_is_na_with_its_error() {
        let mut t = Table::default();
        t.add_lines(
            "{\"scenario\":\"js_r3\",\"label\":\"natsd\",\"round\":1,\"error\":\"no (10074)\"}\n\
             {\"scenario\":\"js_r3\",\"label\":\"go\",\"round\":1,\"msgs_per_sec\":300}\n\
             {\"scenario\":\"both_r3\",\"label\":\"natsd\",\"round\":1,\"error\":\"no (10074)\"}\n\
             {\"scenario\":\"both_r3\",\"label\":\"go\",\"round\":1,\"error\":\"down\"}\n",
        );
        let md = t.markdown();
        assert!(
            md.contains("| js_r3 | msgs/s ↑ | n/a | 300 (300–300) | – |"),
            "{md}"
        );
        assert!(md.contains("| both_r3 | – | n/a | n/a | – |"), "{md}");
        assert!(md.contains("\nn/a: go refused both_r3: down\n"), "{md}");
        assert!(
            md.contains("\nn/a: natsd refused both_r3, js_r3: no (10074)\n"),
            "{md}"
        );
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(45_600.0), "45.6k");
        assert_eq!(human(7.25), "7.25");
        assert_eq!(human(512.0), "512");
    }
}
