"""A one-replica Ray Serve app for the idle-governance end-to-end test and demo
(``tests/test_idle_e2e.py``): deployed from a config (``import_path:
ray_multicloud.scenarios.idle_app:app``), so a hibernation can delete it and a restore deploy it
again. Its replica takes one CPU and no GPU: on a GPU node it is the "other work" that keeps the
node alive while its GPU idles."""

from __future__ import annotations

from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 1})
class WhereAmI:
    """Answers with the Ray node id its replica runs on."""

    def __call__(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())


app = WhereAmI.bind()  # type: ignore[attr-defined]  # serve.deployment's wrapper
