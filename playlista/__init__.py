"""playlista: analyse a music library into DuckDB, with Prefect and Dask."""

from playlista.jit import cache_dir as _numba_cache_dir

_numba_cache_dir()  # before anything imports numba: see playlista.jit
