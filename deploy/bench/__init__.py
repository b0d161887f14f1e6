"""`make bench`: the project's throughput and latency side by side with the machine's limits.

One entry point (`python -m deploy.bench`), one Markdown report and its plots under
artifacts/bench/. Every figure is a ratio to a baseline measured in the same run, or a latency
at a stated rate: the machine is shared and noisy, so absolute numbers mean little alone."""
