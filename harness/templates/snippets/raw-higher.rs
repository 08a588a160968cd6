    // The fraction of positions that match the sorted list: about 0 for the starting solution
    // (a random list is out of order almost everywhere), 1 for a correct sort.
    let raw = (n - wrong) as f64 / n as f64;
