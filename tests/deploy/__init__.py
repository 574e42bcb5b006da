"""The Helm chart: rendered with broken values, its offline checks must fail."""
