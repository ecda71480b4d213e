"""SIRI (He et al., "Self-Internalizing Reinforcement Learning with Intrinsic Skills for LLM Agent
Training"): a base group optimizer (GiGPO or GRPO) plus

1. warm-up, filling a per-category success buffer (:mod:`algorithms.siri.buffer`);
2. self-skill mining (:mod:`algorithms.siri.writer`) into a skill bank with a lifecycle
   (:mod:`algorithms.siri.bank`), checked by paired validation (:mod:`algorithms.siri.validation`);
3. advantage-weighted internalization of skill-guided actions into the plain prompt
   (:mod:`algorithms.siri.internalization`).

The parameters are :class:`algorithms.siri.config.SIRIConfig`; the spec is
``shared/reference/siri.md``.
"""
