//! `report` on a committed pair of run directories (tests/data/runs): `nop` (scores 0, 0, 0;
//! one trial with an invalid-only log, one with an empty log) and `oracle` (1.0, 0.98, 1.02; one
//! trial unfinished, one score log with a torn tail).

use std::path::{Path, PathBuf};

use rebench_harness::report::{self, TrialRow};

fn runs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/runs")
}

fn both() -> report::Report {
    report::load(&[runs().join("nop"), runs().join("oracle")]).unwrap()
}

/// Copies a fixture run directory into a fresh temporary directory.
fn copy_run(name: &str) -> (tempfile::TempDir, PathBuf) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy(&runs().join(name), &dir);
    (tmp, dir)
}

#[test]
fn groups_and_statistics_pool_two_runs() {
    let r = both();
    assert_eq!(r.runs.len(), 2);
    assert_eq!(r.trials.len(), 7);
    let groups: Vec<(&str, &str, &str)> =
        r.groups.iter().map(|g| (g.task.as_str(), g.variant.as_str(), g.agent.as_str())).collect();
    assert_eq!(groups, [("optimize-kernel", "cpu", "nop"), ("optimize-kernel", "cpu", "oracle")]);

    let nop = &r.groups[0];
    assert_eq!(nop.scores, [0.0, 0.0, 0.0]);
    assert_eq!((nop.stats.n, nop.stats.mean, nop.stats.ci95), (3, Some(0.0), Some(0.0)));
    assert_eq!(nop.stats.best_of, [0.0, 0.0, 0.0]);
    assert_eq!((nop.unfinished, nop.not_started), (0, 0));

    let oracle = &r.groups[1];
    assert_eq!(oracle.scores, [1.0, 0.98, 1.02]);
    assert_eq!((oracle.unfinished, oracle.not_started), (1, 0));
    let s = &oracle.stats;
    assert_eq!(s.n, 3);
    assert!((s.mean.unwrap() - 1.0).abs() < 1e-12);
    // 4.302653 * 0.02 / sqrt(3)
    assert!((s.ci95.unwrap() - 0.0496828).abs() < 1e-6, "{s:?}");
    let want = [1.0, 3.04 / 3.0, 1.02];
    assert!(s.best_of.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "{s:?}");

    // The torn tail of oracle s2 is tolerated and noted; its complete entries are kept.
    let torn: Vec<_> = r.trials.iter().filter(|t| t.torn_tail).map(|t| (t.meta.agent.as_str(), t.meta.seed)).collect();
    assert_eq!(torn, [("oracle", 2)]);
    assert!(
        r.notes.iter().any(|n| n.contains("optimize-kernel-cpu-s2/score_log.jsonl") && n.contains("torn")),
        "{:?}",
        r.notes
    );

    // The same directory twice is read once; one run alone is its own report.
    let once = report::load(&[runs().join("oracle"), runs().join("oracle")]).unwrap();
    assert_eq!((once.runs.len(), once.trials.len(), once.groups.len()), (1, 4, 1));
}

#[test]
fn best_so_far_is_a_step_function_from_zero() {
    let r = both();
    let trial =
        |agent: &str, seed: u32| r.trials.iter().find(|t| t.meta.agent == agent && t.meta.seed == seed).unwrap();
    // Invalid-only log: flat 0 to the end of the trial.
    assert_eq!(trial("nop", 1).best_so_far(), [(0.0, 0.0), (101.5, 0.0)]);
    // A later, worse score (0.9 at 1200 s) does not lower the line; an invalid one is skipped.
    assert_eq!(trial("oracle", 1).best_so_far(), [(0.0, 0.0), (905.0, 0.98), (1250.0, 0.98)]);
    // Unfinished: ends at its last entry.
    assert_eq!(trial("oracle", 3).best_so_far(), [(0.0, 0.0), (400.0, 0.7), (400.0, 0.7)]);
}

