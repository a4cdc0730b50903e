"""What every layer above shares: errors, the configuration, the data and its moments,
tolerances, one point's analysis' NumPy references, ragged arrays, the BLAS thread limit,
the version.  Nothing here knows about run directories or kinds of run."""
