//! The live view of a run: one line per trial with its state, elapsed time and best score so
//! far. On a terminal it is an indicatif display; elsewhere (CI, logs) one plain line per event.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rebench_scoring::log::LogEntry;

/// Receives a run's events; shared by the worker threads and the scoring servers.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    bars: Option<MultiProgress>,
    trials: Mutex<BTreeMap<String, Line>>,
}

#[derive(Debug)]
struct Line {
    bar: Option<ProgressBar>,
    state: String,
    best: Option<f64>,
}

impl Progress {
    /// A display for `trial_ids`, drawn when stderr is a terminal.
    pub fn new(trial_ids: &[String]) -> Progress {
        let bars = std::io::stderr().is_terminal().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let style = ProgressStyle::with_template("{spinner} {prefix:<36} {elapsed_precise} {msg}").expect("a valid template");
        let trials = trial_ids
            .iter()
            .map(|id| {
                let bar = bars.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(id.clone()));
                    bar.set_message("queued");
                    bar.enable_steady_tick(Duration::from_millis(250));
                    bar
                });
                (id.clone(), Line { bar, state: "queued".into(), best: None })
            })
            .collect();
        Progress { started: Instant::now(), bars, trials: Mutex::new(trials) }
    }

    /// A trial moved to `state` (`running agent`, `final scoring`, `done`...).
    pub fn state(&self, trial: &str, state: &str) {
        self.update(trial, |line| line.state = state.to_owned());
    }

    /// A trial was scored.
    pub fn scored(&self, trial: &str, entry: &LogEntry) {
        self.update(trial, |line| {
            if let Some(n) = entry.normalized.filter(|_| entry.valid) {
                line.best = Some(line.best.map_or(n, |b| b.max(n)));
            }
        });
    }

    fn update(&self, trial: &str, change: impl FnOnce(&mut Line)) {
        let mut trials = self.trials.lock().unwrap_or_else(|e| e.into_inner());
        let Some(line) = trials.get_mut(trial) else { return };
        change(line);
        let best = line.best.map_or("-".to_owned(), |b| format!("{b:.3}"));
        let message = format!("{:<16} best {best}", line.state);
        match &line.bar {
            Some(bar) if line.state == "done" || line.state.starts_with("failed") => bar.finish_with_message(message),
            Some(bar) => bar.set_message(message),
            None => eprintln!("[{:>7.1} s] {trial}: {message}", self.started.elapsed().as_secs_f64()),
        }
    }

    /// Prints above the display (or plainly).
    pub fn println(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}
