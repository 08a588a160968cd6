//! The starting solution: the agent's copy of it is what the agent improves.

/// Returns `values` sorted in ascending order.
///
/// TODO: the task's real starting solution. This one returns its input unchanged and scores 0.
pub fn sort(values: &[i64]) -> Vec<i64> {
    values.to_vec()
}
