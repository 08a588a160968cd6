    // The fraction of positions that differ from the sorted list: about 1 for the starting
    // solution (a random list is out of order almost everywhere), 0 for a correct sort.
    let raw = wrong as f64 / n as f64;
