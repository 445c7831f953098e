"""The benchmark: mnistctl against the original recipe and a plain PyTorch loop (not part of the wheel).

python -m benchmarks --quick       # from the repository root; `make bench-quick`
"""
