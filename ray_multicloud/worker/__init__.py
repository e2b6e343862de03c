"""Code that runs on, or acts on, a worker node: the interruption-notice ``watcher`` (started by each
worker's startup script) and ``drain`` (a Ray drain of one node, asked by the watcher or the
controller). Nothing here decides which node moves; that is ``policy/`` through the controller.
"""
