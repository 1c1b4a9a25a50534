"""Benchmarks: scripts that print numbers (make bench, bench-desafio, bench-slow-clients, bench-uploads)."""
