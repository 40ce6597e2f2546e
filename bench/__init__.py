"""tarscascade benchmarks: each prints and saves JSON results with the machine's details."""
