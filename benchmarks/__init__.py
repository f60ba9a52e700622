"""The benchmarks: scripts that measure the package and write JSON under results/benchmarks/.

    python -m benchmarks --list            # each benchmark, its cost class, duration and needs
    python -m benchmarks                   # the cheap set, in dependency order
    python -m benchmarks NAME ... | --all  # chosen benchmarks, or all of them
    python -m benchmarks.NAME [ARGS]       # one benchmark with its own arguments

Shared helpers (paths, declarations, the result writer) live in `benchmarks._harness`.
"""
