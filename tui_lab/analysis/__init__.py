"""The batch-size science: pure functions the engine, the app and the commands call.

- ``noise_scale``: the gradient noise scale B_simple (McCandlish et al. 2018), measured on the
  training batches themselves every k-th step.
- ``batch_finder``: the largest batch that fits in memory, and the throughput of each size.
- ``lr_finder``: the learning-rate range test, to pick a rate for each batch size.
- ``scaling``: steps to target against batch size, the S_min/E_min/B_crit fit, and the batch
  size that is optimal in wall time.
- ``memory``: peak memory of a run.

No UI here: results are schema models (``tui_lab.schema.analysis``) or plain values.
"""
