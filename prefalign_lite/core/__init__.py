"""The mathematics every layer above uses: argument checks, the DRO linear program, SPA's noise
threshold, SeRA's selection, statistics (intervals, tests, win rates) and atomic file writes.
Nothing here imports another part of the kit."""
