//! The scaling-law scorer binary: the harness drives it over the JSON protocol.

fn main() {
    rebench_scoring::protocol::serve(&scaling_law::ScalingLaw::new());
}
