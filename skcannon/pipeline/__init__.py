"""The orchestration layer: the main job's configuration, resources and stages.

The ``skcannon`` command and the main job (``skcannon run``) call the same stage functions.
"""
