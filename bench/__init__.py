"""Benchmarks (`make bench`, `make bench-desafio`, `make bench-slow-clients`, `make bench-uploads`): scripts that print numbers."""
