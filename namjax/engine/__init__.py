"""The attribution engine: the global pass (:mod:`~namjax.engine.globalpass`), host planning
(:mod:`~namjax.engine.plan`), the pairs engine (:mod:`~namjax.engine.pairs`), the subgraph
engine (:mod:`~namjax.engine.subgraph`) and the exact local deletion sweep
(:mod:`~namjax.engine.sweep`). The public verbs on top live in :mod:`namjax.explainer` and
:mod:`namjax.walks`."""