#[test]
fn table_shows_the_numbers() {
    let t = report::table(&both());
    let lines: Vec<&str> = t.lines().collect();
    let cells =
        |line: &str| line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[0]),
        ["task", "variant", "agent", "n", "mean ± 95% CI", "best@1", "best@2", "best@3", "unfinished"]
    );
    assert!(lines[1].chars().all(|c| c == '-'), "{t}");
    assert_eq!(
        cells(lines[2]),
        ["optimize-kernel", "cpu", "nop", "3", "0.000 ± 0.000", "0.000", "0.000", "0.000", "0"],
        "{t}"
    );
    assert_eq!(
        cells(lines[3]),
        ["optimize-kernel", "cpu", "oracle", "3", "1.000 ± 0.050", "1.000", "1.013", "1.020", "1"],
        "{t}"
    );
    assert!(t.contains("6 trial(s) finished, 1 unfinished (no result.json), 0 planned but not started"), "{t}");
    assert!(t.contains("torn last line"), "{t}");

    // n = 1: no interval.
    let (_tmp, dir) = copy_run("oracle");
    for seed in [1, 2] {
        std::fs::remove_file(dir.join(format!("trials/optimize-kernel-cpu-s{seed}/result.json"))).unwrap();
    }
    let t = report::table(&report::load(&[dir]).unwrap());
    let row = t.lines().nth(2).unwrap();
    assert_eq!(cells(row), ["optimize-kernel", "cpu", "oracle", "1", "1.000", "1.000", "3"], "{t}");
}

/// The contents of an SVG's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|s| s.split_once('>').unwrap().1.split("</text>").next().unwrap().trim().to_owned())
        .collect()
}

#[test]
fn html_page_and_plots() {
    let r = both();
    let out = tempfile::tempdir().unwrap();
    let index = report::write_html(&r, out.path()).unwrap();
    assert_eq!(index, out.path().join("index.html"));
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "static, self-contained"
    );
    assert!(html.contains("<img src=\"optimize-kernel.svg\""), "{html}");
    assert!(html.contains("<td>oracle</td>") && html.contains("<td class=\"num\">1.000 ± 0.050</td>"), "{html}");
    assert!(html.contains("<td class=\"num\">1.013</td>"), "{html}");
    assert_eq!(html.matches("<tr>").count(), 3);

    // Every plot the page references exists and is an SVG with its title, axes and legend.
    let svgs: Vec<&str> = html.split("<img src=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(svgs, ["optimize-kernel.svg"]);
    for file in svgs {
        let svg = std::fs::read_to_string(out.path().join(file)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        let texts = svg_texts(&svg);
        for want in [
            "optimize-kernel (cpu): best normalized score so far",
            "elapsed time (min)",
            "normalized score (0 = starting, 1 = reference)",
            "nop (3 trials)",
            "oracle (4 trials, 1 unfinished, faded)",
            "reference solution (1)",
            "30",
            "1",
        ] {
            assert!(texts.iter().any(|t| t == want), "no text {want:?} in {texts:?}");
        }
        // One line per trial (width 2) and a legend key per agent (width 3).
        assert_eq!(svg.matches("stroke-width=\"2\" points=").count(), 7, "{svg}");
        assert_eq!(svg.matches("stroke-width=\"3\" points=").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 7, "{svg}");
        assert!(svg.contains("#1F77B4") && svg.contains("#FF7F0E"), "{svg}");
    }
}

#[test]
fn csv_and_jsonl_exports() {
    let r = both();
    let out = tempfile::tempdir().unwrap();
    let csv_path = out.path().join("sub/trials.csv");
    report::write_csv(&r, &csv_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "run,trial_id,task,variant,agent,seed,end_reason,normalized,raw,wall_secs,overhead_secs,scorings"
    );
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines[1],
        "2026-11-20-nop,optimize-kernel-cpu-s0,optimize-kernel,cpu,nop,0,agent-exited,0.0,100.0,44.0,1.2,1"
    );
    assert_eq!(
        lines[2],
        "2026-11-20-nop,optimize-kernel-cpu-s1,optimize-kernel,cpu,nop,1,agent-exited,0.0,,101.5,1.4,2"
    );
    assert_eq!(
        lines[4],
        "2026-11-20-oracle,optimize-kernel-cpu-s0,optimize-kernel,cpu,oracle,0,budget,1.0,10.0,1800.4,2.1,2"
    );
    assert_eq!(lines[7], "2026-11-20-oracle,optimize-kernel-cpu-s3,optimize-kernel,cpu,oracle,3,unfinished,,,,,");

    let jsonl_path = out.path().join("trials.jsonl");
    report::write_jsonl(&r, &jsonl_path).unwrap();
    let rows: Vec<TrialRow> =
        std::fs::read_to_string(&jsonl_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows, report::rows(&r));
    assert_eq!(rows.len(), 7);
    let first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&jsonl_path).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(first["end_reason"], "unfinished");
    assert!(first["normalized"].is_null() && first["raw"].is_null() && first["scorings"].is_null());
    assert_eq!(rows[5].normalized, Some(1.02));
    // Rows read back from the CSV are the same rows.
    let from_csv: Vec<TrialRow> =
        csv::Reader::from_path(&csv_path).unwrap().deserialize().map(Result::unwrap).collect();
    assert_eq!(from_csv, rows);
}

