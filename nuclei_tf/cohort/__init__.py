"""Cohorts of slides on Dask (``nuclei-tf cohort``): one task per slide, each calling the same
:func:`~nuclei_tf.inference.predict_file.predict_file` as ``predict``, on a LocalCluster by default,
an existing scheduler or a Slurm allocation; per-slide and cohort summaries. This package sits one
floor above :mod:`nuclei_tf.inference`, which never imports it."""
