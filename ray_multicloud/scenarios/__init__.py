"""Harnesses that bring a cluster up to exercise a workload: the local cluster, the demo, the Train
and Serve migration scenarios and the load generator.

They launch machines (``LocalCluster``, the ``Controller``, ``move_node``), so they are used by the
end-to-end tests, the benchmarks and ``ray-multicloud demo``; a user's Train script or Serve app never
imports them (those import ``ray_multicloud.train`` and ``ray_multicloud.serve``).
"""
