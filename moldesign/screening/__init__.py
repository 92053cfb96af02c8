"""Screening and metrics: RDKit properties, filters and alerts over files in chunks (local worker
pool or Dask), and the MOSES metrics."""
