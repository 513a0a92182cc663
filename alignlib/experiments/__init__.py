"""Chapter-level workflows that notebooks call: load data, train, evaluate, save to runs/ and results/."""
