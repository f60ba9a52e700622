"""`python -m benchmarks`: the runner (see benchmarks._runner)."""

from benchmarks._runner import main

raise SystemExit(main())