#[test]
fn metr_log_export() {
    let r = both();
    let out = tempfile::tempdir().unwrap();
    let written = report::export_metr_logs(&r, out.path()).unwrap();
    assert_eq!(written.len(), 7);
    let invalid = std::fs::read_to_string(out.path().join("2026-11-20-nop/optimize-kernel-cpu-s1.csv")).unwrap();
    let lines: Vec<&str> = invalid.lines().collect();
    assert_eq!(lines[0], "timestamp,score,message,details");
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("2026-11-20T10:00:30.000Z,NaN,") && lines[1].contains("build failed"), "{invalid}");
    let oracle = std::fs::read_to_string(out.path().join("2026-11-20-oracle/optimize-kernel-cpu-s0.csv")).unwrap();
    assert!(oracle.lines().nth(2).unwrap().starts_with("2026-11-20T12:10:10.000Z,10,"), "{oracle}");
    let empty = std::fs::read_to_string(out.path().join("2026-11-20-nop/optimize-kernel-cpu-s2.csv")).unwrap();
    assert_eq!(empty, "timestamp,score,message,details\n");

    // write_all puts everything in one directory.
    let all = report::write_all(&r, &out.path().join("all")).unwrap();
    assert!(all.html.is_file() && all.csv.is_file() && all.jsonl.is_file() && all.metr_logs.len() == 7);
    assert!(out.path().join("all/optimize-kernel.svg").is_file());
}

#[test]
fn malformed_files_are_named() {
    let (_tmp, dir) = copy_run("oracle");
    let result = dir.join("trials/optimize-kernel-cpu-s1/result.json");
    std::fs::write(&result, "{\"trial_id\": \"optimize-kernel-cpu-s1\", \"task\": ").unwrap();
    let err = format!("{:#}", report::load(std::slice::from_ref(&dir)).unwrap_err());
    assert!(err.contains(&result.display().to_string()) && err.contains("malformed JSON"), "{err}");

    // A result.json missing a field says which.
    std::fs::write(
        &result,
        r#"{"trial_id": "x", "task": "optimize-kernel", "variant": "cpu", "seed": 1, "agent": "oracle"}"#,
    )
    .unwrap();
    let err = format!("{:#}", report::load(std::slice::from_ref(&dir)).unwrap_err());
    assert!(err.contains("result.json: malformed JSON: missing field `end_reason`"), "{err}");

    // A corrupt line that is not the last is an error, with the file and the line.
    let (_tmp2, dir) = copy_run("oracle");
    let log = dir.join("trials/optimize-kernel-cpu-s0/score_log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("not json\n{text}")).unwrap();
    let err = format!("{:#}", report::load(std::slice::from_ref(&dir)).unwrap_err());
    assert!(err.contains(&log.display().to_string()) && err.contains("line 1"), "{err}");

    // Not a run directory; a run of another format version.
    let err = format!("{:#}", report::load(&[runs()]).unwrap_err());
    assert!(err.contains("is not a run directory: it has no run.json"), "{err}");
    let run_json = dir.join("run.json");
    std::fs::write(&run_json, std::fs::read_to_string(&run_json).unwrap().replace("\"version\": 1", "\"version\": 2"))
        .unwrap();
    let err = format!("{:#}", report::load(&[dir]).unwrap_err());
    assert!(err.contains("run format version 2"), "{err}");
}

#[test]
fn planned_trials_without_a_directory_count_as_unfinished() {
    let (_tmp, dir) = copy_run("nop");
    std::fs::remove_dir_all(dir.join("trials/optimize-kernel-cpu-s2")).unwrap();
    let r = report::load(&[dir]).unwrap();
    let g = &r.groups[0];
    assert_eq!((g.stats.n, g.unfinished, g.not_started), (2, 0, 1));
    assert!(report::table(&r).contains("0 unfinished (no result.json), 1 planned but not started"));
}
