"""The pieces of the RL training loop (:func:`siri_bench.trainer.train` reads top to bottom):

* :mod:`~siri_bench.training.state` - what the algorithm hooks see: :class:`TrainingState` (the run,
  updated every iteration) and :class:`LossBatch` (one micro-batch for ``loss_terms``);
* :mod:`~siri_bench.training.rewards` - the training reward and the step table;
* :mod:`~siri_bench.training.update` - old/reference log-probs, mini-batches, gradient
  accumulation, the optimizer step;
* :mod:`~siri_bench.training.checkpoint` - optimizer, reference policy, ``init_from``, checkpoints;
* :mod:`~siri_bench.training.metrics` - the per-iteration rollout metrics.
"""
