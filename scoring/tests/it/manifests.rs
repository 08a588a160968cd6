//! Data-driven manifest tests: every file in tests/data/manifests starts with `# ok` or
//! `# error: <text the error must contain>`.

use std::path::Path;

use rebench_scoring::Manifest;

#[test]
fn manifests_parse_or_fail_with_the_expected_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let result = Manifest::load(&path);
        if first == "# ok" {
            result.unwrap_or_else(|err| panic!("{} should parse: {err}", path.display()));
        } else {
            let expected = first.strip_prefix("# error: ").unwrap_or_else(|| panic!("{}: bad header", path.display()));
            let err = result.expect_err(&format!("{} should be rejected", path.display())).to_string();
            assert!(err.contains(expected), "{}: error {err:?} does not contain {expected:?}", path.display());
            assert!(err.contains(&path.display().to_string()), "error must name the file: {err}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} manifest cases found");
}

#[test]
fn pinned_transform_and_params_are_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests");
    let m = Manifest::load(&dir.join("valid-pinned.toml")).unwrap();
    assert_eq!(m.metric.transform, rebench_scoring::Transform::LnMinusFloor(1.5));
    assert!(m.metric.hidden);
    let live = Manifest::load(&dir.join("valid-live.toml")).unwrap();
    assert_eq!(live.variants["cpu"].params["n"].as_integer(), Some(100));
    assert_eq!(live.scoring.timeout, std::time::Duration::from_secs(600));
}

#[test]
fn a_variants_own_calibration_overrides_the_tasks() {
    use rebench_scoring::manifest::CalibrationSpec;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests");
    let m = Manifest::load(&dir.join("variant-calibrations.toml")).unwrap();
    assert_eq!(m.calibration("cpu"), &CalibrationSpec::Pinned { starting: 7.636, reference: 4.636 });
    assert_eq!(m.calibration("gpu"), &CalibrationSpec::Pinned { starting: 6.0, reference: 3.0 });
    assert!(matches!(m.calibration("big"), CalibrationSpec::Pending { why } if why.contains("not been run")));
    assert_eq!(m.calibration("no-such-variant"), &m.calibration);
}
