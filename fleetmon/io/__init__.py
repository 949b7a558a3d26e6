"""Output edge (I/O): report files written safely, the run lock, the raw-output store."""
