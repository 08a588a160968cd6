//! The reference solution, which scores 1. Overlaid on starting/, so it holds only the files it
//! changes; it never reaches an agent.

/// Returns `values` sorted in ascending order.
///
/// TODO: the task's real reference solution.
pub fn sort(values: &[i64]) -> Vec<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
}
